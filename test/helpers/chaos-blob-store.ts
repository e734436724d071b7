/**
 * A BlobStore that fails on purpose (as Flystorage's chaos adapter): wraps a real store and
 * makes chosen methods throw a transient error the next N times, or every Nth call, before
 * or (for `put`) in the middle of reading the body. For retry and error-mapping tests.
 */
import type { Readable } from 'node:stream';
import { transientBlobError, type BlobStore } from '../../src/ports/blob-store.js';

export type ChaosMethod = 'put' | 'get' | 'head' | 'delete' | 'list' | 'ping';

export interface ChaosPlan {
  /** Fail this many of the next calls. */
  readonly times?: number;
  /**
   * Or fail every `everyNth` call, counted per key (1-based: 2 fails calls 2, 4, 6 … on each
   * key), so that a call racing others on other keys still fails at most every other attempt.
   */
  readonly everyNth?: number;
  /** `put` only: `'midway'` reads one chunk of the body first, as a connection lost mid-upload. */
  readonly when?: 'before' | 'midway';
  /** What to throw (default: a transient `agentstore.unavailable`). */
  readonly error?: () => unknown;
}

export interface ChaosBlobStore extends BlobStore {
  fail(method: ChaosMethod, plan: ChaosPlan): void;
  /** Calls that reached the wrapper, per method (failed ones included). */
  readonly calls: Record<ChaosMethod, number>;
  /** Failures thrown, per method. */
  readonly failures: Record<ChaosMethod, number>;
  reset(): void;
}

const zero = (): Record<ChaosMethod, number> => ({ put: 0, get: 0, head: 0, delete: 0, list: 0, ping: 0 });

async function readOneChunk(body: Readable): Promise<void> {
  await new Promise<void>((resolve) => {
    const onReadable = (): void => {
      body.read();
      resolve();
    };
    body.once('readable', onReadable);
    body.once('end', resolve);
  });
}

export function createChaosBlobStore(inner: BlobStore): ChaosBlobStore {
  const plans = new Map<ChaosMethod, { left: number; plan: ChaosPlan }>();
  const calls = zero();
  const perKey = new Map<string, number>();
  const failures = zero();

  async function maybeFail(method: ChaosMethod, key: string, body?: Readable): Promise<void> {
    calls[method]++;
    const counted = `${method} ${key}`;
    const nth = (perKey.get(counted) ?? 0) + 1;
    perKey.set(counted, nth);
    const entry = plans.get(method);
    if (!entry) return;
    const { plan } = entry;
    let fail = false;
    if (plan.everyNth !== undefined) fail = nth % plan.everyNth === 0;
    else if (entry.left > 0) {
      entry.left--;
      fail = true;
    }
    if (!fail) return;
    failures[method]++;
    if (body && plan.when === 'midway') await readOneChunk(body);
    throw plan.error ? plan.error() : transientBlobError(`chaos: ${method} failed`);
  }

  const chaos: ChaosBlobStore = {
    name: inner.name,
    capabilities: inner.capabilities,
    calls,
    failures,
    fail(method, plan) {
      plans.set(method, { left: plan.times ?? 0, plan });
    },
    reset() {
      plans.clear();
      perKey.clear();
      Object.assign(calls, zero());
      Object.assign(failures, zero());
    },
    async put(key, body, options) {
      await maybeFail('put', key, body);
      return inner.put(key, body, options);
    },
    async get(key, options) {
      await maybeFail('get', key);
      return inner.get(key, options);
    },
    async head(key) {
      await maybeFail('head', key);
      return inner.head(key);
    },
    async delete(key) {
      await maybeFail('delete', key);
      return inner.delete(key);
    },
    async list(options) {
      await maybeFail('list', options.prefix);
      return inner.list(options);
    },
    async ping() {
      await maybeFail('ping', '');
      return inner.ping();
    },
    close: () => inner.close(),
  };
  return chaos;
}
