import fs from 'node:fs';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { Sqlite } from './sqlite-driver.js';
import { CompiledQuery, Kysely, PostgresDialect, SqliteDialect, sql, type SqliteDatabase } from 'kysely';
import pg from 'pg';
import type { DatabaseConfig, StoreConfig } from '../config/config.js';
import { AgentstoreError } from '../core/errors.js';
import { isUuid } from '../core/ids.js';
import { DEFAULT_RETRY, withRetry, type RetryPolicy } from '../core/retry.js';
import type { DialectName } from './dialect.js';
import { isTransientDbError } from './errors.js';
import { CommitOutcomeUnknown, createGroupCommitter } from './group-commit.js';
import { postgresPoolConfig } from './postgres-connection.js';
import { createReadBatcher, KEYS } from './postgres-read-batch.js';
import { createFairGate, type FairGate } from './fair-gate.js';
import { withSqliteWriteWorker } from './sqlite-write-worker.js';
import { JOURNAL_SIZE_LIMIT_BYTES, WRITER_AUTOCHECKPOINT_PAGES, startSqliteCheckpointer } from './sqlite-checkpointer.js';
import { createSqliteScanPool, scanTimeout } from './sqlite-scan-pool.js';
import { watchCommits } from './sqlite-commit-watch.js';
import type { DB } from './schema.js';

export type Executor = Kysely<DB>;

export interface PoolStats {
  readonly total: number;
  readonly idle: number;
  readonly waiting: number;
  readonly max: number;
}

export interface TransactionOptions {
  /** Read-only work: on PostgreSQL it runs as `BEGIN READ ONLY`; on SQLite it takes no write lock. */
  readonly readOnly?: boolean;
  /**
   * PostgreSQL: plan without a sort step wherever an index gives the order
   * (`enable_sort = off` for this transaction only). For a listing with LIMIT whose order
   * an index provides but whose filter the planner cannot estimate: it guessed jsonb
   * conditions to match ~1 row, sorted the whole collection, and read 10,000 rows for 21.
   * Ignored on SQLite.
   */
  readonly indexOrder?: boolean;
  /**
   * PostgreSQL: plan index searches that a LIMIT can stop early: no sequential and no bitmap
   * scans (`enable_seqscan`, `enable_bitmapscan` off) and no JIT, for this transaction only.
   * For a read of at most N rows found through a declared index: the planner cannot estimate
   * how many rows a jsonb condition matches (statistics of partial indexes are not used), and
   * a bitmap scan reads every matching index entry before the LIMIT applies (25,000 entries
   * for 1,000 rows). JIT off because a plan that still takes a disabled path is costed past
   * the JIT threshold, and compiling it took 0.6 s. Ignored on SQLite.
   */
  readonly indexSearch?: boolean;
  /**
   * PostgreSQL: group by hashing, not by sorting (`enable_sort` off, and JIT off as for
   * `indexSearch`). For GROUP BY on jsonb expressions, whose number of groups the planner
   * cannot estimate: it sorted 100,000 rows on disk to find 5 groups (1.2 s against 0.2 s).
   * The few rows that need a sort after the grouping are still sorted. Ignored on SQLite.
   */
  readonly hashAggregate?: boolean;
  /**
   * A read whose cost the caller cannot bound: a listing whose filter or sort no index may
   * serve. Scans run through a gate that admits a few at a time, round-robin by tenant; on
   * SQLite they run on worker threads (src/db/sqlite-scan-pool.ts) instead of holding the
   * event loop, cancelled with 503 after the scan timeout. Only with `readOnly`.
   */
  readonly scan?: boolean;
  /**
   * A write whose size the caller cannot bound (deleting a collection): on SQLite the whole
   * transaction, COMMIT included, runs on a worker thread's own connection in the writer's
   * turn, so the event loop goes on (src/db/sqlite-write-worker.ts). Ignored on PostgreSQL,
   * whose work never runs on the loop, and on an in-memory SQLite database, which no other
   * thread can open.
   */
  readonly offLoop?: boolean;
}

