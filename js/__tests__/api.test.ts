import {
  DEFAULT_TRANSFER_ID,
  ENGINE_ERROR_CODES,
  ERROR_CODES,
  UploadError,
  cancel,
  forget,
  getSummary,
  getUpload,
  getUploads,
  isUploadError,
  pause,
  resume,
  setAsideQueue,
  setConfig,
  uploadFile,
  uploadFiles,
  type UploadTarget,
} from '../src';
import { Platform } from 'react-native';
import { FAKE_QUEUE_PATH, fake, nativeRejection } from './helpers/fakeNative';

jest.mock('../src/NativeS3BgUploader', () => require('./helpers/fakeNative').mockModule);

const native = fake.module;

const config = {
  startUploadApi: 'http://10.0.2.2:8080/startUpload',
  getUploadUrlsApi: 'http://10.0.2.2:8080/getUploadUrls',
  completeApi: 'http://10.0.2.2:8080/complete',
};

beforeEach(() => fake.reset());

async function rejection(p: Promise<unknown>): Promise<UploadError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(UploadError);
    return e as UploadError;
  }
  throw new Error('expected the promise to reject');
}

describe('setConfig', () => {
  it('sends the engine config JSON', async () => {
    await setConfig({ ...config, headers: { Authorization: 'Bearer x' }, maxParallelParts: 8 });
    expect(native.setConfig).toHaveBeenCalledTimes(1);
    expect(JSON.parse(native.setConfig.mock.calls[0]![0])).toEqual({
      startUploadUrl: config.startUploadApi,
      uploadUrlsUrl: config.getUploadUrlsApi,
      completeUrl: config.completeApi,
      headers: [['Authorization', 'Bearer x']],
      maxPartsInFlight: 8,
    });
  });

  it('rejects invalid config before reaching native', async () => {
    const e = await rejection(setConfig({ ...config, completeApi: 'not a url' }));
    expect(e.code).toBe('invalid_config');
    expect(native.setConfig).not.toHaveBeenCalled();
  });

  it("passes the engine's own refusal through with its code", async () => {
    fake.failNextCall(
      nativeRejection('invalid_config', 'maxPartsInFlight must be between 1 and 32'),
    );
    const e = await rejection(setConfig(config));
    expect(e.code).toBe('invalid_config');
    expect(e.message).toBe('maxPartsInFlight must be between 1 and 32');
  });
});

