// The kit's endpoints against the testkit's s3s-fs store: behaviour, hooks,
// and the same answers as the reference backend for the same requests.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  UploadBackendConfigError,
  UploadBackendError,
  createUploadBackend,
} from '../dist/index.js';
import { sanitizeFileName } from '../dist/keys.js';
import {
  EMPTY_HASH,
  SOME_HASH,
  post,
  serveKit,
  startStore,
  uploadPath,
  uploadThrough,
} from './support.mjs';

let store;
let kit;

before(async () => {
  store = await startStore();
  kit = await serveKit('express', { s3: store.client(), bucket: store.bucket });
});

after(async () => {
  await kit?.close();
  await store?.stop();
});

/** Bytes that differ from part to part, so a swapped part shows. */
function content(size, seed) {
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i++) data[i] = (i * 31 + seed + (i >> 12)) & 0xff;
  return data;
}

describe('uploads through the kit', () => {
  test('a file of several parts is stored byte for byte under a content-hash key', async () => {
    const data = content(8 * 1024 * 1024 + 5 * 1024 * 1024 + 17, 1);
    const up = await uploadThrough(kit.url, 'clip.mov', data);
    assert.equal(up.complete.status, 200, up.complete.text);
    assert.match(up.key, new RegExp(`^uploads/${SOME_HASH}/[0-9a-f]{8}/clip\\.mov$`));
    assert.equal(up.partSize, 8 * 1024 * 1024);
    assert.equal(up.etags.length, 2);
    assert.deepEqual(up.complete.json, { key: up.key, etag: up.complete.json.etag });
    assert.match(up.complete.json.etag, /-2"?$/);
    assert.ok(store.object(up.key).equals(data), 'stored bytes differ');
  });

  test('part URLs carry no SDK checksum (real S3 would hold each part to the CRC32 of no bytes)', async () => {
    // s3s-fs ignores these parameters, so the URLs themselves are checked.
    for (const [fileHash, fileSize] of [
      [SOME_HASH, 3],
      [EMPTY_HASH, 0],
    ]) {
      const { key, uploadId } = (
        await post(`${kit.url}/startUpload`, { fileName: 'c', fileHash, fileSize })
      ).json;
      const urls = await post(`${kit.url}/getUploadUrls`, { key, uploadId, parts: [1] });
      const params = [...new URL(urls.json.urls['1']).searchParams.keys()].map(k =>
        k.toLowerCase(),
      );
      assert.ok(params.includes('x-amz-signature'), params.join(' '));
      assert.deepEqual(
        params.filter(k => k.includes('checksum')),
        [],
        `fileSize ${fileSize}`,
      );
      assert.equal(new URL(urls.json.urls['1']).searchParams.get('X-Amz-SignedHeaders'), 'host');
    }
  });

  test('two uploads of the same file get different keys', async () => {
    const a = await uploadThrough(kit.url, 'same.bin', content(10, 2));
    const b = await uploadThrough(kit.url, 'same.bin', content(10, 2));
    assert.notEqual(a.key, b.key);
  });

  test('a 0-byte file is stored with a presigned PutObject, not an empty part', async () => {
    const before = await store.partPuts();
    const start = await post(`${kit.url}/startUpload`, {
      fileName: 'empty.txt',
      fileHash: EMPTY_HASH,
      fileSize: 0,
    });
    assert.equal(start.status, 200, start.text);
    const { key, uploadId } = start.json;
    const urls = await post(`${kit.url}/getUploadUrls`, { key, uploadId, parts: [1] });
    assert.equal(urls.status, 200, urls.text);
    const url = urls.json.urls['1'];
    assert.doesNotMatch(url, /uploadId=/i, 'an UploadPart URL, not a PutObject one');
    const put = await fetch(url, { method: 'PUT', body: '' });
    assert.equal(put.status, 200);
    assert.equal(await store.partPuts(), before, 'no UploadPart was sent for the empty file');
    const parts = [{ PartNumber: 1, ETag: put.headers.get('etag') }];
    const done = await post(`${kit.url}/complete/${uploadPath(uploadId, key)}`, { parts });
    assert.equal(done.status, 200, done.text);
    assert.equal(store.object(key).length, 0);
    // Idempotent like the rest; abort has nothing to free.
    assert.equal(
      (await post(`${kit.url}/complete/${uploadPath(uploadId, key)}`, { parts })).status,
      200,
    );
    assert.equal((await post(`${kit.url}/abort/${uploadPath(uploadId, key)}`, {})).status, 204);
  });

  test("an empty file's URL is only handed out for an empty file's key, never over content", async t => {
    const up = await uploadThrough(kit.url, 'full.bin', content(100, 3));
    assert.equal(up.complete.status, 200);
    const { uploadId } = (
      await post(`${kit.url}/startUpload`, { fileName: 'e', fileHash: EMPTY_HASH, fileSize: 0 })
    ).json;
    const forged = await post(`${kit.url}/getUploadUrls`, { key: up.key, uploadId, parts: [1] });
    assert.equal(forged.status, 400, forged.text);
    // With keys of its own (no content hash in them), the store is asked.
    const custom = await serveKit('express', {
      s3: store.client(),
      bucket: store.bucket,
      objectKey: ({ fileHash, fileName }) => `mine/${fileHash}/${fileName}`,
    });
    t.after(() => custom.close());
    const mine = await uploadThrough(custom.url, 'full.bin', content(100, 3));
    const forgedToo = await post(`${custom.url}/getUploadUrls`, {
      key: mine.key,
      uploadId,
      parts: [1],
    });
    assert.equal(forgedToo.status, 409, forgedToo.text);
    const emptyStart = await post(`${custom.url}/startUpload`, {
      fileName: 'e',
      fileHash: EMPTY_HASH,
      fileSize: 0,
    });
    const emptyUrls = await post(`${custom.url}/getUploadUrls`, {
      key: emptyStart.json.key,
      uploadId,
      parts: [1],
    });
    assert.equal(emptyUrls.status, 200, emptyUrls.text);
    assert.ok(store.object(up.key).equals(content(100, 3)));
    assert.ok(store.object(mine.key).equals(content(100, 3)));
  });

  test('an empty file completed before its PUT is refused', async () => {
    const { key, uploadId } = (
      await post(`${kit.url}/startUpload`, { fileName: 'e', fileHash: EMPTY_HASH, fileSize: 0 })
    ).json;
    const done = await post(`${kit.url}/complete/${uploadPath(uploadId, key)}`, {
      parts: [{ PartNumber: 1, ETag: '"x"' }],
    });
    assert.equal(done.status, 400, done.text);
  });

  test('complete repeated after success answers 2xx with the same ETag', async () => {
    const up = await uploadThrough(kit.url, 'twice.bin', content(3000, 4));
    const again = await post(`${kit.url}/complete/${uploadPath(up.uploadId, up.key)}`, {
      parts: up.etags.map((ETag, i) => ({ PartNumber: i + 1, ETag })),
    });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.json.etag, up.complete.json.etag);
    // A complete naming other parts than the object was made of is not "already done".
    const wrong = await post(`${kit.url}/complete/${uploadPath(up.uploadId, up.key)}`, {
      parts: [{ PartNumber: 1, ETag: '"0cc175b9c0f1b6a831c399e269772661"' }],
    });
    assert.ok(wrong.status >= 400, `${wrong.status} ${wrong.text}`);
  });

  test('abort frees the upload: 204, and complete afterwards fails', async () => {
    const start = await post(`${kit.url}/startUpload`, {
      fileName: 'gone.bin',
      fileHash: SOME_HASH,
      fileSize: 4,
    });
    const { key, uploadId } = start.json;
    const urls = await post(`${kit.url}/getUploadUrls`, { key, uploadId, parts: [1] });
    const put = await fetch(urls.json.urls['1'], { method: 'PUT', body: 'abcd' });
    assert.equal(put.status, 200);
    const aborted = await post(`${kit.url}/abort/${uploadPath(uploadId, key)}`, {});
    assert.equal(aborted.status, 204);
    assert.equal(aborted.text, '');
    const late = await post(`${kit.url}/complete/${uploadPath(uploadId, key)}`, {
      parts: [{ PartNumber: 1, ETag: put.headers.get('etag') }],
    });
    assert.ok(late.status >= 400, `${late.status} ${late.text}`);
    // Aborting again: already gone, nothing to do.
    assert.equal((await post(`${kit.url}/abort/${uploadPath(uploadId, key)}`, {})).status, 204);
  });
});