/**
 * The SQL database handle every module receives. All tenant data goes through
 * `inTenant`, which on PostgreSQL opens a transaction and sets `app.tenant_id` for the
 * row-level security policies; `inSystem` is for tables that belong to no tenant.
 */
export interface Database {
  readonly dialect: DialectName;
  /** Direct handle: migrations, the CLI's status, and tests. Not for tenant data. */
  readonly kysely: Kysely<DB>;
  inTenant<T>(tenantId: string, fn: (trx: Executor) => Promise<T>, options?: TransactionOptions): Promise<T>;
  inSystem<T>(fn: (trx: Executor) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /**
   * A single-statement read in one round trip where the dialect allows it: on PostgreSQL
   * BEGIN, the tenant setting, the statement and COMMIT go as one simple-protocol batch
   * when every parameter is a value safe to write as a literal (see `inlineParameters`);
   * otherwise it falls back to `inTenant`. For hot, simple lookups by validated ids.
   */
  readOne<R>(tenantId: string, query: CompiledQuery<R>): Promise<R | undefined>;
  /**
   * A point read for the hottest paths, compiled once instead of built by Kysely per call:
   * on SQLite a prepared statement on the read connection, on PostgreSQL `readOne`'s one
   * round trip. `sql` per dialect, with `?` (SQLite) or `$n` (PostgreSQL) placeholders for
   * `params`; the tenant is passed apart for row-level security and must also be a param.
   */
  prepareRead<R>(sql: PointReadSql): PointRead<R>;
  /**
   * Runs DDL that can take long (a declared index's build) outside every transaction of the
   * caller and without holding the event loop. SQLite: in one transaction on a worker
   * thread's own connection, in the writer's turn (writes queue behind it; reads go on); an
   * in-memory database, which no other thread can open, runs it on the writer. PostgreSQL:
   * each statement on its own on one pooled connection, outside a transaction block, so
   * `CREATE INDEX CONCURRENTLY` may run (as a role that may run it), not retried. The
   * statements should be idempotent (IF NOT EXISTS): on SQLite a transient failure is retried.
   */
  runDdl(statements: readonly string[]): Promise<void>;
  /**
   * Present only on a SQLite file: calls `listener` within about 25 ms after another
   * connection to the file committed, in practice another process (a script, the CLI)
   * writing to the same store (src/db/sqlite-commit-watch.ts). Never for the writer's own
   * commits; this handle's short-lived write worker (`offLoop`, `runDdl`) is another
   * connection, so its rare commits are reported too. PostgreSQL has none: other
   * instances' commits are issue 15's LISTEN/NOTIFY. Returns the function that unsubscribes.
   */
  readonly onExternalCommit?: (listener: () => void) => () => void;
  ping(): Promise<void>;
  poolStats(): PoolStats;
  close(): Promise<void>;
}

/** The SQL of a point read per dialect (see `Database.prepareRead`). */
export interface PointReadSql {
  readonly sqlite: string;
  readonly postgres: string;
  /**
   * PostgreSQL: the same read for a list of values of its last parameter, with `$keys` where
   * the parenthesised list goes (`... and id in $keys`, exactly once), and the column of its
   * rows that holds that value: a text column, since a row answers the read whose key equals
   * it as a JS string. Concurrent reads of one tenant then share one SELECT.
   *
   * Both PostgreSQL texts are one statement with no `;` (not even in a literal or comment):
   * `prepareRead` throws otherwise.
   */
  readonly postgresMany?: { readonly sql: string; readonly column: string };
}

export type PointRead<R> = (tenantId: string, params: readonly (string | number)[]) => Promise<R | undefined>;

export interface DatabaseOptions {
  readonly database: DatabaseConfig;
  readonly postgres?: StoreConfig['postgres'];
  readonly sqlite?: StoreConfig['sqlite'];
  readonly retry?: RetryPolicy;
}

const defaultPostgres: StoreConfig['postgres'] = { poolMax: 10, statementTimeoutMs: 30_000, applicationName: 'agentstore' };
const defaultSqlite: StoreConfig['sqlite'] = { synchronous: 'full', busyTimeoutMs: 5000, scanWorkers: 2, scanTimeoutMs: 30_000, checkpointIntervalMs: 100 };

// Scans waiting for their turn: per tenant, and all together. Each is a request in flight or
// an event stream's read (up to AGENTSTORE_EVENTS_MAX_STREAMS_PER_TENANT of them wake at once),
// so the bound is reached only by a flood, which then gets 503 rather than a growing queue.
const SCANS_QUEUED_PER_TENANT = 256;
const SCANS_QUEUED = 4096;

function scanGate(concurrency: number): FairGate {
  return createFairGate({ concurrency, maxQueuedPerKey: SCANS_QUEUED_PER_TENANT, maxQueued: SCANS_QUEUED });
}

export function createDatabase(options: DatabaseOptions): Database {
  return options.database.kind === 'sqlite'
    ? openSqlite(options.database.file, options.sqlite ?? defaultSqlite, options.retry ?? DEFAULT_RETRY)
    : openPostgres(options.database.url, options.postgres ?? defaultPostgres, options.retry ?? DEFAULT_RETRY);
}

function retrying<T>(policy: RetryPolicy, fn: () => Promise<T>, statementTimeoutMs?: number): Promise<T> {
  return withRetry(fn, isTransientDbError, policy).catch((error: unknown) => {
    // PostgreSQL's statement_timeout (57014): the same answer as a SQLite scan past its timeout.
    if (statementTimeoutMs !== undefined && (error as { code?: unknown } | null)?.code === '57014') throw scanTimeout(statementTimeoutMs);
    // lock_timeout of the declared-index functions (0003): the shared table is busy; not retried
    // here, since every attempt would hold up every tenant's writes for as long again.
    if ((error as { code?: unknown } | null)?.code === '55P03') throw AgentstoreError.unavailable('the records table is busy with other writes; retry the index declaration shortly', error, 2);
    if (error instanceof CommitOutcomeUnknown) {
      throw AgentstoreError.unavailable('the database connection failed while committing; the outcome is unknown', error.cause);
    }
    if (isTransientDbError(error)) throw AgentstoreError.unavailable('the database is unavailable', error);
    throw error;
  });
}

async function runTransaction<T>(
  kysely: Kysely<DB>,
  begin: string,
  fn: (trx: Executor) => Promise<T>,
): Promise<T> {
  return kysely.connection().execute(async (conn) => {
    try {
      await sql.raw(begin).execute(conn);
    } catch (error) {
      // On PostgreSQL `begin` is a batch: BEGIN may have run before a later statement of it
      // failed, and the connection must not go back to the pool inside that transaction.
      await sql.raw('rollback').execute(conn).catch(() => undefined);
      throw error;
    }
    let result: T;
    try {
      result = await fn(conn);
    } catch (error) {
      await sql.raw('rollback').execute(conn).catch(() => undefined);
      throw error;
    }
    try {
      await sql.raw('commit').execute(conn);
    } catch (error) {
      await sql.raw('rollback').execute(conn).catch(() => undefined);
      throw isTransientDbError(error) ? new CommitOutcomeUnknown('commit failed', { cause: error }) : error;
    }
    return result;
  });
}

function openSqlite(file: string, options: StoreConfig['sqlite'], retry: RetryPolicy): Database {
  if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true });
  const native = new Sqlite(file);
  // busy_timeout first: the pragmas after it may themselves need to wait for a lock.
  native.pragma(`busy_timeout = ${options.busyTimeoutMs}`);
  if (file !== ':memory:') native.pragma('journal_mode = WAL');
  native.pragma(`synchronous = ${options.synchronous}`);
  native.pragma('foreign_keys = ON');
  // Checkpoints run on a worker (sqlite-checkpointer.ts); the writer's own automatic one stays
  // as a backstop at a higher threshold.
  const checkpointer = file !== ':memory:' && options.checkpointIntervalMs > 0 ? startSqliteCheckpointer({ file, intervalMs: options.checkpointIntervalMs }) : undefined;
  if (checkpointer) native.pragma(`wal_autocheckpoint = ${WRITER_AUTOCHECKPOINT_PAGES}`);
  if (file !== ':memory:') native.pragma(`journal_size_limit = ${JOURNAL_SIZE_LIMIT_BYTES}`);
  const kysely = new Kysely<DB>({ dialect: new SqliteDialect({ database: withStatementCache(native) }) });
  // Reads go to a second, read-only connection: a write transaction holds the writer
  // across awaits, and on one connection a read would either queue behind it (Kysely's
  // mutex) or, bypassing the mutex, see its uncommitted rows. In WAL mode the reader sees
  // the last commit and never waits for the writer. An in-memory database is private to
  // its connection, so there reads share the writer.
  const reader = file === ':memory:' ? undefined : openSqliteReader(file, options);
  const readKysely = reader ? new Kysely<DB>({ dialect: new SqliteDialect({ database: withStatementCache(reader) }) }) : kysely;
  const writes = createGroupCommitter(kysely, () => !native.inTransaction, isTransientDbError);
  // An in-memory database cannot be opened by another thread: there scans run on the writer.
  const scans = reader ? createSqliteScanPool({ file, size: options.scanWorkers, timeoutMs: options.scanTimeoutMs, busyTimeoutMs: options.busyTimeoutMs }) : undefined;
  const scanKysely = scans ? new Kysely<DB>({ dialect: scans.dialect() }) : readKysely;
  const gate = scanGate(options.scanWorkers);
  // Another connection can open only a file: an in-memory database is this process's alone.
  const commits = reader ? watchCommits(native) : undefined;
  const read = <T>(key: string, fn: (trx: Executor) => Promise<T>, opts: TransactionOptions | undefined): Promise<T> =>
    opts?.scan ? gate.run(key, () => retrying(retry, () => fn(scanKysely))) : retrying(retry, () => fn(readKysely));
  const worker = { file, busyTimeoutMs: options.busyTimeoutMs, synchronous: options.synchronous };
  const write = <T>(fn: (trx: Executor) => Promise<T>, opts: TransactionOptions | undefined): Promise<T> =>
    retrying(retry, () =>
      opts?.offLoop && reader
        ? writes.exclusive(() => withSqliteWriteWorker(worker, (offLoop) => runTransaction(offLoop, 'begin immediate', fn)))
        : writes.submit(fn),
    );
  return {
    dialect: 'sqlite',
    kysely,
    // SQLite has no RLS; tenancy is the services' filters. A read needs no transaction:
    // each statement sees a committed snapshot.
    inTenant: (tenantId, fn, opts) => {
      assertTenantId(tenantId);
      return opts?.readOnly ? read(tenantId, fn, opts) : write(fn, opts);
    },
    inSystem: (fn, opts) => (opts?.readOnly ? read('', fn, opts) : write(fn, opts)),
    readOne: async <R>(tenantId: string, query: CompiledQuery<R>) => {
      assertTenantId(tenantId);
      return (await retrying(retry, () => readKysely.executeQuery(query))).rows[0];
    },
    prepareRead: <R>(sqlBy: PointReadSql): PointRead<R> => {
      if (!reader) return async (tenantId, params) => {
        assertTenantId(tenantId);
        return (await retrying(retry, () => kysely.executeQuery(CompiledQuery.raw(sqlBy.sqlite, [...params])))).rows[0] as R | undefined;
      };
      // Prepared on first use: the table may not exist before migrations ran.
      let statement: BetterSqlite3.Statement<unknown[], R> | undefined;
      const run = (params: readonly (string | number)[]): R | undefined => {
        statement ??= reader.prepare<unknown[], R>(sqlBy.sqlite);
        return statement.get(...params);
      };
      return (tenantId, params) => {
        try {
          assertTenantId(tenantId);
          return Promise.resolve(run(params));
        } catch (error) {
          // Synchronous and uncontended is the common case; only a transient failure
          // (SQLITE_BUSY past the busy timeout) takes the retrying path.
          return isTransientDbError(error) ? retrying(retry, async () => run(params)) : Promise.reject(error instanceof Error ? error : new Error(String(error)));
        }
      };
    },
    runDdl: (statements) =>
      write(
        async (trx) => {
          for (const statement of statements) await sql.raw(statement).execute(trx);
        },
        { offLoop: true },
      ),
    ...(commits ? { onExternalCommit: commits.subscribe } : {}),
    ping: async () => {
      await sql`select 1`.execute(kysely);
    },
    poolStats: () => ({ total: 1, idle: 1, waiting: 0, max: 1 }),
    close: async () => {
      // First: a poll on the writer after it closed would only fail.
      commits?.close();
      try {
        await writes.close();
        // Before the writer: the last connection to close checkpoints and removes the WAL.
        await checkpointer?.close();
        await kysely.destroy();
      } finally {
        if (readKysely !== kysely) await readKysely.destroy();
        await scans?.close();
      }
    },
  };
}

