/**
 * Input checks done in JavaScript, before anything crosses to native, so a
 * mistake is reported with the name of the offending field. The engine
 * checks again (it may be driven without JavaScript); these messages are
 * only friendlier. Values of headers and user params never appear in
 * messages: they may be secrets.
 */
import { Platform } from 'react-native';
import { UploadError } from './errors';
import type { UploaderConfig, UploadFilter } from './types';
import { UPLOAD_STATES, type UploadState } from './types';

/** The contract's own startUpload fields: user params may not use them. */
export const RESERVED_USER_PARAMS: readonly string[] = ['fileName', 'fileHash', 'fileSize'];

/** Placeholders the notification templates may use. */
export const NOTIFICATION_PLACEHOLDERS: readonly string[] = [
  'percentage',
  'uploadedSize',
  'totalSize',
  'completedFiles',
  'totalFiles',
  'completedTransfers',
  'totalTransfers',
];

export const MAX_PARALLEL_PARTS = 32;
const MAX_RETRY_DELAY_MS = 3_600_000;
/** Bounds of `retry.requestTimeoutMs` and `retry.stallTimeoutMs` (the engine's). */
export const MIN_TIMEOUT_MS = 100;
export const MAX_TIMEOUT_MS = 3_600_000;
// The engine's defaults, which apply to the delay the app leaves out.
const DEFAULT_INITIAL_DELAY_MS = 1_000;
const DEFAULT_MAX_DELAY_MS = 60_000;
/** Longest notification template, in characters (the engine's limit). */
export const MAX_TEMPLATE_CHARS = 500;
/** Most entries in `extraRootCertificatesPem` (the engine's limit). */
export const MAX_EXTRA_ROOTS = 64;

function configError(message: string): UploadError {
  return new UploadError('invalid_config', message);
}

function argumentError(message: string): UploadError {
  return new UploadError('invalid_argument', message);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) {
    return false;
  }
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function describe(v: unknown): string {
  if (v === null || v === undefined) {
    return String(v);
  }
  if (Array.isArray(v)) {
    return 'an array';
  }
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

// An absolute http(s) URL with a host; no whitespace anywhere. (RN's URL
// class is too partial to parse with on every version we support.)
const HTTP_URL =
  /^https?:\/\/(?:[^\s/?#@]*@)?(?:\[[0-9A-Fa-f:.]+\]|[^\s/?#@:[\]]+)(?::(\d{1,5}))?(?:[/?#]\S*)?$/i;

function checkUrl(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw configError(`${name} is required: an absolute http(s) URL, got ${describe(value)}`);
  }
  const match = HTTP_URL.exec(value);
  // The engine's URL parser refuses ports above 65535.
  if (!match || (match[1] !== undefined && Number(match[1]) > 65535)) {
    // The value may carry a token in its query string: name the field only.
    throw configError(
      `${name} must be an absolute http(s) URL with a host (like https://api.example.com/startUpload)`,
    );
  }
  return value;
}

// RFC 9110 token characters.
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// What the engine's HTTP client accepts in a value: visible ASCII, space and tab.
const HEADER_VALUE = /^[\t\x20-\x7e]*$/;

function checkInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw configError(`${name} must be an integer between ${min} and ${max}, got ${String(value)}`);
  }
  return value;
}