describe('the same answers as the reference backend', () => {
  const start = body => ['startUpload', body];
  const urls = body => ['getUploadUrls', body];
  const key = `uploads/${SOME_HASH}/0000abcd/a.bin`;
  const cases = [
    ['body is not JSON', start('{not json')],
    ['body is an array', start([1, 2])],
    ['fileHash missing', start({ fileName: 'a', fileSize: 1 })],
    ['fileSize missing', start({ fileName: 'a', fileHash: SOME_HASH })],
    ['fileName not a string', start({ fileName: 7, fileHash: SOME_HASH, fileSize: 1 })],
    [
      'fileHash uppercase',
      start({ fileName: 'a', fileHash: SOME_HASH.toUpperCase(), fileSize: 1 }),
    ],
    ['fileHash short', start({ fileName: 'a', fileHash: 'abc', fileSize: 1 })],
    ['fileSize negative', start({ fileName: 'a', fileHash: SOME_HASH, fileSize: -1 })],
    ['fileSize fractional', start({ fileName: 'a', fileHash: SOME_HASH, fileSize: 1.5 })],
    ['fileSize a string', start({ fileName: 'a', fileHash: SOME_HASH, fileSize: '1' })],
    [
      'fileSize over 5 TiB',
      start({ fileName: 'a', fileHash: SOME_HASH, fileSize: 5 * 2 ** 40 + 1 }),
    ],
    ['0 bytes with another hash', start({ fileName: 'a', fileHash: SOME_HASH, fileSize: 0 })],
    ['the empty hash with bytes', start({ fileName: 'a', fileHash: EMPTY_HASH, fileSize: 3 })],
    ['key outside the prefix', urls({ key: 'other/a.bin', uploadId: 'u', parts: [1] })],
    ['key with ..', urls({ key: 'uploads/a/../b', uploadId: 'u', parts: [1] })],
    ['key is the prefix', urls({ key: 'uploads/', uploadId: 'u', parts: [1] })],
    ['uploadId empty', urls({ key, uploadId: '', parts: [1] })],
    ['uploadId with a control character', urls({ key, uploadId: 'a\nb', parts: [1] })],
    ['parts missing', urls({ key, uploadId: 'u' })],
    ['parts empty', urls({ key, uploadId: 'u', parts: [] })],
    ['part 0', urls({ key, uploadId: 'u', parts: [0] })],
    ['part 10001', urls({ key, uploadId: 'u', parts: [10001] })],
    [
      '1001 parts at once',
      urls({ key, uploadId: 'u', parts: Array.from({ length: 1001 }, (_, i) => i + 1) }),
    ],
    [
      'complete parts out of order',
      [
        'complete/u/' + key,
        {
          parts: [
            { PartNumber: 2, ETag: '"e"' },
            { PartNumber: 1, ETag: '"e"' },
          ],
        },
      ],
    ],
    ['complete part without ETag', ['complete/u/' + key, { parts: [{ PartNumber: 1 }] }]],
    [
      'complete with an empty ETag',
      ['complete/u/' + key, { parts: [{ PartNumber: 1, ETag: ' ' }] }],
    ],
    ['complete without parts', ['complete/u/' + key, {}]],
    [
      'complete of a key outside the prefix',
      ['complete/u/other/x', { parts: [{ PartNumber: 1, ETag: '"e"' }] }],
    ],
    [
      'complete of an upload id the store never issued',
      ['complete/not-a-uuid/' + key, { parts: [{ PartNumber: 1, ETag: '"e"' }] }],
    ],
    ['abort of an upload id the store never issued', ['abort/not-a-uuid/' + key, {}]],
    ['abort of an unknown upload', ['abort/7c9e6679-7425-40de-944b-e07fc1f90ae7/' + key, {}]],
    ['unknown route', ['uploadFile', {}]],
  ];
  for (const [name, [route, body]] of cases) {
    test(name, async () => {
      const theirs = await post(`${store.referenceUrl}/${route}`, body);
      const ours = await post(`${kit.url}/${route}`, body);
      assert.equal(ours.status, theirs.status, `kit: ${ours.text} / reference: ${theirs.text}`);
      // Express hands paths outside the four routes on to the app's own 404.
      if (ours.status >= 400 && route !== 'uploadFile')
        assert.equal(typeof ours.json?.error, 'string', ours.text);
    });
  }

  test('file names are made safe the same way', async () => {
    const names = [
      'a/b\\c\nd.txt',
      '',
      '..',
      '.',
      'été 😀.mov',
      'sp ace#%+=.bin',
      `${'é'.repeat(300)}.jpeg`,
      'x'.repeat(250),
    ];
    for (const fileName of names) {
      const body = { fileName, fileHash: SOME_HASH, fileSize: 1 };
      const theirs = await post(`${store.referenceUrl}/startUpload`, body);
      const ours = await post(`${kit.url}/startUpload`, body);
      // s3s-fs cannot store the longest names (its metadata file name
      // outgrows the file system's limit): both backends answer 502 then.
      assert.equal(
        ours.status,
        theirs.status,
        `${JSON.stringify(fileName)}: ${ours.text} / ${theirs.text}`,
      );
      if (ours.status !== 200) continue;
      const last = k => k.split('/').slice(3).join('/');
      assert.equal(last(ours.json.key), last(theirs.json.key), JSON.stringify(fileName));
    }
    // The cut itself: at most 200 bytes, whole characters, the extension kept.
    const cut = sanitizeFileName(`${'é'.repeat(300)}.jpeg`);
    assert.equal(cut, `${'é'.repeat(97)}.jpeg`);
    assert.equal(sanitizeFileName('x'.repeat(250)), 'x'.repeat(200));
  });

  test('part sizes grow the same way for huge files', async t => {
    // The harness's reference backend hands out 5 MiB parts.
    const kit = await serveKit('express', {
      s3: store.client(),
      bucket: store.bucket,
      partSize: 5 * 2 ** 20,
    });
    t.after(() => kit.close());
    for (const fileSize of [1, 5 * 2 ** 20 * 10_000, 5 * 2 ** 20 * 10_000 + 1, 5 * 2 ** 40]) {
      const body = { fileName: 'big', fileHash: SOME_HASH, fileSize };
      const theirs = await post(`${store.referenceUrl}/startUpload`, body);
      const ours = await post(`${kit.url}/startUpload`, body);
      assert.equal(ours.json.partSize, theirs.json.partSize, `fileSize ${fileSize}`);
      assert.ok(Math.ceil(fileSize / ours.json.partSize) <= 10_000);
    }
  });
});