describe('uploadFile', () => {
  it('sends the path, the default transfer and empty params', async () => {
    const upload = await uploadFile('file:///data/files/My%20Video.mp4');
    expect(native.uploadFile).toHaveBeenCalledWith(
      '/data/files/My Video.mp4',
      DEFAULT_TRANSFER_ID,
      null,
      '{}',
    );
    expect(upload).toMatchObject({
      id: 1,
      transferId: 'default',
      path: '/data/files/My Video.mp4',
      fileName: 'My Video.mp4',
      state: 'PENDING',
      key: null,
      multipartUploadId: null,
      error: null,
    });
    expect(upload.fileHash).toMatch(/^[0-9a-f]{32}$/);
  });

  it('sends the transfer, the file name and the user params', async () => {
    await uploadFile('/tmp/a.bin', {
      transferId: 'trip',
      fileName: 'holiday.bin',
      userParams: { album: 'Trip', tags: ['x'] },
    });
    expect(native.uploadFile).toHaveBeenCalledWith(
      '/tmp/a.bin',
      'trip',
      'holiday.bin',
      '{"album":"Trip","tags":["x"]}',
    );
  });

  it('hands a content:// URI to native unchanged on Android, for the platform to open', async () => {
    jest.replaceProperty(Platform, 'OS', 'android');
    const uri = 'content://com.android.providers.media.documents/document/video%3A42';
    await uploadFile(uri, { transferId: 'picked', fileName: 'clip.mp4' });
    expect(native.uploadFile).toHaveBeenCalledWith(uri, 'picked', 'clip.mp4', '{}');
  });

  it('refuses a content:// URI on iOS before anything reaches native', async () => {
    jest.replaceProperty(Platform, 'OS', 'ios');
    await expect(uploadFile('content://media/external/video/media/7')).rejects.toMatchObject({
      code: 'invalid_argument',
    });
    expect(native.uploadFile).not.toHaveBeenCalled();
  });

  it('resolves with the existing upload for the same content in the same transfer', async () => {
    const a = await uploadFile('/tmp/a.bin', { transferId: 't' });
    const again = await uploadFile('/tmp/a.bin', { transferId: 't' });
    const other = await uploadFile('/tmp/a.bin', { transferId: 'u' });
    expect(again.id).toBe(a.id);
    expect(other.id).not.toBe(a.id);
  });

  it.each([
    [['ph://ABC-123/L0/001'], 'ph: URIs are not supported'],
    [['/tmp/a', { userParams: { fileSize: 1 } }], 'userParams.fileSize is reserved'],
    [['/tmp/a', { userParams: { when: new Date() } }], 'userParams.when is a Date'],
    [['/tmp/a', { transferId: '' }], 'transferId must be a non-empty string'],
    [['/tmp/a', { fileName: '' }], 'fileName must be a non-empty string'],
    [['/tmp/a', null], 'the options of uploadFile must be an object'],
  ])('refuses %j before reaching native', async (args, message) => {
    const [path, options] = args as [string, never];
    const e = await rejection(uploadFile(path, options));
    expect(e.code).toBe('invalid_argument');
    expect(e.message).toContain(message);
    expect(native.uploadFile).not.toHaveBeenCalled();
  });

  it('maps a native file_not_found to an UploadError with that code', async () => {
    const e = await rejection(uploadFile('/tmp/missing.bin'));
    expect(e.code).toBe('file_not_found');
    expect(e.message).toBe('/tmp/missing.bin does not exist');
    expect(isUploadError(e, 'file_not_found')).toBe(true);
    expect(isUploadError(e, 'database')).toBe(false);
  });
});

