import { Worker } from 'node:worker_threads';
import {
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  type QueryResult,
} from 'kysely';
import { AgentstoreError } from '../core/errors.js';
import { sqliteDriverModule } from './sqlite-driver.js';

/**
 * Read-only SQLite connections on worker threads, for scans: listings whose filter or sort no
 * index serves. better-sqlite3 is synchronous, so on the main thread such a read held the
 * event loop for as long as SQLite worked (a sort by a data field of 200,000 records: ~300 ms
 * here), and every other tenant's request waited. On a worker the loop stays free.
 *
 * A scan that runs past `timeoutMs` is answered at once with 503 and its worker is replaced.
 * better-sqlite3 cannot interrupt a statement (no `sqlite3_interrupt`), and terminating a
 * worker takes effect only when its native call returns, so the abandoned thread finishes its
 * statement first. Those threads still burn a core: while `size` of them are finishing, new
 * scans are refused (503) rather than piling up more.
 */
export interface SqliteScanPool {
  executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>>;
  /** A Kysely dialect whose every query is a scan on this pool. */
  dialect(): Dialect;
  readonly stats: { readonly workers: number; readonly busy: number; readonly abandoned: number; readonly waiting: number };
  close(): Promise<void>;
}

export interface SqliteScanPoolOptions {
  readonly file: string;
  readonly size: number;
  readonly timeoutMs: number;
  readonly busyTimeoutMs: number;
}

