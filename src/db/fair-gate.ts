import { AgentstoreError } from '../core/errors.js';

/**
 * Runs work of unbounded cost (scans: listings whose filter or sort no index serves) at most
 * `concurrency` at a time, taking the waiting work round-robin by key (the tenant), so that
 * one tenant's burst of slow listings queues behind itself, not in front of everyone else.
 * Its state is bounded: a key's queue holds at most `maxQueuedPerKey` and all queues together
 * `maxQueued`; past either, the work is refused at once with 503 and `Retry-After`.
 */
export interface FairGate {
  run<T>(key: string, work: () => Promise<T>): Promise<T>;
  readonly running: number;
  readonly queued: number;
}

export interface FairGateOptions {
  readonly concurrency: number;
  readonly maxQueuedPerKey: number;
  readonly maxQueued: number;
}

interface Waiter {
  readonly start: () => void;
}

export function createFairGate(options: FairGateOptions): FairGate {
  const concurrency = Math.max(1, Math.trunc(options.concurrency));
  // Insertion order of a Map is the rotation: a key served goes to the back if it still waits.
  const queues = new Map<string, Waiter[]>();
  let running = 0;
  let queued = 0;

  const next = (): void => {
    while (running < concurrency && queues.size > 0) {
      const [key, queue] = queues.entries().next().value as [string, Waiter[]];
      queues.delete(key);
      const waiter = queue.shift() as Waiter;
      if (queue.length > 0) queues.set(key, queue);
      queued--;
      running++;
      waiter.start();
    }
  };

  return {
    get running() {
      return running;
    },
    get queued() {
      return queued;
    },
    run<T>(key: string, work: () => Promise<T>): Promise<T> {
      const queue = queues.get(key);
      if ((queue?.length ?? 0) >= options.maxQueuedPerKey || queued >= options.maxQueued) {
        return Promise.reject(AgentstoreError.unavailable('too many slow queries are waiting; retry shortly', undefined, 1));
      }
      return new Promise<T>((resolve, reject) => {
        const start = (): void => {
          let settled: Promise<T>;
          try {
            settled = work();
          } catch (error) {
            settled = Promise.reject(error instanceof Error ? error : new Error(String(error)));
          }
          settled.then(resolve, reject).finally(() => {
            running--;
            next();
          });
        };
        if (queue) queue.push({ start });
        else queues.set(key, [{ start }]);
        queued++;
        next();
      });
    },
  };
}
