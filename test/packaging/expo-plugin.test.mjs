// The Expo config plugin (app.plugin.js) on the native projects of the
// oldest and the newest Expo SDK the package claims (expo-template-bare-minimum
// from npm, see expo-templates.mjs), each run by that SDK's own
// @expo/config-plugins mod compiler: what `npx expo prebuild` runs after it
// copies the template. SDK 52 has an Objective-C++ AppDelegate.mm and no
// CodeGenerator export; SDK 53 and later have a Swift AppDelegate.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { SDKS, configPluginsOf, configPluginsVersion, templateDir } from './expo-templates.mjs';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(here, '../..');
const appPlugin = require('../../app.plugin.js');
const plist = require('@expo/plist').default;
const { constants } = appPlugin;

const INFO_PLIST = 'ios/HelloWorld/Info.plist';
const MANIFEST = 'android/app/src/main/AndroidManifest.xml';
const TAG_IMPORT = 'react-native-s3-bg-uploader-import';
const TAG_HOOK = 'react-native-s3-bg-uploader-background-session';

const scratch = mkdtempSync(path.join(os.tmpdir(), 's3bgu-expo-plugin-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

let projects = 0;
function newProject(entry) {
  const dir = path.join(scratch, `sdk${entry.sdk}-${projects++}`);
  cpSync(templateDir(entry), dir, { recursive: true });
  return dir;
}

/** The plugin options of the README's app.json snippet (section "Expo"). */
function readmeOptions() {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```json\n([\s\S]*?)```/g)].map(m => JSON.parse(m[1]));
  const app = blocks.find(b => b.expo && Array.isArray(b.expo.plugins));
  assert.ok(app, 'the README has an app.json snippet with expo.plugins');
  const entry = app.expo.plugins.find(
    p => (Array.isArray(p) ? p[0] : p) === 'react-native-s3-bg-uploader',
  );
  assert.ok(entry, 'the snippet lists the plugin');
  return Array.isArray(entry) ? entry[1] : undefined;
}

/** What `expo prebuild` does with the plugin: evaluate it and run the mods on disk. */
async function prebuild(entry, projectRoot, options) {
  const configPlugins = configPluginsOf(entry);
  const config = appPlugin.createPlugin(configPlugins)(
    {
      name: 'HelloWorld',
      slug: 'hello-world',
      ios: { bundleIdentifier: 'com.example.helloworld' },
      android: { package: 'com.example.helloworld' },
      _internal: { projectRoot },
    },
    options,
  );
  await configPlugins.compileModsAsync(config, { projectRoot, platforms: ['ios', 'android'] });
}

const read = (dir, rel) => readFileSync(path.join(dir, rel), 'utf8');
// Plain objects (the parser's have a null prototype) so deepEqual compares values only.
const readPlist = (dir, rel = INFO_PLIST) =>
  JSON.parse(JSON.stringify(plist.parse(read(dir, rel))));
const snapshot = (entry, dir) =>
  Object.fromEntries([INFO_PLIST, entry.appDelegate, MANIFEST].map(f => [f, read(dir, f)]));
const count = (s, sub) => s.split(sub).length - 1;

function manifestHelpers(entry) {
  const { AndroidConfig } = configPluginsOf(entry);
  return {
    manifestOf: dir => AndroidConfig.Manifest.readAndroidManifestAsync(path.join(dir, MANIFEST)),
    app: manifest => AndroidConfig.Manifest.getMainApplicationOrThrow(manifest),
  };
}

// Sorted: Expo's manifest writer orders the permissions itself.
function permissionsOf(manifest) {
  return (manifest.manifest['uses-permission'] || []).map(p => p.$['android:name']).sort();
}

test('the SDKs tested are the oldest the package claims and the newest of the dev toolchain', () => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const floor = /^>=\s*(\d+)\./.exec(pkg.peerDependencies.expo);
  assert.ok(floor, `peerDependencies.expo is a floor: ${pkg.peerDependencies.expo}`);
  assert.equal(SDKS[0].sdk, Number(floor[1]), 'the first SDK tested is the claimed floor');
  const newest = SDKS[SDKS.length - 1];
  assert.equal(
    Number(pkg.devDependencies['@expo/config-plugins'].split('.')[0]),
    newest.sdk,
    'the newest SDK tested is the one of the @expo/config-plugins devDependency',
  );
  for (const entry of SDKS) {
    const version = configPluginsVersion(entry);
    // config-plugins took the SDK's number from SDK 54 on; SDK 52 shipped 9.0.x.
    const expected = entry.sdk >= 54 ? String(entry.sdk) : { 52: '9', 53: '10' }[entry.sdk];
    assert.equal(
      version.split('.')[0],
      expected,
      `SDK ${entry.sdk} runs config-plugins ${version}`,
    );
  }
});