// Plain JS, run with `eval`: a worker file next to this module would be .ts under the test
// runner and .js when built, and only the built one could be loaded by path.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Sqlite = require(workerData.module);
const db = new Sqlite(workerData.file, { readonly: true, fileMustExist: true });
db.pragma('busy_timeout = ' + workerData.busyTimeoutMs);
const cache = new Map();
parentPort.on('message', ({ id, sql, parameters }) => {
  try {
    let statement = cache.get(sql);
    if (statement) cache.delete(sql);
    else {
      statement = db.prepare(sql);
      if (cache.size >= 256) cache.delete(cache.keys().next().value);
    }
    cache.set(sql, statement);
    if (!statement.reader) throw Object.assign(new Error('a scan must be a read'), { code: 'AGENTSTORE_NOT_A_READ' });
    parentPort.postMessage({ id, rows: statement.all(parameters) });
  } catch (error) {
    parentPort.postMessage({ id, error: { message: String(error && error.message), code: error && error.code } });
  }
});
`;

interface Pending {
  readonly resolve: (rows: unknown[]) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

interface Slot {
  readonly worker: Worker;
  pending: { readonly id: number; readonly entry: Pending } | undefined;
}

interface Job {
  readonly query: CompiledQuery;
  readonly resolve: (rows: unknown[]) => void;
  readonly reject: (error: Error) => void;
}

export function scanTimeout(timeoutMs: number): AgentstoreError {
  return AgentstoreError.unavailable(
    `the query ran longer than ${timeoutMs} ms and was cancelled; declare an index on the filtered or sorted field, or narrow the filter`,
    undefined,
    1,
  );
}

export function createSqliteScanPool(options: SqliteScanPoolOptions): SqliteScanPool {
  const size = Math.max(1, Math.trunc(options.size));
  const idle: Slot[] = [];
  const slots = new Set<Slot>();
  const waiting: Job[] = [];
  let abandoned = 0;
  let nextId = 0;
  let closed = false;

  const spawn = (): void => {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { module: sqliteDriverModule, file: options.file, busyTimeoutMs: options.busyTimeoutMs },
    });
    // A worker is no reason to keep the process alive: close() ends them, and an abandoned one
    // must not hold a shutdown.
    worker.unref();
    const slot: Slot = { worker, pending: undefined };
    worker.on('message', (message: { id: number; rows?: unknown[]; error?: { message: string; code?: string } }) => {
      const pending = slot.pending;
      if (!pending || pending.id !== message.id) return;
      slot.pending = undefined;
      clearTimeout(pending.entry.timer);
      if (message.error) pending.entry.reject(Object.assign(new Error(message.error.message), { code: message.error.code }));
      else pending.entry.resolve(message.rows ?? []);
      release(slot);
    });
    // The database file missing or unreadable, or a crash of the thread: the scan fails, and a
    // new worker takes the slot.
    worker.on('error', (error) => {
      fail(slot, error);
    });
    worker.on('exit', () => {
      if (slots.has(slot)) fail(slot, new Error('a SQLite scan worker exited'));
    });
    slots.add(slot);
    idle.push(slot);
  };

  const fail = (slot: Slot, error: Error): void => {
    const pending = slot.pending;
    slot.pending = undefined;
    if (pending) {
      clearTimeout(pending.entry.timer);
      pending.entry.reject(error);
    }
    retire(slot);
  };

  /** Takes a slot out of service and, unless closing, puts a fresh worker in its place. */
  const retire = (slot: Slot): void => {
    if (!slots.delete(slot)) return;
    const at = idle.indexOf(slot);
    if (at >= 0) idle.splice(at, 1);
    abandoned++;
    void slot.worker.terminate().finally(() => {
      abandoned--;
      dispatch();
    });
    dispatch();
  };

  const release = (slot: Slot): void => {
    if (!slots.has(slot)) return;
    idle.push(slot);
    dispatch();
  };

  const dispatch = (): void => {
    // Workers are replaced when work waits, not when one is retired: a worker that cannot
    // start (the file is gone) fails the one scan it was given instead of respawning forever.
    while (!closed && idle.length === 0 && waiting.length > 0 && slots.size < size) spawn();
    while (idle.length > 0 && waiting.length > 0) {
      const slot = idle.shift() as Slot;
      const job = waiting.shift() as Job;
      const id = nextId++;
      const timer = setTimeout(() => {
        if (slot.pending?.id !== id) return;
        slot.pending = undefined;
        job.reject(scanTimeout(options.timeoutMs));
        retire(slot);
      }, options.timeoutMs);
      slot.pending = { id, entry: { resolve: job.resolve, reject: job.reject, timer } };
      slot.worker.postMessage({ id, sql: job.query.sql, parameters: job.query.parameters });
    }
  };

  for (let i = 0; i < size; i++) spawn();

  const executeQuery = <R>(query: CompiledQuery): Promise<QueryResult<R>> => {
    if (closed) return Promise.reject(new Error('the database is closed'));
    if (abandoned >= size) {
      return Promise.reject(AgentstoreError.unavailable('earlier slow queries are still being cancelled; retry shortly', undefined, 1));
    }
    return new Promise<unknown[]>((resolve, reject) => {
      waiting.push({ query, resolve, reject });
      dispatch();
    }).then((rows) => ({ rows: rows as R[] }));
  };

  const connection: DatabaseConnection = {
    executeQuery,
    // eslint-disable-next-line require-yield
    async *streamQuery() {
      throw new Error('streaming is not supported on SQLite scan connections');
    },
  };
  const driver: Driver = {
    init: async () => undefined,
    acquireConnection: async () => connection,
    beginTransaction: () => Promise.reject(new Error('scans run outside transactions')),
    commitTransaction: () => Promise.reject(new Error('scans run outside transactions')),
    rollbackTransaction: () => Promise.reject(new Error('scans run outside transactions')),
    releaseConnection: async () => undefined,
    destroy: async () => undefined,
  };

  return {
    executeQuery,
    dialect: () => ({
      createAdapter: () => new SqliteAdapter(),
      createDriver: () => driver,
      createQueryCompiler: () => new SqliteQueryCompiler(),
      createIntrospector: (db: Kysely<unknown>) => new SqliteIntrospector(db),
    }),
    get stats() {
      return { workers: slots.size, busy: slots.size - idle.length, abandoned, waiting: waiting.length };
    },
    close: async () => {
      closed = true;
      for (const job of waiting.splice(0)) job.reject(new Error('the database is closed'));
      const all = [...slots];
      slots.clear();
      idle.length = 0;
      for (const slot of all) {
        if (slot.pending) {
          clearTimeout(slot.pending.entry.timer);
          slot.pending.entry.reject(new Error('the database is closed'));
          slot.pending = undefined;
        }
      }
      await Promise.all(all.map((slot) => slot.worker.terminate()));
    },
  };
}
