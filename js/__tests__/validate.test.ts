import { UploadError } from '../src/errors';
import type { UploaderConfig } from '../src/types';
import {
  checkFilter,
  configToNativeJson,
  targetToNative,
  toFilePath,
  userParamsToJson,
} from '../src/validate';

const base: UploaderConfig = {
  startUploadApi: 'https://api.example.com/uploads/start',
  getUploadUrlsApi: 'https://api.example.com/uploads/urls',
  completeApi: 'https://api.example.com/uploads/complete',
};

/** Runs `fn`, expecting an UploadError; returns it. */
function failure(fn: () => unknown): UploadError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UploadError);
    return e as UploadError;
  }
  throw new Error('expected an UploadError, nothing was thrown');
}

describe('configToNativeJson', () => {
  it('maps the public names to the engine config and leaves defaults to the engine', () => {
    expect(JSON.parse(configToNativeJson(base))).toEqual({
      startUploadUrl: base.startUploadApi,
      uploadUrlsUrl: base.getUploadUrlsApi,
      completeUrl: base.completeApi,
    });
  });

  it('maps every optional field', () => {
    const json = configToNativeJson({
      ...base,
      abortApi: 'http://10.0.2.2:8080/abort',
      headers: { Authorization: 'Bearer t0k3n', 'X-App': 'demo' },
      maxParallelParts: 6,
      retry: { maxAttempts: 5, initialDelayMs: 500, maxDelayMs: 30_000, maxUrlRefreshes: 2 },
      network: 'unmetered',
      notification: { title: 'Uploading {completedFiles}/{totalFiles}', text: '{percentage}%' },
      finishedRetentionMs: 86_400_000,
    });
    expect(JSON.parse(json)).toEqual({
      startUploadUrl: base.startUploadApi,
      uploadUrlsUrl: base.getUploadUrlsApi,
      completeUrl: base.completeApi,
      abortUrl: 'http://10.0.2.2:8080/abort',
      headers: [
        ['Authorization', 'Bearer t0k3n'],
        ['X-App', 'demo'],
      ],
      maxPartsInFlight: 6,
      retry: { maxAttempts: 5, baseDelayMs: 500, maxDelayMs: 30_000, maxUrlRefreshes: 2 },
      network: 'unmetered',
      notification: { title: 'Uploading {completedFiles}/{totalFiles}', text: '{percentage}%' },
      finishedRetentionMs: 86_400_000,
    });
  });

  it.each([
    ['http://localhost:8080/startUpload'],
    ['https://[::1]:8443/start'],
    ['http://192.168.1.20:8080/a/b?x=1#y'],
    ['HTTPS://API.EXAMPLE.COM'],
  ])('accepts the URL %s', url => {
    expect(() => configToNativeJson({ ...base, startUploadApi: url })).not.toThrow();
  });

  it.each([
    ['', 'startUploadApi is required'],
    ['/startUpload', 'startUploadApi must be an absolute http(s) URL'],
    ['ftp://example.com/x', 'startUploadApi must be an absolute http(s) URL'],
    ['http:///nohost', 'startUploadApi must be an absolute http(s) URL'],
    ['http://exa mple.com/', 'startUploadApi must be an absolute http(s) URL'],
    ['example.com/start', 'startUploadApi must be an absolute http(s) URL'],
  ])('refuses the URL %j', (url, message) => {
    const e = failure(() => configToNativeJson({ ...base, startUploadApi: url }));
    expect(e.code).toBe('invalid_config');
    expect(e.message).toContain(message);
  });

  it('names each missing URL', () => {
    for (const field of ['startUploadApi', 'getUploadUrlsApi', 'completeApi'] as const) {
      const config: Record<string, unknown> = { ...base };
      delete config[field];
      const e = failure(() => configToNativeJson(config as unknown as UploaderConfig));
      expect(e.message).toContain(`${field} is required`);
    }
    const e = failure(() => configToNativeJson({ ...base, abortApi: 'nope' }));
    expect(e.message).toContain('abortApi must be an absolute http(s) URL');
  });

  it('does not echo a URL that may carry a token', () => {
    const e = failure(() =>
      configToNativeJson({ ...base, completeApi: 'ftp://host/complete?token=SECRET' }),
    );
    expect(e.message).not.toContain('SECRET');
  });

  it('refuses bad headers without echoing their values', () => {
    let e = failure(() => configToNativeJson({ ...base, headers: { 'Bad Name': 'x' } }));
    expect(e.message).toContain('header name "Bad Name" is not a valid HTTP header name');

    e = failure(() =>
      configToNativeJson({ ...base, headers: { Authorization: 'Bearer SECRET\r\nX: y' } }),
    );
    expect(e.code).toBe('invalid_config');
    expect(e.message).toContain('"Authorization"');
    expect(e.message).not.toContain('SECRET');

    e = failure(() => configToNativeJson({ ...base, headers: { 'X-N': 5 as unknown as string } }));
    expect(e.message).toContain('the value of header "X-N" must be a string, got a number');

    e = failure(() =>
      configToNativeJson({ ...base, headers: [] as unknown as Record<string, string> }),
    );
    expect(e.message).toContain('headers must be an object');
  });

  it.each([
    [{ finishedRetentionMs: -1 }, 'finishedRetentionMs must be an integer between 0 and'],
    [{ finishedRetentionMs: 1.5 }, 'finishedRetentionMs must be an integer between 0 and'],
    [
      { finishedRetentionMs: 315_360_000_001 },
      'finishedRetentionMs must be an integer between 0 and 315360000000',
    ],
    [{ maxParallelParts: 0 }, 'maxParallelParts must be an integer between 1 and 32, got 0'],
    [{ maxParallelParts: 33 }, 'maxParallelParts must be an integer between 1 and 32, got 33'],
    [{ maxParallelParts: 2.5 }, 'maxParallelParts must be an integer between 1 and 32'],
    [{ retry: { maxAttempts: 0 } }, 'retry.maxAttempts must be an integer between 1 and 100'],
    [{ retry: { maxAttempts: 101 } }, 'retry.maxAttempts must be an integer between 1 and 100'],
    [{ retry: { initialDelayMs: -1 } }, 'retry.initialDelayMs must be an integer between 0'],
    [
      { retry: { maxDelayMs: 3_600_001 } },
      'retry.maxDelayMs must be an integer between 0 and 3600000',
    ],
    [
      { retry: { initialDelayMs: 5_000, maxDelayMs: 1_000 } },
      'retry.initialDelayMs must not be larger than retry.maxDelayMs',
    ],
    [
      { retry: { maxUrlRefreshes: 101 } },
      'retry.maxUrlRefreshes must be an integer between 0 and 100',
    ],
    [{ retry: { maxAttemps: 3 } }, 'retry has an unknown field "maxAttemps"'],
    [{ retry: 3 }, 'retry must be an object, got a number'],
    [{ network: 'wifi' }, `network must be 'any' or 'unmetered', got "wifi"`],
    [
      { notification: { title: 'At {percent}' } },
      'notification.title uses the unknown placeholder {percent}',
    ],
    [{ notification: { text: 7 } }, 'notification.text must be a string, got a number'],
    [{ notification: { subtitle: 'x' } }, 'notification has an unknown field "subtitle"'],
    [{ completeURL: 'https://x.example' }, 'the config has an unknown field "completeURL"'],
  ])('refuses %j', (extra, message) => {
    const e = failure(() =>
      configToNativeJson({ ...base, ...(extra as object) } as UploaderConfig),
    );
    expect(e.code).toBe('invalid_config');
    expect(e.message).toContain(message);
  });

  it.each([
    ['requestTimeoutMs', 100],
    ['requestTimeoutMs', 30_000],
    ['requestTimeoutMs', 3_600_000],
    ['stallTimeoutMs', 100],
    ['stallTimeoutMs', 10_000],
    ['stallTimeoutMs', 3_600_000],
  ])('accepts retry.%s = %d and sends it to the engine as is', (name, ms) => {
    const json = JSON.parse(configToNativeJson({ ...base, retry: { [name]: ms } }));
    expect(json.retry).toEqual({ [name]: ms });
  });

  it.each([
    ['requestTimeoutMs', 99],
    ['requestTimeoutMs', 3_600_001],
    ['requestTimeoutMs', 0],
    ['requestTimeoutMs', 1500.5],
    ['requestTimeoutMs', '30000'],
    ['stallTimeoutMs', 99],
    ['stallTimeoutMs', 3_600_001],
    ['stallTimeoutMs', -1],
    ['stallTimeoutMs', Number.NaN],
  ])('refuses retry.%s = %p, naming the field and the bounds', (name, ms) => {
    const e = failure(() =>
      configToNativeJson({ ...base, retry: { [name]: ms } } as unknown as UploaderConfig),
    );
    expect(e.code).toBe('invalid_config');
    expect(e.message).toContain(`retry.${name} must be an integer between 100 and 3600000`);
  });

  it('accepts every documented notification placeholder', () => {
    const all =
      '{percentage} {uploadedSize} {totalSize} {completedFiles} {totalFiles} {completedTransfers} {totalTransfers}';
    expect(() =>
      configToNativeJson({ ...base, notification: { title: all, text: all } }),
    ).not.toThrow();
  });

  it('refuses a config that is not an object', () => {
    const e = failure(() => configToNativeJson(null as unknown as UploaderConfig));
    expect(e.message).toBe('the config must be an object, got null');
  });
});