function checkTemplate(name: string, value: unknown): string {
  if (typeof value !== 'string') {
    throw configError(`${name} must be a string, got ${describe(value)}`);
  }
  // Counted in code points, as the engine counts characters.
  if ([...value].length > MAX_TEMPLATE_CHARS) {
    throw configError(`${name} must be at most ${MAX_TEMPLATE_CHARS} characters`);
  }
  for (const match of value.matchAll(/\{([^{}]*)\}/g)) {
    const placeholder = match[1] ?? '';
    if (!NOTIFICATION_PLACEHOLDERS.includes(placeholder)) {
      throw configError(
        `${name} uses the unknown placeholder {${placeholder}}; known ones: ${NOTIFICATION_PLACEHOLDERS.map(
          p => `{${p}}`,
        ).join(' ')}`,
      );
    }
  }
  return value;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([^-]*)-----END \1-----/g;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * `extraRootCertificatesPem`: PEM texts, each with at least one well-formed
 * CERTIFICATE block. The engine also parses the certificates themselves.
 */
function checkPemList(value: unknown): string[] {
  if (!Array.isArray(value)) {
    throw configError(
      `extraRootCertificatesPem must be an array of PEM strings, got ${describe(value)}`,
    );
  }
  if (value.length > MAX_EXTRA_ROOTS) {
    throw configError(`extraRootCertificatesPem has at most ${MAX_EXTRA_ROOTS} entries`);
  }
  return value.map((pem: unknown, i) => {
    const name = `extraRootCertificatesPem[${i}]`;
    if (typeof pem !== 'string') {
      throw configError(`${name} must be a string, got ${describe(pem)}`);
    }
    let certificates = 0;
    for (const block of pem.matchAll(PEM_BLOCK)) {
      if (!BASE64.test((block[2] ?? '').replace(/\s+/g, ''))) {
        throw configError(`${name} is not valid PEM`);
      }
      certificates += block[1] === 'CERTIFICATE' ? 1 : 0;
    }
    if (pem.split('-----BEGIN ').length - 1 !== [...pem.matchAll(PEM_BLOCK)].length) {
      throw configError(`${name} is not valid PEM (a block has no END line)`);
    }
    if (certificates === 0) {
      throw configError(`${name} holds no "BEGIN CERTIFICATE" block`);
    }
    return pem;
  });
}

function checkKeys(name: string, value: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw configError(`${name} has an unknown field "${key}"; known fields: ${known.join(', ')}`);
    }
  }
}

/** The longest `finishedRetentionMs` (ten years), as the engine checks it. */
export const MAX_FINISHED_RETENTION_MS = 3650 * 24 * 3600 * 1000;

const CONFIG_FIELDS = [
  'startUploadApi',
  'getUploadUrlsApi',
  'completeApi',
  'abortApi',
  'headers',
  'maxParallelParts',
  'retry',
  'network',
  'notification',
  'extraRootCertificatesPem',
  'finishedRetentionMs',
];
const RETRY_FIELDS = [
  'maxAttempts',
  'initialDelayMs',
  'maxDelayMs',
  'maxUrlRefreshes',
  'requestTimeoutMs',
  'stallTimeoutMs',
];
const NOTIFICATION_FIELDS = ['title', 'text'];

/**
 * Validates a config and returns the JSON the native module hands to the
 * engine (the engine's `Config` field names; omitted optional fields take
 * the engine's defaults).
 */
