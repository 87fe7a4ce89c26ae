// Object keys, part sizes and multipart ETags: pure helpers, no I/O. The
// rules are the reference backend's (example-app/backend/src/keys.rs).
import { createHash } from 'node:crypto';

export const MIB = 1024 * 1024;
/** S3's largest part. */
export const MAX_PART_SIZE = 5 * 1024 * MIB;
/** S3's largest object (5 TiB). */
export const MAX_OBJECT_SIZE = 5 * 1024 * 1024 * MIB;
export const MAX_PARTS = 10_000;
/** S3 refuses presigned URLs valid for longer than a week. */
export const MAX_URL_EXPIRES_IN = 7 * 24 * 3600;
/** XXH3-128 of no bytes: the fileHash of every 0-byte file. */
export const EMPTY_CONTENT_HASH = '99aa06d3014798d86001c324468d497f';

/** S3's key length limit, in bytes. */
const MAX_KEY_BYTES = 1024;
/** A key prefix longer than this leaves too little room for the rest. */
const MAX_PREFIX_BYTES = 512;
/** File names are cut to this many bytes: most file systems stop at 255. */
const MAX_NAME_BYTES = 200;
/** An extension longer than this is not worth keeping when cutting a name. */
const MAX_KEPT_EXTENSION = 16;

// Unicode category Cc, as Rust's char::is_control.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const CONTROL_OR_SLASH = /[\u0000-\u001f\u007f-\u009f/\\]/g;

export function hasControlChars(s: string): boolean {
  return CONTROL.test(s);
}

const utf8Length = (s: string): number => Buffer.byteLength(s, 'utf8');

/** Makes a client's file name safe to use as the last key segment. */
export function sanitizeFileName(name: string): string {
  let out = name.replace(CONTROL_OR_SLASH, '_');
  if (utf8Length(out) > MAX_NAME_BYTES) out = shortenKeepingExtension(out);
  // URLs resolve `.` and `..` segments away, which would change the key.
  if (out === '.' || out === '..') out = out.replace(/\./g, '_');
  return out === '' ? 'file' : out;
}

function shortenKeepingExtension(name: string): string {
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 && utf8Length(name.slice(dot)) <= MAX_KEPT_EXTENSION ? name.slice(dot) : '';
  const room = MAX_NAME_BYTES - utf8Length(ext);
  let stem = '';
  let used = 0;
  // Whole code points only, so no character is cut in half.
  for (const ch of name.slice(0, name.length - ext.length)) {
    const n = utf8Length(ch);
    if (used + n > room) break;
    stem += ch;
    used += n;
  }
  return stem + ext;
}

/** Why a key prefix is unusable, or undefined when it is fine. */
export function prefixProblem(prefix: string): string | undefined {
  if (
    utf8Length(prefix) > MAX_PREFIX_BYTES ||
    prefix.startsWith('/') ||
    hasControlChars(prefix) ||
    prefix.split('/').some(seg => seg === '.' || seg === '..')
  ) {
    return "keyPrefix must be at most 512 bytes, not start with '/', and contain no '.' or '..' segments or control characters";
  }
  return undefined;
}

/**
 * Why a key that came back from a client must not be signed, or undefined.
 * Only keys under the prefix pass, so the backend's credentials cannot be
 * used on other objects of the bucket.
 */
export function keyProblem(key: string, prefix: string): string | undefined {
  if (key === '') return 'key is empty';
  if (utf8Length(key) > MAX_KEY_BYTES) return 'key is too long';
  if (!key.startsWith(prefix) || key.length === prefix.length)
    return 'key is not one this backend issued';
  if (key.startsWith('/') || hasControlChars(key)) return 'key contains invalid characters';
  // URL path resolution would silently map these to another key.
  if (key.split('/').some(seg => seg === '.' || seg === '..'))
    return "key contains '.' or '..' segments";
  return undefined;
}

/**
 * The part size for a file: the preferred one unless the file would then
 * need more than 10,000 parts, in which case the smallest whole number of
 * MiB that fits.
 */
export function partSizeFor(preferred: number, fileSize: number): number {
  if (Math.ceil(fileSize / preferred) <= MAX_PARTS) return preferred;
  const needed = Math.ceil(Math.ceil(fileSize / MAX_PARTS) / MIB) * MIB;
  return Math.min(needed, MAX_PART_SIZE);
}

export function isHashHex(s: string): boolean {
  return /^[0-9a-f]{32}$/.test(s);
}

/** Removes the double quotes S3 puts around ETags. */
export function unquote(etag: string): string {
  const t = etag.trim();
  return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1) : t;
}

/**
 * The ETag S3 gives a multipart object: the MD5 of the parts' binary MD5s,
 * then `-N`. Undefined when a part ETag is not a plain MD5 (SSE-KMS stores),
 * as the object's ETag cannot be predicted then.
 */
export function multipartEtag(partEtags: readonly string[]): string | undefined {
  const outer = createHash('md5');
  for (const etag of partEtags) {
    const hex = unquote(etag);
    if (!/^[0-9a-fA-F]{32}$/.test(hex)) return undefined;
    outer.update(Buffer.from(hex, 'hex'));
  }
  return `${outer.digest('hex')}-${partEtags.length}`;
}