for (const entry of SDKS) {
  const { manifestOf, app } = manifestHelpers(entry);
  const objc = entry.appDelegate.endsWith('.mm');
  const label = `SDK ${entry.sdk} (${entry.template}@${entry.version}, ${
    objc ? 'AppDelegate.mm' : 'AppDelegate.swift'
  })`;

  test(`${label}: the README's app.json gives BGTask identifiers, background mode and the hook; nothing else changes`, async t => {
    const template = templateDir(entry);
    const dir = newProject(entry);
    await prebuild(entry, dir, readmeOptions());
    const info = readPlist(dir);
    assert.deepEqual(info.BGTaskSchedulerPermittedIdentifiers, [
      '$(PRODUCT_BUNDLE_IDENTIFIER).s3bgu.*',
    ]);
    assert.deepEqual(info.UIBackgroundModes, ['processing']);
    const { BGTaskSchedulerPermittedIdentifiers, UIBackgroundModes, ...rest } = info;
    assert.deepEqual(rest, readPlist(template), 'every key of the template keeps its value');

    const src = read(dir, entry.appDelegate);
    const original = read(template, entry.appDelegate);
    const importLine = objc ? constants.IOS_OBJC_IMPORT : constants.IOS_SWIFT_IMPORT;
    const call = objc ? constants.IOS_OBJC_HOOK_CALL : constants.IOS_SWIFT_HOOK_CALL;
    assert.equal(count(src, importLine), 1);
    assert.equal(count(src, call), 1);
    // The signature, our call and the hand-over to super: nothing else.
    assert.equal(count(src, 'handleEventsForBackgroundURLSession'), 3);
    // The generated method is the plugin's own text (the README's, see readme.test.mjs).
    const method = objc
      ? appPlugin.objcHookMethod({ callSuper: true })
      : appPlugin
          .swiftHookMethod({ override: true })
          .split('\n')
          .map(l => (l ? `  ${l}` : l))
          .join('\n');
    assert.ok(src.includes(method), 'the method as the plugin writes it');
    if (objc) {
      // Inside @implementation AppDelegate, before its @end; imports before it.
      const impl = src.indexOf('@implementation AppDelegate');
      const hook = src.indexOf(method);
      const end = src.indexOf('\n@end', impl);
      assert.ok(impl >= 0 && hook > impl && hook < end, 'the method is in the implementation');
      assert.ok(src.indexOf(importLine) < impl);
      // EXAppDelegateWrapper forwards the event to Expo's modules: super is called.
      assert.match(read(dir, 'ios/HelloWorld/AppDelegate.h'), /: EXAppDelegateWrapper/);
    } else {
      const classAt = src.indexOf('class AppDelegate: ExpoAppDelegate');
      const hookAt = src.indexOf(method);
      const nextClassAt = src.indexOf('class ReactNativeDelegate');
      assert.ok(
        classAt >= 0 && hookAt > classAt && hookAt < nextClassAt,
        'a member of AppDelegate',
      );
      assert.ok(src.indexOf(importLine) < src.indexOf('@main'));
    }
    // Removing the generated blocks gives back the template, byte for byte.
    const stripped = appPlugin.removeBlock(
      appPlugin.removeBlock(src, TAG_HOOK, '//'),
      TAG_IMPORT,
      '//',
    );
    assert.equal(stripped, original);
    t.diagnostic(
      `${entry.appDelegate}: +${src.split('\n').length - original.split('\n').length} lines`,
    );
  });

  test(`${label}: a second prebuild gives byte-identical files`, async t => {
    for (const options of [
      readmeOptions(),
      {
        android: { foregroundServiceFallback: true, notificationIcon: '@drawable/ic_stat_upload' },
      },
    ]) {
      const dir = newProject(entry);
      await prebuild(entry, dir, options);
      const first = snapshot(entry, dir);
      await prebuild(entry, dir, options);
      const second = snapshot(entry, dir);
      for (const f of Object.keys(first)) {
        assert.equal(second[f], first[f], `${f} unchanged by a second prebuild`);
      }
      const template = templateDir(entry);
      const changed = Object.keys(first).filter(f => first[f] !== read(template, f));
      t.diagnostic(
        `${JSON.stringify(options)}: changed ${changed.join(', ')}; second run identical`,
      );
    }
  });

  test(`${label}: Android gets nothing unless the fallback or the icon is asked for`, async () => {
    const dir = newProject(entry);
    await prebuild(entry, dir, { android: { foregroundServiceFallback: false } });
    const manifest = await manifestOf(dir);
    const template = await manifestOf(templateDir(entry));
    assert.deepEqual(permissionsOf(manifest), permissionsOf(template));
    assert.deepEqual(app(manifest).service || [], []);
    assert.ok(!read(dir, MANIFEST).includes('FOREGROUND_SERVICE'));
  });

  test(`${label}: the fallback adds both permissions and the dataSync service`, async () => {
    const dir = newProject(entry);
    await prebuild(entry, dir, { android: { foregroundServiceFallback: true } });
    const manifest = await manifestOf(dir);
    const template = await manifestOf(templateDir(entry));
    assert.deepEqual(
      permissionsOf(manifest),
      [...permissionsOf(template), ...constants.FGS_PERMISSIONS].sort(),
    );
    const services = app(manifest).service || [];
    assert.equal(services.length, 1);
    assert.deepEqual(services[0].$, {
      'android:name': 'com.s3bguploader.UploadForegroundService',
      'android:foregroundServiceType': 'dataSync',
      'android:exported': 'false',
    });
    assert.deepEqual(app(manifest).activity, app(template).activity);
    assert.deepEqual(app(manifest).$, app(template).$);
  });

  test(`${label}: notificationIcon names the small icon once, and a later icon replaces it`, async () => {
    const dir = newProject(entry);
    await prebuild(entry, dir, { android: { notificationIcon: '@drawable/ic_stat_upload' } });
    const icons = async () =>
      (app(await manifestOf(dir))['meta-data'] || [])
        .filter(m => m.$['android:name'] === constants.ICON_META_DATA)
        .map(m => m.$);
    assert.deepEqual(await icons(), [
      {
        'android:name': 'com.s3bguploader.notification_icon',
        'android:resource': '@drawable/ic_stat_upload',
      },
    ]);
    assert.ok(!read(dir, MANIFEST).includes('FOREGROUND_SERVICE'));
    await prebuild(entry, dir, { android: { notificationIcon: '@mipmap/ic_upload' } });
    assert.deepEqual(
      (await icons()).map(m => m['android:resource']),
      ['@mipmap/ic_upload'],
    );
  });

  test(`${label}: what the app already declares is kept and not duplicated`, async () => {
    const dir = newProject(entry);
    const info = readPlist(dir);
    info.UIBackgroundModes = ['audio', 'processing'];
    info.BGTaskSchedulerPermittedIdentifiers = ['com.example.refresh'];
    writeFileSync(path.join(dir, INFO_PLIST), plist.build(info));
    await prebuild(entry, dir, { android: { foregroundServiceFallback: true } });
    const after = readPlist(dir);
    assert.deepEqual(after.UIBackgroundModes, ['audio', 'processing']);
    assert.deepEqual(after.BGTaskSchedulerPermittedIdentifiers, [
      'com.example.refresh',
      '$(PRODUCT_BUNDLE_IDENTIFIER).s3bgu.*',
    ]);
    await prebuild(entry, dir, { android: { foregroundServiceFallback: true } });
    const permissions = permissionsOf(await manifestOf(dir));
    for (const p of constants.FGS_PERMISSIONS) {
      assert.equal(permissions.filter(x => x === p).length, 1, p);
    }
  });

  test(`${label}: ios.appDelegate and ios.backgroundModes turn their part off`, async () => {
    const dir = newProject(entry);
    await prebuild(entry, dir, { ios: { appDelegate: false, backgroundModes: false } });
    assert.equal(read(dir, entry.appDelegate), read(templateDir(entry), entry.appDelegate));
    const info = readPlist(dir);
    assert.equal(info.UIBackgroundModes, undefined);
    assert.deepEqual(info.BGTaskSchedulerPermittedIdentifiers, [
      '$(PRODUCT_BUNDLE_IDENTIFIER).s3bgu.*',
    ]);
  });
}