describe('toFilePath', () => {
  it.each([
    ['/data/user/0/app/files/video.mp4', '/data/user/0/app/files/video.mp4'],
    ['file:///data/user/0/app/files/video.mp4', '/data/user/0/app/files/video.mp4'],
    ['file://localhost/tmp/a.bin', '/tmp/a.bin'],
    ['file:/storage/emulated/0/a.bin', '/storage/emulated/0/a.bin'],
    ['FILE:///tmp/x', '/tmp/x'],
    ['file:///var/mobile/My%20Movie%20%231.mov', '/var/mobile/My Movie #1.mov'],
    ['file:///tmp/%C3%A9t%C3%A9.jpg', '/tmp/été.jpg'],
    ['file:///tmp/a.jpg?version=2#frag', '/tmp/a.jpg'],
    ['/tmp/with:colon.bin', '/tmp/with:colon.bin'],
    ['/tmp/not%20decoded.bin', '/tmp/not%20decoded.bin'],
  ])('reads %s as %s', (input, path) => {
    expect(toFilePath(input)).toBe(path);
  });

  it.each([
    ['android', 'content://media/external/video/media/1234'],
    ['android', 'content://com.android.providers.media.documents/document/video%3A12?x=1'],
    ['android', 'CONTENT://media/external/images/5'],
    ['ios', 'bookmark://Ym9va21hcmstZGF0YQ'],
  ])('on %s passes the platform URI %s to native unchanged', (os, uri) => {
    expect(toFilePath(uri, os)).toBe(uri);
  });

  it.each([
    [
      'ios',
      'content://media/external/video/media/1234',
      'content: URIs are only supported on Android',
    ],
    ['web', 'content://media/1', 'content: URIs are only supported on Android'],
    ['android', 'bookmark://Ym9va21hcmstZGF0YQ', 'bookmark: URIs are only supported on iOS'],
    ['android', 'content:media/1', 'must look like content://authority/'],
    ['android', 'content:///no-authority', 'must look like content://authority/'],
    ['android', 'content://media/a\0b', 'must not contain NUL'],
    ['ios', 'bookmark:abc', 'must look like bookmark://authority/'],
  ])('on %s refuses %j', (os, input, message) => {
    const e = failure(() => toFilePath(input, os));
    expect(e.code).toBe('invalid_argument');
    expect(e.message).toContain(message);
  });

  it('uses the running platform by default (jest runs as iOS)', () => {
    expect(failure(() => toFilePath('content://media/1')).message).toContain(
      'only supported on Android',
    );
    expect(toFilePath('bookmark://Ym9v')).toBe('bookmark://Ym9v');
  });

  it.each([
    ['ph://ABC-123', 'ph: URIs are not supported'],
    ['https://example.com/a.mp4', 'https: URIs are not supported'],
    ['relative/path.mp4', 'the file path must be absolute, got "relative/path.mp4"'],
    ['file://server/share/a.bin', 'names a file on another host'],
    ['file:///tmp/%E0%A4%A', 'bad percent-encoding'],
    ['', 'the file must be a non-empty path or file:// URI, got a string'],
    ['/tmp/a\0b', 'must not contain NUL'],
  ])('refuses %j', (input, message) => {
    const e = failure(() => toFilePath(input));
    expect(e.code).toBe('invalid_argument');
    expect(e.message).toContain(message);
  });

  it('refuses a non-string', () => {
    expect(failure(() => toFilePath(42)).message).toContain('got a number');
  });
});

