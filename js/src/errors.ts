import { ERROR_CODES, type UploadErrorCode } from './types';

/**
 * Every failure of this library: a stable `code` (see `UploadErrorCode`) and
 * a message a person can act on. Presigned URLs, header values and user
 * params never appear in messages.
 */
export class UploadError extends Error {
  readonly code: UploadErrorCode;

  constructor(code: UploadErrorCode, message: string, options?: { cause?: unknown }) {
    super(message);
    this.name = 'UploadError';
    this.code = code;
    if (options && 'cause' in options) {
      // Assigned by hand: not every JS engine in use supports Error's options bag.
      Object.defineProperty(this, 'cause', {
        value: options.cause,
        enumerable: false,
        writable: true,
        configurable: true,
      });
    }
    // Keeps `instanceof` working when the class is compiled down to ES5.
    Object.setPrototypeOf(this, new.target.prototype);
  }
}

/** Whether `code` is one of the stable codes. */
export function isUploadErrorCode(code: unknown): code is UploadErrorCode {
  return typeof code === 'string' && (ERROR_CODES as readonly string[]).includes(code);
}

/** Whether `e` is an `UploadError`, optionally with the given code. */
export function isUploadError(e: unknown, code?: UploadErrorCode): e is UploadError {
  return e instanceof UploadError && (code === undefined || e.code === code);
}

/**
 * Turns whatever a native call rejected with into an `UploadError`. The
 * native modules reject with the engine's code as the rejection code; any
 * other failure (a missing module, a bug in the glue) becomes `internal`,
 * with the original error as `cause`.
 */
export function toUploadError(e: unknown): UploadError {
  if (e instanceof UploadError) {
    return e;
  }
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  const message = messageOf(e);
  if (isUploadErrorCode(code)) {
    return new UploadError(code, message, { cause: e });
  }
  return new UploadError('internal', `unexpected native failure: ${message}`, { cause: e });
}

function messageOf(e: unknown): string {
  if (e instanceof Error) {
    return e.message;
  }
  if (
    typeof e === 'object' &&
    e !== null &&
    typeof (e as { message?: unknown }).message === 'string'
  ) {
    return (e as { message: string }).message;
  }
  return String(e);
}
