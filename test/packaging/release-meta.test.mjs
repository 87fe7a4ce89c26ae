// The release workflow's package.json steps (scripts/release-meta.mjs), run
// as the workflow runs them: a subprocess on a copy of package.json.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { MIN_VERSION, checkVersion } from '../../scripts/release-meta.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SCRIPT = path.join(ROOT, 'scripts/release-meta.mjs');
const work = mkdtempSync(path.join(os.tmpdir(), 's3bgu-release-meta-'));
after(() => rmSync(work, { recursive: true, force: true }));
const original = readFileSync(path.join(ROOT, 'package.json'), 'utf8');

function copy(name, text = original) {
  const file = path.join(work, name);
  writeFileSync(file, text);
  return file;
}

function run(args, env = {}) {
  const r = spawnSync(process.execPath, [SCRIPT, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, ...env },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('the version in package.json starts the 2.x line and is releasable at its own tag', () => {
  const { version } = JSON.parse(original);
  const { errors, distTag } = checkVersion(version, `v${version}`, ['1.0.0', '1.1.0', '1.1.3']);
  assert.deepEqual(errors, []);
  assert.equal(distTag, 'latest');
  assert.ok(
    !('repository' in JSON.parse(original)),
    'the release fills repository, the sources leave it out',
  );
});

test('fill: repository, homepage and bugs come from the repository the workflow runs in', () => {
  const file = copy('fill.json');
  const r = run(['fill', '--package', file], {
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_REPOSITORY: 'someone/react-native-s3-bg-uploader',
  });
  assert.equal(r.code, 0, r.err);
  const pkg = JSON.parse(readFileSync(file, 'utf8'));
  assert.deepEqual(pkg.repository, {
    type: 'git',
    url: 'git+https://github.com/someone/react-native-s3-bg-uploader.git',
  });
  assert.equal(pkg.homepage, 'https://github.com/someone/react-native-s3-bg-uploader#readme');
  assert.deepEqual(pkg.bugs, {
    url: 'https://github.com/someone/react-native-s3-bg-uploader/issues',
  });
  // Everything else is untouched.
  const before = JSON.parse(original);
  for (const k of ['repository', 'homepage', 'bugs']) delete pkg[k];
  assert.deepEqual(pkg, before);
  // npm pack reads the file: it must stay valid JSON ending in a newline.
  assert.ok(readFileSync(file, 'utf8').endsWith('}\n'));
});

test('fill: running twice is harmless; a repository naming another project is refused', () => {
  const env = { GITHUB_REPOSITORY: 'someone/uploader' };
  const file = copy('twice.json');
  assert.equal(run(['fill', '--package', file], env).code, 0);
  const once = readFileSync(file, 'utf8');
  assert.equal(run(['fill', '--package', file], env).code, 0);
  assert.equal(readFileSync(file, 'utf8'), once);

  const other = copy('other.json', once);
  const r = run(['fill', '--package', other], { GITHUB_REPOSITORY: 'fork/uploader' });
  assert.equal(r.code, 1);
  assert.match(
    r.err,
    /repository is git\+https:\/\/github\.com\/someone\/uploader\.git, but this workflow runs in/,
  );
  assert.equal(readFileSync(other, 'utf8'), once, 'a refused fill writes nothing');
});

test('fill: without GITHUB_REPOSITORY, or with a malformed one, it fails clearly', () => {
  const file = copy('bad.json');
  for (const env of [{}, { GITHUB_REPOSITORY: 'no-slash' }, { GITHUB_REPOSITORY: 'a/b c' }]) {
    const r = run(['fill', '--package', file], env);
    assert.equal(r.code, 1, JSON.stringify(env));
    assert.match(r.err, /GITHUB_REPOSITORY must be OWNER\/NAME/);
  }
  assert.equal(readFileSync(file, 'utf8'), original);
});

test('check-version: the tag must name the version', () => {
  const file = copy('v.json', original.replace(/"version": "[^"]+"/, '"version": "2.0.0"'));
  const ok = run(['check-version', '--tag', 'v2.0.0', '--package', file]);
  assert.equal(ok.code, 0, ok.err);
  assert.equal(ok.out.trim(), 'latest');
  const wrong = run(['check-version', '--tag', 'v2.0.1', '--package', file]);
  assert.equal(wrong.code, 1);
  assert.match(wrong.err, /the tag is v2\.0\.1, but package\.json's version is 2\.0\.0/);
});

test('check-version: below 2.0.0, already published, or behind latest -> refused', () => {
  const published = copy('published.json', JSON.stringify(['1.0.0', '1.1.3', '2.0.0', '2.1.0']));
  const cases = [
    ['0.1.0', /0\.1\.0 is below 2\.0\.0/],
    ['1.2.0', /1\.2\.0 is below 2\.0\.0/],
    ['2.0.0', /2\.0\.0 is already on npm/],
    [
      '2.0.5',
      /2\.0\.5 is below 2\.1\.0 already on npm: publishing it as latest would move latest backwards/,
    ],
  ];
  for (const [version, message] of cases) {
    const file = copy(
      `v-${version}.json`,
      original.replace(/"version": "[^"]+"/, `"version": "${version}"`),
    );
    const r = run([
      'check-version',
      '--tag',
      `v${version}`,
      '--published',
      published,
      '--package',
      file,
    ]);
    assert.equal(r.code, 1, version);
    assert.match(r.err, message);
  }
  const next = copy('next.json', original.replace(/"version": "[^"]+"/, '"version": "2.2.0"'));
  const r = run(['check-version', '--tag', 'v2.2.0', '--published', published, '--package', next]);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out.trim(), 'latest');
});

test('check-version: a prerelease goes to the next dist-tag; npm view output forms are read', () => {
  assert.equal(MIN_VERSION, '2.0.0');
  const file = copy('rc.json', original.replace(/"version": "[^"]+"/, '"version": "2.0.0-rc.1"'));
  // A name npm has never seen: `npm view` prints nothing. One version: a bare string.
  for (const [name, text] of [
    ['none', ''],
    ['one', '"1.1.3"'],
  ]) {
    const r = run([
      'check-version',
      '--tag',
      'v2.0.0-rc.1',
      '--published',
      copy(name, text),
      '--package',
      file,
    ]);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out.trim(), 'next');
  }
  // 2.0.0-rc.1 sorts before 2.0.0: once 2.0.0 is out, rc.1 is only refused if published.
  assert.deepEqual(checkVersion('2.0.0-rc.2', 'v2.0.0-rc.2', ['2.0.0-rc.1']).errors, []);
  assert.match(
    checkVersion('2.0.0-rc.1', 'v2.0.0-rc.1', ['2.0.0-rc.1']).errors[0],
    /already on npm/,
  );
});
