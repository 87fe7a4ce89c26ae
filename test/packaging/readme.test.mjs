// The README's setup steps against what the code does: the iOS hook, imports
// and Info.plist entries against the Expo plugin and the pod's sources, the
// plugin's options and the sections its errors name, and the TypeScript
// samples (compiled for real in scratch apps by scripts/test-install.sh;
// here the rules the sample checker adds to tsc).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import {
  checkSamples,
  declaredComponents,
  extractSamples,
  topLevelAwaits,
} from '../../scripts/check-samples.mjs';

const require = createRequire(import.meta.url);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const README = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const plugin = require('../../app.plugin.js');
const { constants } = plugin;
const ts = require('typescript');

const read = rel => readFileSync(path.join(ROOT, rel), 'utf8');
/** The fenced blocks of one language, with their text. */
const blocks = lang =>
  [...README.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].filter(m => m[1] === lang).map(m => m[2]);
const squash = s => s.replace(/\s+/g, ' ').trim();

// Code with comments and all whitespace removed: layout may differ, tokens may not.
const tokens = code => code.replace(/\/\/.*$/gm, '').replace(/\s+/g, '');

test('every app delegate hook the README shows is the Expo plugin text, import included', () => {
  const hooks = lang => blocks(lang).filter(b => b.includes('handleEventsForBackgroundURLSession'));
  const cases = [
    ['swift', constants.IOS_SWIFT_IMPORT, o => plugin.swiftHookMethod({ override: o })],
    ['objc', constants.IOS_OBJC_IMPORT, o => plugin.objcHookMethod({ callSuper: o })],
  ];
  for (const [lang, importLine, method] of cases) {
    const found = hooks(lang);
    assert.ok(found.length >= 1, `a ${lang} hook in the README`);
    for (const block of found) {
      const t = tokens(block);
      assert.ok(t.startsWith(tokens(importLine)), `${lang} block starts with ${importLine}`);
      assert.ok(
        t.includes(tokens(method(false))) || t.includes(tokens(method(true))),
        `the ${lang} block is the plugin's method:\n${block}`,
      );
    }
  }
  // The Expo variants' hand-over lines, as the plugin writes them.
  const swiftSuper = plugin.swiftHookMethod({ override: true }).split('\n');
  const objcSuper = plugin.objcHookMethod({ callSuper: true }).split('\n');
  assert.ok(README.includes(`\`${swiftSuper[swiftSuper.length - 2].trim()}\``));
  assert.ok(README.includes(`\`${objcSuper[objcSuper.length - 2].trim()}\``));
  assert.ok(README.includes('`public override func`'));
  // Nothing else tells another story: the hook is called on one class only.
  for (const stale of ['S3BgUploader.h>', '"S3BgUploader.h"']) {
    assert.ok(!README.includes(stale), `the README no longer says ${stale}`);
  }
  const receivers = [
    ...README.matchAll(/\b([A-Z]\w*)[ .]handleEventsForBackgroundURLSession\b/g),
  ].map(m => m[1]);
  assert.ok(receivers.length >= 2);
  assert.deepEqual([...new Set(receivers)], [constants.IOS_HOOK_CLASS]);
});

test('the README asks for the Info.plist entries the plugin writes, and no other background mode', () => {
  const modes = [...README.matchAll(/<key>UIBackgroundModes<\/key>\s*<array>([\s\S]*?)<\/array>/g)];
  assert.ok(modes.length >= 1);
  for (const [, array] of modes) {
    const listed = [...array.matchAll(/<string>([^<]*)<\/string>/g)].map(m => m[1]);
    assert.deepEqual(listed, constants.BACKGROUND_MODES);
  }
  const known = ['fetch', 'processing', 'audio', 'location', 'remote-notification', 'voip'];
  for (const line of README.split('\n').filter(l => l.includes('UIBackgroundModes'))) {
    const named = [...line.matchAll(/`([a-z-]+)`/g)].map(m => m[1]).filter(w => known.includes(w));
    for (const mode of named) {
      assert.ok(constants.BACKGROUND_MODES.includes(mode), `"${mode}" in: ${line}`);
    }
  }
  const ids = [
    ...README.matchAll(
      /<key>BGTaskSchedulerPermittedIdentifiers<\/key>\s*<array>([\s\S]*?)<\/array>/g,
    ),
  ];
  assert.ok(ids.length >= 1);
  for (const [, array] of ids) {
    assert.equal(squash(array), `<string>${constants.BG_TASK_IDENTIFIERS}</string>`);
  }
});