describe('userParamsToJson', () => {
  it('passes nested JSON through', () => {
    const params = { album: 'Trip', tags: ['a', 'b'], meta: { n: 1, ok: true, none: null } };
    expect(JSON.parse(userParamsToJson(params))).toEqual(params);
    expect(userParamsToJson(undefined)).toBe('{}');
  });

  it.each(['fileName', 'fileHash', 'fileSize'])('refuses the reserved key %s', key => {
    const e = failure(() => userParamsToJson({ [key]: 'x' }));
    expect(e.code).toBe('invalid_argument');
    expect(e.message).toContain(`userParams.${key} is reserved`);
  });

  class Point {
    x = 1;
  }
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;

  it.each([
    [{ a: undefined }, 'userParams.a is undefined, which is not a JSON value'],
    [{ a: () => 1 }, 'userParams.a is a function, which is not a JSON value'],
    [{ a: { b: [1, Number.NaN] } }, 'userParams.a.b[1] is NaN, which JSON cannot carry'],
    [{ a: Infinity }, 'userParams.a is Infinity, which JSON cannot carry'],
    [{ a: new Date(0) }, 'userParams.a is a Date, not a plain JSON object'],
    [{ a: new Map() }, 'userParams.a is a Map, not a plain JSON object'],
    [{ a: new Point() }, 'userParams.a is a Point, not a plain JSON object'],
    [{ a: BigInt(1) }, 'userParams.a is a bigint, which is not a JSON value'],
    [{ a: Symbol('s') }, 'userParams.a is a symbol, which is not a JSON value'],
    [cyclic, 'userParams.self refers back to itself'],
  ])('refuses %p', (params, message) => {
    const e = failure(() => userParamsToJson(params));
    expect(e.code).toBe('invalid_argument');
    expect(e.message).toContain(message);
  });

  it('accepts the same object twice when it is not a cycle', () => {
    const shared = { x: 1 };
    expect(JSON.parse(userParamsToJson({ a: shared, b: [shared] }))).toEqual({
      a: { x: 1 },
      b: [{ x: 1 }],
    });
  });

  it.each([
    [[1, 2], 'userParams must be a plain object, got an array'],
    ['{}', 'userParams must be a plain object, got a string'],
    [null, 'userParams must be a plain object, got null'],
  ])('refuses the container %j', (params, message) => {
    expect(failure(() => userParamsToJson(params)).message).toBe(message);
  });
});

