#!/usr/bin/env node
// What `npm pack` would publish, checked against what an app needs: the
// built JS and types, the TS sources (codegen reads the spec), the Android
// library (sources, manifest, Gradle files, ProGuard rules, jniLibs when
// built), the iOS sources, podspec and xcframework when built, the Expo
// plugin, README and LICENSE; and nothing else (no tests, no Rust, no
// example app, no scripts, no build outputs).
//
//   node scripts/check-pack.mjs                     rules; binaries checked if present
//   node scripts/check-pack.mjs --require-binaries  the release: every .so and the
//                                                   xcframework must be in the tarball
//   node scripts/check-pack.mjs --warn-missing-binaries
//                                 what `npm pack` runs (prepack): says on stderr which
//                                 engine binaries the tarball will lack; never fails
//
// Needs the library built first (npm run build): the pack runs with
// --ignore-scripts so that its JSON is the only output.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ABIS = ['arm64-v8a', 'armeabi-v7a', 'x86_64', 'x86'];
export const XCFRAMEWORK_FILES = [
  'ios/S3bguCore.xcframework/Info.plist',
  ...['ios-arm64', 'ios-arm64_x86_64-simulator'].flatMap(slice => [
    `ios/S3bguCore.xcframework/${slice}/libs3bgu_core.a`,
    `ios/S3bguCore.xcframework/${slice}/Headers/S3bguCoreFFI.h`,
  ]),
];

// Top-level entries an app may receive; anything else is a leak.
const ALLOWED_ROOT_FILES = [
  /^package\.json$/,
  /^README\.md$/,
  /^LICENSE$/,
  /^app\.plugin\.js$/,
  /^[^/]+\.podspec$/,
];
const ALLOWED_DIRS = ['lib/', 'js/src/', 'android/', 'ios/', 'plugin/'];

