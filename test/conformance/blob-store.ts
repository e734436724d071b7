/**
 * The one conformance suite of the BlobStore port (src/ports/blob-store.ts), in the shape
 * of unstorage's `testDriver`: each adapter's test file calls `describeBlobStore` once and
 * adds its own cases through `additionalTests`. Every test works under a fresh random prefix,
 * so the suite can share one store (and one bucket) and leaves other data alone.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlobStore } from '../../src/ports/blob-store.js';
import { expectError } from '../helpers/fixtures.js';
import { countingSource, digest, patternBytes, readAll, sha256 } from './blob-stream-kit.js';
import { describeListingAndKeys } from './blob-store-keys.js';

export interface BlobStoreSuiteContext {
  /** The store under test (set once `beforeAll` ran). */
  store(): BlobStore;
  /** A fresh prefix (`<uuid>/`) for one test's keys. */
  prefix(): string;
}

export interface BlobStoreSuiteOptions {
  /** Size of the "multi-MB" object (default 8 MiB). */
  readonly largeBytes?: number;
  /** Backend-only cases, inside the suite's describe, with the same store. */
  readonly additionalTests?: (ctx: BlobStoreSuiteContext) => void;
  /** Called once after the suite, before `close` (to empty a bucket, remove a temp dir). */
  readonly cleanup?: (store: BlobStore) => Promise<void>;
}

const body = (bytes: Buffer | string): Readable => Readable.from([Buffer.from(bytes)]);
const MB = 1024 * 1024;

