// Shared by the kit's tests: the testkit's s3s-fs store (a real S3-protocol
// server on loopback that checks SigV4 signatures), servers for the kit
// behind each adapter, and small HTTP helpers.
import { S3Client } from '@aws-sdk/client-s3';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import express from 'express';
import { Hono } from 'hono';

import { createUploadBackend, expressHandler, fetchHandler, nodeHandler } from '../dist/index.js';

/** Paths of the binaries run.sh built; the tests cannot run without them. */
export function binary(name) {
  const path = process.env[name];
  if (!path) throw new Error(`${name} is not set: run the tests with backend-kit/test/run.sh`);
  return path;
}

/**
 * Starts `store-harness`: the store on loopback (and the reference backend
 * over it, to compare answers with). Resolves once it has printed its lines.
 */
export async function startStore() {
  const child = spawn(binary('STORE_HARNESS'), [], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const info = {};
  const pending = [];
  lines.on('line', line => {
    const answer = pending.shift();
    if (answer) return answer(line);
    const cut = line.indexOf(' ');
    info[line.slice(0, cut)] = line.slice(cut + 1);
  });
  const deadline = Date.now() + 60_000;
  while (!info.backend) {
    if (child.exitCode !== null) throw new Error(`store-harness exited with ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error('store-harness printed nothing for 60 s');
    await new Promise(r => setTimeout(r, 20));
  }
  const secret = readFileSync(info['secret-file'], 'utf8').trim();
  return {
    url: info['store-url'],
    bucket: info.bucket,
    dir: info.store,
    referenceUrl: info.backend,
    credentials: { accessKeyId: info['access-key'], secretAccessKey: secret },
    client(overrides = {}) {
      return new S3Client({
        endpoint: info['store-url'],
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: info['access-key'], secretAccessKey: secret },
        ...overrides,
      });
    },
    /** The bytes of a stored object (s3s-fs keeps objects as files). */
    object(key) {
      return readFileSync(join(info.store, info.bucket, ...key.split('/')));
    },
    /** How many UploadPart requests the store received so far. */
    async partPuts() {
      const answer = new Promise(resolve => pending.push(resolve));
      child.stdin.write('part-puts\n');
      return Number(await answer);
    },
    async stop() {
      child.stdin.end();
      if (child.exitCode === null) await once(child, 'exit');
    },
  };
}

async function listen(server) {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise(resolve => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Serves a fetch-style handler on Node's http server, as Next.js or a Hono node server would. */
export function serveFetch(handler) {
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = chunks.length ? Buffer.concat(chunks) : undefined;
    const request = new Request(`http://${req.headers.host}${req.url}`, {
      method: req.method,
      headers: Object.entries(req.headers).flatMap(([k, v]) =>
        Array.isArray(v) ? v.map(x => [k, x]) : [[k, v]],
      ),
      body: req.method === 'GET' || req.method === 'HEAD' ? undefined : body,
    });
    const response = await handler(request);
    res.statusCode = response.status;
    response.headers.forEach((value, name) => res.setHeader(name, value));
    res.end(Buffer.from(await response.arrayBuffer()));
  });
  return listen(server);
}

/**
 * The kit on a loopback server behind one adapter. `mount` is the path the
 * four routes hang under. Returns { url (base of the routes), close }.
 */
export async function serveKit(adapter, options, mount = '/uploads') {
  const backend = createUploadBackend(options);
  let server;
  switch (adapter) {
    case 'express': {
      const app = express();
      app.use(mount, expressHandler(backend));
      app.get('/health', (_req, res) => res.send('ok'));
      server = await listen(createServer(app));
      break;
    }
    case 'express-json': {
      // A JSON body parser in front, as many Express apps have.
      const app = express();
      app.use(express.json({ limit: '2mb' }));
      app.use(mount, expressHandler(backend));
      server = await listen(createServer(app));
      break;
    }
    case 'node': {
      const handle = nodeHandler(backend);
      server = await listen(createServer((req, res) => handle(req, res)));
      return { ...server, url: server.url, backend };
    }
    case 'hono': {
      const app = new Hono();
      const handler = fetchHandler(backend, { basePath: mount });
      app.post(`${mount}/*`, c => handler(c.req.raw));
      server = await serveFetch(request => app.fetch(request));
      break;
    }
    case 'fetch-inferred': {
      // A Next.js-style catch-all route without basePath.
      server = await serveFetch(fetchHandler(backend));
      break;
    }
    default:
      throw new Error(`unknown adapter ${adapter}`);
  }
  return { ...server, url: server.url + mount, backend };
}

/** A JSON POST; resolves to { status, headers, text, json }. */
export async function post(url, body, headers = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** The complete/abort path of an upload, encoded as the engine encodes it. */
export function uploadPath(uploadId, key) {
  return `${encodeURIComponent(uploadId)}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

export const EMPTY_HASH = '99aa06d3014798d86001c324468d497f';
export const SOME_HASH = '0123456789abcdef0123456789abcdef';

/** Uploads `data` through a kit at `base` as the engine would; returns { key, uploadId, etags, complete }. */
export async function uploadThrough(
  base,
  fileName,
  data,
  fileHash = data.length ? SOME_HASH : EMPTY_HASH,
  headers = {},
) {
  const start = await post(
    `${base}/startUpload`,
    { fileName, fileHash, fileSize: data.length },
    headers,
  );
  if (start.status !== 200) throw new Error(`startUpload answered ${start.status}: ${start.text}`);
  const { key, uploadId, partSize } = start.json;
  const count = Math.max(1, Math.ceil(data.length / partSize));
  const parts = Array.from({ length: count }, (_, i) => i + 1);
  const urls = await post(`${base}/getUploadUrls`, { key, uploadId, parts }, headers);
  if (urls.status !== 200) throw new Error(`getUploadUrls answered ${urls.status}: ${urls.text}`);
  const etags = [];
  for (const n of parts) {
    const put = await fetch(urls.json.urls[String(n)], {
      method: 'PUT',
      body: data.subarray((n - 1) * partSize, n * partSize),
    });
    if (put.status !== 200) throw new Error(`PUT of part ${n} answered ${put.status}`);
    etags.push(put.headers.get('etag'));
  }
  const complete = await post(
    `${base}/complete/${uploadPath(uploadId, key)}`,
    { parts: etags.map((ETag, i) => ({ PartNumber: i + 1, ETag })) },
    headers,
  );
  return { key, uploadId, partSize, etags, urls: urls.json.urls, complete };
}