describe('targets and filters', () => {
  it('maps targets to the native selector', () => {
    expect(targetToNative({ id: 7 }, 'pause')).toEqual([7, null]);
    expect(targetToNative({ transferId: 'trip' }, 'pause')).toEqual([null, 'trip']);
    expect(targetToNative({ all: true }, 'pause')).toEqual([null, null]);
    // The deprecated alias of id.
    expect(targetToNative({ uploadId: 7 }, 'pause')).toEqual([7, null]);
  });

  it.each([
    [undefined, 'cancel needs a target: { id }, { transferId } or { all: true } (every upload)'],
    [null, 'cancel needs a target'],
    [{}, 'must be { id }, { transferId } or { all: true }, got an empty object'],
    [{ id: 1, transferId: 'x' }, 'one of id, transferId or all, not id and transferId'],
    [{ transferId: 'x', all: true }, 'not transferId and all'],
    [{ id: 1, uploadId: 1 }, 'names id and its deprecated alias uploadId'],
    [{ all: false }, 'target.all must be true (every upload), got false'],
    [{ all: 'yes' }, 'target.all must be true'],
    [{ id: -1 }, "target.id must be an upload's id"],
    [{ id: '3' }, "target.id must be an upload's id"],
    [{ uploadId: 1.5 }, "target.uploadId must be an upload's id"],
    [{ transferId: '  ' }, 'target.transferId must be a non-empty string'],
    ['all', 'the target of cancel must be { id }, { transferId } or { all: true }, got a string'],
  ])('refuses the target %j', (target, message) => {
    const e = failure(() => targetToNative(target, 'cancel'));
    expect(e.code).toBe('invalid_argument');
    expect(e.message).toContain(message);
  });

  it('folds the deprecated filter.uploadId into id', () => {
    expect(checkFilter({ uploadId: 3 })).toEqual({ id: 3, states: [] });
    expect(checkFilter({ id: 3, transferId: 't' })).toEqual({ id: 3, transferId: 't', states: [] });
    expect(failure(() => checkFilter({ id: 3, uploadId: 3 })).message).toContain(
      'deprecated alias uploadId',
    );
  });

  it('normalises filter states', () => {
    expect(checkFilter(undefined).states).toEqual([]);
    expect(checkFilter({ state: 'RUNNING' }).states).toEqual(['RUNNING']);
    expect(checkFilter({ state: ['PAUSED', 'FAILED'] }).states).toEqual(['PAUSED', 'FAILED']);
  });

  it('refuses unknown states and bad ids in filters', () => {
    expect(failure(() => checkFilter({ state: 'DONE' as never })).message).toContain(
      'filter.state has the unknown state "DONE"',
    );
    expect(failure(() => checkFilter({ id: 1.5 })).message).toContain('filter.id');
    expect(failure(() => checkFilter({ uploadId: 1.5 })).message).toContain('filter.uploadId');
    expect(failure(() => checkFilter({ transferId: '' })).message).toContain('filter.transferId');
    expect(failure(() => checkFilter({ fileHash: 1 as never })).message).toContain(
      'filter.fileHash must be a string',
    );
  });
});
