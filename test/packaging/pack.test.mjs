// The npm tarball: exactly what an app needs (scripts/check-pack.mjs holds
// the rules; the release workflow runs the same script with
// --require-binaries). Needs `npm run build` first.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import {
  ABIS,
  ROOT,
  XCFRAMEWORK_FILES,
  checkPackedPaths,
  dryRunPack,
  formatSize,
  missingBinaries,
  missingBinariesWarning,
  requiredFiles,
} from '../../scripts/check-pack.mjs';

// Without binaries the package is JS, sources and bindings: far below this.
const MAX_PACKED_WITHOUT_BINARIES = 1024 * 1024;

test('the tarball has what an app needs and nothing else', t => {
  const pack = dryRunPack();
  const paths = pack.files.map(f => f.path).sort();
  const required = requiredFiles();
  assert.deepEqual(checkPackedPaths(paths, required), []);
  for (const f of [
    'lib/module/index.js',
    'lib/typescript/index.d.ts',
    'js/src/NativeS3BgUploader.ts',
    'app.plugin.js',
    'plugin/withS3BgUploader.js',
    'LICENSE',
    'README.md',
    'android/src/main/java/com/s3bguploader/core/s3bgu_core.kt',
    'ios/generated/S3bguCoreFFI.h',
  ]) {
    assert.ok(paths.includes(f), `${f} is packed`);
  }
  const binaries = paths.filter(p => p.endsWith('.so') || p.includes('.xcframework/'));
  const sourceBytes = pack.files
    .filter(f => !binaries.includes(f.path))
    .reduce((n, f) => n + f.size, 0);
  t.diagnostic(
    `${pack.entryCount} files, ${formatSize(pack.size)} packed, ${formatSize(
      pack.unpackedSize,
    )} unpacked ` +
      `(${binaries.length} binary files; ${formatSize(sourceBytes)} of non-binary files)`,
  );
  for (const p of paths) t.diagnostic(`  ${p}`);
  if (binaries.length === 0) {
    assert.ok(
      pack.size < MAX_PACKED_WITHOUT_BINARIES,
      `packed size ${pack.size} < ${MAX_PACKED_WITHOUT_BINARIES}`,
    );
  }
});

test('the rules reject tests, Rust, the example app, scripts and build outputs', () => {
  const leaks = [
    'js/src/__tests__/api.test.ts',
    'js/__tests__/hooks.test.tsx',
    'rust-core/src/lib.rs',
    'example-app/App.tsx',
    'scripts/build-android.sh',
    'test/packaging/pack.test.mjs',
    'android/build/intermediates/x.jar',
    'android/src/test/java/com/s3bguploader/ModuleTest.kt',
    'android/src/main/jniLibs/arm64-v8a/libc++_shared.so',
    'ios/build/x.o',
    'Cargo.toml',
    'tsconfig.json',
    'react-native-s3-bg-uploader-0.1.0.tgz',
  ];
  const problems = checkPackedPaths(['package.json', ...leaks], []);
  for (const leak of leaks) {
    assert.ok(
      problems.some(p => p.endsWith(`: ${leak}`)),
      `${leak} is reported (problems: ${problems.join('; ')})`,
    );
  }
});

test('a release without every binary fails the --require-binaries check', () => {
  const present = ABIS.slice(1).map(abi => `android/src/main/jniLibs/${abi}/libs3bgu_core.so`);
  const paths = ['package.json', ...present, ...XCFRAMEWORK_FILES.slice(1)];
  const required = [
    ...ABIS.map(abi => `android/src/main/jniLibs/${abi}/libs3bgu_core.so`),
    ...XCFRAMEWORK_FILES,
  ];
  assert.deepEqual(checkPackedPaths(paths, required), [
    `missing: android/src/main/jniLibs/${ABIS[0]}/libs3bgu_core.so`,
    `missing: ${XCFRAMEWORK_FILES[0]}`,
  ]);
});

test('built binaries (jniLibs, xcframework) are packed', t => {
  // Placeholder binaries where none are built, removed afterwards; real
  // ones (after scripts/build-*.sh) are checked as they are.
  const created = [];
  const place = rel => {
    const abs = path.join(ROOT, rel);
    if (existsSync(abs)) return;
    mkdirSync(path.dirname(abs), { recursive: true });
    writeFileSync(abs, 'placeholder\n');
    created.push(rel);
  };
  const hadJniLibs = existsSync(path.join(ROOT, 'android/src/main/jniLibs'));
  const hadXcframework = existsSync(path.join(ROOT, 'ios/S3bguCore.xcframework'));
  try {
    for (const abi of ABIS) place(`android/src/main/jniLibs/${abi}/libs3bgu_core.so`);
    for (const f of XCFRAMEWORK_FILES) place(f);
    const paths = dryRunPack().files.map(f => f.path);
    assert.deepEqual(checkPackedPaths(paths, requiredFiles({ requireBinaries: true })), []);
    // With every binary present, the pack's warning step says nothing.
    assert.deepEqual(missingBinaries(), []);
    const quiet = spawnSync(
      process.execPath,
      ['scripts/check-pack.mjs', '--warn-missing-binaries'],
      { cwd: ROOT, encoding: 'utf8' },
    );
    assert.equal(quiet.status, 0);
    assert.equal(quiet.stdout + quiet.stderr, '');
    t.diagnostic(
      `${ABIS.length} .so and ${XCFRAMEWORK_FILES.length} xcframework files listed (${created.length} placeholders)`,
    );
  } finally {
    for (const rel of created) rmSync(path.join(ROOT, rel));
    if (!hadJniLibs)
      rmSync(path.join(ROOT, 'android/src/main/jniLibs'), { recursive: true, force: true });
    if (!hadXcframework)
      rmSync(path.join(ROOT, 'ios/S3bguCore.xcframework'), { recursive: true, force: true });
  }
});

test('npm pack from a checkout without engine binaries warns on stderr, naming each file and its script', t => {
  // The real command (prepack builds lib/ and runs the check), in the tree as it is.
  const missing = missingBinaries();
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--loglevel=error'], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  assert.equal(r.status, 0, r.stderr);
  // stdout stays npm's JSON: the warning must not break `npm pack --json`.
  const [pack] = JSON.parse(r.stdout);
  assert.ok(pack.entryCount > 0);
  if (missing.length === 0) {
    assert.ok(!r.stderr.includes('WARNING'), 'a checkout with every binary packs quietly');
  } else {
    assert.match(r.stderr, /react-native-s3-bg-uploader: WARNING: .* without engine binaries/);
    for (const { file } of missing) assert.ok(r.stderr.includes(file), `${file} is named`);
  }
  t.diagnostic(`${missing.length} binary files missing in this tree`);

  // Each script is named for the files it builds, and nothing is said when nothing is missing.
  const some = missingBinariesWarning([
    { file: 'android/src/main/jniLibs/x86/libs3bgu_core.so', build: 'scripts/build-android.sh' },
  ]);
  assert.match(
    some,
    /1 file\(s\), built by scripts\/build-android\.sh:\n {4}android\/src\/main\/jniLibs\/x86\/libs3bgu_core\.so/,
  );
  assert.ok(!some.includes('build-ios'));
  assert.equal(missingBinariesWarning([]), null);
});
