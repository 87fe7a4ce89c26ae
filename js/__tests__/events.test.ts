import { listenerCounts } from '../src/api';
import {
  UploadError,
  isUploadError,
  onProgress,
  onStateChange,
  type Upload,
  type UploadProgress,
} from '../src';
import { fake } from './helpers/fakeNative';

jest.mock('../src/NativeS3BgUploader', () => require('./helpers/fakeNative').mockModule);

beforeEach(() => fake.reset());

function addUpload(path = '/tmp/a.bin', transferId = 't'): number {
  return fake.seed(path, transferId).id;
}

describe('event fan-out', () => {
  it('delivers each event to every listener through one native subscription', () => {
    const id = addUpload();
    const a = jest.fn();
    const b = jest.fn();
    const subA = onProgress(a);
    const subB = onProgress(b);
    expect(fake.progressEvents.subscribes).toBe(1);

    const sent = fake.progress(id, 400, 1);
    const expected: UploadProgress = {
      id,
      transferId: 't',
      uploadedBytes: 400,
      totalBytes: 1000,
      partsDone: 1,
      partsTotal: 0,
    };
    expect(sent).toEqual(expected);
    expect(a).toHaveBeenCalledWith(expected);
    expect(b).toHaveBeenCalledWith(expected);

    subA.remove();
    subB.remove();
  });

  it('gives the native subscription back when the last listener leaves, and takes it again', () => {
    const id = addUpload();
    const a = jest.fn();
    const b = jest.fn();
    const subA = onProgress(a);
    const subB = onProgress(b);

    subA.remove();
    expect(fake.progressEvents.removes).toBe(0);
    fake.progress(id, 10);
    expect(a).toHaveBeenCalledTimes(0);
    expect(b).toHaveBeenCalledTimes(1);

    subB.remove();
    expect(fake.progressEvents.removes).toBe(1);
    expect(fake.progressEvents.handlers.size).toBe(0);
    expect(listenerCounts().progress).toBe(0);
    fake.progress(id, 20);
    expect(b).toHaveBeenCalledTimes(1);

    const c = jest.fn();
    const subC = onProgress(c);
    expect(fake.progressEvents.subscribes).toBe(2);
    fake.progress(id, 30);
    expect(c).toHaveBeenCalledTimes(1);
    subC.remove();
  });

  it('makes remove() idempotent and keeps the same function added twice as two subscriptions', () => {
    const id = addUpload();
    const fn = jest.fn();
    const first = onProgress(fn);
    const second = onProgress(fn);
    fake.progress(id, 1);
    expect(fn).toHaveBeenCalledTimes(2);

    first.remove();
    first.remove();
    fake.progress(id, 2);
    expect(fn).toHaveBeenCalledTimes(3);
    expect(listenerCounts().progress).toBe(1);

    second.remove();
    expect(fake.progressEvents.removes).toBe(1);
  });

  it('keeps delivering when a listener throws', () => {
    const id = addUpload();
    const error = jest.spyOn(console, 'error').mockImplementation(() => {});
    const bad = jest.fn(() => {
      throw new Error('listener bug');
    });
    const good = jest.fn();
    const s1 = onProgress(bad);
    const s2 = onProgress(good);
    fake.progress(id, 5);
    expect(good).toHaveBeenCalledTimes(1);
    expect(error).toHaveBeenCalledWith(
      'react-native-s3-bg-uploader: an onProgress listener threw',
      expect.any(Error),
    );
    s1.remove();
    s2.remove();
  });

  it('lets a listener remove itself and others while an event is delivered', () => {
    const id = addUpload();
    const calls: string[] = [];
    const subs: Array<{ remove(): void }> = [];
    subs.push(
      onProgress(() => {
        calls.push('first');
        subs[0]!.remove();
        subs[1]!.remove();
      }),
    );
    subs.push(onProgress(() => calls.push('second')));
    subs.push(onProgress(() => calls.push('third')));
    fake.progress(id, 1);
    expect(calls).toEqual(['first', 'third']);
    fake.progress(id, 2);
    expect(calls).toEqual(['first', 'third', 'third']);
    subs[2]!.remove();
    expect(fake.progressEvents.handlers.size).toBe(0);
  });

  it('maps state changes to public uploads', () => {
    const seen: Upload[] = [];
    const sub = onStateChange(u => seen.push(u));
    const id = addUpload('/tmp/b.bin');
    fake.setState(id, 'RUNNING');
    fake.setState(id, 'PAUSED', { code: 'auth_required', message: 'the backend answered 401' });
    expect(seen.map(u => u.state)).toEqual(['RUNNING', 'PAUSED']);
    expect(seen[0]).toMatchObject({ id, multipartUploadId: `mpu-${id}`, key: 'uploads/b.bin' });
    expect(seen[1]!.error).toEqual({ code: 'auth_required', message: 'the backend answered 401' });
    sub.remove();
    expect(listenerCounts().stateChange).toBe(0);
    expect(fake.stateEvents.handlers.size).toBe(0);
  });

  it.each([
    ['onStateChange', onStateChange as (l: never) => unknown, undefined, 'undefined'],
    ['onStateChange', onStateChange as (l: never) => unknown, null, 'null'],
    ['onProgress', onProgress as (l: never) => unknown, 'listener', 'string'],
  ])(
    'refuses a listener that is not a function: %s(%p) throws UploadError invalid_argument',
    (name, subscribe, listener, kind) => {
      let thrown: unknown;
      try {
        subscribe(listener as never);
      } catch (e) {
        thrown = e;
      }
      expect(thrown).toBeInstanceOf(UploadError);
      expect(isUploadError(thrown, 'invalid_argument')).toBe(true);
      expect((thrown as Error).message).toBe(`${name} needs a listener function, got ${kind}`);
      expect(fake.stateEvents.subscribes + fake.progressEvents.subscribes).toBe(0);
      expect(listenerCounts()).toEqual({ progress: 0, stateChange: 0 });
    },
  );

  it('replays the current state of every upload to the listeners that start the subscription', async () => {
    // Added while nothing listened: the module's snapshot events for them
    // were sent before any JavaScript listener existed.
    const a = addUpload('/tmp/r1.bin');
    const b = addUpload('/tmp/r2.bin');
    fake.setState(b, 'PAUSED', { code: 'user_stopped', message: 'stopped' });
    const first: Upload[] = [];
    const sub = onStateChange(u => first.push(u));
    await flush();
    expect(first.map(u => [u.id, u.state])).toEqual([
      [a, 'PENDING'],
      [b, 'PAUSED'],
    ]);
    // A listener that joins the running subscription gets live events only.
    const later: Upload[] = [];
    const sub2 = onStateChange(u => later.push(u));
    await flush();
    expect(later).toEqual([]);
    fake.setState(a, 'RUNNING');
    expect(later.map(u => u.state)).toEqual(['RUNNING']);
    expect(first.map(u => u.state)).toEqual(['PENDING', 'PAUSED', 'RUNNING']);
    sub.remove();
    sub2.remove();
  });

  it('leaves out of the replay what a live event already superseded', async () => {
    const id = addUpload('/tmp/r3.bin');
    let release: () => void = () => undefined;
    const held = new Promise<void>(resolve => {
      release = resolve;
    });
    // The snapshot is read now (PENDING) and answered after a newer event.
    const snapshot = [{ ...(await fake.module.getUploads(id, null))[0]! }];
    fake.module.getUploads.mockImplementationOnce(async () => {
      await held;
      return snapshot;
    });
    const seen: Upload[] = [];
    const sub = onStateChange(u => seen.push(u));
    fake.setState(id, 'RUNNING');
    release();
    await flush();
    expect(seen.map(u => u.state)).toEqual(['RUNNING']);
    sub.remove();
  });

  it('replays nothing when the snapshot cannot be read, and delivers live events', async () => {
    const id = addUpload('/tmp/r4.bin');
    fake.module.getUploads.mockImplementationOnce(async () => {
      throw new Error('the queue is not open');
    });
    const seen: Upload[] = [];
    const sub = onStateChange(u => seen.push(u));
    await flush();
    expect(seen).toEqual([]);
    fake.setState(id, 'RUNNING');
    expect(seen.map(u => u.state)).toEqual(['RUNNING']);
    sub.remove();
  });

  it('replays nothing to listeners that left before the snapshot came', async () => {
    addUpload('/tmp/r5.bin');
    const seen: Upload[] = [];
    const sub = onStateChange(u => seen.push(u));
    sub.remove();
    await flush();
    expect(seen).toEqual([]);
  });
});

/** Lets pending promise callbacks run. */
async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await new Promise<void>(resolve => setImmediate(resolve));
  }
}
