// ESLint 9 flat config: React Native's shared rules, plus a few that keep the
// library strict. Formatting is prettier's job (`.prettierrc.js`).
const rnConfig = require('@react-native/eslint-config/flat');

module.exports = [
  {
    ignores: [
      'lib/',
      'node_modules/',
      'target/',
      'coverage/',
      'example-app/node_modules/',
      'example-app/android/',
      'example-app/ios/',
      'example-app/backend/',
      'example-app/build/',
      'example-app/*.config.js',
      'example-app/index.js',
    ],
  },
  ...rnConfig,
  {
    files: ['**/*.ts', '**/*.tsx'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-shadow': 'error',
      'no-console': ['error', { allow: ['error', 'warn'] }],
      eqeqeq: ['error', 'always'],
    },
  },
];
