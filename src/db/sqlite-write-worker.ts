import { Worker } from 'node:worker_threads';
import {
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type CompiledQuery,
  type DatabaseConnection,
  type Driver,
  Kysely,
  type QueryResult,
} from 'kysely';
import { sqliteDriverModule } from './sqlite-driver.js';
import type { DB } from './schema.js';

/**
 * A writable SQLite connection on a short-lived worker thread, for a write transaction whose
 * size the caller cannot bound (deleting a collection of any size). better-sqlite3 is
 * synchronous: on the main thread's writer the statements, and the COMMIT that writes and
 * syncs every changed page (~180 ms for 200,000 records here), held the event loop.
 *
 * The caller holds the writer's turn (GroupCommitter.exclusive), so this connection's write
 * lock never makes the main writer wait synchronously in busy_timeout.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Sqlite = require(workerData.module);
const db = new Sqlite(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = ' + workerData.busyTimeoutMs);
db.pragma('synchronous = ' + workerData.synchronous);
db.pragma('foreign_keys = ON');
const cache = new Map();
parentPort.on('message', ({ id, sql, parameters }) => {
  if (id === -1) {
    db.close();
    parentPort.close();
    return;
  }
  try {
    let statement = cache.get(sql);
    if (!statement) {
      statement = db.prepare(sql);
      cache.set(sql, statement);
    }
    if (statement.reader) parentPort.postMessage({ id, rows: statement.all(parameters) });
    else {
      const info = statement.run(parameters);
      parentPort.postMessage({ id, rows: [], changes: BigInt(info.changes), lastInsertRowid: BigInt(info.lastInsertRowid) });
    }
  } catch (error) {
    parentPort.postMessage({ id, error: { message: String(error && error.message), code: error && error.code } });
  }
});
`;

interface Reply {
  readonly id: number;
  readonly rows?: unknown[];
  readonly changes?: bigint;
  readonly lastInsertRowid?: bigint;
  readonly error?: { message: string; code?: string };
}

export interface SqliteWriteWorkerOptions {
  readonly file: string;
  readonly busyTimeoutMs: number;
  readonly synchronous: string;
}

/** Runs `fn` with a Kysely on one worker-thread connection, then ends the thread. */
export async function withSqliteWriteWorker<T>(options: SqliteWriteWorkerOptions, fn: (kysely: Kysely<DB>) => Promise<T>): Promise<T> {
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { module: sqliteDriverModule, file: options.file, busyTimeoutMs: options.busyTimeoutMs, synchronous: options.synchronous },
  });
  const pending = new Map<number, { resolve: (reply: Reply) => void; reject: (error: Error) => void }>();
  let failure: Error | undefined;
  let exited = false;
  const failAll = (error: Error) => {
    failure ??= error;
    for (const p of pending.values()) p.reject(error);
    pending.clear();
  };
  worker.on('message', (reply: Reply) => {
    const p = pending.get(reply.id);
    pending.delete(reply.id);
    p?.resolve(reply);
  });
  worker.on('error', failAll);
  worker.on('exit', (code) => {
    exited = true;
    failAll(new Error(`the SQLite write worker exited with code ${code}`));
  });
  let nextId = 0;
  const executeQuery = async <R>(query: CompiledQuery): Promise<QueryResult<R>> => {
    if (failure) throw failure;
    const id = nextId++;
    const reply = await new Promise<Reply>((resolve, reject) => {
      pending.set(id, { resolve, reject });
      worker.postMessage({ id, sql: query.sql, parameters: query.parameters });
    });
    if (reply.error) throw Object.assign(new Error(reply.error.message), { code: reply.error.code });
    return reply.changes === undefined
      ? { rows: (reply.rows ?? []) as R[] }
      : { rows: [], numAffectedRows: reply.changes, ...(reply.lastInsertRowid !== undefined ? { insertId: reply.lastInsertRowid } : {}) };
  };
  const connection: DatabaseConnection = {
    executeQuery,
    // eslint-disable-next-line require-yield
    async *streamQuery() {
      throw new Error('streaming is not supported on the SQLite write worker');
    },
  };
  // Transactions are written as SQL by the caller (BEGIN IMMEDIATE ... COMMIT), as on the writer.
  const driver: Driver = {
    init: async () => undefined,
    acquireConnection: async () => connection,
    beginTransaction: () => Promise.reject(new Error('begin the transaction with SQL')),
    commitTransaction: () => Promise.reject(new Error('commit the transaction with SQL')),
    rollbackTransaction: () => Promise.reject(new Error('roll the transaction back with SQL')),
    releaseConnection: async () => undefined,
    destroy: async () => undefined,
  };
  const kysely = new Kysely<DB>({
    dialect: {
      createAdapter: () => new SqliteAdapter(),
      createDriver: () => driver,
      createQueryCompiler: () => new SqliteQueryCompiler(),
      createIntrospector: (db: Kysely<unknown>) => new SqliteIntrospector(db),
    },
  });
  try {
    return await fn(kysely);
  } finally {
    if (!exited) {
      // Closed by its own hand, so that the connection is closed before the thread ends.
      const gone = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      worker.postMessage({ id: -1 });
      await gone;
    }
  }
}
