/**
 * Public types. States and error codes are the engine's (rust-core
 * `model.rs` and `error.rs`), spelled exactly as the engine spells them.
 */
import type { UploadError } from './errors';

/**
 * Life cycle of one upload:
 * `PENDING -> INITIALIZED -> RUNNING -> COMPLETED`, with `PAUSED` and
 * `FAILED` reachable from any unfinished state (both resumable with
 * `resume`) and `CANCELLED` final.
 */
export const UPLOAD_STATES = [
  /** Queued; the backend's startUpload has not answered yet. */
  'PENDING',
  /** startUpload answered: the object key and the multipart upload exist. */
  'INITIALIZED',
  /** Parts are being sent (or wait for a retry). */
  'RUNNING',
  /** Paused by the app, by `auth_required` (set new headers, then resume), or by `user_stopped` (resume). */
  'PAUSED',
  /** The backend confirmed complete. Final. */
  'COMPLETED',
  /** Stopped by an error (see `error`); `resume` starts a fresh round. */
  'FAILED',
  /** Cancelled by the app. Final. */
  'CANCELLED',
] as const;

export type UploadState = (typeof UPLOAD_STATES)[number];

/** States in which nothing more happens, whatever the app calls. */
export const FINAL_STATES: readonly UploadState[] = ['COMPLETED', 'CANCELLED'];

/** States the engine is working on. */
export const ACTIVE_STATES: readonly UploadState[] = ['PENDING', 'INITIALIZED', 'RUNNING'];

/**
 * Stable error codes. Apps may branch on them; they never change meaning.
 *
 * | code | meaning |
 * |---|---|
 * | `invalid_config` | the configuration is missing or invalid (URLs, headers, limits) |
 * | `invalid_argument` | an argument is invalid (reserved user param, empty transfer id, bad path) |
 * | `not_found` | no upload matches the given id |
 * | `file_not_found` | the file does not exist (any more) |
 * | `file_changed` | the file's size or modification time changed after it was added |
 * | `file_unreadable` | the file exists but cannot be read (permission denied, I/O error) |
 * | `backend_rejected` | the backend refused a call (4xx other than 401) |
 * | `backend_invalid_response` | the backend answered 2xx with a body that breaks the contract |
 * | `backend_unavailable` | the backend could not be reached or kept failing after every retry |
 * | `storage_rejected` | storage refused a part (after URL refreshes), or answered without ETag |
 * | `storage_unavailable` | storage could not be reached or kept failing after every retry |
 * | `auth_required` | the backend answered 401: set new headers with `setConfig`, then `resume` |
 * | `user_stopped` | the person stopped the uploads from the system's UI: only `resume` goes on |
 * | `database` | the queue database failed (disk full, unwritable, in use by another uploader) |
 * | `database_corrupt` | the queue database is damaged; it can be set aside (kept for inspection) to start an empty queue |
 * | `shutdown` | the engine was shut down while the call was waiting |
 * | `internal` | a bug (in the engine, the native module, or an unexpected native answer) |
 *
 * `ERROR_CODES` adds the code of the JavaScript layer: `native_module_missing`.
 */
export const ENGINE_ERROR_CODES = [
  'invalid_config',
  'invalid_argument',
  'not_found',
  'file_not_found',
  'file_changed',
  'file_unreadable',
  'backend_rejected',
  'backend_invalid_response',
  'backend_unavailable',
  'storage_rejected',
  'storage_unavailable',
  'auth_required',
  'user_stopped',
  'database',
  'database_corrupt',
  'shutdown',
  'internal',
] as const;

/**
 * Every code an `UploadError` can carry: the engine's, and
 * `native_module_missing` (the native module is not in this build: Expo Go,
 * the web, a Jest run without a mock, an app not rebuilt after installing;
 * raised by the first call, never at import).
 */
export const ERROR_CODES = [...ENGINE_ERROR_CODES, 'native_module_missing'] as const;

export type UploadErrorCode = (typeof ERROR_CODES)[number];

/** Why an upload is FAILED or PAUSED by the engine (as stored in the queue). */
export interface UploadFailure {
  readonly code: UploadErrorCode;
  readonly message: string;
}

