const path = require('path');
const { getDefaultConfig, mergeConfig } = require('@react-native/metro-config');

// The library is the repository root, linked as `file:..`. Metro must watch
// it, and must take react and react-native from this app only: the root's
// own node_modules (its dev dependencies) would otherwise give the bundle a
// second copy of React.
const root = path.resolve(__dirname, '..');
const escape = p => p.replace(/[/\\^$.*+?()[\]{}|]/g, '\\$&');
const under = dir => new RegExp(`^${escape(path.join(root, dir))}[/\\\\].*`);

/** @type {import('@react-native/metro-config').MetroConfig} */
const config = {
  watchFolders: [root],
  resolver: {
    nodeModulesPaths: [path.join(__dirname, 'node_modules')],
    blockList: [
      under('node_modules'),
      under('.git'),
      under('target'),
      under('rust-core'),
      under('tools'),
      under('bindings'),
      under('android'),
      under('ios'),
      under(path.join('example-app', 'backend')),
      under(path.join('example-app', 'android')),
      under(path.join('example-app', 'ios')),
      under(path.join('example-app', 'build')),
    ],
  },
};

module.exports = mergeConfig(getDefaultConfig(__dirname), config);
