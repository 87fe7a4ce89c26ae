'use strict';
// Expo config plugin of react-native-s3-bg-uploader: the native settings an
// app needs that the library cannot declare for it.
// README, "Expo (prebuild / development builds)" documents it.
// Plain CommonJS so it runs in `expo prebuild` without a build step, on every
// SDK the package claims (52 and later).

const NAME = 'react-native-s3-bg-uploader';
const TAG = 'react-native-s3-bg-uploader';

// iOS: BGTask identifiers the library schedules are `<bundle id>.s3bgu.<name>`.
const BG_TASK_IDENTIFIERS = '$(PRODUCT_BUNDLE_IDENTIFIER).s3bgu.*';
// Kept for BGContinuedProcessingTask (iOS 26): Apple's pages read here do not
// say whether it needs the mode. The background URLSession and
// beginBackgroundTask need none, and nothing uses `fetch`.
const BACKGROUND_MODES = ['processing'];
// The pod's entry point for background-session events, a plain Objective-C
// class so that Swift and Objective-C app delegates call the same thing. It
// returns false (and leaves the handler alone) for another session.
const IOS_HOOK_CLASS = 'S3BgUploaderBackgroundEvents';
const IOS_SWIFT_IMPORT = 'import react_native_s3_bg_uploader';
const IOS_OBJC_IMPORT = `#import <react_native_s3_bg_uploader/${IOS_HOOK_CLASS}.h>`;
const IOS_SWIFT_HOOK_CALL = `${IOS_HOOK_CLASS}.handleEventsForBackgroundURLSession(identifier, completionHandler: completionHandler)`;
const IOS_OBJC_HOOK_CALL = `[${IOS_HOOK_CLASS} handleEventsForBackgroundURLSession:identifier completionHandler:completionHandler]`;
// Where the README shows the hook; errors send the developer there.
const README_HOOK_SECTION = 'iOS: the app delegate hook';

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
 * The hook as a Swift method of the app delegate. `override`: the class is
 * an ExpoAppDelegate, whose own method hands other sessions to Expo modules.
 */
function swiftHookMethod({ override }) {
  return [
    `${override ? 'public override ' : ''}func application(`,
    '  _ application: UIApplication,',
    '  handleEventsForBackgroundURLSession identifier: String,',
    '  completionHandler: @escaping () -> Void',
    ') {',
    `  if ${IOS_SWIFT_HOOK_CALL} {`,
    '    return',
    '  }',
    override
      ? '  super.application(application, handleEventsForBackgroundURLSession: identifier, completionHandler: completionHandler)'
      : '  completionHandler()',
    '}',
  ].join('\n');
}

/**
 * The hook as an Objective-C method. `callSuper`: the class is Expo's
 * EXAppDelegateWrapper (SDK 52), which forwards the event to Expo modules;
 * React Native's RCTAppDelegate has no such method, so there the handler is
 * called directly.
 */
function objcHookMethod({ callSuper }) {
  return [
    '- (void)application:(UIApplication *)application',
    '    handleEventsForBackgroundURLSession:(NSString *)identifier',
    '                      completionHandler:(void (^)(void))completionHandler',
    '{',
    `  if (${IOS_OBJC_HOOK_CALL}) {`,
    '    return;',
    '  }',
    callSuper
      ? '  [super application:application handleEventsForBackgroundURLSession:identifier completionHandler:completionHandler];'
      : '  completionHandler();',
    '}',
  ].join('\n');
}

// Tagged blocks of our own (Expo's CodeGenerator is exported only from SDK
// 54 on). The begin line may carry any suffix, so blocks written by Expo's
// merge in earlier versions of this plugin are found and replaced too.
function blockPattern(tag, comment) {
  const c = escapeRegExp(comment);
  const t = escapeRegExp(tag);
  return new RegExp(
    `^[ \\t]*${c} @generated begin ${t}(?:[ \\t].*)?\\n[\\s\\S]*?^[ \\t]*${c} @generated end ${t}[ \\t]*(?:\\n|$)`,
    'gm',
  );
}

