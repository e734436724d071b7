/**
 * The store's file storage (`StoreConfig.storage`, behind the retry layer), for modules, the
 * CLI and tests. It is not on the `Store` type: the BlobStore port speaks Node streams, and the
 * package's public types need no @types/node (test/e2e/pack.test.ts checks a project without
 * it). Its keys carry no tenant prefix either, so it is no library surface.
 */
import type { BlobStore } from './ports/blob-store.js';

const blobStores = new WeakMap<object, BlobStore>();

export function attachBlobStore(store: object, blobs: BlobStore): void {
  blobStores.set(store, blobs);
}

/** The blob store of a store made by `openStore`. */
export function blobStoreOf(store: object): BlobStore {
  const blobs = blobStores.get(store);
  if (!blobs) throw new Error('not a store opened by openStore');
  return blobs;
}
