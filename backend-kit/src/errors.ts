/**
 * Thrown by a hook (or the kit) to answer with this status and
 * `{"error": message}`. The message reaches the client: keep secrets out.
 */
export class UploadBackendError extends Error {
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    if (!Number.isInteger(status) || status < 400 || status > 599) {
      throw new RangeError(`UploadBackendError status must be 400-599, got ${String(status)}`);
    }
    this.name = 'UploadBackendError';
    this.status = status;
  }
}

/** A mistake in the backend's options or hooks, found when it is used. */
export class UploadBackendConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UploadBackendConfigError';
  }
}