function removeBlock(src, tag, comment) {
  return src.replace(blockPattern(tag, comment), '');
}

/** Puts the tagged lines before line `index` (0-based) of `src`. */
function insertBlock(src, { tag, comment, body, index, indent = '' }) {
  const lines = src.split('\n');
  const block = [
    `${comment} @generated begin ${tag} - ${NAME} config plugin (rewritten at each prebuild)`,
    ...body.split('\n').map(l => (l ? indent + l : l)),
    `${comment} @generated end ${tag}`,
  ];
  lines.splice(index, 0, ...block);
  return lines.join('\n');
}

function lineIndexOf(src, match) {
  return src.slice(0, match.index).split('\n').length - 1;
}

// One line (no \s: it would run across lines and move the match's start).
const SWIFT_CLASS_LINE =
  /^[ \t]*(?:@\w+[ \t]+)*(?:(?:public|open|final|internal)[ \t]+)*class[ \t]+AppDelegate[ \t]*:[^\n]*\{[ \t]*$/m;
const OBJC_IMPLEMENTATION = /^@implementation\s+AppDelegate\b.*$/m;
const HANDLES_EVENTS = /handleEventsForBackgroundURLSession/;

function cannotPatch(file, why) {
  return new S3BgUploaderPluginError(
    `${why} in ${file}. Add the hook by hand (README, "${README_HOOK_SECTION}") ` +
      'and set the option ios.appDelegate to false.',
  );
}

/**
 * Forwards background URLSession events to the library, so parts the system
 * finished while the app was suspended or terminated are committed. Swift
 * (Expo SDK 53 and later) and Objective-C(++) (SDK 52's AppDelegate.mm).
 * `header` is the Objective-C delegate's .h text when it could be read.
 * Applying it again to its own output changes nothing.
 */
function applyAppDelegate(contents, language, header = null) {
  if (language === 'swift') return applySwiftAppDelegate(contents);
  if (language === 'objc' || language === 'objcpp') return applyObjcAppDelegate(contents, header);
  throw cannotPatch('the app delegate', `unsupported app delegate language "${language}"`);
}

function applySwiftAppDelegate(contents) {
  const tagImport = `${TAG}-import`;
  const tagHook = `${TAG}-background-session`;
  let src = removeBlock(removeBlock(contents, tagImport, '//'), tagHook, '//');
  const classLine = SWIFT_CLASS_LINE.exec(src);
  if (!classLine) throw cannotPatch('AppDelegate.swift', 'no `class AppDelegate: ... {` line');
  if (HANDLES_EVENTS.test(src)) {
    throw cannotPatch(
      'AppDelegate.swift',
      'the app delegate already handles background URLSession events',
    );
  }
  const imports = [...src.matchAll(/^(?:@\w+\s+)?(?:\w+\s+)?import\s+\S+.*$/gm)];
  if (!imports.length) throw cannotPatch('AppDelegate.swift', 'no import line found');
  const override = /class\s+AppDelegate\s*:\s*(?:\w+\.)?ExpoAppDelegate\b/.test(classLine[0]);
  // The method first: it sits below the imports, so their line numbers hold.
  src = insertBlock(src, {
    tag: tagHook,
    comment: '  //',
    body: swiftHookMethod({ override }),
    index: lineIndexOf(src, classLine) + 1,
    indent: '  ',
  });
  src = insertBlock(src, {
    tag: tagImport,
    comment: '//',
    body: IOS_SWIFT_IMPORT,
    index: lineIndexOf(src, imports[imports.length - 1]) + 1,
  });
  return src;
}

function applyObjcAppDelegate(contents, header) {
  const tagImport = `${TAG}-import`;
  const tagHook = `${TAG}-background-session`;
  let src = removeBlock(removeBlock(contents, tagImport, '//'), tagHook, '//');
  const implementation = OBJC_IMPLEMENTATION.exec(src);
  if (!implementation) throw cannotPatch('AppDelegate.mm', 'no `@implementation AppDelegate` line');
  const endLine = /^@end\b/m.exec(src.slice(implementation.index));
  if (!endLine)
    throw cannotPatch('AppDelegate.mm', 'no `@end` after `@implementation AppDelegate`');
  if (HANDLES_EVENTS.test(src)) {
    throw cannotPatch(
      'AppDelegate.mm',
      'the app delegate already handles background URLSession events',
    );
  }
  const imports = [...src.matchAll(/^[ \t]*(?:#import|#include|@import)\b.*$/gm)];
  if (!imports.length) throw cannotPatch('AppDelegate.mm', 'no #import line found');
  const callSuper =
    typeof header === 'string' &&
    /@interface\s+AppDelegate\s*:\s*EXAppDelegateWrapper\b/.test(header);
  src = insertBlock(src, {
    tag: tagHook,
    comment: '//',
    body: objcHookMethod({ callSuper }),
    index: lineIndexOf(src, { index: implementation.index + endLine.index }),
  });
  src = insertBlock(src, {
    tag: tagImport,
    comment: '//',
    body: IOS_OBJC_IMPORT,
    index: lineIndexOf(src, imports[imports.length - 1]) + 1,
  });
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

/** Reads the Objective-C app delegate's header beside it; null when there is none. */
function readHeaderOf(appDelegatePath) {
  if (typeof appDelegatePath !== 'string' || !/\.mm?$/.test(appDelegatePath)) return null;
  try {
    return require('fs').readFileSync(appDelegatePath.replace(/\.mm?$/, '.h'), 'utf8');
  } catch {
    return null;
  }
}

/**
 * The plugin over a given copy of Expo's config-plugins API. Only functions
 * every SDK the package claims (52 and later) exports are used.
 */
function withS3BgUploader(config, rawOptions, plugins = loadConfigPlugins()) {
  const options = validateOptions(rawOptions);
  const { withInfoPlist, withAppDelegate, withAndroidManifest, AndroidConfig } = plugins;

  config = withInfoPlist(config, mod => {
    mod.modResults = applyInfoPlist(mod.modResults, options);
    return mod;
  });
  if (options.ios.appDelegate) {
    config = withAppDelegate(config, mod => {
      const { contents, language, path } = mod.modResults;
      mod.modResults.contents = applyAppDelegate(contents, language, readHeaderOf(path));
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

/** The plugin bound to one copy of config-plugins (tests pass each SDK's own). */
function createPlugin(plugins) {
  return function plugin(config, options) {
    return plugins.createRunOncePlugin(
      (c, o) => withS3BgUploader(c, o, plugins),
      NAME,
      version,
    )(config, options);
  };
}

function plugin(config, options) {
  return createPlugin(loadConfigPlugins())(config, options);
}

module.exports = plugin;
module.exports.createPlugin = createPlugin;
module.exports.withS3BgUploader = withS3BgUploader;
module.exports.validateOptions = validateOptions;
module.exports.applyInfoPlist = applyInfoPlist;
module.exports.applyAppDelegate = applyAppDelegate;
module.exports.applyAndroidManifest = applyAndroidManifest;
module.exports.removeBlock = removeBlock;
module.exports.swiftHookMethod = swiftHookMethod;
module.exports.objcHookMethod = objcHookMethod;
module.exports.constants = {
  BG_TASK_IDENTIFIERS,
  BACKGROUND_MODES,
  IOS_HOOK_CLASS,
  IOS_SWIFT_IMPORT,
  IOS_OBJC_IMPORT,
  IOS_SWIFT_HOOK_CALL,
  IOS_OBJC_HOOK_CALL,
  README_HOOK_SECTION,
  FGS_SERVICE,
  FGS_PERMISSIONS,
  ICON_META_DATA,
};
