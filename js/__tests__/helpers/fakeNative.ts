/**
 * A fake of the native module: an in-memory queue that behaves like the
 * engine as far as the JavaScript layer can tell (states, dedup by content
 * per transfer, summaries, events), with every method a jest mock so tests
 * can check exactly what crossed to native.
 *
 * Test files route the spec module here with:
 *   jest.mock('../src/NativeS3BgUploader', () => require('./helpers/fakeNative').mockModule);
 */
import type {
  NativeProgress,
  NativeSummary,
  NativeUpload,
  NativeUploadError,
} from '../../src/NativeS3BgUploader';

type Handler<T> = (value: T) => void;

/** A native event emitter property: counts subscriptions so tests can see the fan-out. */
export class FakeEmitter<T> {
  readonly handlers = new Set<Handler<T>>();
  subscribes = 0;
  removes = 0;

  readonly property = (handler: Handler<T>) => {
    this.subscribes += 1;
    const entry: Handler<T> = value => handler(value);
    this.handlers.add(entry);
    return {
      remove: () => {
        this.removes += 1;
        this.handlers.delete(entry);
      },
    };
  };

  emit(value: T): void {
    for (const h of [...this.handlers]) {
      h(value);
    }
  }

  reset(): void {
    this.handlers.clear();
    this.subscribes = 0;
    this.removes = 0;
  }
}

/** What React Native makes of a native `promise.reject(code, message)`. */
export function nativeRejection(code: string, message: string): Error {
  return Object.assign(new Error(message), { code, userInfo: null });
}

const FINAL = ['COMPLETED', 'CANCELLED'];

/** Where the fake keeps its queue file (the kept copy gets a suffix). */
export const FAKE_QUEUE_PATH = '/data/user/0/app/files/s3bgu/queue.db';

function fakeHash(path: string): string {
  let h = 0;
  for (const c of path) {
    h = (h * 31 + c.charCodeAt(0)) % 4_294_967_296;
  }
  return h.toString(16).padStart(32, '0');
}

class FakeEngine {
  uploads: NativeUpload[] = [];
  configJson: string | null = null;
  private nextId = 1;
  private clock = 1_000;
  /** The next native call rejects with this instead of running. */
  private failure: unknown = null;
  /** While set, the queue could not be opened: every call but setAsideQueue rejects with it. */
  private openFailure: unknown = null;

  readonly progressEvents = new FakeEmitter<NativeProgress>();
  readonly stateEvents = new FakeEmitter<NativeUpload>();

  readonly module = {
    setConfig: jest.fn((json: string) =>
      this.run(() => {
        this.configJson = json;
      }),
    ),
    uploadFile: jest.fn(
      (path: string, transferId: string, fileName: string | null, userParamsJson: string) =>
        this.run(() => this.add(path, transferId, fileName, userParamsJson)),
    ),
    pause: jest.fn((uploadId: number | null, transferId: string | null) =>
      this.run(() =>
        this.change(
          this.select(uploadId, transferId),
          u => !FINAL.includes(u.state) && u.state !== 'PAUSED' && u.state !== 'FAILED',
          'PAUSED',
        ),
      ),
    ),
    resume: jest.fn((uploadId: number | null, transferId: string | null) =>
      this.run(() =>
        this.change(
          this.select(uploadId, transferId),
          u => u.state === 'PAUSED' || u.state === 'FAILED',
          'PENDING',
        ),
      ),
    ),
    cancel: jest.fn((uploadId: number | null, transferId: string | null) =>
      this.run(() =>
        this.change(this.select(uploadId, transferId), u => !FINAL.includes(u.state), 'CANCELLED'),
      ),
    ),
    forget: jest.fn((uploadId: number | null, transferId: string | null) =>
      this.run(() => this.forget(uploadId, transferId)),
    ),
    getUploads: jest.fn((uploadId: number | null, transferId: string | null) =>
      this.run(() => this.select(uploadId, transferId).map(u => ({ ...u }))),
    ),
    getSummary: jest.fn((transferId: string | null) => this.run(() => this.summary(transferId))),
    setAsideQueue: jest.fn(() => this.run(() => this.setAside(), false)),
    onProgress: this.progressEvents.property,
    onStateChange: this.stateEvents.property,
    getConstants: () => ({}),
  };

  reset(): void {
    this.uploads = [];
    this.configJson = null;
    this.nextId = 1;
    this.clock = 1_000;
    this.failure = null;
    this.openFailure = null;
    this.progressEvents.reset();
    this.stateEvents.reset();
    for (const fn of Object.values(this.module)) {
      if (jest.isMockFunction(fn)) {
        fn.mockClear();
      }
    }
  }

  /** Makes the next native call reject with `error`. */
  failNextCall(error: unknown): void {
    this.failure = error;
  }

  /** From now on the queue cannot be opened, as after a failed open at launch. */
  failOpen(error: unknown): void {
    this.openFailure = error;
  }

  /** Adds an upload directly, as if another screen (or a previous run) had added it. */
  seed(path: string, transferId = 'default', size = 1_000): NativeUpload {
    const stored = this.get(this.add(path, transferId, null, '{}', false).id);
    stored.size = size;
    return { ...stored };
  }

  /** Moves an upload to a state and emits the event, like the engine after a commit. */
  setState(id: number, state: string, error: NativeUploadError | null = null): NativeUpload {
    const u = this.get(id);
    u.state = state;
    u.error = error;
    if (state === 'INITIALIZED' || state === 'RUNNING') {
      u.key ??= `uploads/${u.fileName}`;
      u.uploadId ??= `mpu-${u.id}`;
      u.partSize ??= 400;
      u.partsTotal = Math.max(1, Math.ceil(u.size / 400));
    }
    if (state === 'COMPLETED') {
      u.uploadedBytes = u.size;
      u.partsDone = u.partsTotal;
    }
    u.updatedAtMs = this.tick();
    this.stateEvents.emit({ ...u });
    return { ...u };
  }

