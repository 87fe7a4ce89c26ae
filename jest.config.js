module.exports = {
  preset: '@react-native/jest-preset',
  roots: ['<rootDir>/js'],
  testMatch: ['**/__tests__/**/*.test.ts?(x)'],
  // The example app has its own react-native; jest must not see two.
  modulePathIgnorePatterns: ['<rootDir>/example-app/', '<rootDir>/lib/'],
  restoreMocks: true,
  reporters: ['default', '<rootDir>/scripts/jest-count-reporter.js'],
};
