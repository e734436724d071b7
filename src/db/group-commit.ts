import { performance } from 'node:perf_hooks';
import { sql, type Kysely } from 'kysely';
import type { DB } from './schema.js';

type Work = (trx: Kysely<DB>) => Promise<unknown>;

interface Job {
  readonly work: Work;
  /** Runs alone, between batches, outside the writer's transactions (see `exclusive`). */
  readonly alone?: boolean;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/** A failure during COMMIT: the outcome is unknown, so it must not be retried. */
export class CommitOutcomeUnknown extends Error {}

export interface GroupCommitter {
  /** Runs `work` in its own savepoint of the next batch; settles after the batch commits. */
  submit<T>(work: (trx: Kysely<DB>) => Promise<T>): Promise<T>;
  /**
   * Runs `work` in the writer's turn but outside its transactions: no batch runs until it
   * settles, and it runs after everything submitted before it. For work that writes through
   * another connection (a DDL worker thread), which would otherwise contend with the
   * writer's lock.
   */
  exclusive<T>(work: () => Promise<T>): Promise<T>;
  /** Refuses new work and waits until everything submitted before has been answered. */
  close(): Promise<void>;
}

// Big enough that a burst of a thousand writers needs few commits, small enough that the
// first writer of a batch does not wait long for the last.
const MAX_BATCH = 128;
// The longest a batch runs before it lets the event loop turn (see runBatch).
const SLICE_MS = 2;

/**
 * Group commit for SQLite's single writer. With `synchronous=FULL` every COMMIT is an
 * fsync (about a millisecond here, with the event loop blocked), which capped writes near
 * 1,000/s whatever the CPU. Transactions that arrive while one batch runs go into the next,
 * which commits once for all of them. Each keeps its own atomicity in a savepoint: one that
 * fails is rolled back alone and the others still commit. None is answered before the
 * COMMIT that holds it has returned, so nothing acknowledged can be lost.
 *
 * `isAborted` tells whether SQLite rolled the whole transaction back after an error (it
 * does so on I/O errors, a full disk, ...): the member that hit it fails, and every other
 * member, already run or not, goes back to the queue, as a retry would.
 */
export function createGroupCommitter(kysely: Kysely<DB>, isAborted: () => boolean, isTransient: (error: unknown) => boolean): GroupCommitter {
  const queue: Job[] = [];
  let draining = false;

  const runBatch = (batch: Job[]): Promise<void> =>
    kysely.connection().execute(async (conn) => {
      try {
        await sql.raw('begin immediate').execute(conn);
      } catch (error) {
        for (const job of batch) job.reject(error);
        return;
      }
      const done: Array<{ job: Job; value: unknown }> = [];
      // A unit's failure can depend on an earlier unit of this batch (a unique key it took):
      // it is answered after the COMMIT too, when a retry or a follow-up read can see why.
      const failed: Array<{ job: Job; error: unknown }> = [];
      const settleFailed = () => {
        for (const f of failed) f.job.reject(f.error);
      };
      let sliceStart = performance.now();
      for (let i = 0; i < batch.length; i++) {
        const job = batch[i] as Job;
        if (performance.now() - sliceStart >= SLICE_MS) {
          // A batch is all synchronous SQLite work chained by promises: run whole, it held the
          // event loop for tens of ms, during which no connection was accepted and no request
          // read. The transaction stays open across the turn; only this committer writes, and
          // reads use the other connection.
          await new Promise<void>((resolve) => setImmediate(resolve));
          sliceStart = performance.now();
        }
        try {
          await sql.raw('savepoint unit').execute(conn);
          const value = await job.work(conn);
          await sql.raw('release unit').execute(conn);
          done.push({ job, value });
        } catch (error) {
          if (isAborted()) {
            // Everything run so far is undone, so are the reasons earlier members failed
            // (a key a rolled-back member took): all but this one run again.
            job.reject(error);
            queue.unshift(...batch.slice(0, i), ...batch.slice(i + 1));
            return;
          }
          try {
            await sql.raw('rollback to unit').execute(conn);
            await sql.raw('release unit').execute(conn);
          } catch {
            // Cannot undo this unit alone: give up the batch; the others run again.
            await sql.raw('rollback').execute(conn).catch(() => undefined);
            job.reject(error);
            queue.unshift(...batch.slice(0, i), ...batch.slice(i + 1));
            return;
          }
          failed.push({ job, error });
        }
      }
      try {
        await sql.raw('commit').execute(conn);
      } catch (error) {
        await sql.raw('rollback').execute(conn).catch(() => undefined);
        const failure = isTransient(error) ? new CommitOutcomeUnknown('commit failed', { cause: error }) : error;
        for (const d of done) d.job.reject(failure);
        settleFailed();
        return;
      }
      for (const d of done) d.job.resolve(d.value);
      settleFailed();
    });

  let closed = false;
  let drained: Promise<void> = Promise.resolve();
  const drain = async (): Promise<void> => {
    try {
      while (queue.length > 0) {
        const head = queue[0] as Job;
        if (head.alone) {
          queue.shift();
          await head.work(kysely).then(head.resolve, head.reject);
          continue;
        }
        const end = queue.findIndex((job) => job.alone === true);
        const batch = queue.splice(0, Math.min(MAX_BATCH, end < 0 ? queue.length : end));
        try {
          await runBatch(batch);
        } catch (error) {
          // Only acquiring the connection throws here (the database was closed): nothing of
          // the batch ran, and no member may be left waiting.
          for (const job of [...batch, ...queue.splice(0)]) job.reject(error);
        }
      }
    } finally {
      draining = false;
    }
  };

  const enqueue = <T>(work: Work, alone: boolean): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (closed) {
        reject(new Error('the database is closed'));
        return;
      }
      queue.push({ work, alone, resolve: resolve as (value: unknown) => void, reject });
      if (!draining) {
        draining = true;
        // After the current I/O phase: the requests parsed in it join this batch.
        drained = new Promise<void>((settled) => setImmediate(() => void drain().finally(settled)));
      }
    });

  return {
    submit: <T>(work: (trx: Kysely<DB>) => Promise<T>) => enqueue<T>(work, false),
    exclusive: <T>(work: () => Promise<T>) => enqueue<T>(() => work(), true),
    async close() {
      closed = true;
      // What was submitted before close still runs and is answered.
      await drained;
    },
  };
}