describe('hooks', () => {
  test('authorize: false answers 401 on every route, a thrown error its status, and its value reaches the other hooks', async () => {
    const seen = [];
    const guarded = await serveKit('express', {
      s3: store.client(),
      bucket: store.bucket,
      authorize: ({ headers, operation, key }) => {
        seen.push([operation, key]);
        const token = headers.get('authorization');
        if (token === 'Bearer banned') throw new UploadBackendError(403, 'banned');
        if (token !== 'Bearer alice') return false;
        return { user: 'alice' };
      },
      objectKey: ({ auth, fileName }) => `${auth.user}/${fileName}`,
      completeBody: ({ auth, key, partCount, alreadyCompleted }) => ({
        owner: auth.user,
        key,
        partCount,
        alreadyCompleted,
      }),
    });
    try {
      for (const route of [
        'startUpload',
        'getUploadUrls',
        'complete/u/uploads/a',
        'abort/u/uploads/a',
      ]) {
        const res = await post(`${guarded.url}/${route}`, {
          fileName: 'a',
          fileHash: SOME_HASH,
          fileSize: 1,
        });
        assert.equal(res.status, 401, `${route}: ${res.text}`);
      }
      const banned = await post(
        `${guarded.url}/startUpload`,
        {},
        { authorization: 'Bearer banned' },
      );
      assert.deepEqual([banned.status, banned.json], [403, { error: 'banned' }]);
      const auth = { authorization: 'Bearer alice' };
      const up = await uploadThrough(guarded.url, 'notes.txt', content(5, 5), SOME_HASH, auth);
      assert.equal(up.key, 'uploads/alice/notes.txt');
      assert.deepEqual(up.complete.json, {
        owner: 'alice',
        key: up.key,
        partCount: 1,
        alreadyCompleted: false,
      });
      assert.ok(
        seen.some(([op, key]) => op === 'complete' && key === up.key),
        'authorize saw the key of complete',
      );
      assert.ok(store.object('uploads/alice/notes.txt').equals(content(5, 5)));
    } finally {
      await guarded.close();
    }
  });

  test('partSize and urlExpiresIn', async () => {
    const sized = await serveKit('express', {
      s3: store.client(),
      bucket: store.bucket,
      partSize: ({ fileSize }) => (fileSize > 100 ? 5 * 2 ** 20 : 6 * 2 ** 20),
      urlExpiresIn: 120,
    });
    try {
      const data = content(11 * 2 ** 20 + 7, 6);
      const up = await uploadThrough(sized.url, 'three.bin', data);
      assert.equal(up.partSize, 5 * 2 ** 20);
      assert.equal(up.etags.length, 3);
      assert.match(up.urls['1'], /[?&]X-Amz-Expires=120(&|$)/);
      assert.ok(store.object(up.key).equals(data));
      const small = await post(`${sized.url}/startUpload`, {
        fileName: 's',
        fileHash: SOME_HASH,
        fileSize: 50,
      });
      assert.equal(small.json.partSize, 6 * 2 ** 20);
    } finally {
      await sized.close();
    }
  });

  test("emptyFiles: 'empty-part' opens a multipart upload and hands out an UploadPart URL", async () => {
    const plain = await serveKit('express', {
      s3: store.client(),
      bucket: store.bucket,
      emptyFiles: 'empty-part',
    });
    try {
      const start = await post(`${plain.url}/startUpload`, {
        fileName: 'e',
        fileHash: EMPTY_HASH,
        fileSize: 0,
      });
      assert.match(start.json.uploadId, /^[0-9a-f-]{36}$/);
      const urls = await post(`${plain.url}/getUploadUrls`, {
        key: start.json.key,
        uploadId: start.json.uploadId,
        parts: [1],
      });
      assert.match(urls.json.urls['1'], /[?&]uploadId=/);
    } finally {
      await plain.close();
    }
  });

  test("a hook's mistake answers 500, goes to onError, and keeps its details from the client", async () => {
    const errors = [];
    const broken = await serveKit('express', {
      s3: store.client(),
      bucket: store.bucket,
      objectKey: ({ params }) => (params.mode === 'dots' ? 'a/../b' : `${params.mode}`),
      partSize: ({ params }) => (params.mode === 'zero' ? 0 : 5 * 2 ** 20),
      onError: (error, operation) => errors.push([operation, error.name]),
    });
    try {
      for (const mode of ['dots', 'zero']) {
        const res = await post(`${broken.url}/startUpload`, {
          fileName: 'a',
          fileHash: SOME_HASH,
          fileSize: 1,
          mode,
        });
        assert.equal(res.status, 500, res.text);
        assert.deepEqual(res.json, { error: 'internal error in the upload backend' });
      }
      assert.deepEqual(errors, [
        ['startUpload', 'UploadBackendConfigError'],
        ['startUpload', 'UploadBackendConfigError'],
      ]);
    } finally {
      await broken.close();
    }
  });

  test('bad options are refused when the backend is created', () => {
    const s3 = store.client();
    const bad = [
      { bucket: 'b' },
      { s3, bucket: '' },
      { s3, bucket: 'b', keyPrefix: '/abs/' },
      { s3, bucket: 'b', keyPrefix: 'a/../b/' },
      { s3, bucket: 'b', partSize: 0 },
      { s3, bucket: 'b', partSize: 5 * 2 ** 30 + 1 },
      { s3, bucket: 'b', urlExpiresIn: 0 },
      { s3, bucket: 'b', urlExpiresIn: 7 * 24 * 3600 + 1 },
      { s3, bucket: 'b', emptyFiles: 'skip' },
    ];
    for (const options of bad) {
      assert.throws(
        () => createUploadBackend(options),
        UploadBackendConfigError,
        JSON.stringify(Object.keys(options)),
      );
    }
    assert.doesNotThrow(() =>
      createUploadBackend({ s3, bucket: 'b', partSize: 5 * 2 ** 30, urlExpiresIn: 7 * 24 * 3600 }),
    );
  });
});