describe('uploadFiles', () => {
  it('adds the files in order, one at a time, and answers once with one result each', async () => {
    let inFlight = 0;
    let most = 0;
    const real = native.uploadFile.getMockImplementation()!;
    native.uploadFile.mockImplementation(async (...args) => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      // A hash takes a while: the next file must wait for this one.
      await new Promise<void>(resolve => setTimeout(resolve, 1));
      inFlight -= 1;
      return real(...args);
    });
    const results = await uploadFiles(['/tmp/c', 'file:///tmp/a', '/tmp/b'], {
      transferId: 'trip',
    });
    expect(most).toBe(1);
    expect(native.uploadFile.mock.calls.map(c => c[0])).toEqual(['/tmp/c', '/tmp/a', '/tmp/b']);
    expect(results.map(r => [r.upload?.path, r.upload?.transferId, r.error])).toEqual([
      ['/tmp/c', 'trip', null],
      ['/tmp/a', 'trip', null],
      ['/tmp/b', 'trip', null],
    ]);
    expect(results.map(r => r.upload?.id)).toEqual([1, 2, 3]);
  });

  it('settles a refused file as its UploadError and still adds the ones after it', async () => {
    fake.failNextCall(nativeRejection('invalid_config', 'call setConfig before adding files'));
    const results = await uploadFiles(['/tmp/1', '/tmp/missing.bin', '/tmp/2', '/tmp/1']);
    expect(results.map(r => r.error?.code ?? null)).toEqual([
      'invalid_config',
      'file_not_found',
      null,
      null,
    ]);
    expect(results[0]!.error).toBeInstanceOf(UploadError);
    expect(results[0]!.upload).toBeNull();
    expect(results[1]!.error?.message).toBe('/tmp/missing.bin does not exist');
    // The first file was refused, so its second mention is its first add.
    expect(results.map(r => r.upload?.path ?? null)).toEqual([null, null, '/tmp/2', '/tmp/1']);
    expect(native.uploadFile).toHaveBeenCalledTimes(4);
  });

  it('gives the same upload for the same content twice in one transfer', async () => {
    const [a, b] = await uploadFiles(['/tmp/same', '/tmp/same']);
    expect(a!.upload!.id).toBe(b!.upload!.id);
  });

  it('takes per-file options over the batch ones (userParams replaced, not merged)', async () => {
    await uploadFiles(
      [
        '/tmp/plain',
        { path: '/tmp/named', fileName: 'Holiday.mp4' },
        { path: '/tmp/own', transferId: 'other', userParams: { album: 2 } },
      ],
      { transferId: 'trip', userParams: { album: 1, owner: 'me' } },
    );
    expect(native.uploadFile.mock.calls).toEqual([
      ['/tmp/plain', 'trip', null, '{"album":1,"owner":"me"}'],
      ['/tmp/named', 'trip', 'Holiday.mp4', '{"album":1,"owner":"me"}'],
      ['/tmp/own', 'other', null, '{"album":2}'],
    ]);
  });

  it('answers an empty batch with an empty list', async () => {
    expect(await uploadFiles([])).toEqual([]);
    expect(native.uploadFile).not.toHaveBeenCalled();
  });

  it.each([
    [[['/tmp/a', 'ph://x']], 'files[1]: ph: URIs are not supported'],
    [[['/tmp/a', { path: '/tmp/b', fileName: '' }]], 'files[1]: fileName must be a non-empty'],
    [[['/tmp/a', { path: 'relative' }]], 'files[1]: the file path must be absolute'],
    [[['/tmp/a', 7]], 'files[1]: must be a path or { path, ...options }, got number'],
    [[['/tmp/a', null]], 'files[1]: must be a path or { path, ...options }, got null'],
    [[[{ path: '/tmp/a', userParams: { fileHash: 'x' } }]], 'files[0]: userParams.fileHash'],
    [['/tmp/a'], 'uploadFiles takes an array of paths or { path, ...options }, got string'],
    [[['/tmp/a'], { transferId: ' ' }], 'transferId must be a non-empty string'],
    [[['/tmp/a'], { fileName: 'x' }], 'uploadFiles takes fileName per file'],
    [[['/tmp/a'], null], 'the options of uploadFiles must be an object'],
  ])('refuses the whole batch %j before adding anything', async (args, message) => {
    const [files, options] = args as [never, never];
    const e = await rejection(uploadFiles(files, options));
    expect(e.code).toBe('invalid_argument');
    expect(e.message).toContain(message);
    expect(native.uploadFile).not.toHaveBeenCalled();
  });
});

