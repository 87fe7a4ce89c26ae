// The four endpoints of the backend contract, independent of any web
// framework: a request goes in as headers + body (+ the path for complete
// and abort), an answer comes out as status + headers + body. The adapters
// (express.ts, fetch.ts) only translate.
import type { S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';

import { UploadBackendConfigError, UploadBackendError } from './errors.js';
import {
  EMPTY_CONTENT_HASH,
  MAX_OBJECT_SIZE,
  MAX_PART_SIZE,
  MAX_PARTS,
  MAX_URL_EXPIRES_IN,
  MIB,
  hasControlChars,
  isHashHex,
  keyProblem,
  multipartEtag,
  partSizeFor,
  prefixProblem,
  sanitizeFileName,
  unquote,
} from './keys.js';
import { Store, StoreFailure } from './store.js';

export type Operation = 'startUpload' | 'getUploadUrls' | 'complete' | 'abort';

/** Request headers as frameworks hand them over. */
export type HeaderSource = Headers | Record<string, string | readonly string[] | undefined>;

/** A request to one endpoint, without its route. */
export interface BackendRequest<Req = unknown> {
  headers?: HeaderSource;
  /**
   * The body: its bytes or text, or the value a body parser already made of
   * it (`express.json()`); undefined when there is none.
   */
  body?: unknown;
  /** The framework's own request object, passed on to the hooks. */
  request?: Req;
}

/** A request to be routed by its path (relative to where the backend is mounted). */
export interface RoutedRequest<Req = unknown> extends BackendRequest<Req> {
  method: string;
  /** Still percent-encoded, e.g. `/complete/<uploadId>/uploads/a%20b.bin`; a query string is ignored. */
  path: string;
}

export interface BackendResponse {
  status: number;
  headers: Record<string, string>;
  /** Empty for 204. */
  body: string;
}

/** What every hook is told about the request. */
export interface RequestContext<Req = unknown> {
  operation: Operation;
  headers: Headers;
  /** The framework's request object, when the adapter has one. */
  request: Req | undefined;
}

export interface AuthorizeContext<Req = unknown> extends RequestContext<Req> {
  /** The JSON body, or undefined when it is not a JSON object (it is refused after this hook). */
  body: Record<string, unknown> | undefined;
  /** getUploadUrls, complete and abort: the key and upload id asked for, not yet checked. */
  key: string | undefined;
  uploadId: string | undefined;
}

export interface StartContext<Auth = unknown, Req = unknown> extends RequestContext<Req> {
  /** What `authorize` returned. */
  auth: Auth;
  fileName: string;
  /** XXH3-128 of the content, 32 lowercase hex digits. */
  fileHash: string;
  fileSize: number;
  /** The startUpload body without fileName, fileHash and fileSize: the app's userParams. */
  params: Record<string, unknown>;
}

export interface PartSizeContext<Auth = unknown, Req = unknown> extends StartContext<Auth, Req> {
  /** The object key chosen for the file. */
  key: string;
}

export interface CompleteContext<Auth = unknown, Req = unknown> extends RequestContext<Req> {
  auth: Auth;
  key: string;
  uploadId: string;
  /** The object's ETag as the store gave it. */
  etag: string;
  partCount: number;
  /** The object was already complete (a repeated complete). */
  alreadyCompleted: boolean;
}

export interface UploadBackendOptions<Auth = unknown, Req = unknown> {
  /** The S3 client (any S3-compatible store). Give other stores `endpoint` and usually `forcePathStyle: true`. */
  s3: S3Client;
  bucket: string;
  /** Put before every key; only keys under it are accepted back. Default `uploads/`. */
  keyPrefix?: string;
  /**
   * Who may call: return `false` to answer 401 (the app pauses its uploads
   * until it has new headers), throw an `UploadBackendError` for another
   * status, or return anything else to allow: it is passed on as `auth`.
   * Runs first on every request. Default: everyone may.
   */
  authorize?: (ctx: AuthorizeContext<Req>) => Auth | false | Promise<Auth | false>;
  /**
   * The object key of a new upload, without `keyPrefix` (the kit puts it
   * before). Default: `<fileHash>/<8 random hex digits>/<file name made safe>`.
   * Keys must be unique per upload, or two uploads overwrite each other.
   */
  objectKey?: (ctx: StartContext<Auth, Req>) => string | Promise<string>;
  /**
   * Bytes per part (last one shorter), 5 MiB to 5 GiB for S3; grown when a
   * file would need more than 10,000 parts. Default 8 MiB.
   */
  partSize?: number | ((ctx: PartSizeContext<Auth, Req>) => number | Promise<number>);
  /**
   * 0-byte files. `"put-object"` (default, like the reference backend): part
   * 1's URL is a presigned PutObject of an empty object, for stores that
   * refuse an empty part or a multipart upload without bytes.
   * `"empty-part"`: one empty part of a multipart upload like any other file.
   */
  emptyFiles?: 'put-object' | 'empty-part';
  /** Lifetime of the presigned URLs, in seconds (1 to 7 days). Default 3600. */
  urlExpiresIn?: number;
  /** The JSON the app receives when complete succeeds. Default `{ key, etag }`. */
  completeBody?: (ctx: CompleteContext<Auth, Req>) => unknown;
  /**
   * Told about failures that answer 5xx (store errors, hook bugs). Default:
   * one line on stderr. The error never holds a presigned URL.
   */
  onError?: (error: unknown, operation: Operation) => void;
}

export interface UploadBackend<Req = unknown> {
  /** Routes by path: `/startUpload`, `/getUploadUrls`, `/complete/{uploadId}/{key}`, `/abort/{uploadId}/{key}`. */
  handle(req: RoutedRequest<Req>): Promise<BackendResponse>;
  /** Whether `path` is one of the four routes (adapters pass other paths on). */
  matches(path: string): boolean;
  startUpload(req: BackendRequest<Req>): Promise<BackendResponse>;
  getUploadUrls(req: BackendRequest<Req>): Promise<BackendResponse>;
  /** `rest` is the path after the complete base: `{uploadId}/{key}`, still percent-encoded. */
  complete(req: BackendRequest<Req>, rest: string): Promise<BackendResponse>;
  abort(req: BackendRequest<Req>, rest: string): Promise<BackendResponse>;
}

/** The uploadId given for a 0-byte file in "put-object" mode: no multipart upload is opened for it. */
export const EMPTY_FILE_UPLOAD_ID = 's3bgu-empty-file';

/** Most URLs handed out by one getUploadUrls call. */
const MAX_URLS_PER_CALL = 1000;
const MAX_UPLOAD_ID_LENGTH = 1024;
/** Longer ETags are not S3 ETags, and they end up in an XML body. */
const MAX_ETAG_LENGTH = 256;
/** Enough for 10,000 parts in a complete body. */
export const MAX_BODY_BYTES = 2 * MIB;
/** S3 error codes of a complete that a retry will not fix: answered 400, the rest 502. */
const CLIENT_CODES = new Set([
  'InvalidPart',
  'InvalidPartOrder',
  'EntityTooSmall',
  'NoSuchUpload',
  'InvalidRequest',
  'InvalidArgument',
  'MalformedXML',
]);

const JSON_HEADERS = { 'content-type': 'application/json', 'cache-control': 'no-store' };

function answer(status: number, value: unknown): BackendResponse {
  return { status, headers: { ...JSON_HEADERS }, body: JSON.stringify(value) };
}

function refuse(status: number, message: string): UploadBackendError {
  return new UploadBackendError(status, message);
}

const badRequest = (message: string) => refuse(400, message);

function toHeaders(source: HeaderSource | undefined): Headers {
  if (source instanceof Headers) return source;
  const headers = new Headers();
  for (const [name, value] of Object.entries(source ?? {})) {
    if (value === undefined) continue;
    for (const v of typeof value === 'string' ? [value] : value) headers.append(name, v);
  }
  return headers;
}

/** The body as a JSON object, or undefined when it is not one. */
function jsonObject(body: unknown): Record<string, unknown> | undefined {
  let value = body;
  if (typeof body === 'string' || body instanceof Uint8Array) {
    const text =
      typeof body === 'string'
        ? body
        : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
    try {
      value = JSON.parse(text);
    } catch {
      return undefined;
    }
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function stringField(body: Record<string, unknown>, name: string): string {
  const value = body[name];
  if (value === undefined) throw badRequest(`${name} is missing`);
  if (typeof value !== 'string') throw badRequest(`${name} must be a string`);
  return value;
}

function arrayField(body: Record<string, unknown>, name: string): unknown[] {
  const value = body[name];
  if (value === undefined) throw badRequest(`${name} is missing`);
  if (!Array.isArray(value)) throw badRequest(`${name} must be an array`);
  return value;
}

function checkUploadId(uploadId: string): void {
  if (uploadId === '' || uploadId.length > MAX_UPLOAD_ID_LENGTH || hasControlChars(uploadId)) {
    throw badRequest('invalid uploadId');
  }
}

/** `{uploadId}/{key}` of a complete or abort path, each segment decoded. */
function uploadIdAndKey(rest: string): { uploadId: string; key: string } | undefined {
  const cut = rest.indexOf('/');
  if (cut <= 0 || cut === rest.length - 1) return undefined;
  try {
    const uploadId = decodeURIComponent(rest.slice(0, cut));
    const key = rest
      .slice(cut + 1)
      .split('/')
      .map(segment => decodeURIComponent(segment))
      .join('/');
    return { uploadId, key };
  } catch {
    return undefined;
  }
}

function storeError(what: string, failure: StoreFailure): UploadBackendError {
  return refuse(502, `${what}: ${failure.message}`);
}

function defaultOnError(error: unknown, operation: Operation): void {
  const what = error instanceof Error ? `${error.name}: ${error.message}` : 'unknown error';
  console.error(`react-native-s3-bg-uploader-backend: ${operation}: ${what}`);
}

/** Checks the options once, so a mistake shows when the server starts. */
function checkOptions(options: UploadBackendOptions<unknown, unknown>): void {
  const fail = (message: string): never => {
    throw new UploadBackendConfigError(message);
  };
  if (typeof options.s3?.send !== 'function') fail('s3 must be an S3Client');
  if (typeof options.bucket !== 'string' || options.bucket === '')
    fail('bucket must be a non-empty string');
  const prefix = options.keyPrefix ?? 'uploads/';
  const problem = typeof prefix === 'string' ? prefixProblem(prefix) : 'keyPrefix must be a string';
  if (problem) fail(problem);
  if (typeof options.partSize === 'number') checkPartSize(options.partSize, fail);
  const expires = options.urlExpiresIn;
  if (
    expires !== undefined &&
    (!Number.isInteger(expires) || expires < 1 || expires > MAX_URL_EXPIRES_IN)
  ) {
    fail(
      `urlExpiresIn must be a whole number of seconds from 1 to ${MAX_URL_EXPIRES_IN} (7 days), got ${String(
        expires,
      )}`,
    );
  }
  if (
    options.emptyFiles !== undefined &&
    options.emptyFiles !== 'put-object' &&
    options.emptyFiles !== 'empty-part'
  ) {
    fail(`emptyFiles must be "put-object" or "empty-part", got ${String(options.emptyFiles)}`);
  }
}

function checkPartSize(size: unknown, fail: (message: string) => never): number {
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 1 || size > MAX_PART_SIZE) {
    fail(`partSize must be a whole number of bytes from 1 to 5 GiB, got ${String(size)}`);
  }
  return size as number;
}

/** Creates the four endpoints over one bucket. Throws `UploadBackendConfigError` for bad options. */
export function createUploadBackend<Auth = unknown, Req = unknown>(
  options: UploadBackendOptions<Auth, Req>,
): UploadBackend<Req> {
  checkOptions(options as UploadBackendOptions<unknown, unknown>);
  const store = new Store(options.s3, options.bucket);
  const prefix = options.keyPrefix ?? 'uploads/';
  const expiresIn = options.urlExpiresIn ?? 3600;
  const emptyFiles = options.emptyFiles ?? 'put-object';
  const onError = options.onError ?? defaultOnError;
  const configFail = (message: string): never => {
    throw new UploadBackendConfigError(message);
  };

  /** Runs one endpoint: authorize, then the work; every throw becomes an answer. */
  async function run(
    operation: Operation,
    req: BackendRequest<Req>,
    target: { uploadId: string; key: string } | undefined,
    work: (
      ctx: RequestContext<Req>,
      body: Record<string, unknown> | undefined,
      auth: Auth,
    ) => Promise<BackendResponse>,
  ): Promise<BackendResponse> {
    const ctx: RequestContext<Req> = {
      operation,
      headers: toHeaders(req.headers),
      request: req.request,
    };
    const body = jsonObject(req.body);
    try {
      let auth = undefined as Auth;
      if (options.authorize) {
        const key = target?.key ?? (typeof body?.key === 'string' ? body.key : undefined);
        const uploadId =
          target?.uploadId ?? (typeof body?.uploadId === 'string' ? body.uploadId : undefined);
        const verdict = await options.authorize({ ...ctx, body, key, uploadId });
        if (verdict === false) return answer(401, { error: 'unauthorized' });
        auth = verdict;
      }
      return await work(ctx, body, auth);
    } catch (err) {
      if (err instanceof UploadBackendError) {
        if (err.status >= 500) onError(err, operation);
        return answer(err.status, { error: err.message });
      }
      onError(err, operation);
      // Hook bugs and the like: the details stay in the server's log.
      return answer(500, { error: 'internal error in the upload backend' });
    }
  }

  function requireBody(body: Record<string, unknown> | undefined): Record<string, unknown> {
    if (body === undefined) throw badRequest('the body must be a JSON object');
    return body;
  }

  function checkKey(key: string): void {
    const problem = keyProblem(key, prefix);
    if (problem) throw badRequest(problem);
  }

  const startUpload = (req: BackendRequest<Req>) =>
    run('startUpload', req, undefined, async (ctx, maybeBody, auth) => {
      const body = requireBody(maybeBody);
      const fileName = stringField(body, 'fileName');
      const fileHash = stringField(body, 'fileHash');
      if (!isHashHex(fileHash)) throw badRequest('fileHash must be 32 lowercase hex digits');
      const fileSize = body.fileSize;
      if (fileSize === undefined) throw badRequest('fileSize is missing');
      if (typeof fileSize !== 'number' || !Number.isSafeInteger(fileSize) || fileSize < 0) {
        throw badRequest('fileSize must be a non-negative integer');
      }
      if (fileSize > MAX_OBJECT_SIZE)
        throw badRequest('fileSize is larger than the 5 TiB S3 allows');
      // The empty-content hash belongs to 0-byte files only.
      if (fileSize === 0 && fileHash !== EMPTY_CONTENT_HASH) {
        throw badRequest(
          `fileHash of a 0-byte file must be ${EMPTY_CONTENT_HASH} (XXH3-128 of no bytes)`,
        );
      }
      if (fileSize > 0 && fileHash === EMPTY_CONTENT_HASH) {
        throw badRequest('fileHash is the hash of no bytes, but fileSize is not 0');
      }
      const { fileName: _n, fileHash: _h, fileSize: _s, ...params } = body;
      const start: StartContext<Auth, Req> = { ...ctx, auth, fileName, fileHash, fileSize, params };

      const relative = options.objectKey
        ? await options.objectKey(start)
        : `${fileHash}/${randomBytes(4).toString('hex')}/${sanitizeFileName(fileName)}`;
      if (typeof relative !== 'string') configFail('the objectKey hook must return a string');
      const key = prefix + relative;
      const keyIssue = keyProblem(key, prefix);
      if (keyIssue) configFail(`the objectKey hook gave an unusable key: ${keyIssue}`);

      const preferred =
        typeof options.partSize === 'function'
          ? checkPartSize(await options.partSize({ ...start, key }), configFail)
          : options.partSize ?? 8 * MIB;
      const partSize = partSizeFor(preferred, fileSize);

      let uploadId = EMPTY_FILE_UPLOAD_ID;
      if (fileSize > 0 || emptyFiles === 'empty-part') {
        try {
          uploadId = await store.createMultipartUpload(key);
        } catch (err) {
          throw err instanceof StoreFailure ? storeError('could not start the upload', err) : err;
        }
      }
      return answer(200, { key, uploadId, partSize });
    });

  const getUploadUrls = (req: BackendRequest<Req>) =>
    run('getUploadUrls', req, undefined, async (_ctx, maybeBody) => {
      const body = requireBody(maybeBody);
      const key = stringField(body, 'key');
      const uploadId = stringField(body, 'uploadId');
      checkKey(key);
      checkUploadId(uploadId);
      const parts = arrayField(body, 'parts');
      if (parts.length === 0 || parts.length > MAX_URLS_PER_CALL) {
        throw badRequest(`parts must hold between 1 and ${MAX_URLS_PER_CALL} part numbers`);
      }
      const numbers = parts.map(n => {
        if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_PARTS) {
          throw badRequest('part numbers must be integers from 1 to 10000');
        }
        return n;
      });
      const empty = uploadId === EMPTY_FILE_UPLOAD_ID;
      if (empty) {
        if (numbers.some(n => n !== 1)) throw badRequest('an empty file has only part 1');
        // Default keys start with the content hash, as the reference
        // backend's do: an empty file's key starts with the empty one.
        if (!options.objectKey && key.slice(prefix.length).split('/')[0] !== EMPTY_CONTENT_HASH) {
          throw badRequest('this key does not belong to an empty file');
        }
        // The uploadId is not bound to the key: never hand a PutObject URL
        // out over an object with content (a forged request would replace it).
        const head = await store.head(key).catch((err: unknown) => {
          throw err instanceof StoreFailure ? storeError('could not check the key', err) : err;
        });
        if (head && head.size !== 0)
          throw refuse(409, 'an object with content is already stored under this key');
      }
      const urls: Record<string, string> = {};
      try {
        await Promise.all(
          numbers.map(async n => {
            urls[String(n)] = empty
              ? await store.presignPutObject(key, expiresIn)
              : await store.presignPart(key, uploadId, n, expiresIn);
          }),
        );
      } catch (err) {
        throw err instanceof StoreFailure ? storeError('could not sign the part URLs', err) : err;
      }
      return answer(200, { urls });
    });

  /** The ETags of a complete body, checked to be exactly parts 1..N in order. */
  function completedParts(body: Record<string, unknown>): string[] {
    const parts = arrayField(body, 'parts');
    if (parts.length === 0 || parts.length > MAX_PARTS)
      throw badRequest('parts must hold between 1 and 10000 entries');
    return parts.map((part, i) => {
      const p = (typeof part === 'object' && part !== null ? part : {}) as Record<string, unknown>;
      if (p.PartNumber !== i + 1)
        throw badRequest('parts must be numbered 1 to N in order, each with a PartNumber');
      const etag = p.ETag;
      if (typeof etag !== 'string' || etag.trim() === '' || etag.length > MAX_ETAG_LENGTH) {
        throw badRequest(`part ${i + 1} has no valid ETag`);
      }
      return etag;
    });
  }

  function completed(
    ctx: RequestContext<Req>,
    auth: Auth,
    target: { uploadId: string; key: string },
    etag: string,
    partCount: number,
    alreadyCompleted: boolean,
  ): BackendResponse {
    const { key, uploadId } = target;
    if (!options.completeBody) return answer(200, { key, etag });
    const value = options.completeBody({
      ...ctx,
      auth,
      key,
      uploadId,
      etag,
      partCount,
      alreadyCompleted,
    });
    const text = value === undefined ? undefined : JSON.stringify(value);
    if (text === undefined) configFail('the completeBody hook must return a JSON value');
    return { status: 200, headers: { ...JSON_HEADERS }, body: text as string };
  }

  const complete = (req: BackendRequest<Req>, rest: string) => {
    const target = uploadIdAndKey(rest);
    return run('complete', req, target, async (ctx, maybeBody, auth) => {
      if (!target) throw badRequest('invalid upload id or key in the path');
      const { uploadId, key } = target;
      checkUploadId(uploadId);
      checkKey(key);
      const etags = completedParts(requireBody(maybeBody));

      if (uploadId === EMPTY_FILE_UPLOAD_ID) {
        if (etags.length !== 1) throw badRequest('an empty file has exactly one part');
        const head = await store.head(key).catch((err: unknown) => {
          throw err instanceof StoreFailure
            ? storeError('could not check for the empty object', err)
            : err;
        });
        if (!head) throw badRequest("the empty file was not stored: PUT part 1's URL first");
        if (head.size !== 0) throw badRequest('the object stored for this empty file is not empty');
        return completed(ctx, auth, target, head.etag || (etags[0] as string), 1, false);
      }

      let failure: StoreFailure;
      try {
        const etag = await store.complete(key, uploadId, etags);
        return completed(ctx, auth, target, etag, etags.length, false);
      } catch (err) {
        if (!(err instanceof StoreFailure)) throw err;
        failure = err;
      }
      // Completing twice must succeed: the first answer may have been lost
      // on the way to the app. The store no longer knows the upload then,
      // so look for the object it produced.
      const head = await store.head(key).catch(() => undefined);
      if (head) {
        const expected = multipartEtag(etags);
        if (expected === undefined || unquote(head.etag).toLowerCase() === expected.toLowerCase()) {
          return completed(ctx, auth, target, head.etag, etags.length, true);
        }
      }
      const clientFault = failure.code
        ? CLIENT_CODES.has(failure.code)
        : failure.status === 400 || failure.status === 404;
      if (clientFault) throw badRequest(`could not complete the upload: ${failure.message}`);
      throw storeError('could not complete the upload', failure);
    });
  };

  const abort = (req: BackendRequest<Req>, rest: string) => {
    const target = uploadIdAndKey(rest);
    return run('abort', req, target, async () => {
      if (!target) throw badRequest('invalid upload id or key in the path');
      const { uploadId, key } = target;
      checkUploadId(uploadId);
      checkKey(key);
      const done: BackendResponse = {
        status: 204,
        headers: { 'cache-control': 'no-store' },
        body: '',
      };
      // No multipart upload was opened for an empty file: nothing to free.
      if (uploadId === EMPTY_FILE_UPLOAD_ID) return done;
      try {
        await store.abort(key, uploadId);
      } catch (err) {
        if (!(err instanceof StoreFailure)) throw err;
        // Already gone (completed, aborted or expired): nothing left to do.
        if (err.status === 403 || err.status === 404) return done;
        // e.g. an upload id in a format the store never issues.
        if (err.status === 400) throw badRequest(`could not abort the upload: ${err.message}`);
        throw storeError('could not abort the upload', err);
      }
      return done;
    });
  };

  const route = (path: string): { operation: Operation; rest: string } | undefined => {
    const bare = path.split('?')[0] ?? '';
    if (bare === '/startUpload') return { operation: 'startUpload', rest: '' };
    if (bare === '/getUploadUrls') return { operation: 'getUploadUrls', rest: '' };
    for (const operation of ['complete', 'abort'] as const) {
      const base = `/${operation}/`;
      if (bare.startsWith(base) && bare.length > base.length)
        return { operation, rest: bare.slice(base.length) };
    }
    return undefined;
  };

  return {
    matches: path => route(path) !== undefined,
    async handle(req) {
      const found = route(req.path);
      if (!found) return answer(404, { error: 'no such endpoint' });
      if (req.method.toUpperCase() !== 'POST') {
        const r = answer(405, { error: 'use POST' });
        r.headers.allow = 'POST';
        return r;
      }
      switch (found.operation) {
        case 'startUpload':
          return startUpload(req);
        case 'getUploadUrls':
          return getUploadUrls(req);
        case 'complete':
          return complete(req, found.rest);
        case 'abort':
          return abort(req, found.rest);
      }
    },
    startUpload,
    getUploadUrls,
    complete,
    abort,
  };
}
