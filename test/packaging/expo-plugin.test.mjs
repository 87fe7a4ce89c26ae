// The Expo config plugin (app.plugin.js) run by @expo/config-plugins' own mod
// compiler (what `npx expo prebuild` runs) on the files of Expo SDK 58's
// bare template (fixtures/, copied unchanged from expo-template-bare-minimum).
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const FIXTURE = path.join(here, 'fixtures', 'expo-template-bare-minimum-58.0.8');
const plugin = require('../../app.plugin.js');
const { compileModsAsync, AndroidConfig, CodeGenerator } = require('@expo/config-plugins');
const plist = require('@expo/plist').default;

const INFO_PLIST = 'ios/HelloWorld/Info.plist';
const APP_DELEGATE = 'ios/HelloWorld/AppDelegate.swift';
const MANIFEST = 'android/app/src/main/AndroidManifest.xml';
const { constants } = plugin;

const scratch = mkdtempSync(path.join(os.tmpdir(), 's3bgu-expo-plugin-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

let projects = 0;
function newProject() {
  const dir = path.join(scratch, `app-${projects++}`);
  cpSync(FIXTURE, dir, { recursive: true });
  return dir;
}

/** What `expo prebuild` does with the plugin: evaluate it and run the mods on disk. */
async function prebuild(projectRoot, options) {
  const config = plugin(
    {
      name: 'HelloWorld',
      slug: 'hello-world',
      ios: { bundleIdentifier: 'com.example.helloworld' },
      android: { package: 'com.example.helloworld' },
      _internal: { projectRoot },
    },
    options,
  );
  await compileModsAsync(config, { projectRoot, platforms: ['ios', 'android'] });
}

const read = (dir, rel) => readFileSync(path.join(dir, rel), 'utf8');
// Plain objects (the parser's have a null prototype) so deepEqual compares values only.
const readPlist = (dir, rel = INFO_PLIST) =>
  JSON.parse(JSON.stringify(plist.parse(read(dir, rel))));
const snapshot = dir =>
  Object.fromEntries([INFO_PLIST, APP_DELEGATE, MANIFEST].map(f => [f, read(dir, f)]));
const manifestOf = dir => AndroidConfig.Manifest.readAndroidManifestAsync(path.join(dir, MANIFEST));
const count = (s, sub) => s.split(sub).length - 1;

// Sorted: Expo's manifest writer orders the permissions itself.
function permissionsOf(manifest) {
  return (manifest.manifest['uses-permission'] || []).map(p => p.$['android:name']).sort();
}

function servicesOf(manifest) {
  return AndroidConfig.Manifest.getMainApplicationOrThrow(manifest).service || [];
}

test('iOS: BGTask identifiers, background modes and the app delegate hook; nothing else changes', async t => {
  const dir = newProject();
  const before = readPlist(FIXTURE);
  await prebuild(dir, {});
  const info = readPlist(dir);
  assert.deepEqual(info.BGTaskSchedulerPermittedIdentifiers, [
    '$(PRODUCT_BUNDLE_IDENTIFIER).s3bgu.*',
  ]);
  assert.deepEqual(info.UIBackgroundModes, ['fetch', 'processing']);
  const { BGTaskSchedulerPermittedIdentifiers, UIBackgroundModes, ...rest } = info;
  assert.deepEqual(rest, before, 'every key of the template keeps its value');

  const swift = read(dir, APP_DELEGATE);
  const original = read(FIXTURE, APP_DELEGATE);
  assert.equal(count(swift, constants.IOS_MODULE_IMPORT), 1);
  assert.equal(count(swift, constants.IOS_HOOK_CALL), 1);
  assert.equal(count(swift, 'handleEventsForBackgroundURLSession identifier: String'), 1);
  // Inside the AppDelegate class (an override of ExpoAppDelegate's method,
  // which hands other sessions to the other modules), not in the factory delegate.
  const classAt = swift.indexOf('class AppDelegate: ExpoAppDelegate');
  const hookAt = swift.indexOf(
    'public override func application(\n    _ application: UIApplication,\n    handleEventsForBackgroundURLSession',
  );
  const nextClassAt = swift.indexOf('class ReactNativeDelegate');
  assert.ok(
    classAt >= 0 && hookAt > classAt && hookAt < nextClassAt,
    'the hook is a member of AppDelegate',
  );
  assert.match(
    swift,
    /super\.application\(application, handleEventsForBackgroundURLSession: identifier, completionHandler: completionHandler\)/,
  );
  // The import sits with the other imports, before the class.
  assert.ok(swift.indexOf(constants.IOS_MODULE_IMPORT) < swift.indexOf('@main'));
  // Removing the generated blocks gives back the template, byte for byte.
  let stripped = CodeGenerator.removeGeneratedContents(
    swift,
    'react-native-s3-bg-uploader-background-session',
  );
  stripped = CodeGenerator.removeGeneratedContents(stripped, 'react-native-s3-bg-uploader-import');
  assert.equal(stripped, original);
  t.diagnostic(
    `AppDelegate.swift: +${swift.split('\n').length - original.split('\n').length} lines`,
  );
});

test('Android: nothing is added unless the foreground-service fallback is enabled', async () => {
  const dir = newProject();
  await prebuild(dir, { android: { foregroundServiceFallback: false } });
  const manifest = await manifestOf(dir);
  const template = await manifestOf(FIXTURE);
  assert.deepEqual(permissionsOf(manifest), permissionsOf(template));
  assert.deepEqual(servicesOf(manifest), []);
  assert.ok(!read(dir, MANIFEST).includes('FOREGROUND_SERVICE'));
});

test('Android: the fallback adds both permissions and the dataSync service', async t => {
  const dir = newProject();
  await prebuild(dir, { android: { foregroundServiceFallback: true } });
  const manifest = await manifestOf(dir);
  const template = await manifestOf(FIXTURE);
  assert.deepEqual(
    permissionsOf(manifest),
    [...permissionsOf(template), ...constants.FGS_PERMISSIONS].sort(),
  );
  const services = servicesOf(manifest);
  assert.equal(services.length, 1);
  assert.deepEqual(services[0].$, {
    'android:name': 'com.s3bguploader.UploadForegroundService',
    'android:foregroundServiceType': 'dataSync',
    'android:exported': 'false',
  });
  // The rest of the application element is the template's.
  const app = AndroidConfig.Manifest.getMainApplicationOrThrow(manifest);
  const templateApp = AndroidConfig.Manifest.getMainApplicationOrThrow(template);
  assert.deepEqual(app.activity, templateApp.activity);
  assert.deepEqual(app.$, templateApp.$);
  t.diagnostic(
    `permissions: ${permissionsOf(manifest).length} (template ${permissionsOf(template).length})`,
  );
});

test('applying the plugin twice gives the same files', async t => {
  for (const options of [
    {},
    { android: { foregroundServiceFallback: true, notificationIcon: '@drawable/ic_stat_upload' } },
  ]) {
    const dir = newProject();
    await prebuild(dir, options);
    const first = snapshot(dir);
    await prebuild(dir, options);
    const second = snapshot(dir);
    for (const f of Object.keys(first))
      assert.equal(second[f], first[f], `${f} unchanged by a second prebuild`);
    const changed = Object.keys(first).filter(f => first[f] !== read(FIXTURE, f));
    t.diagnostic(
      `${JSON.stringify(options)}: changed ${changed.join(', ')}; second run byte-identical`,
    );
  }
});

test('what the app already declares is kept and not duplicated', async () => {
  const dir = newProject();
  const info = readPlist(dir);
  info.UIBackgroundModes = ['audio', 'fetch'];
  info.BGTaskSchedulerPermittedIdentifiers = ['com.example.refresh'];
  writeFileSync(path.join(dir, INFO_PLIST), plist.build(info));
  const manifestPath = path.join(dir, MANIFEST);
  writeFileSync(
    manifestPath,
    read(dir, MANIFEST).replace(
      '<uses-permission android:name="android.permission.INTERNET"/>',
      '<uses-permission android:name="android.permission.INTERNET"/>\n  <uses-permission android:name="android.permission.FOREGROUND_SERVICE"/>',
    ),
  );
  await prebuild(dir, { android: { foregroundServiceFallback: true } });
  const after = readPlist(dir);
  assert.deepEqual(after.UIBackgroundModes, ['audio', 'fetch', 'processing']);
  assert.deepEqual(after.BGTaskSchedulerPermittedIdentifiers, [
    'com.example.refresh',
    '$(PRODUCT_BUNDLE_IDENTIFIER).s3bgu.*',
  ]);
  const permissions = permissionsOf(await manifestOf(dir));
  assert.equal(permissions.filter(p => p === 'android.permission.FOREGROUND_SERVICE').length, 1);
  assert.equal(
    permissions.filter(p => p === 'android.permission.FOREGROUND_SERVICE_DATA_SYNC').length,
    1,
  );
});

test('options ios.appDelegate and ios.backgroundModes turn their part off', async () => {
  const dir = newProject();
  await prebuild(dir, { ios: { appDelegate: false, backgroundModes: false } });
  assert.equal(read(dir, APP_DELEGATE), read(FIXTURE, APP_DELEGATE));
  const info = readPlist(dir);
  assert.equal(info.UIBackgroundModes, undefined);
  assert.deepEqual(info.BGTaskSchedulerPermittedIdentifiers, [
    '$(PRODUCT_BUNDLE_IDENTIFIER).s3bgu.*',
  ]);
});

test('bad options fail with a message naming the option', () => {
  const cases = [
    ['a string', 'yes', /options must be an object/],
    ['an unknown key', { andriod: {} }, /unknown option "andriod" \(known: ios, android\)/],
    [
      'an unknown nested key',
      { android: { foregroundService: true } },
      /unknown option "android\.foregroundService" \(known: android\.foregroundServiceFallback, android\.notificationIcon\)/,
    ],
    [
      'a string for a boolean',
      { android: { foregroundServiceFallback: 'true' } },
      /"android\.foregroundServiceFallback" must be true or false, got the string "true"/,
    ],
    [
      'an icon that is not a resource',
      { android: { notificationIcon: 'ic_stat_upload.png' } },
      /"android\.notificationIcon" must be a resource like "@drawable\/ic_stat_upload", got the string "ic_stat_upload.png"/,
    ],
    [
      'an icon that is not a string',
      { android: { notificationIcon: 7 } },
      /"android\.notificationIcon" must be a resource/,
    ],
    ['a non-object platform', { ios: true }, /option "ios" must be an object, got boolean true/],
    ['an array', [], /options must be an object.*got an array/],
  ];
  for (const [what, options, message] of cases) {
    assert.throws(() => plugin({ name: 'x', slug: 'x' }, options), message, what);
  }
  assert.deepEqual(plugin.validateOptions(undefined), {
    ios: { backgroundModes: true, appDelegate: true },
    android: { foregroundServiceFallback: false, notificationIcon: null },
  });
});

test('Android: notificationIcon names the small icon in the meta-data the module reads', async t => {
  const dir = newProject();
  await prebuild(dir, { android: { notificationIcon: '@drawable/ic_stat_upload' } });
  const manifest = await manifestOf(dir);
  const app = AndroidConfig.Manifest.getMainApplicationOrThrow(manifest);
  const entries = (app['meta-data'] || []).filter(
    m => m.$['android:name'] === constants.ICON_META_DATA,
  );
  assert.equal(entries.length, 1);
  assert.deepEqual(entries[0].$, {
    'android:name': 'com.s3bguploader.notification_icon',
    'android:resource': '@drawable/ic_stat_upload',
  });
  // Nothing else: no service, no permission.
  assert.deepEqual(servicesOf(manifest), []);
  assert.ok(!read(dir, MANIFEST).includes('FOREGROUND_SERVICE'));
  // Another icon later replaces it, without a second entry.
  await prebuild(dir, { android: { notificationIcon: '@mipmap/ic_upload' } });
  const again = AndroidConfig.Manifest.getMainApplicationOrThrow(await manifestOf(dir));
  const icons = again['meta-data'].filter(m => m.$['android:name'] === constants.ICON_META_DATA);
  assert.deepEqual(
    icons.map(m => m.$['android:resource']),
    ['@mipmap/ic_upload'],
  );
  t.diagnostic(`meta-data entries: ${again['meta-data'].length}`);
});

test('an Objective-C app delegate gets a clear error instead of a broken edit', () => {
  assert.throws(
    () =>
      plugin.applyAppDelegate(
        '@implementation AppDelegate\n@end\n',
        'objcpp',
        CodeGenerator.mergeContents,
      ),
    /only a Swift AppDelegate .* set the option ios\.appDelegate to false/,
  );
  assert.throws(
    () =>
      plugin.applyAppDelegate(
        'import UIKit\nstruct NotADelegate {}\n',
        'swift',
        CodeGenerator.mergeContents,
      ),
    /no `class AppDelegate: \.\.\. \{` line/,
  );
});

test('a plain UIKit app delegate gets a non-override method that completes unknown sessions', () => {
  const src =
    'import UIKit\n\n@main\nclass AppDelegate: UIResponder, UIApplicationDelegate {\n  var window: UIWindow?\n}\n';
  const out = plugin.applyAppDelegate(src, 'swift', CodeGenerator.mergeContents);
  assert.match(out, /\n {2}func application\(\n/);
  assert.ok(!out.includes('override'));
  assert.match(out, /return\n {4}\}\n {4}completionHandler\(\)\n/);
  assert.equal(plugin.applyAppDelegate(out, 'swift', CodeGenerator.mergeContents), out);
});

test('the fixtures are the template files, unchanged', () => {
  // Guards against a fixture edited by hand: each starts as Expo ships it.
  const files = readdirSync(path.join(FIXTURE, 'ios', 'HelloWorld')).sort();
  assert.deepEqual(files, ['AppDelegate.swift', 'Info.plist']);
  assert.match(
    read(FIXTURE, APP_DELEGATE),
    /class AppDelegate: ExpoAppDelegate, ExpoReactNativeFactoryProvider \{/,
  );
  assert.equal(readPlist(FIXTURE).UIBackgroundModes, undefined);
  assert.ok(!read(FIXTURE, MANIFEST).includes('FOREGROUND_SERVICE'));
});