describe('store failures', () => {
  test('wrong credentials answer 502 without the secret or a signature in the answer or the log', async () => {
    const errors = [];
    const secret = 'this-secret-must-not-leak';
    const wrong = await serveKit('express', {
      s3: store.client({ credentials: { accessKeyId: 's3bgu-local', secretAccessKey: secret } }),
      bucket: store.bucket,
      onError: error => errors.push(`${error.name}: ${error.message}`),
    });
    try {
      const res = await post(`${wrong.url}/startUpload`, {
        fileName: 'a',
        fileHash: SOME_HASH,
        fileSize: 1,
      });
      assert.equal(res.status, 502, res.text);
      assert.match(res.json.error, /^could not start the upload: store answered 403/);
      const shown = res.text + errors.join('\n');
      assert.equal(errors.length, 1);
      for (const leak of [secret, 'X-Amz-Signature', 'X-Amz-Credential'])
        assert.ok(!shown.includes(leak), shown);
    } finally {
      await wrong.close();
    }
  });

  test('an unreachable store answers 502, which the engine retries', async () => {
    const down = await serveKit('express', {
      s3: store.client({ endpoint: 'http://127.0.0.1:9', maxAttempts: 1 }),
      bucket: store.bucket,
      onError: () => {},
    });
    try {
      const res = await post(`${down.url}/startUpload`, {
        fileName: 'a',
        fileHash: SOME_HASH,
        fileSize: 1,
      });
      assert.equal(res.status, 502, res.text);
      assert.match(res.json.error, /store unreachable/);
    } finally {
      await down.close();
    }
  });
});

