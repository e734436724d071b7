import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql, type CompiledQuery, type SqliteDatabase } from 'kysely';
import pg from 'pg';
import type { DatabaseConfig, StoreConfig } from '../config/config.js';
import { AgentstoreError } from '../core/errors.js';
import { isUuid } from '../core/ids.js';
import { DEFAULT_RETRY, withRetry, type RetryPolicy } from '../core/retry.js';
import type { DialectName } from './dialect.js';
import { isTransientDbError } from './errors.js';
import { postgresPoolConfig } from './postgres-connection.js';
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
  ping(): Promise<void>;
  poolStats(): PoolStats;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  readonly database: DatabaseConfig;
  readonly postgres?: StoreConfig['postgres'];
  readonly sqlite?: StoreConfig['sqlite'];
  readonly retry?: RetryPolicy;
}

const defaultPostgres: StoreConfig['postgres'] = { poolMax: 10, statementTimeoutMs: 30_000, applicationName: 'agentstore' };
const defaultSqlite: StoreConfig['sqlite'] = { synchronous: 'full', busyTimeoutMs: 5000 };

/** Marks a failure during COMMIT: the outcome is unknown, so it must not be retried. */
class CommitOutcomeUnknown extends Error {}

export function createDatabase(options: DatabaseOptions): Database {
  return options.database.kind === 'sqlite'
    ? openSqlite(options.database.file, options.sqlite ?? defaultSqlite, options.retry ?? DEFAULT_RETRY)
    : openPostgres(options.database.url, options.postgres ?? defaultPostgres, options.retry ?? DEFAULT_RETRY);
}

function retrying<T>(policy: RetryPolicy, fn: () => Promise<T>): Promise<T> {
  return withRetry(fn, isTransientDbError, policy).catch((error: unknown) => {
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
    await sql.raw(begin).execute(conn);
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
  const native = new BetterSqlite3(file);
  // busy_timeout first: the pragmas after it may themselves need to wait for a lock.
  native.pragma(`busy_timeout = ${options.busyTimeoutMs}`);
  if (file !== ':memory:') native.pragma('journal_mode = WAL');
  native.pragma(`synchronous = ${options.synchronous}`);
  native.pragma('foreign_keys = ON');
  const kysely = new Kysely<DB>({ dialect: new SqliteDialect({ database: withStatementCache(native) }) });
  return {
    dialect: 'sqlite',
    kysely,
    // SQLite has no RLS; tenancy is the services' filters. A read needs no transaction:
    // better-sqlite3 is one connection and each statement sees a committed snapshot.
    inTenant: (tenantId, fn, opts) => {
      assertTenantId(tenantId);
      return opts?.readOnly ? retrying(retry, () => fn(kysely)) : retrying(retry, () => runTransaction(kysely, 'begin immediate', fn));
    },
    inSystem: (fn, opts) =>
      opts?.readOnly ? retrying(retry, () => fn(kysely)) : retrying(retry, () => runTransaction(kysely, 'begin immediate', fn)),
    readOne: async <R>(tenantId: string, query: CompiledQuery<R>) => {
      assertTenantId(tenantId);
      return (await retrying(retry, () => kysely.executeQuery(query))).rows[0];
    },
    ping: async () => {
      await sql`select 1`.execute(kysely);
    },
    poolStats: () => ({ total: 1, idle: 1, waiting: 0, max: 1 }),
    close: () => kysely.destroy(),
  };
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

/** The query with its $n parameters written as literals, or undefined when one is not safe to. */
export function inlineParameters(query: CompiledQuery): string | undefined {
  const literals: string[] = [];
  for (const value of query.parameters) {
    if (typeof value === 'string' && LITERAL_SAFE.test(value)) literals.push(`'${value}'`);
    else if (typeof value === 'number' && Number.isFinite(value)) literals.push(String(value));
    else return undefined;
  }
  let unsafe = false;
  const text = query.sql.replace(/\$(\d+)/g, (_match, n: string) => {
    const literal = literals[Number(n) - 1];
    if (literal === undefined) unsafe = true;
    return literal ?? '';
  });
  return unsafe || text.includes(';') ? undefined : text;
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
  const timeout = Math.trunc(options.statementTimeoutMs);
  // One round trip opens the transaction and sets everything that must not outlive it:
  // behind pgbouncer in transaction mode there is no session state to rely on.
  const begin = (tenant: string, readOnly: boolean | undefined) =>
    `begin${readOnly ? ' read only' : ''}; select set_config('app.tenant_id', '${tenant}', true), set_config('statement_timeout', '${timeout}', true)`;
  return {
    dialect: 'postgres',
    kysely,
    inTenant: (tenantId, fn, opts) => {
      assertTenantId(tenantId);
      return retrying(retry, () => runTransaction(kysely, begin(tenantId, opts?.readOnly), fn));
    },
    inSystem: (fn, opts) => retrying(retry, () => runTransaction(kysely, begin('', opts?.readOnly), fn)),
    readOne: <R>(tenantId: string, query: CompiledQuery<R>) => {
      assertTenantId(tenantId);
      const text = inlineParameters(query);
      if (text === undefined) return retrying(retry, () => runTransaction(kysely, begin(tenantId, true), async (trx) => (await trx.executeQuery(query)).rows[0]));
      return retrying(retry, async () => {
        const client = await pool.connect();
        try {
          // Three round trips (BEGIN+settings, SELECT, COMMIT) were most of a read's time.
          const results = (await client.query(`${begin(tenantId, true)}; ${text}; commit`)) as unknown as pg.QueryResult[];
          return results[2]?.rows[0] as R | undefined;
        } catch (error) {
          // A failed statement leaves the batch's transaction open and aborted.
          await client.query('rollback').catch(() => undefined);
          throw error;
        } finally {
          client.release();
        }
      });
    },
    ping: () => retrying(retry, async () => void (await sql`select 1`.execute(kysely))),
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: options.poolMax }),
    close: () => kysely.destroy(),
  };
}