describe('pause, resume and cancel', () => {
  beforeEach(async () => {
    await uploadFile('/tmp/1', { transferId: 'a' });
    await uploadFile('/tmp/2', { transferId: 'a' });
    await uploadFile('/tmp/3', { transferId: 'b' });
  });

  const calls: Array<[string, (t: UploadTarget) => Promise<unknown>, jest.Mock]> = [
    ['pause', pause, native.pause],
    ['resume', resume, native.resume],
    ['cancel', cancel, native.cancel],
  ];
  const withForget: typeof calls = [
    ...calls,
    ['forget', forget as (t: UploadTarget) => Promise<unknown>, native.forget],
  ];

  it.each(calls)('%s maps each target to the native selector', async (_name, fn, mock) => {
    await fn({ all: true });
    await fn({ id: 2 });
    await fn({ transferId: 'a' });
    // The deprecated alias of { id }.
    await fn({ uploadId: 3 });
    expect(mock.mock.calls).toEqual([
      [null, null],
      [2, null],
      [null, 'a'],
      [3, null],
    ]);
  });

  it.each(withForget)('%s refuses a bad target before reaching native', async (_name, fn, mock) => {
    const e = await rejection(fn({ id: 1, transferId: 'a' } as never));
    expect(e.code).toBe('invalid_argument');
    expect(mock).not.toHaveBeenCalled();
  });

  it.each(withForget)(
    '%s without a target, or with undefined, changes nothing and says how to reach every upload',
    async (name, fn, mock) => {
      const maybeTarget: UploadTarget | undefined = undefined;
      for (const e of [
        await rejection((fn as (t?: UploadTarget) => Promise<unknown>)()),
        await rejection(fn(maybeTarget as unknown as UploadTarget)),
      ]) {
        expect(e.code).toBe('invalid_argument');
        expect(e.message).toBe(
          `${name} needs a target: { id }, { transferId } or { all: true } (every upload), got undefined`,
        );
      }
      expect(mock).not.toHaveBeenCalled();
      expect((await getUploads()).map(u => u.state)).toEqual(['PENDING', 'PENDING', 'PENDING']);
    },
  );

  it('resolves with the uploads that changed', async () => {
    const paused = await pause({ transferId: 'a' });
    expect(paused.map(u => [u.id, u.state])).toEqual([
      [1, 'PAUSED'],
      [2, 'PAUSED'],
    ]);
    expect(await pause({ transferId: 'a' })).toEqual([]);
    const resumed = await resume({ all: true });
    expect(resumed.map(u => u.id)).toEqual([1, 2]);
    const cancelled = await cancel({ all: true });
    expect(cancelled.map(u => u.state)).toEqual(['CANCELLED', 'CANCELLED', 'CANCELLED']);
  });

  it('maps not_found from native', async () => {
    fake.failNextCall(nativeRejection('not_found', 'no upload with id 99'));
    const e = await rejection(cancel({ id: 99 }));
    expect(e.code).toBe('not_found');
  });
});

describe('forget', () => {
  beforeEach(async () => {
    await uploadFile('/tmp/1', { transferId: 'a' });
    await uploadFile('/tmp/2', { transferId: 'a' });
    await uploadFile('/tmp/3', { transferId: 'b' });
    fake.setState(1, 'COMPLETED');
    fake.setState(3, 'COMPLETED');
  });

  it('maps each target to the native selector and resolves with the count', async () => {
    expect(await forget({ id: 1 })).toBe(1);
    expect(await forget({ transferId: 'a' })).toBe(0);
    expect(await forget({ all: true })).toBe(1);
    expect(native.forget.mock.calls).toEqual([
      [1, null],
      [null, 'a'],
      [null, null],
    ]);
    expect((await getUploads()).map(u => u.id)).toEqual([2]);
  });

  it('refuses a bad target before reaching native', async () => {
    const e = await rejection(forget({ id: 1, transferId: 'a' } as never));
    expect(e.code).toBe('invalid_argument');
    expect(native.forget).not.toHaveBeenCalled();
  });

  it('passes the engine refusal of an unfinished upload on as a typed error', async () => {
    const e = await rejection(forget({ id: 2 }));
    expect(e.code).toBe('invalid_argument');
    expect(isUploadError(e, 'invalid_argument')).toBe(true);
    expect((await getUploads()).map(u => u.id)).toEqual([1, 2, 3]);
  });
});

