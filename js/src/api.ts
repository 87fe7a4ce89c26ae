/**
 * The imperative API. Every call validates its input in JavaScript, then
 * makes one call to the native module; every failure is an `UploadError`.
 */
import NativeS3BgUploader from './NativeS3BgUploader';
import type { NativeProgress, NativeUpload, Spec } from './NativeS3BgUploader';
import { UploadError, toUploadError } from './errors';
import { EventFanout } from './events';
import { toProgress, toSummary, toUpload } from './mapping';
import type {
  Subscription,
  Summary,
  Upload,
  UploaderConfig,
  UploadFileOptions,
  UploadFilesItem,
  UploadFilesResult,
  UploadFilter,
  UploadProgress,
  UploadTarget,
} from './types';
import {
  type CheckedFilter,
  checkFilter,
  checkTransferId,
  checkUploadId,
  configToNativeJson,
  targetToNative,
  toFilePath,
  userParamsToJson,
} from './validate';

/** The transfer of files added without a `transferId`. */
export const DEFAULT_TRANSFER_ID = 'default';

/**
 * What the first call says when the app was built without the native module
 * (Expo Go, the web, Jest without a mock, an app not rebuilt after install).
 */
export const NATIVE_MODULE_MISSING_MESSAGE =
  "react-native-s3-bg-uploader: the native module 'S3BgUploader' is not in this app build. " +
  'Rebuild the app after installing the package, with the New Architecture on ' +
  '(Expo: a development build with npx expo run:android / run:ios or EAS Build; Expo Go cannot load it). ' +
  'There is no web implementation. In Jest, mock the module (jest.mock).';

/**
 * The native module, looked up at import without failing: its absence is
 * reported by the first call that needs it, so importing never crashes.
 */
function native(): Spec {
  if (NativeS3BgUploader === null || NativeS3BgUploader === undefined) {
    throw new UploadError('native_module_missing', NATIVE_MODULE_MISSING_MESSAGE);
  }
  return NativeS3BgUploader;
}

/** Runs a native call, turning any rejection (or a missing module) into an `UploadError`. */
async function call<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    throw toUploadError(e);
  }
}

/**
 * Sets the configuration: the backend endpoints, headers, limits, network
 * policy and notification texts. It is stored with the queue, so uploads
 * continue after a restart even before JavaScript runs again. Each call
 * replaces the whole configuration; after an `auth_required` pause, call it
 * with fresh headers, then `resume({ all: true })`.
 *
 * @throws UploadError `invalid_config` with the name of the offending field.
 */
export async function setConfig(config: UploaderConfig): Promise<void> {
  const json = configToNativeJson(config);
  await call(() => native().setConfig(json));
}

/**
 * Adds a file to the queue and resolves once it is hashed and stored; the
 * upload itself then runs in the background. Adding the same content to the
 * same transfer again resolves with the existing upload (unless that one
 * was cancelled); a FAILED one takes the new path and resumes.
 *
 * @param path an absolute file path, a `file://` URI, or a URI the platform
 *   opens: Android's `content://` (from a picker; no copy is made) or an iOS
 *   `bookmark://` URI. The engine reopens it for every part and after a
 *   restart; if the app loses the permission, the upload fails with
 *   `file_unreadable` (`file_not_found` if the file is gone). Other URIs
 *   (`ph://`, `http://`...) must be copied to a file first.
 * @throws UploadError `invalid_argument` (bad path, reserved or non-JSON
 *   user params), `file_not_found`, `file_unreadable`, `database`.
 */
export async function uploadFile(path: string, options: UploadFileOptions = {}): Promise<Upload> {
  const args = uploadArgs(path, options, 'uploadFile');
  return toUpload(await call(() => native().uploadFile(...args)));
}

type UploadArgs = [path: string, transferId: string, fileName: string | null, params: string];

/** Checks one file and its options; `shared` are the batch's options under the item's own. */
function uploadArgs(
  path: unknown,
  options: unknown,
  fnName: string,
  shared: UploadFileOptions = {},
): UploadArgs {
  if (typeof options !== 'object' || options === null) {
    throw new UploadError('invalid_argument', `the options of ${fnName} must be an object`);
  }
  const own = options as UploadFileOptions;
  const filePath = toFilePath(path);
  const transferIdOption = own.transferId ?? shared.transferId;
  const transferId =
    transferIdOption === undefined ? DEFAULT_TRANSFER_ID : checkTransferId(transferIdOption);
  let fileName: string | null = null;
  if (own.fileName !== undefined) {
    if (typeof own.fileName !== 'string' || own.fileName.length === 0) {
      throw new UploadError('invalid_argument', 'fileName must be a non-empty string');
    }
    fileName = own.fileName;
  }
  const params = userParamsToJson(own.userParams ?? shared.userParams);
  return [filePath, transferId, fileName, params];
}