test('bad options fail with a message naming the option, before any file is touched', () => {
  const plugin = appPlugin.createPlugin(configPluginsOf(SDKS[0]));
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
  assert.deepEqual(appPlugin.validateOptions(undefined), {
    ios: { backgroundModes: true, appDelegate: true },
    android: { foregroundServiceFallback: false, notificationIcon: null },
  });
});

test('app delegates the plugin cannot patch get an error naming the README section', () => {
  const section = `README, "${constants.README_HOOK_SECTION}"`;
  const cases = [
    ['import UIKit\nstruct NotADelegate {}\n', 'swift', /no `class AppDelegate: \.\.\. \{` line/],
    [
      'import UIKit\n@main\nclass AppDelegate: UIResponder, UIApplicationDelegate {\n  func application(_ a: UIApplication, handleEventsForBackgroundURLSession identifier: String, completionHandler: @escaping () -> Void) {}\n}\n',
      'swift',
      /already handles background URLSession events/,
    ],
    [
      '#import "AppDelegate.h"\n@interface Foo : NSObject\n@end\n',
      'objcpp',
      /no `@implementation AppDelegate` line/,
    ],
    ['#import "AppDelegate.h"\n@implementation AppDelegate\n', 'objcpp', /no `@end` after/],
    ['class AppDelegate {}', 'kotlin', /unsupported app delegate language "kotlin"/],
  ];
  for (const [src, language, message] of cases) {
    assert.throws(() => appPlugin.applyAppDelegate(src, language), message);
    assert.throws(
      () => appPlugin.applyAppDelegate(src, language),
      e => e.message.includes(section) && e.message.includes('ios.appDelegate to false'),
    );
  }
});

