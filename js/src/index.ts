/**
 * react-native-s3-bg-uploader: background multipart uploads of big files to
 * S3-compatible storage through your backend's presigned URLs.
 *
 * ```ts
 * import { setConfig, uploadFile } from 'react-native-s3-bg-uploader';
 *
 * // At every launch, before the first upload.
 * export async function startUploads(token: string): Promise<void> {
 *   await setConfig({
 *     startUploadApi: 'https://api.example.com/uploads/start',
 *     getUploadUrlsApi: 'https://api.example.com/uploads/urls',
 *     completeApi: 'https://api.example.com/uploads/complete',
 *     headers: { Authorization: `Bearer ${token}` },
 *   });
 *   await uploadFile('file:///path/to/video.mp4', { transferId: 'trip-2024' });
 * }
 * ```
 */
export {
  DEFAULT_TRANSFER_ID,
  cancel,
  forget,
  getSummary,
  getUpload,
  getUploads,
  onProgress,
  onStateChange,
  pause,
  resume,
  setAsideQueue,
  setConfig,
  uploadFile,
  uploadFiles,
} from './api';
export { UploadError, isUploadError, isUploadErrorCode } from './errors';
export { SUMMARY_REFRESH_MS, useSummary, useUpload, useUploads } from './hooks';
export type { SummaryResult, UploadResult, UploadsResult } from './hooks';
export {
  ACTIVE_STATES,
  ENGINE_ERROR_CODES,
  ERROR_CODES,
  FINAL_STATES,
  UPLOAD_STATES,
} from './types';
export type {
  JsonValue,
  NotificationConfig,
  RetryConfig,
  Subscription,
  Summary,
  SummaryState,
  Upload,
  UploadErrorCode,
  UploadFailure,
  UploadFileOptions,
  UploadFilesItem,
  UploadFilesResult,
  UploadFilter,
  UploadProgress,
  UploadState,
  UploadTarget,
  UploaderConfig,
} from './types';
export {
  MAX_PARALLEL_PARTS,
  MAX_TIMEOUT_MS,
  MIN_TIMEOUT_MS,
  NOTIFICATION_PLACEHOLDERS,
  RESERVED_USER_PARAMS,
} from './validate';
