import { Worker } from 'node:worker_threads';
import { sqliteDriverModule } from './sqlite-driver.js';

/**
 * WAL checkpoints on a worker thread. SQLite's automatic checkpoint runs inside the COMMIT
 * of whichever write crosses `wal_autocheckpoint` pages: on our writer that is the main
 * thread, and the checkpoint copies ~1,000 pages into the database file and (at either
 * `synchronous` setting) fsyncs it, so every few dozen commits one request, and the event
 * loop of every tenant, waited several milliseconds for the disk. Measured on a conversation
 * turn (two messages, their audit and change rows): the COMMIT cost 570-600 µs on average with
 * the automatic checkpoint and ~210 µs without it.
 *
 * Here a second connection checkpoints instead. A PASSIVE checkpoint never blocks the writer
 * or the readers: it copies what no reader still needs, and the writer starts the WAL over
 * once all of it is in the database file. The worker polls `PRAGMA data_version` (a few µs)
 * and checkpoints only after some connection has committed, at most once per `intervalMs`.
 *
 * The writer keeps an automatic checkpoint at a higher threshold (`WRITER_AUTOCHECKPOINT_PAGES`)
 * as a backstop: should this worker fall behind or die, the WAL is still bounded, at the old
 * cost. Checkpoints are crash-safe whichever connection runs them, so durability is the same.
 */
export interface SqliteCheckpointer {
  close(): Promise<void>;
}

/** ~32 MB of 4 KiB pages: far more than the worker leaves between two of its checkpoints. */
export const WRITER_AUTOCHECKPOINT_PAGES = 8192;
/** The WAL file is truncated to this after it restarts, so one burst does not keep it large. */
export const JOURNAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;

// Plain JS, run with `eval` (as the scan pool's workers: a worker file beside this module
// would be .ts under the test runner and .js when built).
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Sqlite = require(workerData.module);
const db = new Sqlite(workerData.file, { fileMustExist: true });
// A checkpoint that finds the checkpoint lock taken (another process's) skips a round instead
// of waiting: the next change tries again.
db.pragma('busy_timeout = 0');
const version = db.prepare('PRAGMA data_version').pluck();
let seen = version.get();
const timer = setInterval(() => {
  try {
    const now = version.get();
    if (now === seen) return;
    seen = now;
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // A failed round (the file gone, a lock) is tried again after the next commit; meanwhile
    // the writer's backstop checkpoint bounds the WAL.
  }
}, workerData.intervalMs);
parentPort.on('message', () => {
  clearInterval(timer);
  try { db.close(); } catch {}
  parentPort.close();
});
`;

export function startSqliteCheckpointer(options: { readonly file: string; readonly intervalMs: number }): SqliteCheckpointer {
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { module: sqliteDriverModule, file: options.file, intervalMs: options.intervalMs } });
  // Never what keeps a process alive; close() ends it.
  worker.unref();
  let exited = false;
  const exit = new Promise<void>((resolve) => worker.once('exit', () => {
    exited = true;
    resolve();
  }));
  // The thread failing (the file removed under it) leaves the writer's backstop checkpoint.
  worker.on('error', () => undefined);
  return {
    async close() {
      if (exited) return;
      worker.postMessage('close');
      // Bounded: a thread stuck in a checkpoint of a huge WAL is terminated instead.
      const timer = setTimeout(() => void worker.terminate(), 5000);
      await exit;
      clearTimeout(timer);
    },
  };
}
