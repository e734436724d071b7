/**
 * Object storage for file bytes: the local disk under the data dir by default, or any
 * S3-compatible store. Keys are opaque to the store: the files module builds them (always
 * under the tenant's prefix) and validates them before they reach an adapter, so an
 * adapter may assume a key is 1–1024 bytes of UTF-8, `/`-separated, with no empty, `.` or
 * `..` segment, no NUL and no backslash. Adapters still refuse a key that would leave
 * their root (defence in depth), with `agentstore.validation`.
 *
 * Metadata (display name, content type, uploader, user metadata) lives in the database,
 * not here: a blob store keeps bytes, their size, an ETag of the stored object and the
 * SHA-256 computed while writing. The database row commits after `put` resolves, so a
 * row never points at bytes that are not stored (design.md, "Files").
 *
 * Errors are `AgentstoreError`s with stable codes:
 * - `agentstore.not_found`: no object under the key (get, head; delete is idempotent).
 * - `agentstore.payload_too_large`: `put` read more than `maxBytes`; nothing is stored.
 * - `agentstore.precondition_failed`: `ifNoneMatch: '*'` and the key exists.
 * - `agentstore.range_not_satisfiable`: the range starts past the end.
 * - `agentstore.unavailable`: the backend failed after the adapter's bounded retries
 *   (`context.retryAfter` set); the server maps it to 503 with Retry-After.
 * - `agentstore.validation`: a key the adapter refuses.
 *
 * An adapter marks a failure that a retry may cure (a timeout, a throttle, a 5xx, EAGAIN) with
 * `transientBlobError`; the retry layer (src/adapters/blob-store/retrying.ts) retries those
 * and nothing else.
 */
import type { Readable } from 'node:stream';
import { AgentstoreError, isAgentstoreError } from '../core/errors.js';

export interface BlobStoreCapabilities {
  /** `presign` returns URLs the backend itself serves (S3). Local disk leaves signing to the server. */
  readonly nativePresign: boolean;
  /** `put` with `ifNoneMatch: '*'` is atomic in the backend; otherwise it is a head-then-put. */
  readonly atomicIfNoneMatch: boolean;
}

export interface PutOptions {
  /** Read at most this many bytes; one byte more rejects with `payload_too_large` and stores nothing. */
  readonly maxBytes: number;
  readonly contentType?: string;
  /** `'*'`: fail with `precondition_failed` if the key exists. */
  readonly ifNoneMatch?: '*';
  /** Aborting rejects the put (with the signal's reason) and stores nothing. */
  readonly signal?: AbortSignal;
}

export interface PutResult {
  readonly key: string;
  readonly size: number;
  /** Lowercase hex SHA-256 of the bytes, computed while streaming. */
  readonly sha256: string;
  /** The backend's ETag of the stored object, without quotes. */
  readonly etag: string;
}

export interface BlobHead {
  readonly key: string;
  readonly size: number;
  readonly etag: string;
  readonly lastModified: Date;
  readonly contentType?: string;
}

/** Inclusive byte offsets, as in HTTP: `{start: 0, end: 0}` is the first byte. `end` past the last byte is clamped. */
export interface ByteRange {
  readonly start: number;
  readonly end?: number;
}

export interface GetResult extends BlobHead {
  readonly body: Readable;
  /** The range actually served (clamped), when one was asked for. */
  readonly range?: { readonly start: number; readonly end: number };
}

export interface ListOptions {
  readonly prefix: string;
  /** Return keys strictly after this one (keyset, in byte order of the key). */
  readonly after?: string;
  /** At most this many (default 1000, at most 1000). */
  readonly limit?: number;
}

export interface ListResult {
  readonly items: readonly BlobHead[];
  /** Pass as `after` for the next page; absent on the last page. */
  readonly nextAfter?: string;
}

export interface PresignOptions {
  readonly method: 'GET' | 'PUT';
  readonly expiresInSeconds: number;
  readonly contentType?: string;
  /** For GET: the `Content-Disposition` the backend should answer with. */
  readonly contentDisposition?: string;
}

export interface BlobStore {
  /** `local` or `s3`, for logs, metrics labels and /storage/status. */
  readonly name: string;
  readonly capabilities: BlobStoreCapabilities;
  /** Streams `body` to `key`, replacing what is there, atomically: readers see the old bytes or the new, never a part. */
  put(key: string, body: Readable, options: PutOptions): Promise<PutResult>;
  get(key: string, options?: { readonly range?: ByteRange; readonly signal?: AbortSignal }): Promise<GetResult>;
  head(key: string): Promise<BlobHead>;
  /** Idempotent: deleting a missing key resolves. */
  delete(key: string): Promise<void>;
  list(options: ListOptions): Promise<ListResult>;
  /** Only when `capabilities.nativePresign`; otherwise absent. */
  presign?(key: string, options: PresignOptions): Promise<string>;
  /** A cheap round trip for /ready and /storage/status. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A backend failure worth retrying: `agentstore.unavailable` (so that, unretried, it is still a
 * 503 with Retry-After) with `context.transient` set. Adapters throw it; they do not retry.
 */
export function transientBlobError(message: string, cause?: unknown, retryAfter = 1): AgentstoreError {
  return new AgentstoreError('agentstore.unavailable', message, { retryAfter, transient: true }, { cause });
}

/** Was `error` marked by an adapter as worth retrying? */
export function isTransientBlobError(error: unknown): boolean {
  return isAgentstoreError(error, 'agentstore.unavailable') && error.context.transient === true;
}