/**
 * Adds several files, in the order given, one after the other (each is
 * hashed before the next starts), and resolves once with one result per
 * file, in the same order: `{ upload, error: null }` for a file added (or
 * found already in its transfer, as `uploadFile` does; the same content twice
 * gives the same upload twice), `{ upload: null, error }` for a file the
 * engine refused (`file_not_found`, `file_unreadable`, `invalid_config`...).
 * A refused file does not stop the others: every file is tried and has its
 * result. The promise itself only rejects when the batch is malformed.
 *
 * Every item is checked before anything is added: a bad path or option
 * anywhere rejects the whole batch with `invalid_argument` naming the item
 * (`files[2]: ...`), and nothing is queued.
 *
 * @param files paths (as `uploadFile` takes them), or `{ path, ...options }`
 *   objects for per-file options.
 * @param options `transferId` and `userParams` for every file that does not
 *   set its own (an item's `userParams` replaces these, it is not merged).
 * @throws UploadError `invalid_argument` for a malformed batch,
 *   `native_module_missing` when the app was built without the module.
 */
export async function uploadFiles(
  files: readonly (string | UploadFilesItem)[],
  options: Omit<UploadFileOptions, 'fileName'> = {},
): Promise<UploadFilesResult[]> {
  if (!Array.isArray(files)) {
    throw new UploadError(
      'invalid_argument',
      `uploadFiles takes an array of paths or { path, ...options }, got ${
        files === null ? 'null' : typeof files
      }`,
    );
  }
  if (typeof options !== 'object' || options === null) {
    throw new UploadError('invalid_argument', 'the options of uploadFiles must be an object');
  }
  if ((options as UploadFileOptions).fileName !== undefined) {
    throw new UploadError(
      'invalid_argument',
      'uploadFiles takes fileName per file ({ path, fileName }), not for the whole batch',
    );
  }
  // Checked in a first pass, shared options included, so a mistake adds nothing.
  const shared = uploadArgs('/', options, 'uploadFiles');
  const sharedOptions: UploadFileOptions = {
    transferId: shared[1],
    userParams: options.userParams,
  };
  const batch = files.map((item: unknown, i): UploadArgs => {
    try {
      if (typeof item === 'string') {
        return uploadArgs(item, {}, 'uploadFiles', sharedOptions);
      }
      if (typeof item !== 'object' || item === null || Array.isArray(item)) {
        throw new UploadError(
          'invalid_argument',
          `must be a path or { path, ...options }, got ${item === null ? 'null' : typeof item}`,
        );
      }
      const { path, ...own } = item as UploadFilesItem;
      return uploadArgs(path, own, 'uploadFiles', sharedOptions);
    } catch (e) {
      const err = toUploadError(e);
      throw new UploadError(err.code, `files[${i}]: ${err.message}`, { cause: err });
    }
  });
  // Without the native module every file would fail alike: say it once.
  const nativeModule = native();
  const results: UploadFilesResult[] = [];
  for (const args of batch) {
    try {
      const upload = toUpload(await call(() => nativeModule.uploadFile(...args)));
      results.push({ upload, error: null });
    } catch (e) {
      results.push({ upload: null, error: toUploadError(e) });
    }
  }
  return results;
}

async function changeState(
  name: string,
  run: (id: number | null, transferId: string | null) => Promise<NativeUpload[]>,
  target: UploadTarget,
): Promise<Upload[]> {
  const [id, transferId] = targetToNative(target, name);
  const changed = await call(() => run(id, transferId));
  return changed.map(toUpload);
}

/**
 * Pauses unfinished uploads: one (`{ id }`), one transfer (`{ transferId }`),
 * or every upload (`{ all: true }`). Parts in flight stop and are sent again
 * on resume. Resolves with the uploads that changed.
 *
 * @throws UploadError `invalid_argument` without a target (or `undefined`):
 *   every upload is only ever reached with `{ all: true }`.
 */
export function pause(target: UploadTarget): Promise<Upload[]> {
  return changeState('pause', (u, t) => native().pause(u, t), target);
}

/**
 * Resumes PAUSED and FAILED uploads (a FAILED one starts a fresh round of
 * retries): `{ id }`, `{ transferId }` or `{ all: true }`. Resolves with the
 * uploads that changed. New uploads start on their own; no call is needed.
 */
export function resume(target: UploadTarget): Promise<Upload[]> {
  return changeState('resume', (u, t) => native().resume(u, t), target);
}

/**
 * Cancels unfinished uploads: `{ id }`, `{ transferId }` or `{ all: true }`.
 * Cancelled is final; when `abortApi` is configured the backend is told so
 * it can free the storage. Resolves with the uploads that changed.
 *
 * @throws UploadError `invalid_argument` without a target (or `undefined`),
 *   so `cancel(maybeTarget)` with an unset variable cancels nothing.
 */