describe('queries', () => {
  beforeEach(async () => {
    await uploadFile('/tmp/1', { transferId: 'a' });
    await uploadFile('/tmp/2', { transferId: 'a' });
    await uploadFile('/tmp/3', { transferId: 'b' });
  });

  it('getUploads narrows natively by id and transfer, in JS by state and hash', async () => {
    expect((await getUploads()).map(u => u.id)).toEqual([1, 2, 3]);
    expect(native.getUploads).toHaveBeenLastCalledWith(null, null);

    expect((await getUploads({ transferId: 'a' })).map(u => u.id)).toEqual([1, 2]);
    expect(native.getUploads).toHaveBeenLastCalledWith(null, 'a');

    expect((await getUploads({ id: 3 })).map(u => u.id)).toEqual([3]);
    expect(native.getUploads).toHaveBeenLastCalledWith(3, null);
    // The deprecated alias of id.
    expect((await getUploads({ uploadId: 2 })).map(u => u.id)).toEqual([2]);
    expect(native.getUploads).toHaveBeenLastCalledWith(2, null);

    fake.setState(2, 'RUNNING');
    expect((await getUploads({ state: 'RUNNING' })).map(u => u.id)).toEqual([2]);
    expect(
      (await getUploads({ state: ['PENDING', 'RUNNING'], transferId: 'a' })).map(u => u.id),
    ).toEqual([1, 2]);
    const hash = fake.get(3).fileHash;
    expect((await getUploads({ fileHash: hash })).map(u => u.id)).toEqual([3]);
  });

  it('maps the native record, renaming the multipart upload id', async () => {
    fake.setState(1, 'RUNNING');
    fake.setState(2, 'FAILED', { code: 'backend_rejected', message: 'startUpload answered 400' });
    const [one, two] = await getUploads({ transferId: 'a' });
    expect(one).toEqual({
      id: 1,
      transferId: 'a',
      path: '/tmp/1',
      fileName: '1',
      fileHash: fake.get(1).fileHash,
      size: 1000,
      state: 'RUNNING',
      key: 'uploads/1',
      multipartUploadId: 'mpu-1',
      partSize: 400,
      partsTotal: 3,
      partsDone: 0,
      uploadedBytes: 0,
      error: null,
      createdAtMs: fake.get(1).createdAtMs,
      updatedAtMs: fake.get(1).updatedAtMs,
    });
    expect(one).not.toHaveProperty('uploadId');
    expect(two!.error).toEqual({ code: 'backend_rejected', message: 'startUpload answered 400' });
  });

  it('getUpload finds one upload or null', async () => {
    expect((await getUpload(2))?.path).toBe('/tmp/2');
    expect(await getUpload(42)).toBeNull();
    expect((await rejection(getUpload(-1))).code).toBe('invalid_argument');
  });

  it('getSummary sends the transfer and derives the overall state', async () => {
    let s = await getSummary('a');
    expect(native.getSummary).toHaveBeenLastCalledWith('a');
    expect(s).toMatchObject({
      state: 'RUNNING',
      uploads: 2,
      pending: 2,
      active: 2,
      totalBytes: 2000,
    });

    await pause({ transferId: 'a' });
    expect((await getSummary('a')).state).toBe('PAUSED');

    fake.setState(1, 'FAILED', { code: 'backend_unavailable', message: 'gave up' });
    expect((await getSummary('a')).state).toBe('FAILED');

    fake.setState(1, 'COMPLETED');
    fake.setState(2, 'COMPLETED');
    s = await getSummary('a');
    expect(s).toMatchObject({
      state: 'COMPLETED',
      completed: 2,
      completedTransfers: 1,
      transfers: 1,
    });

    s = await getSummary();
    expect(native.getSummary).toHaveBeenLastCalledWith(null);
    expect(s).toMatchObject({ uploads: 3, transfers: 2, completedTransfers: 1, state: 'RUNNING' });

    await cancel({ transferId: 'b' });
    expect((await getSummary('b')).state).toBe('IDLE');
    expect((await rejection(getSummary(''))).code).toBe('invalid_argument');
  });
});

