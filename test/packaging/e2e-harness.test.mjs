// The backend the app-on-an-emulator tests upload to (tools/testkit's
// e2e-harness, driven by example-app/e2e/run.sh), exercised here with a real
// client: the `s3bgu` CLI uploads a file through it over loopback, and the
// harness's answers are the ones run.sh decides on (parts stored, none
// twice, one complete call), and the store holds the file byte for byte.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const target = process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target');
const work = mkdtempSync(path.join(os.tmpdir(), 's3bgu-e2e-harness-'));
const PART = 5 * 1024 * 1024;

let harness;
let lines;
const header = {};

/** Sends one command, returns its one-line answer. */
async function ask(command) {
  harness.stdin.write(`${command}\n`);
  const { value, done } = await lines.next();
  assert.ok(!done, `the harness closed before answering ${command}`);
  return value;
}

before(async () => {
  const b = spawnSync(
    'cargo',
    [
      'build',
      '--locked',
      '-q',
      '-p',
      's3bgu-testkit',
      '--bin',
      'e2e-harness',
      '-p',
      's3bgu',
      '--bin',
      's3bgu',
    ],
    { cwd: ROOT, encoding: 'utf8' },
  );
  assert.equal(b.status, 0, b.stderr);
  harness = spawn(path.join(target, 'debug/e2e-harness'), ['--store', path.join(work, 'store')], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  lines = createInterface({ input: harness.stdout })[Symbol.asyncIterator]();
  for (let i = 0; i < 3; i++) {
    const { value } = await lines.next();
    const [k, v] = value.split(' ');
    header[k] = v;
  }
});

after(() => {
  harness?.stdin.end();
  rmSync(work, { recursive: true, force: true });
});

/** Every file under dir (what run.sh's find walks). */
function files(dir) {
  return readdirSync(dir).flatMap(name => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

test('the harness announces a plain-HTTP backend and store on loopback', () => {
  assert.match(header.backend, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.match(header['store-url'], /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(header.store, path.join(work, 'store'));
});

test('an upload through it: parts counted, none stored twice, one complete, object byte for byte', async () => {
  assert.equal(await ask('part-puts'), '0');
  assert.equal(await ask('delay-puts 50'), 'ok');
  const file = path.join(work, 'e2e.bin');
  const data = randomBytes(2 * PART + 12345);
  writeFileSync(file, data);
  const r = spawnSync(
    path.join(target, 'debug/s3bgu'),
    ['upload', '--backend', header.backend, '--db', path.join(work, 'queue.db'), file],
    { encoding: 'utf8', timeout: 120_000 },
  );
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.equal(await ask('part-puts'), '3');
  assert.equal(await ask('ok-part-puts'), '3');
  assert.equal(await ask('parts-stored-twice'), '0');
  // After a kill mark, parts stored before it still count (none here).
  assert.equal(await ask('mark-kill'), 'ok');
  assert.equal(await ask('parts-stored-twice'), '0');
  assert.equal(await ask('completes'), '1');
  const same = files(header.store).filter(
    p => statSync(p).size === data.length && readFileSync(p).equals(data),
  );
  assert.equal(same.length, 1, 'exactly one object in the store equals the file');
});

test('an unknown command gets an error line, and the harness keeps answering', async () => {
  assert.match(await ask('bogus'), /^error: unknown command "bogus"$/);
  assert.match(await ask('delay-puts soon'), /^error: unknown command/);
  assert.equal(await ask('delay-puts 0'), 'ok');
});