export function cancel(target: UploadTarget): Promise<Upload[]> {
  return changeState('cancel', (u, t) => native().cancel(u, t), target);
}

/**
 * Deletes finished uploads from the queue: one (`{ id }`), one transfer
 * (`{ transferId }`), or all (`{ all: true }`). Finished means COMPLETED,
 * or CANCELLED with the abort call done; FAILED and PAUSED uploads can still
 * be resumed, so cancel them first. Naming one upload that is not finished
 * rejects with `invalid_argument`; a transfer or all skips unfinished ones.
 * Resolves with how many were deleted. Finished uploads are also deleted on
 * their own after `finishedRetentionMs` (default 7 days).
 *
 * @throws UploadError `invalid_argument` without a target (or `undefined`).
 */
export async function forget(target: UploadTarget): Promise<number> {
  const [id, transferId] = targetToNative(target, 'forget');
  return call(() => native().forget(id, transferId));
}

/** Snapshots of the uploads that match the filter (all without one), in queue order. */
export async function getUploads(filter?: UploadFilter): Promise<Upload[]> {
  const f = checkFilter(filter);
  const list = await call(() => native().getUploads(f.id ?? null, f.transferId ?? null));
  return list.map(toUpload).filter(u => matchesFilter(u, f));
}

/** The upload with this id (`Upload.id`), or null when there is none. */
export async function getUpload(id: number): Promise<Upload | null> {
  const checked = checkUploadId(id);
  const list = await call(() => native().getUploads(checked, null));
  const found = list.find(u => u.id === checked);
  return found ? toUpload(found) : null;
}

/** Aggregate of one transfer, or of every upload without an id. */
export async function getSummary(transferId?: string): Promise<Summary> {
  const t = transferId === undefined ? null : checkTransferId(transferId);
  const summary = await call(() => native().getSummary(t));
  return toSummary(summary);
}

/**
 * Starts over with an empty queue when the queue file is damaged. Call it
 * after a call rejected with `database_corrupt`: while the queue cannot be
 * opened, every call rejects with that code until the file is set aside.
 *
 * The file is moved aside, not deleted (kept next to the queue as
 * `queue.db.corrupt-<unix ms>` for inspection), and a fresh, empty queue is
 * opened. What the old queue held is lost to the uploader: unfinished
 * uploads must be added again with `uploadFile` (objects already uploaded
 * are not affected), and the configuration was stored with the queue, so
 * call `setConfig` again before adding files. Mounted hooks show the empty
 * queue after their `refresh()`.
 *
 * @returns the path where the damaged file was kept.
 * @throws UploadError `invalid_argument` when the queue opened normally
 *   (nothing is set aside), or the engine's code when the file cannot be
 *   moved (`database`).
 */
export async function setAsideQueue(): Promise<string> {
  return call(() => native().setAsideQueue());
}

/** Whether an upload matches a (checked) filter. */
export function matchesFilter(upload: Upload, filter: CheckedFilter): boolean {
  return (
    (filter.id === undefined || upload.id === filter.id) &&
    (filter.transferId === undefined || upload.transferId === filter.transferId) &&
    (filter.fileHash === undefined || upload.fileHash === filter.fileHash) &&
    (filter.states.length === 0 || filter.states.includes(upload.state))
  );
}

const progressEvents = new EventFanout<NativeProgress, UploadProgress>(
  'onProgress',
  () => native().onProgress,
  toProgress,
);

const stateEvents = new EventFanout<NativeUpload, Upload>(
  'onStateChange',
  () => native().onStateChange,
  toUpload,
  {
    // The native snapshot went out before any listener existed: the first
    // listeners get the current state of every upload instead.
    fetch: async () => (await call(() => native().getUploads(null, null))).map(toUpload),
    key: u => u.id,
    time: u => u.updatedAtMs,
  },
);

/**
 * Calls `listener` with the progress of every upload (at most four times a
 * second per upload). For totals, use `getSummary` or `useSummary`.
 */
export function onProgress(listener: (progress: UploadProgress) => void): Subscription {
  return progressEvents.add(listener);
}

/**
 * Calls `listener` with the new snapshot of an upload after each state
 * change. A listener that starts the subscription (none was listening) also
 * gets the current state of every upload once, soon after: events from
 * before any listener existed are not kept.
 */
export function onStateChange(listener: (upload: Upload) => void): Subscription {
  return stateEvents.add(listener);
}

/** State changes without the replay (the hooks read their own snapshot). */
export function onStateChangeLive(listener: (upload: Upload) => void): Subscription {
  return stateEvents.add(listener, false);
}

/** Listener counts, for tests. */
export function listenerCounts(): { progress: number; stateChange: number } {
  return { progress: progressEvents.size, stateChange: stateEvents.size };
}
