/**
 * A BlobStore opened on its first use rather than when the store opens: opening the local
 * disk makes its directory, and the read-only CLI commands (which open a store) must create
 * nothing. A failed open is tried again on the next call, so a directory fixed by an operator
 * (permissions, a mount) is picked up without a restart. The first call is usually /ready's ping.
 */
import { AgentstoreError } from '../../core/errors.js';
import type { BlobStore, BlobStoreCapabilities, PresignOptions } from '../../ports/blob-store.js';

export function createLazyBlobStore(
  known: { readonly name: string; readonly capabilities: BlobStoreCapabilities },
  open: () => Promise<BlobStore>,
): BlobStore {
  let opening: Promise<BlobStore> | undefined;
  let closed = false;
  const inner = (): Promise<BlobStore> => {
    if (closed) return Promise.reject(AgentstoreError.unavailable(`blob store (${known.name}) is closed`));
    opening ??= open().catch((error: unknown) => {
      opening = undefined;
      throw error;
    });
    return opening;
  };
  return {
    name: known.name,
    capabilities: known.capabilities,
    put: async (key, body, options) => (await inner()).put(key, body, options),
    get: async (key, options) => (await inner()).get(key, options),
    head: async (key) => (await inner()).head(key),
    delete: async (key) => (await inner()).delete(key),
    list: async (options) => (await inner()).list(options),
    ping: async () => (await inner()).ping(),
    // Declared by the capabilities known before opening, so that a backend that presigns (S3)
    // keeps the method the port requires of it.
    ...(known.capabilities.nativePresign
      ? {
          presign: async (key: string, options: PresignOptions) => {
            const store = await inner();
            if (!store.presign) throw AgentstoreError.unavailable(`blob store (${known.name}) cannot presign`);
            return store.presign(key, options);
          },
        }
      : {}),
    async close() {
      closed = true;
      const opened = await opening?.catch(() => undefined);
      await opened?.close();
    },
  };
}
