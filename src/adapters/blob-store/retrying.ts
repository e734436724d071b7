/**
 * A BlobStore that retries another one's transient failures (those its adapter marked with
 * `transientBlobError`), with src/core/retry.ts's bounded exponential backoff and full jitter,
 * and then fails with `agentstore.unavailable` (503 with Retry-After), no longer marked
 * transient so that nothing above retries again.
 *
 * What is retried: `get`, `head`, `delete`, `list`, `ping` and `presign`, which are idempotent.
 * `put` is retried only while its body is unread (the failure came before the first byte was
 * pulled: opening a temp file, reaching the endpoint): a stream cannot be rewound, and
 * reading it again from the middle would store a truncated object. A put that failed after
 * reading fails at once, and the caller (an HTTP client) retries the whole upload.
 * Everything else (not_found, validation, precondition_failed, payload_too_large, an aborted
 * signal, the body's own stream errors) passes through untouched, on the first attempt.
 */
import { AgentstoreError } from '../../core/errors.js';
import { DEFAULT_RETRY, withRetry, type RetryPolicy } from '../../core/retry.js';
import { isTransientBlobError, type BlobStore, type PresignOptions } from '../../ports/blob-store.js';

export interface RetryingBlobStoreOptions {
  readonly policy?: RetryPolicy;
  /** Seconds a client is told to wait once the retries are spent (default 1). */
  readonly retryAfter?: number;
}

export function createRetryingBlobStore(inner: BlobStore, options: RetryingBlobStoreOptions = {}): BlobStore {
  const policy = options.policy ?? DEFAULT_RETRY;
  const retryAfter = options.retryAfter ?? 1;

  async function attempt<T>(operation: string, fn: () => Promise<T>, canRetry: () => boolean = () => true, signal?: AbortSignal): Promise<T> {
    let attempts = 0;
    try {
      return await withRetry(
        () => {
          // An abort between attempts ends the retries with the caller's reason.
          signal?.throwIfAborted();
          attempts++;
          return fn();
        },
        (error) => isTransientBlobError(error) && canRetry() && !signal?.aborted,
        policy,
      );
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (!isTransientBlobError(error)) throw error;
      const tries = attempts === 1 ? '1 attempt' : `${attempts} attempts`;
      throw AgentstoreError.unavailable(`blob store (${inner.name}): ${operation} failed after ${tries}`, error, retryAfter);
    }
  }

  const store: BlobStore = {
    name: inner.name,
    capabilities: inner.capabilities,
    put: (key, body, putOptions) =>
      attempt('put', () => inner.put(key, body, putOptions), () => !body.readableDidRead && !body.destroyed, putOptions.signal),
    get: (key, getOptions) => attempt('get', () => inner.get(key, getOptions), undefined, getOptions?.signal),
    head: (key) => attempt('head', () => inner.head(key)),
    delete: (key) => attempt('delete', () => inner.delete(key)),
    list: (listOptions) => attempt('list', () => inner.list(listOptions)),
    ping: () => attempt('ping', () => inner.ping()),
    close: () => inner.close(),
  };
  const presign = inner.presign?.bind(inner);
  if (presign) store.presign = (key: string, presignOptions: PresignOptions) => attempt('presign', () => presign(key, presignOptions));
  return store;
}