describe('adapters', () => {
  for (const adapter of ['express-json', 'node', 'hono', 'fetch-inferred']) {
    test(`${adapter}: an upload, an awkward key, an abort and the routing answers`, async () => {
      const server = await serveKit(adapter, { s3: store.client(), bucket: store.bucket });
      try {
        const data = content(6000, 7);
        const up = await uploadThrough(server.url, 'sp ace ü+=#%.bin', data);
        assert.equal(up.complete.status, 200, up.complete.text);
        assert.ok(up.key.endsWith('/sp ace ü+=#%.bin'), up.key);
        assert.ok(store.object(up.key).equals(data));
        const start = await post(`${server.url}/startUpload`, {
          fileName: 'x',
          fileHash: SOME_HASH,
          fileSize: 1,
        });
        const aborted = await post(
          `${server.url}/abort/${uploadPath(start.json.uploadId, start.json.key)}`,
          {},
        );
        assert.equal(aborted.status, 204);
        const get = await fetch(`${server.url}/startUpload`);
        assert.ok([404, 405].includes(get.status), `GET answered ${get.status}`);
        const unknown = await post(`${server.url}/nothing`, {});
        assert.equal(unknown.status, 404);
      } finally {
        await server.close();
      }
    });
  }

  test("express: GET on a route is 405, other paths go on to the app's own routes", async () => {
    const app = await serveKit('express', { s3: store.client(), bucket: store.bucket });
    try {
      const get = await fetch(`${app.url}/getUploadUrls`);
      assert.equal(get.status, 405);
      assert.equal(get.headers.get('allow'), 'POST');
      const health = await fetch(app.url.replace(/\/uploads$/, '/health'));
      assert.equal(await health.text(), 'ok');
    } finally {
      await app.close();
    }
  });

  test('a body over 2 MiB is refused with 413', async () => {
    for (const adapter of ['express', 'hono']) {
      const server = await serveKit(adapter, { s3: store.client(), bucket: store.bucket });
      try {
        const res = await post(
          `${server.url}/getUploadUrls`,
          JSON.stringify({ pad: 'x'.repeat(3 * 2 ** 20) }),
        );
        assert.equal(res.status, 413, `${adapter}: ${res.text}`);
      } finally {
        await server.close();
      }
    }
  });
});
