/**
 * BlobStore on the local filesystem, under one root directory (by default `<dataDir>/files`).
 *
 * - `put` streams to `<root>/.tmp/<uuid>.part` (same filesystem, so the rename is atomic),
 *   hashing and counting as it goes, then fsyncs the file, renames it over the final name
 *   (or hard-links it, for `ifNoneMatch: '*'`, which fails atomically if the name exists)
 *   and fsyncs the directory. A crash leaves at most a temp file, never a partial object
 *   under its final name; temp files older than an hour are removed when a store opens.
 * - `get` opens the file once and streams from that descriptor, so a concurrent replace
 *   (a rename) never mixes bytes: the reader keeps the inode it opened.
 * - The ETag is the object's SHA-256 (lowercase hex), kept in the file's header
 *   (local-disk-format.ts). Keys map to paths as local-disk-paths.ts describes.
 * - Symlinks: the root itself may be one. Inside it the store makes none and follows none
 *   at the object: a symlink where an object would be is not served (O_NOFOLLOW) and not
 *   listed. The root is trusted: whoever can write inside it can change any object anyway.
 * - No synchronous fs call on any path: the event loop serves other tenants meanwhile.
 */
import { createHash, randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { link, lstat, mkdir, open, readdir, rename, rm, rmdir, unlink, access, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Readable, addAbortSignal } from 'node:stream';
import { AgentstoreError, isAgentstoreError } from '../../core/errors.js';
import {
  transientBlobError,
  type BlobHead,
  type BlobStore,
  type BlobStoreCapabilities,
  type ByteRange,
  type GetResult,
  type ListOptions,
  type ListResult,
  type PutOptions,
  type PutResult,
} from '../../ports/blob-store.js';
import { HEADER_BYTES, encodeHeader, readHeader } from './local-disk-format.js';
import { objectPath, prefixStart } from './local-disk-paths.js';
import { walk } from './local-disk-list.js';

export interface LocalDiskBlobStoreOptions {
  /** The directory that holds every object; created if missing. */
  readonly root: string;
  /** Temp files older than this are uploads that died with their process (default one hour). */
  readonly staleTempMs?: number;
  readonly now?: () => number;
}

const TEMP_DIR = '.tmp';
const LIST_LIMIT = 1000;
const HEAD_CONCURRENCY = 16;
// A delete of the last object in a directory removes the directory; a put into it at the same
// moment finds its parent gone and makes it again. This bounds that race, which needs a
// delete to win each time.
const PARENT_RACE_ATTEMPTS = 5;
const TRANSIENT_CODES = new Set(['EAGAIN', 'EBUSY', 'EMFILE', 'ENFILE', 'EINTR', 'ETIMEDOUT', 'ESTALE', 'EIO']);
const GONE_CODES = new Set(['ENOENT', 'ENOTDIR', 'ELOOP']);

const errnoOf = (error: unknown): string | undefined =>
  typeof error === 'object' && error !== null && typeof (error as { code?: unknown }).code === 'string'
    ? (error as { code: string }).code
    : undefined;

/** A filesystem error as the port's errors; messages name the operation, never the key or path. */
function storeError(operation: string, error: unknown): AgentstoreError {
  if (isAgentstoreError(error)) return error;
  const code = errnoOf(error);
  if (code !== undefined && TRANSIENT_CODES.has(code)) return transientBlobError(`local blob store: ${operation} failed (${code})`, error);
  return AgentstoreError.unavailable(`local blob store: ${operation} failed${code ? ` (${code})` : ''}`, error);
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Opens an object file for reading: `undefined` when there is none (or a symlink is there). */
async function openObject(path: string): Promise<FileHandle | undefined> {
  try {
    return await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    if (GONE_CODES.has(errnoOf(error) ?? '') || errnoOf(error) === 'EISDIR') return undefined;
    throw error;
  }
}

/** Local disk signs no URLs itself (the server does, with HMAC tokens); `ifNoneMatch` is a hard link, atomic. */
export const LOCAL_DISK_CAPABILITIES: BlobStoreCapabilities = { nativePresign: false, atomicIfNoneMatch: true };

export class LocalDiskBlobStore implements BlobStore {
  readonly name = 'local';
  readonly capabilities: BlobStoreCapabilities = LOCAL_DISK_CAPABILITIES;
  readonly root: string;
  private readonly tempDir: string;

  constructor(root: string) {
    this.root = resolve(root);
    this.tempDir = join(this.root, TEMP_DIR);
  }

  /** Makes the root and the temp dir, and removes temp files left by dead processes. */
  async open(staleTempMs: number, now: number): Promise<void> {
    try {
      await mkdir(this.tempDir, { recursive: true });
      for (const name of await readdir(this.tempDir)) {
        const path = join(this.tempDir, name);
        const stat = await lstat(path).catch(() => undefined);
        // Younger ones may be another process's upload in progress (its writes keep mtime fresh).
        if (stat && now - stat.mtimeMs > staleTempMs) await rm(path, { force: true, recursive: true });
      }
    } catch (error) {
      throw storeError('open', error);
    }
  }

  async put(key: string, body: Readable, options: PutOptions): Promise<PutResult> {
    const target = objectPath(this.root, key);
    const { maxBytes, signal } = options;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw AgentstoreError.invalidField('maxBytes', 'must be a non-negative integer');
    if (signal?.aborted) {
      body.destroy();
      throw signal.reason;
    }
    const temp = join(this.tempDir, `${randomUUID()}.part`);
    const fs = <T>(work: Promise<T>): Promise<T> =>
      work.catch((error: unknown) => {
        throw storeError('put', error);
      });
    let handle: FileHandle | undefined;
    const onAbort = (): void => void body.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      handle = await fs(open(temp, 'wx'));
      await fs(handle.write(encodeHeader(), 0, HEADER_BYTES, 0));
      const hash = createHash('sha256');
      let size = 0;
      // Each write is awaited before the next chunk is pulled: the body's backpressure.
      for await (const chunk of body) {
        const bytes: Buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
        size += bytes.length;
        if (size > maxBytes) {
          // Stop reading at once: the rest of the body is never pulled.
          body.destroy();
          throw new AgentstoreError('agentstore.payload_too_large', `the body is larger than ${maxBytes} bytes`, { maxBytes });
        }
        hash.update(bytes);
        await fs(handle.write(bytes, 0, bytes.length, HEADER_BYTES + size - bytes.length));
      }
      signal?.throwIfAborted();
      const sha256 = hash.digest('hex');
      const header = options.contentType === undefined ? { sha256 } : { sha256, contentType: options.contentType };
      await fs(handle.write(encodeHeader(header), 0, HEADER_BYTES, 0));
      await fs(handle.sync());
      const finished = handle;
      handle = undefined;
      await fs(finished.close());
      // The last point where an abort still means "nothing stored".
      signal?.throwIfAborted();
      await fs(this.commit(temp, target, options.ifNoneMatch === '*'));
      return { key, size, sha256, etag: sha256 };
    } catch (error) {
      await handle?.close().catch(() => undefined);
      await unlink(temp).catch(() => undefined);
      if (signal?.aborted) throw signal.reason;
      // Our own failures are AgentstoreErrors by now; anything else is the body's stream
      // failing (a client gone), which is the caller's to map, not a backend fault.
      throw error;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Moves the finished temp file to its final name and makes that durable. */
  private async commit(temp: string, target: string, exclusive: boolean): Promise<void> {
    const dir = dirname(target);
    for (let attempt = 1; ; attempt++) {
      const created = await mkdir(dir, { recursive: true });
      try {
        if (exclusive) {
          await link(temp, target);
          // Stored now: a temp name left behind is swept at the next open, not a failed put.
          await unlink(temp).catch(() => undefined);
        } else {
          await rename(temp, target);
        }
      } catch (error) {
        if (errnoOf(error) === 'EEXIST') throw AgentstoreError.preconditionFailed('an object exists under this key');
        if (errnoOf(error) === 'ENOENT' && attempt < PARENT_RACE_ATTEMPTS) continue;
        throw error;
      }
      await syncDirectory(dir);
      // A new directory's entry is durable only once its parent is synced too.
      if (created !== undefined) {
        for (let d = dir; d !== dirname(created) && d.startsWith(this.root); ) {
          d = dirname(d);
          await syncDirectory(d);
        }
      }
      return;
    }
  }

  async get(key: string, options: { readonly range?: ByteRange; readonly signal?: AbortSignal } = {}): Promise<GetResult> {
    const path = objectPath(this.root, key);
    options.signal?.throwIfAborted();
    const handle = await openObject(path).catch((error: unknown) => {
      throw storeError('get', error);
    });
    if (!handle) throw AgentstoreError.notFound('object');
    try {
      const head = await this.headOf(key, handle);
      let range: { start: number; end: number } | undefined;
      if (options.range) range = clampRange(options.range, head.size);
      const start = range?.start ?? 0;
      const end = range?.end ?? head.size - 1;
      let body: Readable;
      if (end < start) {
        // A 0-byte object read whole: nothing to stream, and fs streams refuse end < start.
        await handle.close();
        body = Readable.from([]);
      } else {
        body = handle.createReadStream({ start: HEADER_BYTES + start, end: HEADER_BYTES + end, autoClose: true });
      }
      if (options.signal) addAbortSignal(options.signal, body);
      return range ? { ...head, body, range } : { ...head, body };
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw storeError('get', error);
    }
  }

  async head(key: string): Promise<BlobHead> {
    const path = objectPath(this.root, key);
    try {
      const handle = await openObject(path);
      if (!handle) throw AgentstoreError.notFound('object');
      try {
        return await this.headOf(key, handle);
      } finally {
        await handle.close();
      }
    } catch (error) {
      throw storeError('head', error);
    }
  }

  private async headOf(key: string, handle: FileHandle): Promise<BlobHead> {
    const stat = await handle.stat();
    const header = stat.isFile() ? await readHeader(handle) : undefined;
    // A file without our header was not written by this store: not an object.
    if (!header) throw AgentstoreError.notFound('object');
    const head = { key, size: stat.size - HEADER_BYTES, etag: header.sha256, lastModified: stat.mtime };
    return header.contentType === undefined ? head : { ...head, contentType: header.contentType };
  }

  async delete(key: string): Promise<void> {
    const path = objectPath(this.root, key);
    try {
      await unlink(path);
    } catch (error) {
      if (GONE_CODES.has(errnoOf(error) ?? '')) return;
      throw storeError('delete', error);
    }
    // Best effort: empty key directories would otherwise pile up. rmdir refuses a non-empty
    // one, which ends the climb; a put racing into it makes it again (see commit).
    for (let dir = dirname(path); dir !== this.root && dir.startsWith(this.root); dir = dirname(dir)) {
      try {
        await rmdir(dir);
      } catch {
        break;
      }
    }
  }

  async list(options: ListOptions): Promise<ListResult> {
    const limit = options.limit ?? LIST_LIMIT;
    if (!Number.isSafeInteger(limit) || limit < 1) throw AgentstoreError.invalidField('limit', 'must be a positive integer');
    if (options.after !== undefined && typeof options.after !== 'string') throw AgentstoreError.invalidField('after', 'must be a string');
    const start = prefixStart(this.root, options.prefix);
    if (!start) return { items: [] };
    const wanted = Math.min(limit, LIST_LIMIT);
    const after = options.after === undefined ? undefined : Buffer.from(options.after, 'utf8');
    const items: BlobHead[] = [];
    let more = false;
    try {
      const candidates = walk(start.dir, start.keyPrefix, start.partial, after);
      let batch: { key: string; path: string }[] = [];
      const flush = async (): Promise<void> => {
        const heads = await Promise.all(batch.map((c) => this.headOrGone(c.key, c.path)));
        for (const head of heads) if (head) items.push(head);
        batch = [];
      };
      for await (const candidate of candidates) {
        if (items.length + batch.length > wanted) {
          await flush();
          if (items.length > wanted) break;
        }
        batch.push(candidate);
        if (batch.length >= HEAD_CONCURRENCY) await flush();
      }
      if (items.length <= wanted) await flush();
      more = items.length > wanted;
    } catch (error) {
      throw storeError('list', error);
    }
    const page = items.slice(0, wanted);
    const last = page[page.length - 1];
    return more && last ? { items: page, nextAfter: last.key } : { items: page };
  }

  /** `head` for `list`: an object deleted since the directory was read is skipped, not an error. */
  private async headOrGone(key: string, path: string): Promise<BlobHead | undefined> {
    const handle = await openObject(path);
    if (!handle) return undefined;
    try {
      return await this.headOf(key, handle);
    } catch (error) {
      if (isAgentstoreError(error, 'agentstore.not_found')) return undefined;
      throw error;
    } finally {
      await handle.close();
    }
  }

  async ping(): Promise<void> {
    try {
      // Writable too: a filesystem remounted read-only fails here, before the first upload does.
      await access(this.tempDir, constants.R_OK | constants.W_OK);
    } catch (error) {
      throw storeError('ping', error);
    }
  }

  async close(): Promise<void> {
    // Nothing is held between calls: each call opens and closes its own descriptors.
  }
}

/** The port's range rule: inclusive, `end` clamped to the last byte, a start past the end refused. */
export function clampRange(range: ByteRange, size: number): { start: number; end: number } {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || start < 0) throw AgentstoreError.invalidField('range', 'start must be a non-negative integer');
  if (end !== undefined && (!Number.isSafeInteger(end) || end < start)) {
    throw AgentstoreError.invalidField('range', 'end must be an integer not below start');
  }
  if (start >= size) {
    throw new AgentstoreError('agentstore.range_not_satisfiable', 'the range starts past the end of the object', { size });
  }
  return { start, end: Math.min(end ?? size - 1, size - 1) };
}

/** Opens (creating it if needed) a local-disk blob store under `root`. */
export async function createLocalDiskBlobStore(options: LocalDiskBlobStoreOptions): Promise<LocalDiskBlobStore> {
  const store = new LocalDiskBlobStore(options.root);
  await store.open(options.staleTempMs ?? 60 * 60 * 1000, (options.now ?? Date.now)());
  return store;
}
