/** Native records (the engine's serde JSON) to the public types. */
import type { NativeProgress, NativeSummary, NativeUpload } from './NativeS3BgUploader';
import type {
  Summary,
  SummaryState,
  Upload,
  UploadErrorCode,
  UploadProgress,
  UploadState,
} from './types';

export function toUpload(n: NativeUpload): Upload {
  return {
    id: n.id,
    transferId: n.transferId,
    path: n.path,
    fileName: n.fileName,
    fileHash: n.fileHash,
    size: n.size,
    state: n.state as UploadState,
    key: n.key ?? null,
    // The contract's (and the CLI JSON's) `uploadId`, named for what it is:
    // in this API an upload is `id`, and `uploadId` is only a deprecated alias of it.
    multipartUploadId: n.uploadId ?? null,
    partSize: n.partSize ?? null,
    partsTotal: n.partsTotal,
    partsDone: n.partsDone,
    uploadedBytes: n.uploadedBytes,
    error: n.error ? { code: n.error.code as UploadErrorCode, message: n.error.message } : null,
    createdAtMs: n.createdAtMs,
    updatedAtMs: n.updatedAtMs,
  };
}

export function toProgress(n: NativeProgress): UploadProgress {
  return {
    id: n.id,
    transferId: n.transferId,
    uploadedBytes: n.uploadedBytes,
    totalBytes: n.totalBytes,
    partsDone: n.partsDone,
    partsTotal: n.partsTotal,
  };
}

function summaryState(n: NativeSummary, active: number): SummaryState {
  if (active > 0) {
    return 'RUNNING';
  }
  if (n.failed > 0) {
    return 'FAILED';
  }
  if (n.paused > 0) {
    return 'PAUSED';
  }
  if (n.completed > 0) {
    return 'COMPLETED';
  }
  return 'IDLE';
}

export function toSummary(n: NativeSummary): Summary {
  const active = n.pending + n.initialized + n.running;
  return {
    state: summaryState(n, active),
    uploads: n.uploads,
    pending: n.pending,
    initialized: n.initialized,
    running: n.running,
    paused: n.paused,
    completed: n.completed,
    failed: n.failed,
    cancelled: n.cancelled,
    active,
    totalBytes: n.totalBytes,
    uploadedBytes: n.uploadedBytes,
    transfers: n.transfers,
    completedTransfers: n.completedTransfers,
  };
}
