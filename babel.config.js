// Used by jest only: the library is built with tsc, and apps bundle it with
// their own Babel config.
module.exports = {
  presets: ['module:@react-native/babel-preset'],
};