describe('setAsideQueue', () => {
  const corrupt = () =>
    nativeRejection('database_corrupt', 'the queue database is corrupt or not a database');

  beforeEach(async () => {
    await setConfig(config);
    await uploadFile('/tmp/1', { transferId: 'a' });
    await uploadFile('/tmp/2', { transferId: 'a' });
  });

  it('after database_corrupt, resolves with where the file was kept; the new queue is empty', async () => {
    fake.failOpen(corrupt());
    expect((await rejection(getUploads())).code).toBe('database_corrupt');
    expect((await rejection(uploadFile('/tmp/3'))).code).toBe('database_corrupt');

    const kept = await setAsideQueue();
    expect(native.setAsideQueue).toHaveBeenCalledTimes(1);
    expect(native.setAsideQueue).toHaveBeenCalledWith();
    expect(kept).toBe(await native.setAsideQueue.mock.results[0]!.value);
    expect(kept.startsWith(`${FAKE_QUEUE_PATH}.corrupt-`)).toBe(true);

    // Nothing of the old queue is left, the configuration included.
    expect(await getUploads()).toEqual([]);
    expect(fake.configJson).toBeNull();
    await setConfig(config);
    const again = await uploadFile('/tmp/1', { transferId: 'a' });
    expect(again.state).toBe('PENDING');
    expect((await getUploads()).map(u => u.path)).toEqual(['/tmp/1']);
  });

  it('while the queue is healthy, rejects with invalid_argument and keeps every upload', async () => {
    const e = await rejection(setAsideQueue());
    expect(e.code).toBe('invalid_argument');
    expect(isUploadError(e, 'invalid_argument')).toBe(true);
    expect((await getUploads()).map(u => u.id)).toEqual([1, 2]);
    expect(fake.configJson).not.toBeNull();
  });

  it("passes a failed move on with the engine's code; the queue stays closed until one succeeds", async () => {
    fake.failOpen(corrupt());
    fake.failNextCall(nativeRejection('database', 'cannot move queue.db aside: read-only'));
    const e = await rejection(setAsideQueue());
    expect(e.code).toBe('database');
    expect(e.message).toBe('cannot move queue.db aside: read-only');
    expect((await rejection(getSummary())).code).toBe('database_corrupt');

    await setAsideQueue();
    expect((await getSummary()).uploads).toBe(0);
  });
});

describe('error mapping', () => {
  it('lists every engine code, and native_module_missing of the JavaScript layer', () => {
    expect(ERROR_CODES).toEqual([...ENGINE_ERROR_CODES, 'native_module_missing']);
  });

  it.each(ENGINE_ERROR_CODES)('keeps the engine code %s', async code => {
    fake.failNextCall(nativeRejection(code, `failed with ${code}`));
    const e = await rejection(getUploads());
    expect(e.code).toBe(code);
    expect(e.message).toBe(`failed with ${code}`);
    expect(e.name).toBe('UploadError');
    expect((e as { cause?: unknown }).cause).toBeInstanceOf(Error);
  });

  it('maps an unknown code, a plain Error and a non-Error to internal', async () => {
    fake.failNextCall(nativeRejection('E_WEIRD', 'something odd'));
    let e = await rejection(getSummary());
    expect(e.code).toBe('internal');
    expect(e.message).toBe('unexpected native failure: something odd');

    fake.failNextCall(new TypeError('x is not a function'));
    e = await rejection(getSummary());
    expect(e.code).toBe('internal');
    expect(e.message).toContain('x is not a function');

    fake.failNextCall('just a string');
    e = await rejection(getSummary());
    expect(e.code).toBe('internal');
    expect(e.message).toContain('just a string');
  });

  it('UploadError is a real Error subclass', () => {
    const e = new UploadError('database', 'disk full');
    expect(e).toBeInstanceOf(Error);
    expect(e).toBeInstanceOf(UploadError);
    expect(String(e)).toBe('UploadError: disk full');
    expect(e.stack).toBeDefined();
  });
});

describe('types', () => {
  it('refuses a target with both ids at compile time', () => {
    // @ts-expect-error a target names one upload or one transfer, not both
    const both: UploadTarget = { id: 1, transferId: 'a' };
    expect(both).toBeDefined();
  });

  it('refuses a missing or optional target at compile time', async () => {
    const maybe = undefined as UploadTarget | undefined;
    // @ts-expect-error every upload is { all: true }, never a missing target
    await expect(cancel()).rejects.toThrow(UploadError);
    // @ts-expect-error an optional target does not type-check either
    await expect(forget(maybe)).rejects.toThrow(UploadError);
    // @ts-expect-error all is true or absent
    const notAll: UploadTarget = { all: false };
    expect(notAll).toBeDefined();
  });
});