// Never shipped, wherever they sit.
export const FORBIDDEN = [
  [/(^|\/)__tests__\//, 'test directory'],
  [/\.(test|spec)\.[cm]?[jt]sx?$/, 'test file'],
  [/(^|\/)(test|tests|androidTest)\//, 'test directory'],
  [/^android\/(build|\.gradle|\.cxx|\.kotlin)\//, 'Android build output'],
  [/^android\/local\.properties$/, 'local Android SDK path'],
  [/^ios\/build\//, 'iOS build output'],
  [/\.(tgz|zip)$/, 'archive'],
  [/\.rs$/, 'Rust source'],
  [/(^|\/)\.DS_Store$/, 'macOS metadata'],
];

function gitFiles(...pathspecs) {
  const out = execFileSync('git', ['ls-files', '-z', '--', ...pathspecs], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  return out.split('\0').filter(Boolean);
}

function walk(dir) {
  const abs = path.join(ROOT, dir);
  if (!existsSync(abs)) return [];
  return readdirSync(abs).flatMap(name => {
    const rel = `${dir}/${name}`;
    return statSync(path.join(ROOT, rel)).isDirectory() ? walk(rel) : [rel];
  });
}

/** Runs `npm pack --dry-run --json` and returns npm's description of the tarball. */
export function dryRunPack() {
  const json = execFileSync(
    'npm',
    ['pack', '--dry-run', '--json', '--ignore-scripts', '--loglevel=error'],
    {
      cwd: ROOT,
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  const [pack] = JSON.parse(json);
  return pack;
}

/** The files an app needs that the working tree has: each must be in the tarball. */
export function requiredFiles({ requireBinaries = false } = {}) {
  const required = ['package.json', 'README.md', 'LICENSE', 'app.plugin.js'];
  required.push(...walk('plugin'));
  required.push(...gitFiles('js/src').filter(f => !/__tests__\//.test(f)));
  // The build output: index, types, and every emitted module of the sources.
  if (!existsSync(path.join(ROOT, 'lib/module/index.js'))) {
    throw new Error('lib/ is not built: run `npm run build` first');
  }
  required.push(...walk('lib'));
  // Android library: manifest, sources, Gradle files, ProGuard rules.
  required.push(
    ...gitFiles(
      'android/src/main',
      'android/build.gradle',
      'android/build.gradle.kts',
      'android/gradle.properties',
      'android/*.pro',
    ),
  );
  // iOS sources, generated bindings and the podspec (tests excluded by FORBIDDEN).
  required.push(...gitFiles('ios', '*.podspec').filter(f => !FORBIDDEN.some(([re]) => re.test(f))));
  // Binaries: whatever is built must ship; a release must have all of them.
  const sos = ABIS.map(abi => `android/src/main/jniLibs/${abi}/libs3bgu_core.so`);
  const haveXcframework = existsSync(path.join(ROOT, 'ios/S3bguCore.xcframework'));
  if (requireBinaries) {
    required.push(...sos, ...XCFRAMEWORK_FILES);
  } else {
    required.push(...sos.filter(f => existsSync(path.join(ROOT, f))));
    if (haveXcframework) required.push(...XCFRAMEWORK_FILES);
  }
  return [...new Set(required)].sort();
}

/** The engine binaries the working tree lacks, each with the script that builds it. */
export function missingBinaries(root = ROOT) {
  const missing = [];
  for (const abi of ABIS) {
    const f = `android/src/main/jniLibs/${abi}/libs3bgu_core.so`;
    if (!existsSync(path.join(root, f)))
      missing.push({ file: f, build: 'scripts/build-android.sh' });
  }
  for (const f of XCFRAMEWORK_FILES) {
    if (!existsSync(path.join(root, f))) {
      missing.push({ file: f, build: 'scripts/build-ios.sh (macOS, Xcode)' });
    }
  }
  return missing;
}

/** The warning `npm pack` prints from a checkout without (all) the binaries; null when complete. */
export function missingBinariesWarning(missing) {
  if (missing.length === 0) return null;
  const byScript = new Map();
  for (const { file, build } of missing) {
    byScript.set(build, [...(byScript.get(build) || []), file]);
  }
  const lines = [
    'react-native-s3-bg-uploader: WARNING: this package is being packed without engine binaries.',
    'An app that installs the tarball cannot build (Gradle and `pod install` stop and name the',
    'script to run). Missing:',
  ];
  for (const [build, files] of byScript) {
    lines.push(`  ${files.length} file(s), built by ${build}:`);
    for (const f of files) lines.push(`    ${f}`);
  }
  lines.push('See README, "Building the native binaries and releasing".');
  return lines.join('\n');
}

/** Every rule applied to a list of packed paths; returns the problems found. */
export function checkPackedPaths(paths, required) {
  const problems = [];
  const packed = new Set(paths);
  for (const f of required) {
    if (!packed.has(f)) problems.push(`missing: ${f}`);
  }
  for (const f of paths) {
    const forbidden = FORBIDDEN.find(([re]) => re.test(f));
    if (forbidden) {
      problems.push(`must not ship (${forbidden[1]}): ${f}`);
      continue;
    }
    const allowed = f.includes('/')
      ? ALLOWED_DIRS.some(d => f.startsWith(d))
      : ALLOWED_ROOT_FILES.some(re => re.test(f));
    if (!allowed) problems.push(`not needed by an app: ${f}`);
  }
  // jniLibs holds only the engine, one per ABI.
  for (const f of paths.filter(p => p.startsWith('android/src/main/jniLibs/'))) {
    if (!ABIS.some(abi => f === `android/src/main/jniLibs/${abi}/libs3bgu_core.so`)) {
      problems.push(`unexpected file in jniLibs: ${f}`);
    }
  }
  return problems;
}

export function formatSize(bytes) {
  return bytes >= 1024 * 1024
    ? `${(bytes / 1024 / 1024).toFixed(1)} MiB`
    : `${(bytes / 1024).toFixed(1)} KiB`;
}

function main() {
  if (process.argv.includes('--warn-missing-binaries')) {
    // Runs inside `npm pack`: stdout may be npm's JSON, so the warning goes to stderr.
    const warning = missingBinariesWarning(missingBinaries());
    if (warning) console.error(warning);
    return;
  }
  const requireBinaries = process.argv.includes('--require-binaries');
  const pack = dryRunPack();
  const paths = pack.files.map(f => f.path).sort();
  const problems = checkPackedPaths(paths, requiredFiles({ requireBinaries }));
  const byDir = new Map();
  for (const f of pack.files) {
    const key = f.path.includes('/')
      ? f.path
          .split('/')
          .slice(0, f.path.startsWith('android/src/main/jniLibs/') ? 5 : 2)
          .join('/')
      : f.path;
    const entry = byDir.get(key) || { count: 0, size: 0 };
    entry.count += 1;
    entry.size += f.size;
    byDir.set(key, entry);
  }
  for (const [key, { count, size }] of [...byDir].sort()) {
    console.log(`${String(count).padStart(4)} files ${formatSize(size).padStart(10)}  ${key}`);
  }
  console.log(
    `${pack.filename}: ${pack.entryCount} files, ${formatSize(pack.size)} packed, ${formatSize(
      pack.unpackedSize,
    )} unpacked`,
  );
  if (problems.length) {
    for (const p of problems) console.error(`check-pack: ${p}`);
    process.exit(1);
  }
  console.log(
    `check-pack: the tarball has what an app needs and nothing else${
      requireBinaries ? ', binaries included' : ''
    }`,
  );
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main();
}
