'use strict';
// Expo config plugin of react-native-s3-bg-uploader: the native settings an
// app needs that the library cannot declare for it (layout in README,
// "Expo"). Plain CommonJS so it runs in `expo prebuild` without a build step.

const NAME = 'react-native-s3-bg-uploader';
const TAG = 'react-native-s3-bg-uploader';

// iOS: BGTask identifiers the library schedules are `<bundle id>.s3bgu.<name>`.
const BG_TASK_IDENTIFIERS = '$(PRODUCT_BUNDLE_IDENTIFIER).s3bgu.*';
// BGProcessingTask needs `processing`, BGAppRefreshTask needs `fetch`.
const BACKGROUND_MODES = ['fetch', 'processing'];
// The pod's Swift module and the static entry point of the iOS module. The
// entry point returns true when the session is the library's; any other
// session goes on to ExpoAppDelegate, which hands it to other modules.
const IOS_MODULE_IMPORT = 'import react_native_s3_bg_uploader';
const IOS_HOOK_CALL =
  'S3BgUploader.handleEventsForBackgroundURLSession(identifier, completionHandler: completionHandler)';

// Android: the opt-in foreground-service fallback (below API 34, or when the
// user-initiated job is refused). The library's manifest never declares it,
// so apps that do not opt in need no Play Console declaration for dataSync.
const FGS_SERVICE = 'com.s3bguploader.UploadForegroundService';
const FGS_PERMISSIONS = [
  'android.permission.FOREGROUND_SERVICE',
  'android.permission.FOREGROUND_SERVICE_DATA_SYNC',
];

// The notification's small icon: the application meta-data the module reads
// (README, "The notification, as the app sets it").
const ICON_META_DATA = 'com.s3bguploader.notification_icon';
// A drawable (or mipmap) the app's resources already hold.
const ICON_RESOURCE = /^@(drawable|mipmap)\/[a-z][a-z0-9_]*$/;

const OPTION_SHAPE = {
  ios: { backgroundModes: true, appDelegate: true },
  android: { foregroundServiceFallback: false, notificationIcon: null },
};

class S3BgUploaderPluginError extends Error {
  constructor(message) {
    super(`${NAME} config plugin: ${message}`);
    this.name = 'S3BgUploaderPluginError';
  }
}

function isPlainObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Checks the plugin options and fills in the defaults. Throws on anything unknown. */
function validateOptions(raw) {
  if (raw === undefined || raw === null) raw = {};
  if (!isPlainObject(raw)) {
    throw new S3BgUploaderPluginError(
      `options must be an object like { ios: {...}, android: {...} }, got ${describe(raw)}`,
    );
  }
  const result = {};
  for (const key of Object.keys(raw)) {
    if (!(key in OPTION_SHAPE)) {
      throw new S3BgUploaderPluginError(
        `unknown option "${key}" (known: ${Object.keys(OPTION_SHAPE).join(', ')})`,
      );
    }
  }
  for (const [platform, defaults] of Object.entries(OPTION_SHAPE)) {
    const given = raw[platform] === undefined ? {} : raw[platform];
    if (!isPlainObject(given)) {
      throw new S3BgUploaderPluginError(
        `option "${platform}" must be an object, got ${describe(given)}`,
      );
    }
    for (const key of Object.keys(given)) {
      if (!(key in defaults)) {
        throw new S3BgUploaderPluginError(
          `unknown option "${platform}.${key}" (known: ${Object.keys(defaults)
            .map(k => `${platform}.${k}`)
            .join(', ')})`,
        );
      }
      if (defaults[key] === null) {
        // A resource name; null or absent leaves the default.
        if (
          given[key] !== null &&
          !(typeof given[key] === 'string' && ICON_RESOURCE.test(given[key]))
        ) {
          throw new S3BgUploaderPluginError(
            `option "${platform}.${key}" must be a resource like "@drawable/ic_stat_upload", got ${describe(
              given[key],
            )}`,
          );
        }
      } else if (typeof given[key] !== 'boolean') {
        throw new S3BgUploaderPluginError(
          `option "${platform}.${key}" must be true or false, got ${describe(given[key])}`,
        );
      }
    }
    result[platform] = { ...defaults, ...given };
  }
  return result;
}