export function configToNativeJson(config: UploaderConfig): string {
  if (!isPlainObject(config)) {
    throw configError(`the config must be an object, got ${describe(config)}`);
  }
  checkKeys('the config', config, CONFIG_FIELDS);
  const out: Record<string, unknown> = {
    startUploadUrl: checkUrl('startUploadApi', config.startUploadApi),
    uploadUrlsUrl: checkUrl('getUploadUrlsApi', config.getUploadUrlsApi),
    completeUrl: checkUrl('completeApi', config.completeApi),
  };
  if (config.abortApi !== undefined) {
    out.abortUrl = checkUrl('abortApi', config.abortApi);
  }

  if (config.headers !== undefined) {
    if (!isPlainObject(config.headers)) {
      throw configError(
        `headers must be an object of name: value strings, got ${describe(config.headers)}`,
      );
    }
    const headers: Array<[string, string]> = [];
    for (const [name, value] of Object.entries(config.headers)) {
      if (!HEADER_NAME.test(name)) {
        throw configError(`header name "${name}" is not a valid HTTP header name`);
      }
      if (typeof value !== 'string') {
        throw configError(`the value of header "${name}" must be a string, got ${describe(value)}`);
      }
      if (!HEADER_VALUE.test(value)) {
        throw configError(
          `the value of header "${name}" must be printable ASCII (no line breaks or control characters)`,
        );
      }
      headers.push([name, value]);
    }
    out.headers = headers;
  }

  if (config.maxParallelParts !== undefined) {
    out.maxPartsInFlight = checkInteger(
      'maxParallelParts',
      config.maxParallelParts,
      1,
      MAX_PARALLEL_PARTS,
    );
  }

  if (config.retry !== undefined) {
    const retry: unknown = config.retry;
    if (!isPlainObject(retry)) {
      throw configError(`retry must be an object, got ${describe(retry)}`);
    }
    checkKeys('retry', retry, RETRY_FIELDS);
    const r: Record<string, number> = {};
    if (retry.maxAttempts !== undefined) {
      r.maxAttempts = checkInteger('retry.maxAttempts', retry.maxAttempts, 1, 100);
    }
    if (retry.initialDelayMs !== undefined) {
      r.baseDelayMs = checkInteger(
        'retry.initialDelayMs',
        retry.initialDelayMs,
        0,
        MAX_RETRY_DELAY_MS,
      );
    }
    if (retry.maxDelayMs !== undefined) {
      r.maxDelayMs = checkInteger('retry.maxDelayMs', retry.maxDelayMs, 0, MAX_RETRY_DELAY_MS);
    }
    // Compared as the engine will use them: a delay left out is the default.
    if ((r.baseDelayMs ?? DEFAULT_INITIAL_DELAY_MS) > (r.maxDelayMs ?? DEFAULT_MAX_DELAY_MS)) {
      throw configError(
        `retry.initialDelayMs must not be larger than retry.maxDelayMs (defaults: ${DEFAULT_INITIAL_DELAY_MS} and ${DEFAULT_MAX_DELAY_MS})`,
      );
    }
    if (retry.maxUrlRefreshes !== undefined) {
      r.maxUrlRefreshes = checkInteger('retry.maxUrlRefreshes', retry.maxUrlRefreshes, 0, 100);
    }
    for (const name of ['requestTimeoutMs', 'stallTimeoutMs'] as const) {
      if (retry[name] !== undefined) {
        r[name] = checkInteger(`retry.${name}`, retry[name], MIN_TIMEOUT_MS, MAX_TIMEOUT_MS);
      }
    }
    out.retry = r;
  }

  if (config.network !== undefined) {
    if (config.network !== 'any' && config.network !== 'unmetered') {
      throw configError(
        `network must be 'any' or 'unmetered', got ${JSON.stringify(config.network)}`,
      );
    }
    out.network = config.network;
  }

  if (config.notification !== undefined) {
    const n: unknown = config.notification;
    if (!isPlainObject(n)) {
      throw configError(`notification must be an object, got ${describe(n)}`);
    }
    checkKeys('notification', n, NOTIFICATION_FIELDS);
    const notification: Record<string, string> = {};
    if (n.title !== undefined) {
      notification.title = checkTemplate('notification.title', n.title);
    }
    if (n.text !== undefined) {
      notification.text = checkTemplate('notification.text', n.text);
    }
    out.notification = notification;
  }

  if (config.extraRootCertificatesPem !== undefined) {
    out.extraRootCertificatesPem = checkPemList(config.extraRootCertificatesPem);
  }
  if (config.finishedRetentionMs !== undefined) {
    out.finishedRetentionMs = checkInteger(
      'finishedRetentionMs',
      config.finishedRetentionMs,
      0,
      MAX_FINISHED_RETENTION_MS,
    );
  }
  return JSON.stringify(out);
}

/**
 * URI schemes passed to native unchanged, per platform: its native module
 * opens them for the engine each time it reads the file (Android's
 * `content://` through the ContentResolver; `bookmark://` for iOS
 * security-scoped bookmarks). Another platform's scheme is refused.
 */
export const PLATFORM_URI_SCHEMES: Readonly<Record<string, readonly string[]>> = {
  android: ['content'],
  ios: ['bookmark'],
};

const PLATFORM_NAMES: Readonly<Record<string, string>> = { android: 'Android', ios: 'iOS' };

/**
 * Turns a plain absolute path or a `file://` URI into the absolute path the
 * engine reads; a URI the platform opens (`content://` on Android,
 * `bookmark://` on iOS) is returned as is. Other URIs (`ph://`, `http://`...)
 * are refused: the engine needs a file it can reopen after a restart.
 * `os` is the running platform (`Platform.OS`).
 */
