import { act, renderHook, waitFor } from '@testing-library/react-native';
import { listenerCounts } from '../src/api';
import { SUMMARY_REFRESH_MS, useSummary, useUpload, useUploads, type UploadFilter } from '../src';
import { fake, nativeRejection } from './helpers/fakeNative';

jest.mock('../src/NativeS3BgUploader', () => require('./helpers/fakeNative').mockModule);

beforeEach(() => fake.reset());

/** Runs engine activity inside act, so React applies the state updates it causes. */
async function engine(work: () => void): Promise<void> {
  await act(async () => {
    work();
  });
}

function ids(list: readonly { id: number }[]): number[] {
  return list.map(u => u.id);
}

describe('useUploads', () => {
  it('reads the snapshot on mount, then follows new uploads, states and progress', async () => {
    fake.seed('/tmp/1', 'a');
    fake.seed('/tmp/2', 'b');
    const { result, unmount } = await renderHook(() => useUploads());
    await waitFor(() => expect(result.current.loading).toBe(false));
    expect(ids(result.current.uploads)).toEqual([1, 2]);
    expect(result.current.error).toBeNull();

    await engine(() => {
      fake.module.uploadFile('/tmp/3', 'a', null, '{}');
    });
    expect(ids(result.current.uploads)).toEqual([1, 2, 3]);

    await engine(() => {
      fake.setState(1, 'RUNNING');
      fake.progress(1, 400, 1);
    });
    expect(result.current.uploads[0]).toMatchObject({
      state: 'RUNNING',
      uploadedBytes: 400,
      partsDone: 1,
      partsTotal: 3,
    });

    await unmount();
    expect(listenerCounts()).toEqual({ progress: 0, stateChange: 0 });
    expect(fake.stateEvents.handlers.size).toBe(0);
    expect(fake.progressEvents.handlers.size).toBe(0);
  });

  it('keeps to its filter: other transfers are ignored, uploads leaving a state filter drop out', async () => {
    fake.seed('/tmp/1', 'a');
    fake.seed('/tmp/2', 'b');
    fake.seed('/tmp/3', 'a');
    const { result } = await renderHook(() =>
      useUploads({ transferId: 'a', state: ['PENDING', 'RUNNING'] }),
    );
    await waitFor(() => expect(ids(result.current.uploads)).toEqual([1, 3]));
    expect(fake.module.getUploads).toHaveBeenCalledWith(null, 'a');

    await engine(() => {
      fake.setState(2, 'RUNNING');
      fake.progress(2, 10);
    });
    expect(ids(result.current.uploads)).toEqual([1, 3]);

    await engine(() => {
      fake.setState(3, 'COMPLETED');
    });
    expect(ids(result.current.uploads)).toEqual([1]);

    await engine(() => {
      fake.setState(1, 'PAUSED');
      fake.setState(1, 'RUNNING');
    });
    expect(result.current.uploads[0]?.state).toBe('RUNNING');
  });

  it('does not read again when re-rendered with an equal inline filter, and does for a new one', async () => {
    fake.seed('/tmp/1', 'a');
    fake.seed('/tmp/2', 'b');
    const { result, rerender } = await renderHook((filter: UploadFilter) => useUploads(filter), {
      initialProps: { transferId: 'a' },
    });
    await waitFor(() => expect(ids(result.current.uploads)).toEqual([1]));
    await rerender({ transferId: 'a' });
    await rerender({ transferId: 'a' });
    expect(fake.module.getUploads).toHaveBeenCalledTimes(1);
    expect(fake.stateEvents.subscribes).toBe(1);

    await rerender({ transferId: 'b' });
    // The old filter's list is never shown for the new one.
    expect(result.current.uploads.every(u => u.transferId === 'b')).toBe(true);
    await waitFor(() => expect(ids(result.current.uploads)).toEqual([2]));
    expect(fake.module.getUploads).toHaveBeenCalledTimes(2);
    expect(listenerCounts()).toEqual({ progress: 1, stateChange: 1 });
  });

  it('replays state changes that arrive before the snapshot, keeping the newest', async () => {
    fake.seed('/tmp/1', 'a');
    let answer: (list: unknown) => void = () => {};
    const snapshot = { ...fake.get(1) };
    fake.module.getUploads.mockImplementationOnce(
      () => new Promise(resolve => (answer = resolve as (list: unknown) => void)),
    );
    const { result } = await renderHook(() => useUploads());
    expect(result.current.loading).toBe(true);

    await engine(() => {
      fake.setState(1, 'RUNNING');
      fake.module.uploadFile('/tmp/2', 'a', null, '{}');
      fake.progress(1, 999);
    });
    expect(result.current.uploads).toEqual([]);

    // The snapshot was taken before those events: they win.
    await engine(() => answer([snapshot]));
    expect(result.current.loading).toBe(false);
    expect(result.current.uploads.map(u => [u.id, u.state])).toEqual([
      [1, 'RUNNING'],
      [2, 'PENDING'],
    ]);
    // Progress from before the snapshot is not replayed.
    expect(result.current.uploads[0]?.uploadedBytes).toBe(0);
  });

  it('ignores an event older than the snapshot', async () => {
    fake.seed('/tmp/1', 'a');
    const stale = fake.setState(1, 'RUNNING');
    fake.setState(1, 'PAUSED');
    const { result } = await renderHook(() => useUploads());
    await waitFor(() => expect(result.current.uploads[0]?.state).toBe('PAUSED'));
    await engine(() => fake.stateEvents.emit(stale));
    expect(result.current.uploads[0]?.state).toBe('PAUSED');
  });

  it('reports a failed snapshot as an UploadError and recovers on refresh', async () => {
    fake.seed('/tmp/1', 'a');
    fake.failNextCall(nativeRejection('database', 'the queue database is corrupt'));
    const { result } = await renderHook(() => useUploads());
    await waitFor(() => expect(result.current.error?.code).toBe('database'));
    expect(result.current.loading).toBe(false);
    expect(result.current.uploads).toEqual([]);

    await act(async () => result.current.refresh());
    await waitFor(() => expect(result.current.error).toBeNull());
    expect(ids(result.current.uploads)).toEqual([1]);
    expect(listenerCounts()).toEqual({ progress: 1, stateChange: 1 });
  });

  it('throws on an invalid filter, like a bad prop', async () => {
    jest.spyOn(console, 'error').mockImplementation(() => {});
    await expect(renderHook(() => useUploads({ state: 'DONE' as never }))).rejects.toThrow(
      'filter.state has the unknown state "DONE"',
    );
  });
});

