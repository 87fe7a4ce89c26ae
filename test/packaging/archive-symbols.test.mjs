// The exported-symbol check of the iOS static archive
// (scripts/check-archive-symbols.sh, which scripts/build-ios.sh runs on
// every slice), on an archive built here: a small Rust staticlib defining
// every function of the committed uniffi header plus a global
// `sqlite3_open`. rustc links the whole std into it, so its archive has the
// same kind of globals the engine's has (Rust std, compiler builtins,
// allocator shims); it builds in well under a second, where the real engine
// for this host takes minutes of full LTO.
//
// Apple's hiding step (ld -r -exported_symbols_list: every other global
// becomes local) is done here with GNU ld -r and objcopy
// --keep-global-symbols, which has the same effect on ELF.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const HEADER = path.join(ROOT, 'ios/generated/S3bguCoreFFI.h');
const CHECK = path.join(ROOT, 'scripts/check-archive-symbols.sh');
const work = mkdtempSync(path.join(os.tmpdir(), 's3bgu-archive-symbols-'));
after(() => rmSync(work, { recursive: true, force: true }));

function run(cmd, args, env = {}) {
  const r = spawnSync(cmd, args, {
    cwd: work,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, ...env },
  });
  if (r.error) throw r.error;
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

function ok(cmd, args) {
  const r = run(cmd, args);
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')}: ${r.out}`);
}

const functions = [
  ...new Set(
    [...readFileSync(HEADER, 'utf8').matchAll(/\b((?:uniffi|ffi)_s3bgu_core_\w+)\(/g)].map(
      m => m[1],
    ),
  ),
].sort();

// Debian's binutils nm and ar try their LLVM plugin on objects carrying
// rustc's embedded bitcode and fail on a newer LLVM's; the symbol table is
// plain ELF, read with the plugin bypassed. (Apple's nm is llvm-nm.)
const nm = path.join(work, 'nm');
let engineLike;
let hidden;

/** The Linux equivalent of build-ios.sh's prelink: one object, only `keep` global. */
function hide(archive, keep, name) {
  const list = path.join(work, `${name}.keep`);
  writeFileSync(list, `${keep.join('\n')}\n`);
  ok('ld', ['-r', '--whole-archive', archive, '-o', `${name}.pre.o`]);
  ok('objcopy', [
    '--remove-section=.llvmbc',
    '--remove-section=.llvmcmd',
    `--keep-global-symbols=${list}`,
    `${name}.pre.o`,
    `${name}.o`,
  ]);
  ok('ar', ['rcs', `lib${name}.a`, `${name}.o`]);
  return path.join(work, `lib${name}.a`);
}

before(() => {
  writeFileSync(nm, '#!/bin/sh\nexec nm --target=elf64-x86-64 "$@"\n');
  chmodSync(nm, 0o755);
  const src = path.join(work, 'engine.rs');
  writeFileSync(
    src,
    [
      ...functions.map(f => `#[no_mangle] pub extern "C" fn ${f}() {}`),
      // What the real archive has and must not export: a SQLite entry point
      // that uses std, so std's own globals come along.
      '#[no_mangle] pub extern "C" fn sqlite3_open() -> usize { std::env::args().count() }',
    ].join('\n'),
  );
  ok('rustc', ['--edition', '2021', '--crate-type', 'staticlib', '-O', '-o', 'libengine.a', src]);
  engineLike = path.join(work, 'libengine.a');
  hidden = hide(engineLike, functions, 'hidden');
});

const check = (...args) => run('sh', [CHECK, ...args], { NM: nm });

test('the header declares the uniffi functions the check looks for', () => {
  assert.ok(functions.length > 50, `${functions.length} functions in S3bguCoreFFI.h`);
});

test('an archive as rustc builds it (std, sqlite3_open global) -> fails, naming them', () => {
  const r = check(engineLike, HEADER);
  assert.equal(r.code, 1, r.out);
  const m = /FAIL .*: (\d+) global symbols besides the uniffi functions, e\.g\. (.*)/.exec(r.out);
  assert.ok(m, r.out);
  // Hundreds of std and compiler-builtins globals, not just the one we added.
  assert.ok(Number(m[1]) > 100, `${m[1]} extra globals`);
  assert.doesNotMatch(r.out, /not defined/);
});

test('after the prelink with only the uniffi functions exported -> ok', t => {
  const r = check(hidden, HEADER);
  assert.equal(r.code, 0, r.out);
  assert.match(
    r.out,
    new RegExp(`exactly the ${functions.length} functions of S3bguCoreFFI\\.h are global`),
  );
  t.diagnostic(r.out.trim());
});

test('a uniffi function hidden by mistake -> fails, naming it', () => {
  const dropped = functions.find(f => f.startsWith('uniffi_s3bgu_core_fn_method_'));
  const archive = hide(
    engineLike,
    functions.filter(f => f !== dropped),
    'dropped',
  );
  const r = check(archive, HEADER);
  assert.equal(r.code, 1, r.out);
  assert.match(
    r.out,
    new RegExp(`1 functions of S3bguCoreFFI\\.h not defined, e\\.g\\. ${dropped}`),
  );
});

test('only sqlite3_open left global besides them -> fails, naming it', () => {
  const archive = hide(engineLike, [...functions, 'sqlite3_open'], 'sqlite');
  const r = check(archive, HEADER);
  assert.equal(r.code, 1, r.out);
  assert.match(r.out, /1 global symbols besides the uniffi functions, e\.g\. sqlite3_open/);
});

test('Mach-O names (leading _) with --prefix _, fat slices with --arch', () => {
  // Apple's nm -P prints `_name T addr size` and takes -arch: a stand-in
  // that answers like it, so the prefix and arch handling are exercised.
  const fakeNm = lines => {
    const listing = path.join(work, `macho-${lines.length}.txt`);
    writeFileSync(listing, lines.join('\n'));
    const fake = path.join(work, `nm-macho-${lines.length}`);
    writeFileSync(
      fake,
      `#!/bin/sh\n[ "$3" = -arch ] && [ "$4" = arm64 ] || { echo "expected -g -P -arch arm64, got $*" >&2; exit 9; }\ncat ${listing}\n`,
    );
    chmodSync(fake, 0o755);
    return fake;
  };
  const clean = [
    'libs3bgu_core.a[s3bgu_core.o]:',
    ...functions.map(f => `_${f} T 1000 10`),
    '_memcpy U',
    '',
  ];
  const r = run('sh', [CHECK, '--prefix', '_', '--arch', 'arm64', hidden, HEADER], {
    NM: fakeNm(clean),
  });
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /\(arm64\): exactly the \d+ functions/);
  const bare = run('sh', [CHECK, '--arch', 'arm64', hidden, HEADER], { NM: fakeNm(clean) });
  assert.equal(bare.code, 1, 'without the prefix the Mach-O names are not the header functions');
  // A private extern (hidden visibility) still links across the app's
  // objects: whatever case nm -g gives it, it counts.
  const pext = run('sh', [CHECK, '--prefix', '_', '--arch', 'arm64', hidden, HEADER], {
    NM: fakeNm([...clean, '_sqlite3_free t 2000 8']),
  });
  assert.equal(pext.code, 1, pext.out);
  assert.match(pext.out, /1 global symbols besides the uniffi functions, e\.g\. sqlite3_free/);
});