export function describeBlobStore(name: string, makeStore: () => Promise<BlobStore>, options: BlobStoreSuiteOptions = {}): void {
  describe(`BlobStore conformance: ${name}`, () => {
    let store: BlobStore | undefined;
    const s = (): BlobStore => {
      if (!store) throw new Error('the store is not open yet');
      return store;
    };
    const prefix = (): string => `${randomUUID()}/`;
    const put = (key: string, bytes: Buffer | string, maxBytes = 64 * MB) => s().put(key, body(bytes), { maxBytes });

    beforeAll(async () => {
      store = await makeStore();
    });
    afterAll(async () => {
      if (!store) return;
      await options.cleanup?.(store);
      await store.close();
    });

    describe('put and get', () => {
      it('round-trips the exact bytes, with their size and SHA-256', async () => {
        const key = `${prefix()}hello.bin`;
        const bytes = patternBytes(100_003, 3);
        const stored = await s().put(key, body(bytes), { maxBytes: MB, contentType: 'application/octet-stream' });
        expect(stored).toMatchObject({ key, size: bytes.length, sha256: sha256(bytes) });
        expect(stored.etag).toMatch(/^[^"]+$/);
        const got = await s().get(key);
        expect(got).toMatchObject({ key, size: bytes.length, etag: stored.etag });
        expect(got.range).toBeUndefined();
        expect((await readAll(got.body)).equals(bytes)).toBe(true);
        const head = await s().head(key);
        expect(head).toMatchObject({ key, size: bytes.length, etag: stored.etag });
        expect(head.lastModified).toBeInstanceOf(Date);
        expect(Math.abs(head.lastModified.getTime() - Date.now())).toBeLessThan(10 * 60_000);
      });

      it('stores a 0-byte object', async () => {
        const key = `${prefix()}empty`;
        const stored = await s().put(key, Readable.from([]), { maxBytes: 0 });
        expect(stored).toMatchObject({ size: 0, sha256: sha256(Buffer.alloc(0)) });
        const got = await s().get(key);
        expect(got.size).toBe(0);
        expect((await readAll(got.body)).length).toBe(0);
        expect((await s().head(key)).size).toBe(0);
      });

      it('streams a multi-MB object in and out', async () => {
        const size = options.largeBytes ?? 8 * MB;
        const key = `${prefix()}large.bin`;
        const source = countingSource(size, { chunk: 256 * 1024 });
        const stored = await s().put(key, source.stream, { maxBytes: size });
        expect(source.ended()).toBe(true);
        expect(stored.size).toBe(size);
        const read = await digest((await s().get(key)).body);
        expect(read).toEqual({ size, sha256: stored.sha256 });
      });

      it('replaces an object; the new bytes and checksum are served', async () => {
        const key = `${prefix()}replaced`;
        const first = await put(key, 'first version');
        const second = await put(key, 'second, longer version');
        expect(second.etag).not.toBe(first.etag);
        const got = await s().get(key);
        expect((await readAll(got.body)).toString()).toBe('second, longer version');
        expect(got.etag).toBe(second.etag);
        expect((await s().head(key)).size).toBe(22);
      });

      it('a reader that started before a replace reads the old bytes whole, never a mix', async () => {
        const key = `${prefix()}atomic`;
        const size = 4 * MB;
        await s().put(key, countingSource(size, { fill: 0x61 }).stream, { maxBytes: size });
        const reader = (await s().get(key)).body;
        const first = await new Promise<Buffer>((resolve, reject) => {
          reader.once('error', reject);
          reader.once('readable', () => resolve(reader.read() as Buffer));
        });
        await s().put(key, countingSource(size, { fill: 0x62 }).stream, { maxBytes: size });
        const rest = await readAll(reader);
        const all = Buffer.concat([first, rest]);
        expect(all.length).toBe(size);
        expect(all.every((b) => b === 0x61)).toBe(true);
        const after = await readAll((await s().get(key)).body);
        expect(after.every((b) => b === 0x62)).toBe(true);
      });

      it('readers during a replace each see one whole version', async () => {
        const key = `${prefix()}racing`;
        const size = 2 * MB;
        await s().put(key, countingSource(size, { fill: 0x61 }).stream, { maxBytes: size });
        const replace = s().put(key, countingSource(size, { fill: 0x62, pauseMs: 1 }).stream, { maxBytes: size });
        const reads: Promise<Buffer>[] = [];
        for (let i = 0; i < 6; i++) {
          reads.push(s().get(key).then((g) => readAll(g.body)));
          await new Promise((r) => setTimeout(r, 5));
        }
        await replace;
        for (const bytes of await Promise.all(reads)) {
          expect(bytes.length).toBe(size);
          const fill = bytes[0];
          expect(fill === 0x61 || fill === 0x62).toBe(true);
          expect(bytes.every((b) => b === fill)).toBe(true);
        }
      });

      it('puts to different keys at once all land, each with its own bytes', async () => {
        const p = prefix();
        const blobs = Array.from({ length: 16 }, (_, i) => ({ key: `${p}c/${i}`, bytes: patternBytes(50_000 + i * 1000, i + 1) }));
        const results = await Promise.all(blobs.map((b) => s().put(b.key, body(b.bytes), { maxBytes: MB })));
        results.forEach((r, i) => expect(r.sha256).toBe(sha256(blobs[i]!.bytes)));
        for (const b of blobs) expect((await readAll((await s().get(b.key)).body)).equals(b.bytes)).toBe(true);
      });
    });

    describe('preconditions and limits', () => {
      it("ifNoneMatch '*' stores a new key and refuses an existing one, leaving it as it was", async () => {
        const key = `${prefix()}once`;
        await s().put(key, body('original'), { maxBytes: 100, ifNoneMatch: '*' });
        await expectError(s().put(key, body('intruder'), { maxBytes: 100, ifNoneMatch: '*' }), 'agentstore.precondition_failed');
        expect((await readAll((await s().get(key)).body)).toString()).toBe('original');
      });

      it("of two concurrent ifNoneMatch '*' puts, at most one wins when the backend says it is atomic", async () => {
        if (!s().capabilities.atomicIfNoneMatch) return;
        const key = `${prefix()}race`;
        const outcomes = await Promise.allSettled(
          ['a', 'b', 'c', 'd'].map((v) => s().put(key, body(v.repeat(1000)), { maxBytes: 10_000, ifNoneMatch: '*' })),
        );
        const won = outcomes.filter((o) => o.status === 'fulfilled');
        expect(won).toHaveLength(1);
        for (const o of outcomes) if (o.status === 'rejected') expect((o.reason as { code?: string }).code).toBe('agentstore.precondition_failed');
        const stored = await readAll((await s().get(key)).body);
        expect(sha256(stored)).toBe((won[0] as PromiseFulfilledResult<{ sha256: string }>).value.sha256);
      });

      it('maxBytes: exactly the limit is stored', async () => {
        const key = `${prefix()}exact`;
        const stored = await s().put(key, body(patternBytes(1000)), { maxBytes: 1000 });
        expect(stored.size).toBe(1000);
      });

      it('maxBytes: one byte more is refused, nothing is stored, and the rest of the body is not read', async () => {
        const key = `${prefix()}over`;
        await expectError(s().put(key, body(patternBytes(1001)), { maxBytes: 1000 }), 'agentstore.payload_too_large');
        await expectError(s().head(key), 'agentstore.not_found');
        const total = 32 * MB;
        const source = countingSource(total, { chunk: 16 * 1024 });
        await expectError(s().put(key, source.stream, { maxBytes: 100_000 }), 'agentstore.payload_too_large');
        expect(source.ended()).toBe(false);
        expect(source.pulled()).toBeLessThan(4 * MB);
        await expectError(s().head(key), 'agentstore.not_found');
      });

      it('an oversized replace leaves the old object in place', async () => {
        const key = `${prefix()}kept`;
        await put(key, 'small');
        await expectError(s().put(key, body(patternBytes(5000)), { maxBytes: 4096 }), 'agentstore.payload_too_large');
        expect((await readAll((await s().get(key)).body)).toString()).toBe('small');
      });

      it('an aborted put rejects with the reason and stores nothing', async () => {
        const key = `${prefix()}aborted`;
        const controller = new AbortController();
        const source = countingSource(16 * MB, { chunk: 64 * 1024, pauseMs: 5 });
        const reason = new Error('client went away');
        const pending = s().put(key, source.stream, { maxBytes: 64 * MB, signal: controller.signal });
        await new Promise((r) => setTimeout(r, 40));
        controller.abort(reason);
        await expect(pending).rejects.toBe(reason);
        expect(source.ended()).toBe(false);
        await expectError(s().head(key), 'agentstore.not_found');
        expect((await s().list({ prefix: key })).items).toEqual([]);
      });

      it('a put with an already aborted signal reads nothing and stores nothing', async () => {
        const key = `${prefix()}pre-aborted`;
        await put(key, 'old');
        const source = countingSource(MB);
        const reason = new Error('cancelled');
        await expect(s().put(key, source.stream, { maxBytes: MB, signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
        expect(source.pulled()).toBeLessThan(MB);
        expect((await readAll((await s().get(key)).body)).toString()).toBe('old');
      });
    });

    describe('ranges', () => {
      const bytes = patternBytes(10_000, 9);
      let key = '';
      beforeAll(async () => {
        key = `${prefix()}ranged`;
        await put(key, bytes);
      });
      const ranged = async (start: number, end?: number) => {
        const got = await s().get(key, { range: end === undefined ? { start } : { start, end } });
        return { got, bytes: await readAll(got.body) };
      };

      it('the first byte', async () => {
        const { got, bytes: read } = await ranged(0, 0);
        expect(got.range).toEqual({ start: 0, end: 0 });
        expect(got.size).toBe(10_000);
        expect(read.equals(bytes.subarray(0, 1))).toBe(true);
      });
      it('the last byte', async () => {
        const { got, bytes: read } = await ranged(9999, 9999);
        expect(got.range).toEqual({ start: 9999, end: 9999 });
        expect(read.equals(bytes.subarray(9999))).toBe(true);
      });
      it('a middle slice, and an open end to the last byte', async () => {
        expect((await ranged(100, 199)).bytes.equals(bytes.subarray(100, 200))).toBe(true);
        const open = await ranged(9000);
        expect(open.got.range).toEqual({ start: 9000, end: 9999 });
        expect(open.bytes.equals(bytes.subarray(9000))).toBe(true);
      });
      it('an end past the last byte is clamped', async () => {
        const { got, bytes: read } = await ranged(9990, 1_000_000);
        expect(got.range).toEqual({ start: 9990, end: 9999 });
        expect(read.equals(bytes.subarray(9990))).toBe(true);
      });
      it('a start past the end is range_not_satisfiable', async () => {
        await expectError(s().get(key, { range: { start: 10_000 } }), 'agentstore.range_not_satisfiable');
        await expectError(s().get(key, { range: { start: 20_000, end: 30_000 } }), 'agentstore.range_not_satisfiable');
      });
      it('any range of a 0-byte object is range_not_satisfiable', async () => {
        const empty = `${prefix()}empty`;
        await put(empty, '');
        await expectError(s().get(empty, { range: { start: 0 } }), 'agentstore.range_not_satisfiable');
      });
    });

    describe('missing keys and delete', () => {
      it('head and get of a missing key are not_found', async () => {
        const key = `${prefix()}nothing`;
        await expectError(s().head(key), 'agentstore.not_found');
        await expectError(s().get(key), 'agentstore.not_found');
        await expectError(s().get(key, { range: { start: 0, end: 0 } }), 'agentstore.not_found');
      });

      it('delete removes the object and is idempotent', async () => {
        const p = prefix();
        await put(`${p}a/b/c`, 'deep');
        await put(`${p}a/keep`, 'sibling');
        await s().delete(`${p}a/b/c`);
        await expectError(s().head(`${p}a/b/c`), 'agentstore.not_found');
        await s().delete(`${p}a/b/c`);
        await s().delete(`${p}never/was`);
        expect((await s().list({ prefix: p })).items.map((i) => i.key)).toEqual([`${p}a/keep`]);
        await put(`${p}a/b/c`, 'again');
        expect((await readAll((await s().get(`${p}a/b/c`)).body)).toString()).toBe('again');
      });
    });

    describeListingAndKeys(s, prefix, put);

    describe('health', () => {
      it('ping resolves and the store names itself', async () => {
        await s().ping();
        expect(s().name).toMatch(/^[a-z0-9-]+$/);
        expect(typeof s().capabilities.nativePresign).toBe('boolean');
        expect(typeof s().presign === 'function').toBe(s().capabilities.nativePresign);
      });
    });

    options.additionalTests?.({ store: s, prefix });
  });
}