export function toFilePath(pathOrUri: unknown, os: string = Platform.OS): string {
  if (typeof pathOrUri !== 'string' || pathOrUri.length === 0) {
    throw argumentError(
      `the file must be a non-empty path or file:// URI, got ${describe(pathOrUri)}`,
    );
  }
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(pathOrUri);
  const schemeName = scheme?.[1]?.toLowerCase();
  const owner = Object.keys(PLATFORM_URI_SCHEMES).find(p =>
    PLATFORM_URI_SCHEMES[p]?.some(s => s === schemeName),
  );
  if (owner !== undefined && owner !== os) {
    throw argumentError(
      `${schemeName}: URIs are only supported on ${
        PLATFORM_NAMES[owner] ?? owner
      }: pass a local file path or a file:// URI`,
    );
  }
  if (owner !== undefined) {
    if (!/^[^:]+:\/\/[^/?#]+/.test(pathOrUri)) {
      throw argumentError(`a ${schemeName}: URI must look like ${schemeName}://authority/...`);
    }
    if (pathOrUri.includes('\0')) {
      throw argumentError('the URI must not contain NUL characters');
    }
    return pathOrUri;
  }
  let path: string;
  if (schemeName === 'file') {
    // file:///p, file://localhost/p and file:/p all name /p. A URI's query
    // and fragment are not part of the path.
    const rest = pathOrUri.slice('file:'.length).replace(/[?#].*$/, '');
    const withoutHost = rest.replace(/^\/\/(localhost)?(?=\/)/i, '');
    if (withoutHost.startsWith('//')) {
      throw argumentError(
        `${pathOrUri} names a file on another host: only local files can be uploaded`,
      );
    }
    try {
      path = decodeURIComponent(withoutHost);
    } catch {
      throw argumentError(`${pathOrUri} is not a valid file:// URI (bad percent-encoding)`);
    }
  } else if (scheme && !pathOrUri.startsWith('/')) {
    throw argumentError(
      `${scheme[1]}: URIs are not supported: pass a local file path, a file:// URI or a content:// URI on Android (copy the content to a file first)`,
    );
  } else {
    path = pathOrUri;
  }
  if (!path.startsWith('/')) {
    throw argumentError(`the file path must be absolute, got "${path}"`);
  }
  if (path.includes('\0')) {
    throw argumentError('the file path must not contain NUL characters');
  }
  return path;
}

/**
 * Checks that user params are a JSON object without reserved keys, and
 * returns its JSON. Anything JSON.stringify would silently drop or change
 * (undefined, functions, NaN, dates, class instances...) is refused, with
 * the path of the value.
 */
export function userParamsToJson(params: unknown): string {
  if (params === undefined) {
    return '{}';
  }
  if (!isPlainObject(params)) {
    throw argumentError(`userParams must be a plain object, got ${describe(params)}`);
  }
  for (const key of RESERVED_USER_PARAMS) {
    if (Object.prototype.hasOwnProperty.call(params, key)) {
      throw argumentError(
        `userParams.${key} is reserved: fileName, fileHash and fileSize are set by the uploader (use the fileName option to choose the name)`,
      );
    }
  }
  checkJson(params, 'userParams', new Set());
  return JSON.stringify(params);
}

function checkJson(value: unknown, at: string, seen: Set<object>): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) {
        throw argumentError(`${at} is ${String(value)}, which JSON cannot carry`);
      }
      return;
    case 'object':
      break;
    default:
      throw argumentError(`${at} is ${describe(value)}, which is not a JSON value`);
  }
  if (value === null) {
    return;
  }
  if (seen.has(value)) {
    throw argumentError(`${at} refers back to itself: userParams must not contain cycles`);
  }
  if (Array.isArray(value)) {
    seen.add(value);
    value.forEach((item, i) => checkJson(item, `${at}[${i}]`, seen));
    seen.delete(value);
    return;
  }
  if (!isPlainObject(value)) {
    const kind = (value as object).constructor?.name ?? 'object';
    throw argumentError(
      `${at} is a ${kind}, not a plain JSON object (convert it to a string or number first)`,
    );
  }
  seen.add(value);
  for (const [key, item] of Object.entries(value)) {
    checkJson(item, `${at}.${key}`, seen);
  }
  seen.delete(value);
}

/** Checks a transfer id and returns it. */
export function checkTransferId(value: unknown, name = 'transferId'): string {
  if (typeof value !== 'string' || value.trim().length === 0) {
    throw argumentError(`${name} must be a non-empty string, got ${describe(value)}`);
  }
  return value;
}