function openSqliteReader(file: string, options: StoreConfig['sqlite']): BetterSqlite3.Database {
  const reader = new Sqlite(file, { readonly: true, fileMustExist: true });
  reader.pragma(`busy_timeout = ${options.busyTimeoutMs}`);
  return reader;
}

// Kysely's SQLite driver prepares every query anew; preparing is ~10% of a primary-key
// read. Statements are reusable on the one connection (Kysely never runs two at once on
// it), so keep the most recent ones by SQL text.
const STATEMENT_CACHE_SIZE = 512;

function withStatementCache(native: BetterSqlite3.Database): SqliteDatabase {
  const cache = new Map<string, BetterSqlite3.Statement>();
  return {
    close: () => void native.close(),
    prepare(sqlText: string) {
      let statement = cache.get(sqlText);
      if (statement) {
        // Map order is insertion order: re-inserting makes this the most recent.
        cache.delete(sqlText);
      } else {
        statement = native.prepare(sqlText);
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value as string);
      }
      cache.set(sqlText, statement);
      return statement as unknown as ReturnType<SqliteDatabase['prepare']>;
    },
  };
}

// Values of a quote-free alphabet (ids, names, UUIDs) and finite numbers are written as
// literals exactly; anything else (quotes, backslashes, JSON) keeps the bound-parameter path.
const LITERAL_SAFE = /^[A-Za-z0-9_.:@-]{0,256}$/;

