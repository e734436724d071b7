import { performance } from 'node:perf_hooks';

/**
 * Bounds the request work one turn of the event loop does, so that new connections keep
 * being accepted under load.
 *
 * libuv (1.45+, Node 20) accepts one connection per event-loop iteration, and an iteration
 * runs every request that arrived during the previous one. With K busy keep-alive
 * connections an iteration takes K times the cost of a request, so the n-th new connection
 * waits for n such iterations: a burst of 1000 connections on a saturated server waited in
 * the kernel's accept queue for tens of seconds, and clients timed out (docs/benchmarks.md,
 * "Accept queue"). Here a request that arrives after `budgetMs` of the current I/O phase
 * was spent on requests is queued, and the queue is worked off in slices of `budgetMs`, one
 * per iteration: each iteration stays short, accepts its connection, and the queue keeps
 * arrival order. Below the budget nothing is queued and a request costs one clock read.
 */
export interface Admission<T = never> {
  /**
   * Runs `proceed` now, or after the requests queued before it. A queued request whose
   * client has left by its turn (the `Abandonment`'s `left(subject)`) is dropped instead:
   * under overload, clients time out and retry, and work for answers nobody reads would only
   * deepen the queue.
   */
  admit(proceed: () => void, subject?: T): void;
  /** Requests waiting now. */
  readonly queued: number;
}

/** How to tell that a queued request's client left, and what to do with it then. */
export interface Abandonment<T> {
  left(subject: T): boolean;
  drop(subject: T): void;
}

/**
 * `onError`: a queued continuation that throws (it runs outside Fastify's own try/catch,
 * in a later turn) is reported here, and the queue goes on. `abandonment` acts on the
 * `subject` given with each request (the reply, in the app): a subject instead of closures
 * per request keeps the unqueued path free of allocations.
 */
export function createAdmission<T = never>(budgetMs: number, onError: (error: unknown) => void, abandonment?: Abandonment<T>): Admission<T> {
  // Drained from the front; the consumed head is cut off once it is half the array, so a
  // queue that never empties under sustained load does not grow with every request.
  let queue: Array<Queued<T>> = [];
  let head = 0;
  let phaseStart: number | undefined;
  let resetScheduled = false;
  let draining = false;

  const resetPhase = (): void => {
    resetScheduled = false;
    phaseStart = undefined;
  };

  const drain = async (): Promise<void> => {
    const start = performance.now();
    while (head < queue.length) {
      if (performance.now() - start >= budgetMs) {
        // Immediates queued from the check phase run in the next iteration, after its poll
        // phase has accepted a connection and read what arrived.
        setImmediate(run);
        return;
      }
      const next = queue[head] as Queued<T>;
      head += 1;
      if (head >= COMPACT_AFTER && head * 2 >= queue.length) {
        queue = queue.slice(head);
        head = 0;
      }
      try {
        if (abandonment && next.subject !== undefined && abandonment.left(next.subject)) abandonment.drop(next.subject);
        else next.proceed();
      } catch (error) {
        onError(error);
      }
      // Let the request's own continuations run before the clock is read again.
      await null;
    }
    queue = [];
    head = 0;
    draining = false;
  };

  // drain() catches what its continuations throw; this is for a bug of its own, which
  // must not leave `draining` set and every later request queued for good.
  const run = (): void => {
    drain().catch((error: unknown) => {
      onError(error);
      if (head < queue.length) setImmediate(run);
      else draining = false;
    });
  };

  return {
    admit(proceed, subject) {
      const now = performance.now();
      if (phaseStart === undefined) {
        phaseStart = now;
        if (!resetScheduled) {
          resetScheduled = true;
          setImmediate(resetPhase);
        }
      }
      if (head === queue.length && now - (phaseStart ?? now) < budgetMs) {
        proceed();
        return;
      }
      queue.push({ proceed, subject });
      if (!draining) {
        draining = true;
        setImmediate(run);
      }
    },
    get queued() {
      return queue.length - head;
    },
  };
}

const COMPACT_AFTER = 1024;

interface Queued<T> {
  readonly proceed: () => void;
  readonly subject: T | undefined;
}
