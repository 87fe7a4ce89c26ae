// The S3 calls the backend makes, through the AWS SDK for JavaScript v3.
// Failures keep only a status and the S3 error code: never a URL (presigned
// query strings are secrets) nor the SDK's full message.
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';

/** Why a store call failed, in words safe to show a client. */
export class StoreFailure extends Error {
  /** The store's HTTP status, when it answered. */
  readonly status: number | undefined;
  /** The S3 error code (`NoSuchUpload`, `AccessDenied`...), when there is one. */
  readonly code: string | undefined;

  constructor(status: number | undefined, code: string | undefined, reachable: boolean) {
    super(
      !reachable
        ? `store unreachable: ${code ?? 'request failed'}`
        : code
        ? `store answered ${status ?? 'an error'} ${code}`
        : `store answered ${status ?? 'an error'}`,
    );
    this.name = 'StoreFailure';
    this.status = status;
    this.code = code;
  }
}

// Network error codes worth naming; anything else is "request failed".
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
]);

function toFailure(err: unknown): StoreFailure {
  const e = (err ?? {}) as {
    name?: unknown;
    code?: unknown;
    $metadata?: { httpStatusCode?: unknown };
  };
  const status =
    typeof e.$metadata?.httpStatusCode === 'number' ? e.$metadata.httpStatusCode : undefined;
  if (status === undefined) {
    const code = typeof e.code === 'string' && NETWORK_CODES.has(e.code) ? e.code : undefined;
    const timedOut = e.name === 'TimeoutError' || e.name === 'RequestTimeout';
    return new StoreFailure(undefined, timedOut ? 'timed out' : code, false);
  }
  // The SDK names the error after the S3 code; keep it only if it is a
  // plain identifier, so nothing unexpected is echoed to clients.
  const name =
    typeof e.name === 'string' && /^[A-Za-z0-9]{1,64}$/.test(e.name) ? e.name : undefined;
  const code =
    name === undefined || name === 'UnknownError' || /^\d+$/.test(name) ? undefined : name;
  return new StoreFailure(status, code, true);
}

async function call<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw toFailure(err);
  }
}

/**
 * Takes the checksum headers off a request about to be presigned. Since
 * 3.729 the SDK adds a CRC32 of the (absent) body by default, and the
 * presigner turns it into query parameters: the store would then refuse
 * every part whose bytes do not match an empty body.
 */
type Handler<A, R> = (args: A) => Promise<R>;
const withoutChecksums =
  <A extends { request: unknown }, R>(next: Handler<A, R>): Handler<A, R> =>
  async args => {
    const request = args.request as { headers?: Record<string, string> };
    for (const name of Object.keys(request.headers ?? {})) {
      const lower = name.toLowerCase();
      if (lower.startsWith('x-amz-checksum-') || lower === 'x-amz-sdk-checksum-algorithm')
        delete request.headers?.[name];
    }
    return next(args);
  };

/** Presigns `command` without the default checksum (see withoutChecksums). */
function presign<C extends UploadPartCommand | PutObjectCommand>(
  s3: S3Client,
  command: C,
  expiresIn: number,
): Promise<string> {
  const stack = command.middlewareStack as {
    add(m: unknown, o: { step: string; priority: string; name: string }): void;
  };
  // After the checksum middleware (build step), before presigning (finalize).
  stack.add(withoutChecksums, { step: 'build', priority: 'low', name: 's3bguWithoutChecksums' });
  return call(() => getSignedUrl(s3, command as UploadPartCommand, { expiresIn }));
}

export interface ObjectHead {
  etag: string;
  size: number | undefined;
}

export class Store {
  constructor(private readonly s3: S3Client, private readonly bucket: string) {}

  async createMultipartUpload(key: string): Promise<string> {
    const out = await call(() =>
      this.s3.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key })),
    );
    if (!out.UploadId) throw new StoreFailure(200, 'EmptyUploadId', true);
    return out.UploadId;
  }

  presignPart(
    key: string,
    uploadId: string,
    partNumber: number,
    expiresIn: number,
  ): Promise<string> {
    const command = new UploadPartCommand({
      Bucket: this.bucket,
      Key: key,
      UploadId: uploadId,
      PartNumber: partNumber,
    });
    return presign(this.s3, command, expiresIn);
  }

  /**
   * A URL that stores the whole object in one PUT: how empty files are
   * uploaded, since some stores refuse an empty part. (Content-Length is
   * not signed: HTTP clients send no header at all for an empty PUT.)
   */
  presignPutObject(key: string, expiresIn: number): Promise<string> {
    return presign(this.s3, new PutObjectCommand({ Bucket: this.bucket, Key: key }), expiresIn);
  }

  /** Returns the new object's ETag. */
  async complete(key: string, uploadId: string, etags: readonly string[]): Promise<string> {
    const out = await call(() =>
      this.s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
        }),
      ),
    );
    return out.ETag ?? '';
  }

  /** The object's ETag and size, or undefined when there is no such object. */
  async head(key: string): Promise<ObjectHead | undefined> {
    try {
      const out = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { etag: out.ETag ?? '', size: out.ContentLength };
    } catch (err) {
      const failure = toFailure(err);
      if (failure.status === 404) return undefined;
      throw failure;
    }
  }

  async abort(key: string, uploadId: string): Promise<void> {
    await call(() =>
      this.s3.send(
        new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }),
      ),
    );
  }
}