/** A snapshot of one upload (one file in one transfer). */
export interface Upload {
  /** The upload's id, unique on this device; it also gives the queue order. */
  readonly id: number;
  /** Groups files; `DEFAULT_TRANSFER_ID` unless the app chose one. */
  readonly transferId: string;
  /**
   * The file as the engine opens it: an absolute path (a `file://` URI
   * given to `uploadFile` is stored as its path), or the `content://`
   * (Android) or `bookmark://` (iOS) URI as given.
   */
  readonly path: string;
  readonly fileName: string;
  /** XXH3-128 of the file's content, 32 lowercase hex digits (the contract's `fileHash`). */
  readonly fileHash: string;
  /** Size of the file in bytes. */
  readonly size: number;
  readonly state: UploadState;
  /** Object key chosen by the backend, once startUpload answered. */
  readonly key: string | null;
  /**
   * The S3 multipart upload id the backend's startUpload answered (null
   * before): what the backend contract and the `s3bgu` CLI's JSON call
   * `uploadId`. In this API the upload itself is always `id`.
   */
  readonly multipartUploadId: string | null;
  /** Part size chosen by the backend, once startUpload answered. */
  readonly partSize: number | null;
  /** 0 until startUpload answered. */
  readonly partsTotal: number;
  readonly partsDone: number;
  /** Bytes of confirmed parts plus bytes of parts in flight. */
  readonly uploadedBytes: number;
  /**
   * Set when the upload is FAILED, or PAUSED because of `auth_required` or
   * `user_stopped`; also on an active upload whose file is protected while
   * the device is locked (iOS, `file_unreadable`): it waits for the unlock.
   */
  readonly error: UploadFailure | null;
  /** Milliseconds since the Unix epoch. */
  readonly createdAtMs: number;
  readonly updatedAtMs: number;
}

/** Progress of one upload. Sent at most four times a second per upload. */
export interface UploadProgress {
  /** `Upload.id` */
  readonly id: number;
  readonly transferId: string;
  readonly uploadedBytes: number;
  readonly totalBytes: number;
  readonly partsDone: number;
  readonly partsTotal: number;
}

/**
 * Overall state of a set of uploads (a transfer, or everything), derived
 * from the counts in this order:
 * - `RUNNING`: at least one upload is PENDING, INITIALIZED or RUNNING;
 * - `FAILED`: otherwise, at least one upload FAILED (resume it);
 * - `PAUSED`: otherwise, at least one upload is PAUSED;
 * - `COMPLETED`: otherwise, at least one upload completed;
 * - `IDLE`: no uploads, or every one was cancelled.
 */
export type SummaryState = 'IDLE' | 'RUNNING' | 'PAUSED' | 'FAILED' | 'COMPLETED';

/** Aggregate of a transfer, or of every upload. */
export interface Summary {
  readonly state: SummaryState;
  /** Number of uploads (files), cancelled ones included. */
  readonly uploads: number;
  readonly pending: number;
  readonly initialized: number;
  readonly running: number;
  readonly paused: number;
  readonly completed: number;
  readonly failed: number;
  readonly cancelled: number;
  /** pending + initialized + running: the uploads the engine is working on. */
  readonly active: number;
  /** Bytes of every upload that is not cancelled. */
  readonly totalBytes: number;
  readonly uploadedBytes: number;
  /** Number of transfers in this set. */
  readonly transfers: number;
  /** Transfers whose uploads are all completed (cancelled ones aside). */
  readonly completedTransfers: number;
}

/**
 * Which uploads `pause`, `resume`, `cancel` and `forget` apply to: one
 * upload (`{ id }`, its `Upload.id`), one transfer (`{ transferId }`), or
 * every upload (`{ all: true }`). There is no default: a target that is
 * missing or `undefined` is refused, so an unset variable never reaches
 * every upload.
 */
export type UploadTarget =
  | { readonly id: number; readonly transferId?: undefined; readonly all?: undefined }
  | { readonly transferId: string; readonly id?: undefined; readonly all?: undefined }
  | { readonly all: true; readonly id?: undefined; readonly transferId?: undefined }
  | {
      /** @deprecated use `{ id }`: the same `Upload.id` under its own name. */
      readonly uploadId: number;
      readonly id?: undefined;
      readonly transferId?: undefined;
      readonly all?: undefined;
    };

/** Which uploads `getUploads` and `useUploads` return. Every field narrows. */
export interface UploadFilter {
  /** One upload, by its `Upload.id`. */
  readonly id?: number;
  /** @deprecated use `id`: the same `Upload.id` under its own name. */
  readonly uploadId?: number;
  readonly transferId?: string;
  /** One state, or any of several. */
  readonly state?: UploadState | readonly UploadState[];
  readonly fileHash?: string;
}