test('a plain UIKit or RCTAppDelegate app delegate completes other sessions itself', () => {
  const swift =
    'import UIKit\n\n@main\nclass AppDelegate: UIResponder, UIApplicationDelegate {\n  var window: UIWindow?\n}\n';
  const out = appPlugin.applyAppDelegate(swift, 'swift');
  assert.ok(out.includes(appPlugin.swiftHookMethod({ override: false }).split('\n')[0]));
  assert.ok(!out.includes('override') && !out.includes('super.'));
  assert.match(out, /return\n {4}\}\n {4}completionHandler\(\)\n/);
  assert.equal(appPlugin.applyAppDelegate(out, 'swift'), out);

  // React Native 0.76's template: RCTAppDelegate has no such method to call.
  const mm = '#import "AppDelegate.h"\n\n@implementation AppDelegate\n\n@end\n';
  const header = '#import <RCTAppDelegate.h>\n@interface AppDelegate : RCTAppDelegate\n@end\n';
  const objc = appPlugin.applyAppDelegate(mm, 'objcpp', header);
  assert.ok(objc.includes(appPlugin.objcHookMethod({ callSuper: false })));
  assert.ok(!objc.includes('[super'));
  assert.equal(appPlugin.applyAppDelegate(objc, 'objcpp', header), objc);
});

test('blocks written by an earlier version of the plugin (Expo CodeGenerator format) are replaced', () => {
  const { CodeGenerator } = configPluginsOf(SDKS[SDKS.length - 1]);
  const template = read(templateDir(SDKS[SDKS.length - 1]), SDKS[SDKS.length - 1].appDelegate);
  const old = CodeGenerator.mergeContents({
    src: template,
    newSrc: 'import react_native_s3_bg_uploader',
    tag: TAG_IMPORT,
    anchor: /^import React$/m,
    offset: 1,
    comment: '//',
  }).contents;
  assert.match(old, /@generated begin react-native-s3-bg-uploader-import - expo prebuild/);
  const out = appPlugin.applyAppDelegate(old, 'swift');
  assert.equal(count(out, `@generated begin ${TAG_IMPORT}`), 1);
  assert.equal(count(out, constants.IOS_SWIFT_IMPORT), 1);
  assert.equal(out, appPlugin.applyAppDelegate(template, 'swift'));
});