  /** Reports progress of an upload, like the engine's progress events. */
  progress(id: number, uploadedBytes: number, partsDone = 0): NativeProgress {
    const u = this.get(id);
    u.uploadedBytes = uploadedBytes;
    u.partsDone = partsDone;
    const p: NativeProgress = {
      id: u.id,
      transferId: u.transferId,
      uploadedBytes,
      totalBytes: u.size,
      partsDone,
      partsTotal: u.partsTotal,
    };
    this.progressEvents.emit(p);
    return p;
  }

  get(id: number): NativeUpload {
    const u = this.uploads.find(x => x.id === id);
    if (!u) {
      throw new Error(`fake: no upload ${id}`);
    }
    return u;
  }

  private tick(): number {
    this.clock += 1;
    return this.clock;
  }

  private run<T>(work: () => T, needsOpenQueue = true): Promise<T> {
    const failure = this.failure;
    this.failure = null;
    if (failure !== null) {
      return Promise.reject(failure);
    }
    if (needsOpenQueue && this.openFailure !== null) {
      return Promise.reject(this.openFailure);
    }
    try {
      return Promise.resolve(work());
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private add(
    path: string,
    transferId: string,
    fileName: string | null,
    userParamsJson: string,
    emit = true,
  ): NativeUpload {
    JSON.parse(userParamsJson);
    if (path.includes('missing')) {
      throw nativeRejection('file_not_found', `${path} does not exist`);
    }
    const fileHash = fakeHash(path);
    const existing = this.uploads.find(
      u => u.fileHash === fileHash && u.transferId === transferId && u.state !== 'CANCELLED',
    );
    if (existing) {
      return { ...existing };
    }
    const now = this.tick();
    const u: NativeUpload = {
      id: this.nextId++,
      transferId,
      path,
      fileName: fileName ?? path.split('/').pop() ?? 'file',
      fileHash,
      size: 1_000,
      state: 'PENDING',
      key: null,
      uploadId: null,
      partSize: null,
      partsTotal: 0,
      partsDone: 0,
      uploadedBytes: 0,
      error: null,
      createdAtMs: now,
      updatedAtMs: now,
    };
    this.uploads.push(u);
    if (emit) {
      this.stateEvents.emit({ ...u });
    }
    return { ...u };
  }

  private select(uploadId: number | null, transferId: string | null): NativeUpload[] {
    return this.uploads.filter(
      u =>
        (uploadId === null || u.id === uploadId) &&
        (transferId === null || u.transferId === transferId),
    );
  }

  private change(
    selected: NativeUpload[],
    applies: (u: NativeUpload) => boolean,
    state: string,
  ): NativeUpload[] {
    const changed: NativeUpload[] = [];
    for (const u of selected.filter(applies)) {
      u.state = state;
      u.error = null;
      u.updatedAtMs = this.tick();
      this.stateEvents.emit({ ...u });
      changed.push({ ...u });
    }
    return changed;
  }

  /** Like the native modules: only a queue that could not be opened is set aside; a fresh one is empty. */
  private setAside(): string {
    if (this.openFailure === null) {
      throw nativeRejection('invalid_argument', 'the queue opened normally: nothing to set aside');
    }
    this.openFailure = null;
    this.uploads = [];
    this.configJson = null;
    this.nextId = 1;
    return `${FAKE_QUEUE_PATH}.corrupt-${this.tick()}`;
  }

  /** Like the engine: finished ones only; one named unfinished upload is an error. */
  private forget(uploadId: number | null, transferId: string | null): number {
    const selected = this.select(uploadId, transferId);
    if (uploadId !== null && selected.length === 0) {
      throw nativeRejection('not_found', `no upload with id ${uploadId}`);
    }
    const named = uploadId !== null ? selected[0] : undefined;
    if (named && !FINAL.includes(named.state)) {
      throw nativeRejection('invalid_argument', `upload ${uploadId} cannot be forgotten`);
    }
    const gone = new Set(selected.filter(u => FINAL.includes(u.state)).map(u => u.id));
    this.uploads = this.uploads.filter(u => !gone.has(u.id));
    return gone.size;
  }

  private summary(transferId: string | null): NativeSummary {
    const list = this.select(null, transferId);
    const count = (state: string) => list.filter(u => u.state === state).length;
    const live = list.filter(u => u.state !== 'CANCELLED');
    const transfers = [...new Set(list.map(u => u.transferId))];
    return {
      uploads: list.length,
      pending: count('PENDING'),
      initialized: count('INITIALIZED'),
      running: count('RUNNING'),
      paused: count('PAUSED'),
      completed: count('COMPLETED'),
      failed: count('FAILED'),
      cancelled: count('CANCELLED'),
      totalBytes: live.reduce((s, u) => s + u.size, 0),
      uploadedBytes: live.reduce((s, u) => s + u.uploadedBytes, 0),
      transfers: transfers.length,
      completedTransfers: transfers.filter(t => {
        const of = live.filter(u => u.transferId === t);
        return of.length > 0 && of.every(u => u.state === 'COMPLETED');
      }).length,
    };
  }
}

export const fake = new FakeEngine();

/** The module object jest.mock substitutes for `NativeS3BgUploader.ts`. */
export const mockModule = { __esModule: true, default: fake.module };