function describe(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  return `${typeof value} ${typeof value === 'object' ? '' : String(value)}`.trim();
}

function addUnique(list, values) {
  const out = Array.isArray(list) ? [...list] : [];
  for (const v of values) if (!out.includes(v)) out.push(v);
  return out;
}

/** Info.plist: BGTask identifiers and, unless turned off, the background modes. */
function applyInfoPlist(infoPlist, options) {
  const plist = { ...infoPlist };
  plist.BGTaskSchedulerPermittedIdentifiers = addUnique(plist.BGTaskSchedulerPermittedIdentifiers, [
    BG_TASK_IDENTIFIERS,
  ]);
  if (options.ios.backgroundModes) {
    plist.UIBackgroundModes = addUnique(plist.UIBackgroundModes, BACKGROUND_MODES);
  }
  return plist;
}

/**
 * AppDelegate.swift: forwards background URLSession events to the library,
 * so uploads the system finished while the app was suspended or terminated
 * are committed. Tagged blocks: applying twice changes nothing.
 */
function applyAppDelegate(contents, language, mergeContents) {
  if (language !== 'swift') {
    throw new S3BgUploaderPluginError(
      `the app delegate is ${
        language === 'objcpp' || language === 'objc' ? 'Objective-C' : language
      }; ` +
        'only a Swift AppDelegate (Expo SDK 53 and later) can be patched. Add the background session ' +
        'hook by hand (README, "iOS: the app delegate line") and set the option ios.appDelegate to false.',
    );
  }
  const classLine =
    /^\s*(?:@\w+\s+)*(?:public\s+|open\s+|final\s+|internal\s+)*class\s+AppDelegate\s*:[^\n]*\{\s*$/m;
  if (!classLine.test(contents)) {
    throw new S3BgUploaderPluginError(
      'no `class AppDelegate: ... {` line found in AppDelegate.swift; add the background session hook by ' +
        'hand (README) and set the option ios.appDelegate to false.',
    );
  }
  const overrides = /class\s+AppDelegate\s*:\s*(?:\w+\.)?ExpoAppDelegate\b/.test(contents);
  const lastImport = [...contents.matchAll(/^(?:@\w+\s+)?(?:\w+\s+)?import\s+\S+.*$/gm)].pop();
  if (!lastImport) {
    throw new S3BgUploaderPluginError('no import line found in AppDelegate.swift');
  }
  let src = mergeContents({
    src: contents,
    newSrc: IOS_MODULE_IMPORT,
    tag: `${TAG}-import`,
    anchor: new RegExp(`^${escapeRegExp(lastImport[0])}$`, 'm'),
    offset: 1,
    comment: '//',
  }).contents;
  const superCall = overrides
    ? '    super.application(application, handleEventsForBackgroundURLSession: identifier, completionHandler: completionHandler)'
    : '    completionHandler()';
  const method = [
    `  ${overrides ? 'public override ' : ''}func application(`,
    '    _ application: UIApplication,',
    '    handleEventsForBackgroundURLSession identifier: String,',
    '    completionHandler: @escaping () -> Void',
    '  ) {',
    `    if ${IOS_HOOK_CALL} {`,
    '      return',
    '    }',
    superCall,
    '  }',
  ].join('\n');
  src = mergeContents({
    src,
    newSrc: method,
    tag: `${TAG}-background-session`,
    anchor: classLine,
    offset: 1,
    comment: '//',
  }).contents;
  return src;
}

function escapeRegExp(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** AndroidManifest.xml: the notification icon and the foreground-service fallback, each only when asked for. */
function applyAndroidManifest(manifest, options, mainApplicationOf) {
  const icon = options.android.notificationIcon;
  if (icon) {
    const application = mainApplicationOf(manifest);
    const metaData = application['meta-data'] || [];
    let entry = metaData.find(m => m.$ && m.$['android:name'] === ICON_META_DATA);
    if (!entry) {
      entry = { $: { 'android:name': ICON_META_DATA } };
      metaData.push(entry);
    }
    entry.$['android:resource'] = icon;
    delete entry.$['android:value'];
    application['meta-data'] = metaData;
  }
  if (!options.android.foregroundServiceFallback) return manifest;
  const root = manifest.manifest;
  root.$ = root.$ || {};
  root.$['xmlns:android'] = root.$['xmlns:android'] || 'http://schemas.android.com/apk/res/android';
  const permissions = root['uses-permission'] || [];
  for (const name of FGS_PERMISSIONS) {
    if (!permissions.some(p => p.$ && p.$['android:name'] === name)) {
      permissions.push({ $: { 'android:name': name } });
    }
  }
  root['uses-permission'] = permissions;
  const application = mainApplicationOf(manifest);
  const services = application.service || [];
  let service = services.find(s => s.$ && s.$['android:name'] === FGS_SERVICE);
  if (!service) {
    service = { $: { 'android:name': FGS_SERVICE } };
    services.push(service);
  }
  // dataSync is the type the service starts with (Android 14 requires one).
  service.$['android:foregroundServiceType'] = 'dataSync';
  service.$['android:exported'] = 'false';
  application.service = services;
  return manifest;
}

function loadConfigPlugins() {
  // Expo apps have expo/config-plugins; a bare project may have the package itself.
  for (const id of ['expo/config-plugins', '@expo/config-plugins']) {
    try {
      return require(id);
    } catch (error) {
      if (error && error.code !== 'MODULE_NOT_FOUND') throw error;
    }
  }
  throw new S3BgUploaderPluginError(
    'neither expo/config-plugins nor @expo/config-plugins can be loaded: the plugin runs inside an Expo ' +
      'project (npx expo prebuild). Bare React Native apps do not use it (README, "Bare React Native").',
  );
}

function withS3BgUploader(config, rawOptions) {
  const options = validateOptions(rawOptions);
  const plugins = loadConfigPlugins();
  const { withInfoPlist, withAppDelegate, withAndroidManifest, AndroidConfig, CodeGenerator } =
    plugins;

  config = withInfoPlist(config, mod => {
    mod.modResults = applyInfoPlist(mod.modResults, options);
    return mod;
  });
  if (options.ios.appDelegate) {
    config = withAppDelegate(config, mod => {
      mod.modResults.contents = applyAppDelegate(
        mod.modResults.contents,
        mod.modResults.language,
        CodeGenerator.mergeContents,
      );
      return mod;
    });
  }
  config = withAndroidManifest(config, mod => {
    mod.modResults = applyAndroidManifest(
      mod.modResults,
      options,
      AndroidConfig.Manifest.getMainApplicationOrThrow,
    );
    return mod;
  });
  return config;
}

let version = '0.0.0';
try {
  version = require('../package.json').version;
} catch {
  // Only the run-once key uses it.
}

function plugin(config, options) {
  const { createRunOncePlugin } = loadConfigPlugins();
  return createRunOncePlugin(withS3BgUploader, NAME, version)(config, options);
}

module.exports = plugin;
module.exports.withS3BgUploader = withS3BgUploader;
module.exports.validateOptions = validateOptions;
module.exports.applyInfoPlist = applyInfoPlist;
module.exports.applyAppDelegate = applyAppDelegate;
module.exports.applyAndroidManifest = applyAndroidManifest;
module.exports.constants = {
  BG_TASK_IDENTIFIERS,
  BACKGROUND_MODES,
  IOS_MODULE_IMPORT,
  IOS_HOOK_CALL,
  FGS_SERVICE,
  FGS_PERMISSIONS,
  ICON_META_DATA,
};
