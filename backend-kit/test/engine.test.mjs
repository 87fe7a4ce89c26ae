// The upload engine (the s3bgu CLI) against the kit: every point of
// `s3bgu check`, and byte-identical files after `s3bgu upload`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';

import { binary, serveKit, startStore } from './support.mjs';

const run = promisify(execFile);
const MIB = 2 ** 20;

let store;
let work;

before(async () => {
  store = await startStore();
  work = mkdtempSync(join(tmpdir(), 's3bgu-kit-'));
});

after(async () => {
  await store?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Runs s3bgu; resolves to { code, stdout, stderr } whatever the exit code. */
async function s3bgu(...args) {
  try {
    const { stdout, stderr } = await run(binary('S3BGU'), args, {
      maxBuffer: 16 * MIB,
      timeout: 240_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    if (typeof err.code !== 'number') throw err;
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('s3bgu check', () => {
  // Express (Node middleware) and Hono (the fetch adapter, as Next.js uses it).
  for (const adapter of ['express', 'hono']) {
    test(`passes every point against the kit behind ${adapter}`, async () => {
      const kit = await serveKit(adapter, { s3: store.client(), bucket: store.bucket });
      try {
        const out = await s3bgu('check', '--backend', kit.url, '--json');
        const report = JSON.parse(out.stdout);
        const notPassed = report.points.filter(p => p.status !== 'passed');
        assert.deepEqual(notPassed, [], out.stderr);
        assert.equal(report.passed, true);
        assert.equal(out.code, 0);
        for (const id of [
          'upload-empty',
          'upload-several-parts',
          'awkward-names',
          'complete-idempotent',
          'abort',
        ]) {
          assert.ok(
            report.points.some(p => p.id === id),
            `check has no point ${id}`,
          );
        }
      } finally {
        await kit.close();
      }
    });
  }

  test('fails when the kit refuses the caller, and passes with the header the kit wants', async () => {
    const kit = await serveKit('express', {
      s3: store.client(),
      bucket: store.bucket,
      authorize: ({ headers }) => headers.get('authorization') === 'Bearer s3cret-token',
    });
    try {
      const refused = await s3bgu('check', '--backend', kit.url, '--json');
      assert.notEqual(refused.code, 0);
      assert.equal(JSON.parse(refused.stdout).passed, false);
      const allowed = await s3bgu(
        'check',
        '--backend',
        kit.url,
        '--header',
        'Authorization: Bearer s3cret-token',
        '--json',
      );
      assert.equal(JSON.parse(allowed.stdout).passed, true, allowed.stdout);
      assert.ok(
        !(allowed.stdout + allowed.stderr).includes('s3cret-token'),
        'the header value was printed',
      );
    } finally {
      await kit.close();
    }
  });
});

describe('s3bgu upload', () => {
  test('files of 0 B, 1 B, one part and several parts arrive byte for byte', async () => {
    const kit = await serveKit('hono', {
      s3: store.client(),
      bucket: store.bucket,
      partSize: 5 * MIB,
    });
    try {
      const sizes = {
        'empty.bin': 0,
        'one byte.bin': 1,
        'exactly one part.bin': 5 * MIB,
        'three parts ü#%.bin': 11 * MIB + 7,
      };
      const files = Object.entries(sizes).map(([name, size], i) => {
        const data = Buffer.alloc(size);
        for (let j = 0; j < size; j++) data[j] = (j * 13 + i * 7 + (j >> 10)) & 0xff;
        const path = join(work, name);
        writeFileSync(path, data);
        return { name, path, data };
      });
      const out = await s3bgu(
        'upload',
        '--backend',
        kit.url,
        '--db',
        join(work, 'queue.db'),
        '--json',
        ...files.map(f => f.path),
      );
      assert.equal(out.code, 0, out.stderr);
      const uploads = JSON.parse(out.stdout).uploads;
      assert.equal(uploads.length, files.length);
      for (const file of files) {
        const u = uploads.find(x => x.file === file.path);
        assert.ok(u, `no upload for ${file.name}`);
        assert.equal(u.state, 'COMPLETED', JSON.stringify(u));
        assert.equal(u.partsTotal, Math.max(1, Math.ceil(file.data.length / (5 * MIB))));
        assert.ok(u.key.startsWith(`uploads/${u.fileHash}/`), u.key);
        assert.ok(store.object(u.key).equals(file.data), `${file.name}: stored bytes differ`);
      }
    } finally {
      await kit.close();
    }
  });
});