/** A JSON value, as user params must be. */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | readonly JsonValue[]
  | { readonly [key: string]: JsonValue };

/** Options of `uploadFile`. */
export interface UploadFileOptions {
  /**
   * Groups files: pause, resume, cancel and summaries can target a transfer.
   * Any non-empty string; `DEFAULT_TRANSFER_ID` when omitted. Adding the same
   * content to the same transfer again returns the existing upload (unless
   * that one was cancelled).
   */
  readonly transferId?: string;
  /**
   * Merged flat into the startUpload body your backend receives. Must be a
   * JSON object; `fileName`, `fileHash` and `fileSize` are reserved.
   */
  readonly userParams?: { readonly [key: string]: JsonValue };
  /** The contract's `fileName`; defaults to the last segment of the path. */
  readonly fileName?: string;
}

/** One file of `uploadFiles` with options of its own. */
export interface UploadFilesItem extends UploadFileOptions {
  /** As `uploadFile` takes it: an absolute path, a `file://` URI, or a URI the platform opens. */
  readonly path: string;
}

/**
 * The result of one file of `uploadFiles`, at its index in the batch: the
 * upload, or the `UploadError` the engine refused that file with.
 */
export type UploadFilesResult =
  | { readonly upload: Upload; readonly error: null }
  | { readonly upload: null; readonly error: UploadError };

/** Retry policy for every call (backend calls and part uploads). */
export interface RetryConfig {
  /** Consecutive failures of one call before the upload FAILS (1..100, default 8). */
  readonly maxAttempts?: number;
  /** Ceiling of the first delay; delays double up to `maxDelayMs`, with full jitter (default 1000). */
  readonly initialDelayMs?: number;
  /** Largest delay (at most 3,600,000; default 60,000). */
  readonly maxDelayMs?: number;
  /** Presigned URL refreshes in a row for one part after 403s (0..100, default 4). */
  readonly maxUrlRefreshes?: number;
  /**
   * A backend call without a whole answer after this long is abandoned and
   * counts as a failed attempt (100..3,600,000 ms, default 60,000).
   */
  readonly requestTimeoutMs?: number;
  /**
   * A part upload that sends nothing and receives nothing for this long is
   * abandoned and counts as a failed attempt (100..3,600,000 ms, default
   * 60,000).
   */
  readonly stallTimeoutMs?: number;
}

/**
 * Text of the system notification (Android) and of the background task's
 * progress (iOS). Templates may use these placeholders:
 * `{percentage}` (0..100), `{uploadedSize}` and `{totalSize}` (human
 * readable, e.g. `12.5 MB`), `{completedFiles}`, `{totalFiles}`,
 * `{completedTransfers}`, `{totalTransfers}`.
 */
export interface NotificationConfig {
  readonly title?: string;
  readonly text?: string;
}

/** Where and how the engine talks to your backend. */
export interface UploaderConfig {
  /** `POST` here starts a multipart upload (absolute http(s) URL). */
  readonly startUploadApi: string;
  /** `POST` here returns presigned part URLs. */
  readonly getUploadUrlsApi: string;
  /** `POST {completeApi}/{uploadId}/{key}` completes an upload (`uploadId`: the multipart upload id). */
  readonly completeApi: string;
  /** Optional: `POST {abortApi}/{uploadId}/{key}` is sent when an upload is cancelled. */
  readonly abortApi?: string;
  /** Sent with every backend call (not with part uploads, which are presigned). */
  readonly headers?: { readonly [name: string]: string };
  /** Parts in flight at once, shared by all files (1..32, default 4). */
  readonly maxParallelParts?: number;
  readonly retry?: RetryConfig;
  /** `'unmetered'`: upload only on Wi-Fi or other unmetered networks. Default `'any'`. */
  readonly network?: 'any' | 'unmetered';
  readonly notification?: NotificationConfig;
  /**
   * Root certificates (PEM text; one entry may hold several) trusted on top
   * of the device's trust store, for backend calls and part uploads alike:
   * a private S3 endpoint or a company CA. At most 64 entries. There is no
   * option to skip certificate checks.
   */
  readonly extraRootCertificatesPem?: readonly string[];
  /**
   * Finished uploads (COMPLETED, or CANCELLED with the abort call done) are
   * deleted from the queue this long after they finished; `0` keeps them
   * until `forget`. Default 7 days; at most 10 years.
   */
  readonly finishedRetentionMs?: number;
}

/** Returned by the event functions; `remove()` ends the subscription. */
export interface Subscription {
  remove(): void;
}
