/**
 * The package imported where its native module is absent (Expo Go, the web,
 * a Jest run without the mock): the TurboModule lookup answers null.
 * Importing must not throw; every call fails with `native_module_missing`.
 */
type Testing = typeof import('@testing-library/react-native');
type Api = typeof import('../src');
type Internals = typeof import('../src/api');

const config = {
  startUploadApi: 'https://api.example.com/startUpload',
  getUploadUrlsApi: 'https://api.example.com/getUploadUrls',
  completeApi: 'https://api.example.com/complete',
};

let api: Api;
let internals: Internals;
let lookup: jest.Mock;
// From the same isolated module graph as the package, so both use one React.
let testing: Testing;

// At the top level, not in beforeAll: the testing library registers its
// hooks when it is first required.
let imported: unknown = null;
jest.isolateModules(() => {
  // The registry of this isolated module graph, with no module registered.
  const { TurboModuleRegistry } = require('react-native');
  lookup = jest.fn(() => null);
  TurboModuleRegistry.get = lookup;
  TurboModuleRegistry.getEnforcing = () => {
    throw new Error("TurboModuleRegistry.getEnforcing(...): 'S3BgUploader' could not be found");
  };
  try {
    api = require('../src');
    internals = require('../src/api');
  } catch (e) {
    imported = e;
  }
  testing = require('@testing-library/react-native');
});

function expectMissing(e: unknown): void {
  expect(e).toBeInstanceOf(api.UploadError);
  expect(api.isUploadError(e, 'native_module_missing')).toBe(true);
  const message = (e as Error).message;
  expect(message).toContain("the native module 'S3BgUploader' is not in this app build");
  expect(message).toContain('Expo Go cannot load it');
  expect(message).toContain('jest.mock');
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected the promise to reject');
}

describe('without the native module', () => {
  it('imports, having looked the module up under its name', () => {
    expect(imported).toBeNull();
    expect(lookup).toHaveBeenCalledWith('S3BgUploader');
    expect(typeof api.uploadFile).toBe('function');
  });

  it.each<[string, () => Promise<unknown>]>([
    ['setConfig', () => api.setConfig(config)],
    ['uploadFile', () => api.uploadFile('/tmp/a.bin')],
    ['uploadFiles', () => api.uploadFiles(['/tmp/a.bin', '/tmp/b.bin'])],
    ['pause', () => api.pause({ all: true })],
    ['resume', () => api.resume({ id: 1 })],
    ['cancel', () => api.cancel({ transferId: 't' })],
    ['forget', () => api.forget({ all: true })],
    ['getUploads', () => api.getUploads()],
    ['getUpload', () => api.getUpload(1)],
    ['getSummary', () => api.getSummary()],
    ['setAsideQueue', () => api.setAsideQueue()],
  ])('%s rejects with native_module_missing', async (_name, run) => {
    expectMissing(await rejection(run()));
  });

  it('still reports a bad argument as such first', async () => {
    const e = await rejection(api.setConfig({ ...config, completeApi: 'nope' }));
    expect(api.isUploadError(e, 'invalid_config')).toBe(true);
  });

  it.each([
    ['onProgress', () => api.onProgress(() => undefined)],
    ['onStateChange', () => api.onStateChange(() => undefined)],
  ])('%s throws native_module_missing and keeps no listener', (_name, subscribe) => {
    let thrown: unknown;
    try {
      subscribe();
    } catch (e) {
      thrown = e;
    }
    expectMissing(thrown);
    expect(internals.listenerCounts()).toEqual({ progress: 0, stateChange: 0 });
  });

  it('gives the hooks the error instead of throwing from their effects', async () => {
    const { renderHook, waitFor } = testing;
    const uploads = await renderHook(() => api.useUploads());
    await waitFor(() => expect(uploads.result.current.loading).toBe(false));
    expectMissing(uploads.result.current.error);
    expect(uploads.result.current.uploads).toEqual([]);

    const one = await renderHook(() => api.useUpload(3));
    await waitFor(() => expect(one.result.current.loading).toBe(false));
    expectMissing(one.result.current.error);

    const summary = await renderHook(() => api.useSummary());
    await waitFor(() => expect(summary.result.current.loading).toBe(false));
    expectMissing(summary.result.current.error);
    expect(summary.result.current.summary).toBeNull();
    expect(internals.listenerCounts()).toEqual({ progress: 0, stateChange: 0 });
  });
});

describe('in a Jest run with the React Native preset and nothing mocked', () => {
  it('imports, and the first call says the module is missing', async () => {
    let plain: Api | null = null;
    jest.isolateModules(() => {
      plain = require('../src');
    });
    const { getUploads, isUploadError } = plain as unknown as Api;
    const e = await rejection(getUploads());
    expect(isUploadError(e, 'native_module_missing')).toBe(true);
  });
});