describe('useUpload', () => {
  it('follows one upload', async () => {
    fake.seed('/tmp/1', 'a');
    fake.seed('/tmp/2', 'a');
    const { result } = await renderHook(() => useUpload(2));
    await waitFor(() => expect(result.current.upload?.id).toBe(2));
    expect(fake.module.getUploads).toHaveBeenCalledWith(2, null);

    await engine(() => {
      fake.setState(1, 'RUNNING');
      fake.setState(2, 'RUNNING');
      fake.progress(2, 800, 2);
    });
    expect(result.current.upload).toMatchObject({ id: 2, state: 'RUNNING', uploadedBytes: 800 });

    await engine(() => {
      fake.setState(2, 'COMPLETED');
    });
    expect(result.current.upload?.state).toBe('COMPLETED');
    expect(result.current.upload?.uploadedBytes).toBe(1000);
  });

  it('is null for an unknown id, and follows nothing for null', async () => {
    const unknown = await renderHook(() => useUpload(42));
    await waitFor(() => expect(unknown.result.current.loading).toBe(false));
    expect(unknown.result.current.upload).toBeNull();
    await unknown.unmount();

    const none = await renderHook(() => useUpload(null));
    expect(none.result.current).toMatchObject({ upload: null, loading: false, error: null });
    expect(fake.module.getUploads).toHaveBeenCalledTimes(1);
    expect(listenerCounts()).toEqual({ progress: 0, stateChange: 0 });
  });
});

