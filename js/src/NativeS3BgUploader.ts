/**
 * TurboModule spec: the contract between the JavaScript API and the native
 * modules (Kotlin on Android, Swift behind an ObjC++ adapter on iOS).
 *
 * Codegen turns this file into `com.s3bguploader.NativeS3BgUploaderSpec`
 * (Java) and `S3BgUploaderSpec.h` / `S3BgUploaderSpec-generated.mm`
 * (ObjC++). Apps never import it: `index.ts` validates input and gives
 * friendly types on top.
 *
 * Shapes, chosen so that the native side stays a thin adapter over the
 * Rust engine (no per-field conversion code to keep in sync in two
 * languages):
 * - Inputs that the engine parses anyway travel as JSON strings, already
 *   validated by JavaScript. `userParamsJson` is a JSON object. `configJson`
 *   is the engine's `Config` as serde reads it (rust-core `config.rs`,
 *   camelCase); optional fields are left out when the app did not set them,
 *   so the engine's defaults apply:
 *     { "startUploadUrl": str, "uploadUrlsUrl": str, "completeUrl": str,
 *       "abortUrl"?: str, "headers"?: [[name, value], ...],
 *       "maxPartsInFlight"?: int,
 *       "retry"?: { "maxAttempts"?, "baseDelayMs"?, "maxDelayMs"?, "maxUrlRefreshes"?,
 *                   "requestTimeoutMs"?, "stallTimeoutMs"? },
 *       "network"?: "any" | "unmetered",
 *       "notification"?: { "title"?: str, "text"?: str },
 *       "extraRootCertificatesPem"?: [str, ...],
 *       "finishedRetentionMs"?: int }
 *   `network` and `notification` are for the platform wrappers (job
 *   constraints, notification texts); the templates' placeholders are
 *   {percentage} {uploadedSize} {totalSize} {completedFiles} {totalFiles}
 *   {completedTransfers} {totalTransfers}.
 *   `extraRootCertificatesPem` holds PEM root certificates trusted on top of
 *   the device's store (private CAs), for backend calls and part uploads.
 *   The engine parses this JSON itself (`setConfigJson`) and accepts exactly
 *   what `validate.ts` accepts (shared cases: `__tests__/fixtures/config-cases.json`).
 * - Outputs (promise results and events) are plain objects made by the
 *   engine's JSON calls (`uploadFileJson`, `pauseJson`..., `summaryJson`,
 *   `subscribeJson` with the emitter's name), with exactly the fields below,
 *   so a generic JSON -> map conversion produces them. Numbers are JSON
 *   integers: exact in JavaScript up to 2^53 (sizes, ids, times).
 * - A target is `uploadId` or `transferId`; both null means every upload.
 * - Failures reject the promise with the engine's stable error code as the
 *   rejection code (`invalid_config`, `file_not_found`, ...) and its message.
 */
import type { CodegenTypes, TurboModule } from 'react-native';
import { TurboModuleRegistry } from 'react-native';

/** The engine's public error. */
export type NativeUploadError = {
  code: string;
  message: string;
};

/** The engine's `UploadInfo` snapshot of one upload. */
export type NativeUpload = {
  /** The engine's id of the upload (one file in one transfer). */
  id: number;
  transferId: string;
  path: string;
  fileName: string;
  fileHash: string;
  size: number;
  /** One of the engine's `UploadState` names (`PENDING`, `RUNNING`, ...). */
  state: string;
  key: string | null;
  /** The S3 multipart upload id, once startUpload answered. */
  uploadId: string | null;
  partSize: number | null;
  partsTotal: number;
  partsDone: number;
  uploadedBytes: number;
  error: NativeUploadError | null;
  createdAtMs: number;
  updatedAtMs: number;
};

/** The engine's `Summary` over a transfer, or over every upload. */
export type NativeSummary = {
  uploads: number;
  pending: number;
  initialized: number;
  running: number;
  paused: number;
  completed: number;
  failed: number;
  cancelled: number;
  totalBytes: number;
  uploadedBytes: number;
  transfers: number;
  completedTransfers: number;
};

/** The engine's `Progress` event of one upload (at most 4 per second). */
export type NativeProgress = {
  id: number;
  transferId: string;
  uploadedBytes: number;
  totalBytes: number;
  partsDone: number;
  partsTotal: number;
};

/**
 * `CodegenTypes.EventEmitter` under its plain name: codegen before React
 * Native 0.80 recognises an event emitter property only by the unqualified
 * name `EventEmitter`, and this library supports 0.76 and later.
 */
type EventEmitter<T> = CodegenTypes.EventEmitter<T>;

export interface Spec extends TurboModule {
  /** Validates and persists the configuration (JSON of the engine's `Config`). */
  setConfig(configJson: string): Promise<void>;

  /**
   * Hashes the file and queues it. `path` is an absolute file path, or a
   * URI the platform opens (`content://` on Android, `bookmark://` on iOS).
   * Resolves with the new upload, or with the existing one when the same
   * content is already in the same transfer.
   */
  uploadFile(
    path: string,
    transferId: string,
    fileName: string | null,
    userParamsJson: string,
  ): Promise<NativeUpload>;

  /** Pauses the targeted unfinished uploads; resolves with those that changed. */
  pause(uploadId: number | null, transferId: string | null): Promise<NativeUpload[]>;

  /** Resumes the targeted PAUSED or FAILED uploads; resolves with those that changed. */
  resume(uploadId: number | null, transferId: string | null): Promise<NativeUpload[]>;

  /** Cancels the targeted unfinished uploads (and calls abortApi when configured). */
  cancel(uploadId: number | null, transferId: string | null): Promise<NativeUpload[]>;

  /**
   * Deletes the targeted finished uploads (COMPLETED, or CANCELLED with the
   * abort call done); resolves with how many were deleted. Naming one
   * upload that is not finished rejects with `invalid_argument`.
   */
  forget(uploadId: number | null, transferId: string | null): Promise<number>;

  /** Snapshots of the targeted uploads, in queue order (ascending id). */
  getUploads(uploadId: number | null, transferId: string | null): Promise<NativeUpload[]>;

  /** Aggregate of one transfer, or of every upload when null. */
  getSummary(transferId: string | null): Promise<NativeSummary>;

  /**
   * Only while the queue could not be opened (every other call then rejects
   * with that failure's code, e.g. `database_corrupt`): moves the queue file
   * aside with the engine's `setAsideDatabase` (kept as
   * `queue.db.corrupt-<unix ms>`), opens a fresh empty queue and resolves
   * with the path of the kept file. While the queue is open and healthy it
   * rejects with `invalid_argument` and changes nothing.
   */
  setAsideQueue(): Promise<string>;

  /** Progress of one upload (bytes and parts). */
  readonly onProgress: EventEmitter<NativeProgress>;

  /** A state change of one upload, sent after the engine committed it. */
  readonly onStateChange: EventEmitter<NativeUpload>;
}

// `get`, not `getEnforcing`: where the module is absent (Expo Go, the web,
// Jest) importing the package must not throw; api.ts reports it per call.
export default TurboModuleRegistry.get<Spec>('S3BgUploader');
