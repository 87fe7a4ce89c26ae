// The checks scripts/build-android.sh and build-ios.sh run on what they
// build, exercised here on libraries this machine can make: small C shared
// libraries (cc) for the ELF checks, the desktop engine for the bindings check.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const KOTLIN = path.join(ROOT, 'android/src/main/java/com/s3bguploader/core/s3bgu_core.kt');
const work = mkdtempSync(path.join(os.tmpdir(), 's3bgu-native-checks-'));
after(() => rmSync(work, { recursive: true, force: true }));

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    ...options,
  });
  if (r.error) throw r.error;
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

const symbols = [
  ...new Set(readFileSync(KOTLIN, 'utf8').match(/\b(uniffi|ffi)_s3bgu_core_\w+/g)),
].sort();

/** A shared library exporting `names`, linked with the given max page size. */
function sharedLibrary(name, names, pageSize) {
  const src = path.join(work, `${name}.c`);
  writeFileSync(src, names.map(n => `void ${n}(void) {}\n`).join(''));
  const lib = path.join(work, `${name}.so`);
  const flags = pageSize ? [`-Wl,-z,max-page-size=${pageSize}`] : [];
  const r = run('cc', ['-shared', '-fPIC', '-o', lib, src, ...flags]);
  assert.equal(r.code, 0, r.out);
  return lib;
}

const checkLibs = (...libs) => run('bash', ['scripts/check-android-libs.sh', ...libs]);

test('check-android-libs: 16 KB aligned, every uniffi symbol exported -> ok', t => {
  assert.ok(symbols.length > 50, `the Kotlin bindings name ${symbols.length} uniffi symbols`);
  const r = checkLibs(sharedLibrary('good', symbols, 16384));
  assert.equal(r.code, 0, r.out);
  assert.match(
    r.out,
    new RegExp(`LOAD segments aligned >= 16 KB, ${symbols.length} uniffi symbols exported`),
  );
  t.diagnostic(r.out.trim());
});

test('check-android-libs: 4 KB pages -> fails, naming the segments', () => {
  const r = checkLibs(sharedLibrary('pages4k', symbols, 4096));
  assert.equal(r.code, 1, r.out);
  assert.match(r.out, /LOAD segments aligned below 16 KB: 0x1000/);
  assert.match(r.out, /-z max-page-size=16384/);
});

test('check-android-libs: a symbol the bindings call is missing -> fails, naming it', () => {
  const dropped = symbols.find(s => s.startsWith('uniffi_s3bgu_core_fn_method_'));
  const r = checkLibs(
    sharedLibrary(
      'missing',
      symbols.filter(s => s !== dropped),
      16384,
    ),
  );
  assert.equal(r.code, 1, r.out);
  assert.match(
    r.out,
    new RegExp(`1 uniffi symbols the bindings call are not exported, e\\.g\\. ${dropped}`),
  );
});

test('check-android-libs: every library is checked, one bad one fails the run', () => {
  const good = path.join(work, 'good.so');
  const r = checkLibs(good, path.join(work, 'absent.so'));
  assert.equal(r.code, 1, r.out);
  assert.match(r.out, /^ok {3}.*good\.so/m);
  assert.match(r.out, /FAIL .*absent\.so: missing or empty/);
});

// The desktop engine, as `cargo test --workspace` built it (scripts/test.sh
// runs this step after the Rust suites, so the build only checks it is
// current), or S3BGU_ENGINE_LIB (an unstripped build of another profile).
const target = process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target');
const engine =
  process.env.S3BGU_ENGINE_LIB ||
  path.join(
    target,
    'debug',
    os.platform() === 'darwin' ? 'libs3bgu_core.dylib' : 'libs3bgu_core.so',
  );
const bindgen = path.join(target, 'debug', 'uniffi-bindgen');
before(() => {
  const args = process.env.S3BGU_ENGINE_LIB
    ? ['build', '--locked', '-q', '-p', 'uniffi-bindgen']
    : ['build', '--locked', '-q', '--workspace', '--all-targets'];
  const r = run('cargo', args);
  assert.equal(r.code, 0, r.out);
});

test('check-bindings: bindings generated from the built engine match the committed ones', t => {
  for (const language of ['kotlin', 'swift']) {
    const r = run('bash', ['scripts/check-bindings.sh', language, engine], {
      env: { ...process.env, UNIFFI_BINDGEN: bindgen },
    });
    assert.equal(r.code, 0, r.out);
    assert.match(
      r.out,
      new RegExp(`${language} bindings generated from libs3bgu_core\\.\\w+ match`),
    );
    t.diagnostic(r.out.trim());
  }
});

test('check-bindings: a stripped library (no uniffi metadata) fails with the reason', () => {
  const stripped = path.join(work, 'stripped.so');
  const s = run('strip', ['-o', stripped, engine]);
  assert.equal(s.code, 0, s.out);
  const r = run('bash', ['scripts/check-bindings.sh', 'kotlin', stripped], {
    env: { ...process.env, UNIFFI_BINDGEN: bindgen },
  });
  assert.equal(r.code, 1, r.out);
  assert.match(r.out, /a stripped library has no uniffi metadata/);
});

test('check-bindings: stale committed bindings fail the check', () => {
  // A copy of the tree's bindings with one line changed, compared through
  // the script's own diff: the check must notice.
  const fake = path.join(work, 'fake-root');
  const kotlinDir = path.join(fake, 'android/src/main/java/com/s3bguploader/core');
  run('mkdir', ['-p', kotlinDir, path.join(fake, 'scripts')]);
  run('cp', ['scripts/check-bindings.sh', path.join(fake, 'scripts/')]);
  writeFileSync(
    path.join(kotlinDir, 's3bgu_core.kt'),
    readFileSync(KOTLIN, 'utf8').replace(/\n/, '\n// stale\n'),
  );
  const r = run('bash', [path.join(fake, 'scripts/check-bindings.sh'), 'kotlin', engine], {
    env: { ...process.env, UNIFFI_BINDGEN: bindgen },
  });
  assert.equal(r.code, 1, r.out);
  assert.match(r.out, /differ from the committed ones/);
  assert.match(r.out, /^-\/\/ stale$/m);
});