/** Checks an upload id (`Upload.id`) and returns it. */
export function checkUploadId(value: unknown, name = 'id'): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw argumentError(
      `${name} must be an upload's id (a non-negative integer), got ${String(value)}`,
    );
  }
  return value;
}

const TARGET_SHAPES = '{ id }, { transferId } or { all: true }';

/**
 * The native selector of a target: [id, transferId], both null for every
 * upload. Every upload only when asked for with `{ all: true }`: a missing
 * target is a mistake (an unset variable), not a wish to reach everything.
 * `call` names the function in the messages.
 */
export function targetToNative(target: unknown, call: string): [number | null, string | null] {
  if (target === undefined || target === null) {
    throw argumentError(
      `${call} needs a target: ${TARGET_SHAPES} (every upload), got ${String(target)}`,
    );
  }
  if (!isPlainObject(target)) {
    throw argumentError(`the target of ${call} must be ${TARGET_SHAPES}, got ${describe(target)}`);
  }
  const { id, uploadId, transferId, all } = target;
  if (id !== undefined && uploadId !== undefined) {
    throw argumentError(
      `the target of ${call} names id and its deprecated alias uploadId: keep id`,
    );
  }
  const named = [
    id !== undefined || uploadId !== undefined ? 'id' : null,
    transferId !== undefined ? 'transferId' : null,
    all !== undefined ? 'all' : null,
  ].filter(n => n !== null);
  if (named.length > 1) {
    throw argumentError(
      `the target of ${call} must name one of id, transferId or all, not ${named.join(' and ')}`,
    );
  }
  if (id !== undefined) {
    return [checkUploadId(id, 'target.id'), null];
  }
  if (uploadId !== undefined) {
    return [checkUploadId(uploadId, 'target.uploadId'), null];
  }
  if (transferId !== undefined) {
    return [null, checkTransferId(transferId, 'target.transferId')];
  }
  if (all !== undefined) {
    if (all !== true) {
      throw argumentError(`target.all must be true (every upload), got ${String(all)}`);
    }
    return [null, null];
  }
  throw argumentError(`the target of ${call} must be ${TARGET_SHAPES}, got an empty object`);
}

/** A checked filter: the deprecated `uploadId` folded into `id`, states as a list (empty: any state). */
export type CheckedFilter = {
  readonly id?: number;
  readonly transferId?: string;
  readonly fileHash?: string;
  readonly states: readonly UploadState[];
};

/** Validates a filter and returns it checked. */
export function checkFilter(filter: UploadFilter | undefined): CheckedFilter {
  if (filter === undefined) {
    return { states: [] };
  }
  if (!isPlainObject(filter)) {
    throw argumentError(`the filter must be an object, got ${describe(filter)}`);
  }
  if (filter.id !== undefined && filter.uploadId !== undefined) {
    throw argumentError('the filter names id and its deprecated alias uploadId: keep id');
  }
  const id =
    filter.id !== undefined
      ? checkUploadId(filter.id, 'filter.id')
      : filter.uploadId !== undefined
      ? checkUploadId(filter.uploadId, 'filter.uploadId')
      : undefined;
  if (filter.transferId !== undefined) {
    checkTransferId(filter.transferId, 'filter.transferId');
  }
  if (filter.fileHash !== undefined && typeof filter.fileHash !== 'string') {
    throw argumentError(`filter.fileHash must be a string, got ${describe(filter.fileHash)}`);
  }
  const raw =
    filter.state === undefined ? [] : Array.isArray(filter.state) ? filter.state : [filter.state];
  for (const s of raw) {
    if (!(UPLOAD_STATES as readonly unknown[]).includes(s)) {
      throw argumentError(
        `filter.state has the unknown state ${JSON.stringify(s)}; known: ${UPLOAD_STATES.join(
          ', ',
        )}`,
      );
    }
  }
  const checked: { -readonly [K in keyof CheckedFilter]: CheckedFilter[K] } = {
    states: raw as readonly UploadState[],
  };
  if (id !== undefined) {
    checked.id = id;
  }
  if (filter.transferId !== undefined) {
    checked.transferId = filter.transferId as string;
  }
  if (filter.fileHash !== undefined) {
    checked.fileHash = filter.fileHash as string;
  }
  return checked;
}
