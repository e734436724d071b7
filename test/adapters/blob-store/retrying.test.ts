import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLocalDiskBlobStore } from '../../../src/adapters/blob-store/local-disk.js';
import { createRetryingBlobStore } from '../../../src/adapters/blob-store/retrying.js';
import { AgentstoreError } from '../../../src/core/errors.js';
import { isTransientBlobError, type BlobStore } from '../../../src/ports/blob-store.js';
import { describeBlobStore } from '../../conformance/blob-store.js';
import { countingSource, readAll, sha256 } from '../../conformance/blob-stream-kit.js';
import { createChaosBlobStore, type ChaosBlobStore } from '../../helpers/chaos-blob-store.js';
import { expectError } from '../../helpers/fixtures.js';

const fast = { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 };
const roots: string[] = [];
async function newRoot(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'agentstore-retry-'));
  roots.push(dir);
  return dir;
}
afterAll(async () => {
  for (const dir of roots) await rm(dir, { recursive: true, force: true });
});
const body = (text: string): Readable => Readable.from([Buffer.from(text)]);

// The retry layer must be invisible when the backend misbehaves in ways it can cure: the
// whole conformance suite, with every second call of every idempotent method failing, and
// every second put failing before it reads its body. A call can fail once more for each
// call racing it on the same key (six readers at most in the suite), hence eight attempts.
describeBlobStore('local disk behind the retry layer, every second call failing', async () => {
  const chaos = createChaosBlobStore(await createLocalDiskBlobStore({ root: await newRoot() }));
  for (const method of ['put', 'get', 'head', 'delete', 'list', 'ping'] as const) chaos.fail(method, { everyNth: 2 });
  return createRetryingBlobStore(chaos, { policy: { ...fast, attempts: 8 } });
});

describe('the retry layer', () => {
  let chaos: ChaosBlobStore;
  let store: BlobStore;
  beforeAll(async () => {
    chaos = createChaosBlobStore(await createLocalDiskBlobStore({ root: await newRoot() }));
    store = createRetryingBlobStore(chaos, { policy: fast, retryAfter: 7 });
  });
  beforeEach(() => chaos.reset());

  it('retries a transient failure and succeeds', async () => {
    await store.put('k/one', body('one'), { maxBytes: 10 });
    chaos.reset();
    chaos.fail('get', { times: 2 });
    const got = await store.get('k/one');
    expect((await readAll(got.body)).toString()).toBe('one');
    expect(chaos.calls.get).toBe(3);
  });

  it('gives up after the policy’s attempts with unavailable, Retry-After, the cause, and no transient mark', async () => {
    chaos.fail('head', { times: 5 });
    const error = await expectError(store.head('k/whatever'), 'agentstore.unavailable');
    expect(chaos.calls.head).toBe(3);
    expect(error.context.retryAfter).toBe(7);
    expect(isTransientBlobError(error)).toBe(false);
    expect(isTransientBlobError(error.cause)).toBe(true);
    expect(error.message).not.toContain('k/whatever');
  });

  it.each(['delete', 'list', 'ping'] as const)('retries %s', async (method) => {
    chaos.fail(method, { times: 2 });
    if (method === 'delete') await store.delete('k/missing');
    if (method === 'list') await store.list({ prefix: 'k/' });
    if (method === 'ping') await store.ping();
    expect(chaos.calls[method]).toBe(3);
  });

  it('does not retry what is not transient', async () => {
    await expectError(store.head('k/absent'), 'agentstore.not_found');
    expect(chaos.calls.head).toBe(1);
    chaos.fail('list', { times: 1, error: () => AgentstoreError.unavailable('disk full') });
    await expectError(store.list({ prefix: 'k/' }), 'agentstore.unavailable', { message: /disk full/ });
    expect(chaos.calls.list).toBe(1);
    await expectError(store.put('k/big', body('x'.repeat(20)), { maxBytes: 10 }), 'agentstore.payload_too_large');
    expect(chaos.calls.put).toBe(1);
  });

  it('retries a put that failed before reading its body, and stores the whole body', async () => {
    chaos.fail('put', { times: 2, when: 'before' });
    const source = countingSource(300_000);
    const stored = await store.put('k/retried', source.stream, { maxBytes: 1_000_000 });
    expect(chaos.calls.put).toBe(3);
    expect(stored.size).toBe(300_000);
    const bytes = await readAll((await store.get('k/retried')).body);
    expect(sha256(bytes)).toBe(stored.sha256);
  });

  it('never retries a put whose body was partly read, and stores nothing', async () => {
    chaos.fail('put', { times: 1, when: 'midway' });
    const source = countingSource(1_000_000, { chunk: 16 * 1024 });
    const error = await expectError(store.put('k/midway', source.stream, { maxBytes: 2_000_000 }), 'agentstore.unavailable');
    expect(chaos.calls.put).toBe(1);
    expect(source.pulled()).toBeGreaterThan(0);
    expect(isTransientBlobError(error)).toBe(false);
    chaos.reset();
    await expectError(store.head('k/midway'), 'agentstore.not_found');
  });

  it('stops retrying once the signal is aborted, with its reason', async () => {
    await store.put('k/two', body('two'), { maxBytes: 10 });
    chaos.reset();
    const controller = new AbortController();
    const reason = new Error('caller gone');
    chaos.fail('get', {
      times: 5,
      error: () => {
        controller.abort(reason);
        return new AgentstoreError('agentstore.unavailable', 'flaky', { transient: true });
      },
    });
    await expect(store.get('k/two', { signal: controller.signal })).rejects.toBe(reason);
    expect(chaos.calls.get).toBe(1);
  });

  it('keeps the name and capabilities of the store it wraps', () => {
    expect(store.name).toBe('local');
    expect(store.capabilities).toEqual(chaos.capabilities);
    expect(store.presign).toBeUndefined();
  });
});