/** Each value as a SQL literal, or undefined when one is not safe to write as one. */
function literalsOf(values: readonly unknown[]): string[] | undefined {
  const literals: string[] = [];
  for (const value of values) {
    if (typeof value === 'string' && LITERAL_SAFE.test(value)) literals.push(`'${value}'`);
    else if (typeof value === 'number' && Number.isFinite(value)) literals.push(String(value));
    else return undefined;
  }
  return literals;
}

/**
 * SQL split at its `$n` placeholders once, so that writing literals into it is a
 * concatenation: prepared reads render their SQL per call, and scanning it with a regular
 * expression each time showed in the server's profile under PostgreSQL get-by-id load.
 */
interface SqlTemplate {
  readonly parts: readonly string[];
  /** Zero-based parameter index of each placeholder; `parts` has one more element. */
  readonly refs: readonly number[];
  /** The highest parameter index referenced, -1 for none. */
  readonly maxRef: number;
}

function compileTemplate(sql: string): SqlTemplate {
  const parts: string[] = [];
  const refs: number[] = [];
  let last = 0;
  for (const match of sql.matchAll(/\$(\d+)/g)) {
    parts.push(sql.slice(last, match.index));
    refs.push(Number(match[1]) - 1);
    last = match.index + match[0].length;
  }
  parts.push(sql.slice(last));
  return { parts, refs, maxRef: Math.max(-1, ...refs) };
}

