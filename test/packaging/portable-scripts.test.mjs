// The scripts that run on macOS runners (build-ios.sh) or on both kinds
// (the checks) use only what macOS's own tools have: BSD grep, sed, sort,
// stat, date, find, xargs and bash 3.2. Checked two ways: no GNU-only option
// or regex escape in their command lines, and their pure functions run
// under a POSIX shell (dash here).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SCRIPTS = [
  'scripts/build-ios.sh',
  'scripts/check-android-libs.sh',
  'scripts/check-archive-symbols.sh',
];

// [pattern on a command line, why it is not portable]
const GNU_ONLY = [
  [/\bgrep\b[^|;]*\s-[A-Za-z]*P/, 'grep -P (Perl regexes) is GNU grep only'],
  [/\bgrep\b[^|;]*\s--(?!\s)/, 'grep long options are GNU spellings'],
  [/\b(grep|sed|awk)\b[^|;]*\\[bBwWsS<>]/, 'regex escapes \\b \\w \\s \\< \\> are GNU extensions'],
  [/\bsed\b[^|;]*\s-[A-Za-z]*i/, 'sed -i takes a suffix argument on BSD sed'],
  [/\bsed\b[^|;]*\s-[A-Za-z]*r\b/, 'sed -r is GNU (use -E)'],
  [/\breadlink\s+-[A-Za-z]*f/, 'readlink -f is GNU coreutils'],
  [/\bsort\b[^|;]*\s(-[A-Za-z]*V|--version-sort)/, 'sort -V is not in every BSD sort'],
  [/\bstat\s+-c\b/, 'stat -c is GNU (BSD: stat -f)'],
  [/\bdate\s+-d\b/, 'date -d is GNU'],
  [/\bfind\b.*-printf\b/, 'find -printf is GNU'],
  [/\bxargs\s+-[A-Za-z]*r\b/, 'xargs -r is GNU'],
  [/\bdu\s+-[A-Za-z]*b\b/, 'du -b is GNU'],
  [/\b(mapfile|readarray)\b/, 'mapfile/readarray need bash 4 (macOS has 3.2)'],
  [/\bdeclare\s+-A\b/, 'associative arrays need bash 4'],
  [/\$\{[A-Za-z_]+(,,|\^\^)\}/, 'case conversion needs bash 4'],
];

/** Non-portable uses in a script's text: "line N: reason". */
export function nonPortable(text) {
  const found = [];
  text.split('\n').forEach((line, i) => {
    const code = line.replace(/^\s*#.*$/, '').replace(/\s#\s.*$/, '');
    for (const [pattern, why] of GNU_ONLY) {
      if (pattern.test(code)) found.push(`line ${i + 1}: ${why}: ${line.trim()}`);
    }
  });
  return found;
}

test('build-ios.sh and the checks use no GNU-only options', () => {
  for (const script of SCRIPTS) {
    assert.deepEqual(nonPortable(readFileSync(path.join(ROOT, script), 'utf8')), [], script);
  }
});

test('the scan finds what the scripts used before (grep -oE with \\b, sort -V)', () => {
  // Lines of build-ios.sh and check-android-libs.sh before issue 27 (a
  // shallow CI checkout has no history to read them from).
  const before = String.raw`
grep -oE '\b(uniffi|ffi)_s3bgu_core_[A-Za-z0-9_]+\(' "$generated/S3bguCoreFFI.h" | tr -d '(' | sed 's/^/_/' | sort -u >"$wanted"
    minos="$(otool -arch "$arch" -l "$lib" | awk '$1 == "minos" { print $2 }' | sort -uV | tail -n 1)"
grep -oE '\b(uniffi|ffi)_s3bgu_core_[A-Za-z0-9_]+' "$bindings" | sort -u >"$wanted"
`;
  const found = nonPortable(before);
  assert.equal(found.filter(f => f.includes('GNU extensions')).length, 2, found.join('\n'));
  assert.equal(found.filter(f => f.includes('sort -V')).length, 1, found.join('\n'));
  assert.deepEqual(nonPortable('sed -i "s/a/b/" f\nreadlink -f x\n# grep -P in a comment\n'), [
    'line 1: sed -i takes a suffix argument on BSD sed: sed -i "s/a/b/" f',
    'line 2: readlink -f is GNU coreutils: readlink -f x',
  ]);
});

/** A shell function's definition, cut out of a script. */
function shellFunction(script, name) {
  const text = readFileSync(path.join(ROOT, script), 'utf8');
  const m = new RegExp(`^${name}\\(\\) \\{\\n[\\s\\S]*?^\\}$`, 'm').exec(text);
  assert.ok(m, `${name}() in ${script}`);
  return m[0];
}

test("build-ios.sh's version_le runs under a POSIX shell and orders versions numerically", () => {
  const fn = shellFunction('scripts/build-ios.sh', 'version_le');
  const cases = [
    ['15.1', '15.1', 0],
    ['15.0', '15.1', 0],
    ['10.0', '15.1', 0],
    ['15', '15.1', 0],
    ['15.1.1', '15.1', 1],
    ['16.0', '15.1', 1],
    ['15.10', '15.2', 1], // text order would say 15.10 < 15.2
    ['9.0', '15.1', 0],
  ];
  for (const [a, b, want] of cases) {
    const r = spawnSync('sh', ['-c', `${fn}\nversion_le "$1" "$2"`, 'sh', a, b]);
    assert.equal(r.status, want, `version_le ${a} ${b}: ${r.stderr}`);
  }
});

test("check-archive-symbols.sh's header reading under a POSIX shell equals a plain regex reading", () => {
  const header = path.join(ROOT, 'ios/generated/S3bguCoreFFI.h');
  const listed = execFileSync(
    'sh',
    ['scripts/check-archive-symbols.sh', '--list', '--prefix', '_', header],
    {
      cwd: ROOT,
      encoding: 'utf8',
    },
  )
    .trim()
    .split('\n');
  const expected = [
    ...new Set(
      [...readFileSync(header, 'utf8').matchAll(/\b((?:uniffi|ffi)_s3bgu_core_\w+)\(/g)].map(
        m => `_${m[1]}`,
      ),
    ),
  ].sort();
  assert.deepEqual(listed, expected);
});
