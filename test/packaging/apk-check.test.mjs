// The APK check the native workflow runs on the example app's release APK
// (scripts/check-apk.mjs), on sample APKs written here: real ELF shared
// libraries (cc, 16 KB and 4 KB max page size) in zips laid out the way
// AGP aligns them, and the ways they can go wrong. Also the per-ABI size
// budget of scripts/check-android-libs.sh.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { deflateRawSync, crc32 } from 'node:zlib';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CHECK = path.join(ROOT, 'scripts/check-apk.mjs');
const work = mkdtempSync(path.join(os.tmpdir(), 's3bgu-apk-check-'));
after(() => rmSync(work, { recursive: true, force: true }));
const ABIS = ['arm64-v8a', 'x86_64'];

function run(cmd, args, env = {}) {
  const r = spawnSync(cmd, args, {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
  if (r.error) throw r.error;
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

let aligned;
let pages4k;
before(() => {
  const src = path.join(work, 'lib.c');
  writeFileSync(src, 'int f(void) { return 1; }\n');
  for (const [name, page] of [
    ['aligned', 16384],
    ['pages4k', 4096],
  ]) {
    const r = run('cc', [
      '-shared',
      '-fPIC',
      `-Wl,-z,max-page-size=${page}`,
      '-o',
      path.join(work, `${name}.so`),
      src,
    ]);
    assert.equal(r.code, 0, r.out);
  }
  aligned = readFileSync(path.join(work, 'aligned.so'));
  pages4k = readFileSync(path.join(work, 'pages4k.so'));
});

/**
 * A zip of `entries` ({ name, data, deflate, align }): stored entries are
 * padded through the local header's extra field so their data starts at a
 * multiple of `align` (what zipalign and AGP do), or left where they fall.
 */
function writeZip(file, entries) {
  const chunks = [];
  const central = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name);
    const body = e.deflate ? deflateRawSync(e.data) : e.data;
    let extra = Buffer.alloc(0);
    if (e.align) {
      const start = offset + 30 + name.length;
      extra = Buffer.alloc((e.align - (start % e.align)) % e.align);
    }
    const crc = crc32(e.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(e.deflate ? 8 : 0, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(e.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(extra.length, 28);
    chunks.push(local, name, extra, body);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(20, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt16LE(e.deflate ? 8 : 0, 10);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(body.length, 20);
    c.writeUInt32LE(e.data.length, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt32LE(offset, 42);
    central.push(c, name);
    offset += 30 + name.length + extra.length + body.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  writeFileSync(file, Buffer.concat([...chunks, cd, end]));
  return file;
}

/** An APK-like zip: a manifest, a dex, and both libraries for each ABI. */
function apk(name, override = {}, extra = []) {
  const entries = [
    { name: 'AndroidManifest.xml', data: Buffer.from('<manifest/>'), deflate: true },
    { name: 'classes.dex', data: Buffer.alloc(5000, 7), deflate: true },
  ];
  for (const abi of ABIS) {
    for (const lib of ['libs3bgu_core.so', 'libjnidispatch.so', 'libreactnative.so']) {
      const entryName = `lib/${abi}/${lib}`;
      if (override[entryName] === null) continue;
      entries.push({ name: entryName, data: aligned, align: 16384, ...override[entryName] });
    }
  }
  entries.push(...extra);
  return writeZip(path.join(work, `${name}.apk`), entries);
}

const check = file => run(process.execPath, [CHECK, file, '--abis', ABIS.join(',')]);

test('check-apk: stored, 16 KB aligned, 16 KB LOAD segments -> ok for every library', t => {
  const r = check(apk('good'));
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /6 libraries ok, 0 problems/);
  assert.match(r.out, new RegExp(`ok {3}lib/x86_64/libjnidispatch\\.so: ${aligned.length} bytes`));
  // unzip (Info-ZIP) reads the sample: it is a well-formed zip.
  const u = spawnSync('unzip', ['-tq', path.join(work, 'good.apk')], { encoding: 'utf8' });
  if (!u.error) assert.equal(u.status, 0, u.stdout + u.stderr);
  t.diagnostic(r.out.trim().split('\n').pop());
});

test('check-apk: a library whose data is not on a 16 KB boundary -> fails, naming it', () => {
  const r = check(apk('offset', { 'lib/arm64-v8a/libjnidispatch.so': { align: 4096 } }));
  // 4 KB alignment can land on a 16 KB boundary by chance; this sample does not.
  assert.equal(r.code, 1, r.out);
  assert.match(
    r.out,
    /FAIL lib\/arm64-v8a\/libjnidispatch\.so: data at offset \d+, not on a 16 KB boundary/,
  );
  assert.match(r.out, /5 libraries ok, 1 problems/);
});

test('check-apk: a compressed library -> fails (it cannot be mapped from the APK)', () => {
  const r = check(apk('deflated', { 'lib/x86_64/libs3bgu_core.so': { deflate: true, align: 0 } }));
  assert.equal(r.code, 1, r.out);
  assert.match(r.out, /FAIL lib\/x86_64\/libs3bgu_core\.so: compressed \(method 8\)/);
});

test('check-apk: a library linked for 4 KB pages -> fails on its LOAD segments', () => {
  const r = check(apk('pages4k', { 'lib/x86_64/libreactnative.so': { data: pages4k } }));
  assert.equal(r.code, 1, r.out);
  assert.match(
    r.out,
    /FAIL lib\/x86_64\/libreactnative\.so: LOAD segments aligned below 16 KB: 0x1000/,
  );
});

test('check-apk: a 32-bit ABI holds only this package to 16 KB pages', () => {
  // React Native's and the NDK's 32-bit libraries are built for 4 KB pages
  // (the NDK aligns 64-bit ABIs only): listed, not failed.
  const theirs = { name: 'lib/armeabi-v7a/libc++_shared.so', data: pages4k, align: 4096 };
  const ok = check(apk('rn32', {}, [theirs]));
  assert.equal(ok.code, 0, ok.out);
  assert.match(ok.out, /note lib\/armeabi-v7a\/libc\+\+_shared\.so: .*not held to 16 KB pages/);
  // The engine is held to them on every ABI.
  const ours = { name: 'lib/armeabi-v7a/libs3bgu_core.so', data: pages4k, align: 4096 };
  const bad = check(apk('ours32', {}, [ours]));
  assert.equal(bad.code, 1, bad.out);
  assert.match(
    bad.out,
    /FAIL lib\/armeabi-v7a\/libs3bgu_core\.so: .*(16 KB boundary|LOAD segments)/,
  );
});

test("check-apk: JNA's dispatcher missing for an ABI -> fails", () => {
  const r = check(apk('nojna', { 'lib/x86_64/libjnidispatch.so': null }));
  assert.equal(r.code, 1, r.out);
  assert.match(r.out, /FAIL lib\/x86_64\/libjnidispatch\.so: missing/);
});

test('check-apk: not a zip -> a clear error, not a crash', () => {
  const r = check(path.join(work, 'aligned.so'));
  assert.equal(r.code, 2, r.out);
  assert.match(r.out, /check-apk: not a zip file/);
});

test('check-android-libs: a library above the size budget fails, naming its size', () => {
  // The real budget is 3.5 MiB per ABI; a lower one makes the sample too big.
  const lib = path.join(work, 'aligned.so');
  const budget = aligned.length - 1;
  const env = { S3BGU_BINDINGS: path.join(work, 'bindings.kt') };
  writeFileSync(env.S3BGU_BINDINGS, 'fun f() = 0\n');
  // No uniffi symbol named: the check refuses before reading any library.
  assert.equal(run('bash', ['scripts/check-android-libs.sh', lib], env).code, 2);
  // A bindings file naming no symbol the library lacks: `f` only.
  writeFileSync(env.S3BGU_BINDINGS, 'val s = "uniffi_s3bgu_core_fn_func_f"\n');
  const src = path.join(work, 'uniffi.c');
  writeFileSync(src, 'void uniffi_s3bgu_core_fn_func_f(void) {}\n');
  const so = path.join(work, 'uniffi.so');
  assert.equal(
    run('cc', ['-shared', '-fPIC', '-Wl,-z,max-page-size=16384', '-o', so, src]).code,
    0,
  );
  const size = readFileSync(so).length;
  const over = run('bash', ['scripts/check-android-libs.sh', so], {
    ...env,
    S3BGU_MAX_LIB_BYTES: String(size - 1),
  });
  assert.equal(over.code, 1, over.out);
  assert.match(
    over.out,
    new RegExp(`FAIL .*uniffi\\.so: ${size} bytes, above the budget of ${size - 1} bytes`),
  );
  const under = run('bash', ['scripts/check-android-libs.sh', so], {
    ...env,
    S3BGU_MAX_LIB_BYTES: String(size),
  });
  assert.equal(under.code, 0, under.out);
  assert.match(under.out, new RegExp(`${size} bytes \\(budget ${size}\\)`));
  assert.ok(budget > 0);
});