/** `template` with `literals` in its placeholders; the caller checked `maxRef < literals.length`. */
function render(template: SqlTemplate, literals: readonly string[]): string {
  let text = template.parts[0] as string;
  for (let i = 0; i < template.refs.length; i++) text += (literals[template.refs[i] as number] as string) + (template.parts[i + 1] as string);
  return text;
}

/** The query with its $n parameters written as literals, or undefined when one is not safe to. */
export function inlineParameters(query: CompiledQuery): string | undefined {
  const literals = literalsOf(query.parameters);
  if (!literals) return undefined;
  const template = compileTemplate(query.sql);
  if (template.maxRef >= literals.length || template.refs.some((ref) => ref < 0)) return undefined;
  const text = render(template, literals);
  return text.includes(';') ? undefined : text;
}

function assertTenantId(tenantId: string): void {
  // The id is inlined into the BEGIN batch below, so it must be exactly a UUID.
  if (!isUuid(tenantId)) throw AgentstoreError.invalidField('tenantId', 'must be a UUID');
}

function openPostgres(url: string, options: StoreConfig['postgres'], retry: RetryPolicy): Database {
  const pool = new pg.Pool(postgresPoolConfig(url, options));
  // An idle client whose server went away emits 'error' on the pool; without a listener
  // Node would crash. pg drops that client, and the next checkout opens a fresh one.
  pool.on('error', () => undefined);
  // The pool listens only to idle clients: one whose server goes away while it is checked
  // out but between queries would emit 'error' with no listener and crash the process.
  // Its next query fails as transient and is retried on a fresh client.
  pool.on('connect', (client) => client.on('error', () => undefined));
  const kysely = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
  // close() lets the work already started finish (and be answered) before the pool ends;
  // work started after it fails at once instead of on a destroyed pool.
  let closed = false;
  const inflight = new Set<Promise<unknown>>();
  const tracked = <T>(fn: () => Promise<T>): Promise<T> => {
    if (closed) return Promise.reject(new Error('the database is closed'));
    const work = retrying(retry, fn, options.statementTimeoutMs);
    inflight.add(work);
    const forget = () => void inflight.delete(work);
    work.then(forget, forget);
    return work;
  };
  const timeout = Math.trunc(options.statementTimeoutMs);
  // One round trip opens the transaction and sets everything that must not outlive it:
  // behind pgbouncer in transaction mode there is no session state to rely on.
  // The system context (`inSystem`) is a distinct setting, not an empty tenant: the
  // policies of `tenants` and `service_keys` admit it, and no tenant table's does.
  const begin = (tenant: string, opts: TransactionOptions | undefined, system?: boolean) =>
    `begin${opts?.readOnly ? ' read only' : ''}; select set_config('app.tenant_id', '${tenant}', true), set_config('statement_timeout', '${timeout}', true)${
      opts?.indexOrder ? ", set_config('enable_sort', 'off', true)" : ''
    }${opts?.indexSearch ? ", set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true), set_config('jit', 'off', true)" : ''}${
      opts?.hashAggregate ? ", set_config('enable_sort', 'off', true), set_config('jit', 'off', true)" : ''
    }${
      system ? ", set_config('app.system', 'on', true)" : ''
    }`;
  // A batch of statements on one client; a failed statement leaves the transaction open
  // and aborted, so it is rolled back before the client goes back to the pool.
  const runBatch = (text: string): Promise<pg.QueryResult[]> =>
    tracked(async () => {
      const client = await pool.connect();
      try {
        return (await client.query(text)) as unknown as pg.QueryResult[];
      } catch (error) {
        await client.query('rollback').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    });
  // Three round trips (BEGIN+settings, SELECT, COMMIT) were most of a read's time: one.
  const readInlined = async <R>(tenantId: string, text: string): Promise<R | undefined> =>
    (await runBatch(`${begin(tenantId, { readOnly: true })}; ${text}; commit`))[2]?.rows[0] as R | undefined;
  const batcher = createReadBatcher({ pool, statementTimeoutMs: timeout, run: runBatch, single: readInlined });
  let nextShape = 0;
  // Half the pool at most for scans: point reads and writes of every tenant keep connections.
  const gate = scanGate(Math.max(1, Math.floor(options.poolMax / 2)));
  const transaction = <T>(tenantId: string, fn: (trx: Executor) => Promise<T>, opts: TransactionOptions | undefined, system = false): Promise<T> => {
    const run = () => tracked(() => runTransaction(kysely, begin(tenantId, opts, system), fn));
    return opts?.scan && opts.readOnly ? gate.run(tenantId, run) : run();
  };
  const database: Database = {
    dialect: 'postgres',
    kysely,
    inTenant: (tenantId, fn, opts) => {
      assertTenantId(tenantId);
      return transaction(tenantId, fn, opts);
    },
    inSystem: (fn, opts) => transaction('', fn, opts, true),
    readOne: <R>(tenantId: string, query: CompiledQuery<R>) => {
      assertTenantId(tenantId);
      const text = inlineParameters(query);
      if (text === undefined) return tracked(() => runTransaction(kysely, begin(tenantId, { readOnly: true }), async (trx) => (await trx.executeQuery(query)).rows[0]));
      return readInlined<R>(tenantId, text);
    },
    prepareRead: <R>(sqlBy: PointReadSql): PointRead<R> => {
      const many = sqlBy.postgresMany;
      if (many && many.sql.split(KEYS).length !== 2) throw new Error(`postgresMany.sql must hold ${KEYS} exactly once: ${many.sql}`);
      // Checked once here, where inlineParameters checks each text: literals hold no ';'.
      for (const text of [sqlBy.postgres, many?.sql ?? '']) if (text.includes(';')) throw new Error(`a point read is one statement: ${text}`);
      const single = compileTemplate(sqlBy.postgres);
      const list = many && compileTemplate(many.sql);
      for (const [template, text] of [[single, sqlBy.postgres], [list, many?.sql]] as const) {
        if (template?.refs.some((ref) => ref < 0)) throw new Error(`placeholders count from $1: ${text}`);
      }
      const shape = String(nextShape++);
      return (tenantId, params) => {
        assertTenantId(tenantId);
        const literals = literalsOf(params);
        if (literals === undefined || single.maxRef >= literals.length) return database.readOne(tenantId, CompiledQuery.raw(sqlBy.postgres, [...params]) as CompiledQuery<R>);
        // The texts are written only when the batch needs them: the single SELECT for a read
        // that shares no statement, the list SELECT once per group.
        const text = () => render(single, literals);
        const key = params[params.length - 1];
        // The other values as literals, the list left to the batcher; `$keys` cannot occur in
        // a literal (no `$` is literal-safe).
        if (!many || !list || typeof key !== 'string' || list.maxRef >= literals.length - 1) return batcher.read<R>(tenantId, text);
        const others = literals.slice(0, -1);
        return batcher.read<R>(tenantId, text, { shape: `${shape}\u0000${others.join('\u0000')}`, column: many.column, key, sql: () => render(list, others) });
      };
    },
    runDdl: async (statements) => {
      if (closed) throw new Error('the database is closed');
      const client = await pool.connect().catch((error: unknown) => {
        throw isTransientDbError(error) ? AgentstoreError.unavailable('the database is unavailable', error) : error;
      });
      let failed = false;
      try {
        // Outside a transaction no per-transaction timeout applies: the session's, for the
        // DDL only (behind a transaction pooler it may land on another server connection of
        // this role, which is why the owner's URL should be a direct one).
        await client.query(`set statement_timeout = ${timeout}`);
        for (const statement of statements) await client.query(statement);
        await client.query('reset statement_timeout');
      } catch (error) {
        failed = true;
        throw isTransientDbError(error) ? AgentstoreError.unavailable('the database is unavailable', error) : error;
      } finally {
        // A failed client still holds the session's timeout: it is closed, not pooled.
        client.release(failed);
      }
    },
    ping: () => tracked(async () => void (await sql`select 1`.execute(kysely))),
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: options.poolMax }),
    close: async () => {
      closed = true;
      await Promise.allSettled([...inflight]);
      await kysely.destroy();
    },
  };
  return database;
}