test('the pod provides what the README and the plugin import (ios/, the podspec)', () => {
  const header = read(`ios/${constants.IOS_HOOK_CLASS}.h`);
  assert.match(header, new RegExp(`@interface\\s+${constants.IOS_HOOK_CLASS}\\s*:\\s*NSObject`));
  assert.match(
    squash(header),
    /\+ \(BOOL\)handleEventsForBackgroundURLSession:\(NSString \*\s*(?:_Nonnull\s*)?\)identifier completionHandler:\(void \(\^\s*(?:_Nonnull\s*)?\)\(void\)\)completionHandler/,
  );
  // Without it Swift would see handleEvents(forBackgroundURLSession:completionHandler:).
  assert.match(
    header,
    /NS_SWIFT_NAME\(handleEventsForBackgroundURLSession\(_:completionHandler:\)\)/,
  );
  // Plain Objective-C: an AppDelegate.mm imports it without React Native's C++ headers.
  assert.doesNotMatch(header, /#import\s+<S3BgUploaderSpec|__cplusplus/);
  const podspec = read('react-native-s3-bg-uploader.podspec');
  // CocoaPods links public headers under Headers/Public/<pod>/<header_dir>/, and
  // names the module (and a use_frameworks! framework) after header_dir.
  const dir = /\.header_dir\s*=\s*["']([^"']+)["']/.exec(podspec);
  assert.ok(dir, 'the podspec sets header_dir');
  assert.equal(`#import <${dir[1]}/${constants.IOS_HOOK_CLASS}.h>`, constants.IOS_OBJC_IMPORT);
  assert.equal(`import ${dir[1]}`, constants.IOS_SWIFT_IMPORT);
  const moduleName = /\.module_name\s*=\s*["']([^"']+)["']/.exec(podspec);
  if (moduleName) assert.equal(moduleName[1], dir[1]);
  assert.match(
    podspec,
    new RegExp(`public_header_files\\s*=.*ios/${constants.IOS_HOOK_CLASS}\\.h`),
  );
  // The old entry point is gone from every header.
  for (const f of readdirSync(path.join(ROOT, 'ios')).filter(f => f.endsWith('.h'))) {
    if (f === `${constants.IOS_HOOK_CLASS}.h`) continue;
    assert.doesNotMatch(read(`ios/${f}`), /handleEventsForBackgroundURLSession/, `ios/${f}`);
  }
});

test('the Expo section lists exactly the plugin options, and the sections the plugin names exist', () => {
  const defaults = plugin.validateOptions(undefined);
  const documented = [...README.matchAll(/^\| `((?:ios|android)\.\w+)` \|/gm)]
    .map(m => m[1])
    .sort();
  const real = Object.entries(defaults)
    .flatMap(([platform, opts]) => Object.keys(opts).map(k => `${platform}.${k}`))
    .sort();
  assert.deepEqual(documented, real);
  const source = read('plugin/withS3BgUploader.js');
  const named = [
    ...source.matchAll(/README, "([^"$\n]+)"/g),
    ...[constants.README_HOOK_SECTION].map(s => [null, s]),
  ].map(m => m[1]);
  assert.ok(named.length >= 3);
  for (const name of named) {
    const heading = new RegExp(`^#{2,4} ${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm');
    const lead = `**${name}.**`;
    assert.ok(heading.test(README) || README.includes(lead), `README has a section "${name}"`);
  }
});

test('the README samples are found, and none uses top-level await', () => {
  const samples = extractSamples(README, 'README.md');
  assert.ok(samples.length >= 2, `${samples.length} samples`);
  assert.ok(
    samples.some(s => s.diff),
    'the upgrade diff is checked on its new side',
  );
  for (const s of samples) {
    assert.deepEqual(topLevelAwaits(ts, s.code), [], `README.md:${s.line}`);
    assert.match(
      s.code,
      /from 'react-native-s3-bg-uploader'/,
      `README.md:${s.line} uses the package`,
    );
  }
  const components = samples.flatMap(s => (s.lang === 'tsx' ? declaredComponents(ts, s.code) : []));
  assert.ok(components.includes('UploadsScreen'), `components: ${components.join(', ')}`);
});

test('the sample checker fails top-level await and a component that returns nothing', () => {
  const bad = [
    '```tsx',
    "import { getSummary } from 'react-native';",
    'const summary = await getSummary();',
    'export function UploadsScreen() {',
    '  const n = 1;',
    '}',
    '```',
    '',
    '```ts',
    'export const ok: number = 1;',
    '```',
  ].join('\n');
  const samples = extractSamples(bad, 'bad.md');
  assert.deepEqual(
    samples.map(s => [s.line, s.lang]),
    [
      [2, 'tsx'],
      [10, 'ts'],
    ],
  );
  assert.deepEqual(topLevelAwaits(ts, samples[0].code), [2]);
  // tsc of this checkout (React Native and React types of the dev dependencies).
  const dir = mkdtempSync(path.join(ROOT, 'node_modules', '.s3bgu-samples-'));
  try {
    const { results } = checkSamples({
      ts,
      tscBin: require.resolve('typescript/bin/tsc'),
      samples,
      dir,
      extendsPath: path.join(ROOT, 'tsconfig.json'),
      compilerOptions: { jsx: 'react-jsx', noUnusedLocals: false, types: [], lib: ['ES2022'] },
    });
    const [first, second] = results;
    assert.ok(
      first.errors.some(e => /line 3: top-level await/.test(e)),
      first.errors.join('\n'),
    );
    assert.ok(
      first.errors.some(e => /Type 'void' is not assignable to type 'ReactNode'/.test(e)),
      first.errors.join('\n'),
    );
    assert.deepEqual(second.errors, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