describe('useSummary', () => {
  it('reads on mount and again after events, coalescing bursts', async () => {
    fake.seed('/tmp/1', 'a');
    fake.seed('/tmp/2', 'a');
    const { result, unmount } = await renderHook(() => useSummary('a'));
    await waitFor(() => expect(result.current.summary).not.toBeNull());
    expect(result.current.summary).toMatchObject({
      state: 'RUNNING',
      uploads: 2,
      uploadedBytes: 0,
    });
    expect(fake.module.getSummary).toHaveBeenCalledWith('a');
    expect(fake.module.getSummary).toHaveBeenCalledTimes(1);

    await engine(() => {
      fake.setState(1, 'RUNNING');
      for (let i = 1; i <= 10; i++) {
        fake.progress(1, i * 50);
      }
    });
    await waitFor(() => expect(result.current.summary?.uploadedBytes).toBe(500));
    // Eleven events, one read (plus the first).
    expect(fake.module.getSummary).toHaveBeenCalledTimes(2);

    await engine(() => {
      fake.setState(1, 'COMPLETED');
      fake.setState(2, 'COMPLETED');
    });
    await waitFor(() => expect(result.current.summary?.state).toBe('COMPLETED'));
    expect(result.current.summary).toMatchObject({ completed: 2, completedTransfers: 1 });

    await unmount();
    expect(listenerCounts()).toEqual({ progress: 0, stateChange: 0 });
  });

  it('ignores events of other transfers', async () => {
    fake.seed('/tmp/1', 'a');
    fake.seed('/tmp/2', 'b');
    const { result } = await renderHook(() => useSummary('a'));
    await waitFor(() => expect(result.current.summary).not.toBeNull());
    await engine(() => {
      fake.setState(2, 'RUNNING');
      fake.progress(2, 100);
    });
    await new Promise<void>(r => setTimeout(r, SUMMARY_REFRESH_MS * 2));
    expect(fake.module.getSummary).toHaveBeenCalledTimes(1);
  });

  it('summarises everything without a transfer', async () => {
    fake.seed('/tmp/1', 'a');
    const { result } = await renderHook(() => useSummary());
    await waitFor(() => expect(result.current.summary?.uploads).toBe(1));
    expect(fake.module.getSummary).toHaveBeenCalledWith(null);
    await engine(() => {
      fake.seed('/tmp/2', 'b');
      fake.setState(2, 'RUNNING');
    });
    await waitFor(() => expect(result.current.summary).toMatchObject({ uploads: 2, transfers: 2 }));
  });

  it('reports a failed read and keeps the last summary', async () => {
    fake.seed('/tmp/1', 'a');
    const { result } = await renderHook(() => useSummary('a'));
    await waitFor(() => expect(result.current.summary).not.toBeNull());
    fake.failNextCall(nativeRejection('shutdown', 'the uploader has been shut down'));
    await engine(() => {
      fake.setState(1, 'RUNNING');
    });
    await waitFor(() => expect(result.current.error?.code).toBe('shutdown'));
    expect(result.current.summary?.uploads).toBe(1);
  });

  it('stops reading after unmount', async () => {
    fake.seed('/tmp/1', 'a');
    const { result, unmount } = await renderHook(() => useSummary('a'));
    await waitFor(() => expect(result.current.summary).not.toBeNull());
    await engine(() => {
      fake.setState(1, 'RUNNING');
    });
    await unmount();
    await new Promise<void>(r => setTimeout(r, SUMMARY_REFRESH_MS * 2));
    expect(fake.module.getSummary).toHaveBeenCalledTimes(1);
  });
});
