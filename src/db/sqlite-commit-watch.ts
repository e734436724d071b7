import type BetterSqlite3 from 'better-sqlite3';

/**
 * How often the writer connection asks SQLite whether another connection committed. The
 * bound the issue sets for another process's write to reach this one's event streams (and
 * for its revocations to take effect) is 100 ms; polling at a quarter of it leaves the rest
 * for the change-log read, the wake-up and a loaded event loop. One poll is a prepared
 * `PRAGMA data_version`: 1.1 µs on this 2-core machine when quiet, 3-5.5 µs under a load
 * average of 12 (bench/data-version.ts), so 40 a second cost 45-220 µs of CPU a second.
 */
export const COMMIT_POLL_MS = 25;

export interface CommitWatch {
  /** Calls `listener` after each poll that saw commits by other connections. */
  subscribe(listener: () => void): () => void;
  close(): void;
}

/**
 * Watches a SQLite database for commits made by *other* connections, in practice another
 * process (a script, the CLI, a second server) on the same file.
 *
 * `PRAGMA data_version` changes between two calls on one connection exactly when another
 * connection committed in between; the connection's own commits never change it. It is read
 * on the **writer**, the connection through which this process writes, so its commits, which
 * the unit of work has already announced, never show up here. (The read-only reader's value
 * moves for every one of them: every write would be seen twice.) The one other connection of
 * this process that commits is the short-lived write worker of collection deletes and index
 * builds (src/db/sqlite-write-worker.ts): those rare commits are seen, and the change
 * follower's read finds them already announced, or announces them once more (a wake-up that
 * reads nothing new; src/db/external-changes.ts counts both).
 *
 * The pragma is synchronous and may run while the group commit holds the writer inside an
 * open transaction across a turn of the event loop: it only reads the pager's counter, and
 * while this connection holds the write lock no other connection can commit, so the value
 * is as current as it can be. The timer is unref'd (a library user's script still exits) and
 * runs only while someone listens.
 */
export function watchCommits(writer: BetterSqlite3.Database, intervalMs = COMMIT_POLL_MS): CommitWatch {
  const listeners = new Set<() => void>();
  let statement: BetterSqlite3.Statement<[], number> | undefined;
  let last: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const read = (): number | undefined => {
    try {
      statement ??= writer.prepare<[], number>('PRAGMA data_version').pluck();
      return statement.get();
    } catch {
      // SQLITE_BUSY while another connection recovers the WAL, or the connection closing:
      // the next poll asks again.
      return undefined;
    }
  };

  const poll = (): void => {
    const now = read();
    if (now === undefined || now === last) return;
    const first = last === undefined;
    last = now;
    if (first) return;
    for (const listener of [...listeners]) listener();
  };

  const stop = (): void => {
    if (timer) clearInterval(timer);
    timer = undefined;
  };

  return {
    subscribe(listener) {
      if (closed) return () => undefined;
      listeners.add(listener);
      if (!timer) {
        // The baseline now: what other connections commit from here on is reported.
        last = read();
        timer = setInterval(poll, intervalMs);
        timer.unref();
      }
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0) stop();
      };
    },
    close() {
      closed = true;
      listeners.clear();
      stop();
    },
  };
}
