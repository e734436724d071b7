/**
 * The backend loop every SQL-level suite runs in, as Kysely's test-setup `DIALECTS`:
 *
 * ```ts
 * forEachBackend('counters', (backend) => {
 *   const t = useTestStore(backend);          // one throw-away database for this block
 *   it('increments', async () => {
 *     const { ctx } = await newTenant(t.store);
 *     expect((await t.store.counters.increment(ctx, 'hits')).value).toBe(1);
 *   });
 * });
 * ```
 *
 * Backends: `sqlite` (a temp file, or `:memory:`), `postgres` (direct), `pgbouncer`
 * (PostgreSQL through pgbouncer in transaction mode, started by global-setup.ts). Narrow
 * them with `AGENTSTORE_TEST_BACKENDS=sqlite,postgres`. PostgreSQL stores connect as the
 * runtime role `agentstore_app`, which owns nothing; migrations run as `agentstore_owner`
 * (see pg-admin.ts), so row-level security is in force in every PostgreSQL test and the
 * store's role could not turn it off. A backend whose service is missing skips with the
 * reason in the suite title, except under `CI=true`, where it fails.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, inject, it } from 'vitest';
import { openStore, resolveStoreConfig, type Store, type StoreOptions } from '../../src/store.js';
import { createDatabase, type Database } from '../../src/db/database.js';
import { migrateUp } from '../../src/db/migrator.js';
import { parseDatabaseUrl } from '../../src/config/env.js';
import type { RateLimiter } from '../../src/ports/rate-limiter.js';
import { isCi, selectedBackends, type BackendAvailability, type BackendName, type ProvidedBackends } from './backend-names.js';
import { appUrl, createPgDatabase, dropPgDatabase, ownerUrl } from './pg-admin.js';

export { type BackendName } from './backend-names.js';

export interface Backend {
  readonly name: BackendName;
  /** The SQL dialect the store sees: pgbouncer is PostgreSQL to the code. */
  readonly dialect: 'sqlite' | 'postgres';
}

/** The backends selected for this run, in a stable order. */
export const BACKENDS: readonly Backend[] = selectedBackends().map((name) => ({ name, dialect: name === 'sqlite' ? 'sqlite' : 'postgres' }));

function provided(): ProvidedBackends | undefined {
  try {
    return inject('agentstoreBackends');
  } catch {
    return undefined;
  }
}

/** Whether a backend can run here; PostgreSQL ones depend on what the globalSetup found. */
export function backendAvailability(backend: Backend): BackendAvailability {
  if (backend.name === 'sqlite') return { available: true };
  const found = provided();
  if (!found) {
    // Used without our globalSetup (another vitest config): trust the environment.
    if (backend.name === 'postgres') return { available: true };
    return process.env.AGENTSTORE_TEST_PGBOUNCER_PORT
      ? { available: true }
      : { available: false, reason: 'no pgbouncer: register test/helpers/global-setup.ts or set AGENTSTORE_TEST_PGBOUNCER_PORT' };
  }
  return found[backend.name];
}

function pgbouncerPort(): number {
  const port = provided()?.pgbouncer.port ?? Number(process.env.AGENTSTORE_TEST_PGBOUNCER_PORT);
  if (!Number.isInteger(port) || port <= 0) throw new Error('pgbouncer port unknown (globalSetup did not start it)');
  return port;
}

export interface ForEachBackendOptions {
  /** Run only on these backends (for example PostgreSQL-only behaviour). */
  readonly only?: readonly BackendName[];
}

/**
 * Declares `describe('<title> [<backend>]')` once per selected backend. An unavailable
 * backend becomes a skipped block named with the reason, or under CI a failing test.
 */
export function forEachBackend(title: string, fn: (backend: Backend) => void, options: ForEachBackendOptions = {}): void {
  for (const backend of BACKENDS) {
    if (options.only && !options.only.includes(backend.name)) continue;
    const availability = backendAvailability(backend);
    const name = `${title} [${backend.name}]`;
    if (availability.available) {
      describe(name, () => fn(backend));
    } else if (isCi()) {
      describe(name, () => {
        it('has its backend available (CI=true: a missing service is a failure)', () => {
          throw new Error(`${backend.name} is unavailable: ${availability.reason ?? 'unknown reason'}`);
        });
      });
    } else {
      describe.skip(`${name} (skipped: ${availability.reason ?? 'unavailable'})`, () => fn(backend));
    }
  }
}

export interface TestDatabase {
  readonly backend: Backend;
  /** The DATABASE_URL a store uses, as the runtime role (through pgbouncer for that backend). */
  readonly url: string;
  /**
   * The AGENTSTORE_MIGRATE_DATABASE_URL: as the owner role, which migrates (through
   * pgbouncer for that backend); equals `url` on SQLite.
   */
  readonly ownerUrl: string;
  /** A direct URL as agentstore_app (never through pgbouncer); equals `url` on SQLite. */
  readonly directUrl: string;
  /** PostgreSQL database name, or the SQLite file path (`:memory:` for memory). */
  readonly name: string;
  /** Deletes the database (PostgreSQL: DROP ... WITH (FORCE); SQLite: the files). */
  drop(): Promise<void>;
}

export interface TestDatabaseOptions {
  /** SQLite only: a temp file (default, WAL like production) or `:memory:` (one store only). */
  readonly sqlite?: 'file' | 'memory';
}

/** An empty, unmigrated throw-away database on `backend`. */
export async function createTestDatabase(backend: Backend, options: TestDatabaseOptions = {}): Promise<TestDatabase> {
  if (backend.dialect === 'sqlite') {
    if (options.sqlite === 'memory') {
      return { backend, url: 'sqlite::memory:', ownerUrl: 'sqlite::memory:', directUrl: 'sqlite::memory:', name: ':memory:', drop: async () => undefined };
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentstore-test-'));
    const file = path.join(dir, 'agentstore.db');
    const url = `sqlite:${file}`;
    return { backend, url, ownerUrl: url, directUrl: url, name: file, drop: async () => fs.rmSync(dir, { recursive: true, force: true }) };
  }
  const name = await createPgDatabase();
  const directUrl = appUrl(name);
  const via = backend.name === 'pgbouncer' ? { host: '127.0.0.1', port: pgbouncerPort() } : undefined;
  const url = via ? appUrl(name, via) : directUrl;
  return { backend, url, ownerUrl: ownerUrl(name, via), directUrl, name, drop: () => dropPgDatabase(name) };
}

/**
 * A throw-away database already migrated to the latest schema, for a store opened
 * elsewhere (a server process in an e2e test, with `DATABASE_URL=database.url`).
 * The caller drops it: `await database.drop()`.
 */
export async function createMigratedTestDatabase(backend: Backend, options: TestDatabaseOptions = {}): Promise<TestDatabase> {
  if (options.sqlite === 'memory') throw new Error('an in-memory SQLite database cannot outlive the store that migrates it');
  const database = await createTestDatabase(backend, options);
  try {
    const db = openTestDb(database, { role: 'owner' });
    try {
      await migrateUp(db);
    } finally {
      await db.close();
    }
    return database;
  } catch (error) {
    await database.drop().catch(() => undefined);
    throw error;
  }
}

/**
 * A low-level `Database` handle (no migrations run) for migrator and RLS tests: as the
 * owner role by default (migrations), or as the runtime role the stores use.
 */
export function openTestDb(database: TestDatabase, options: { poolMax?: number; role?: 'owner' | 'runtime' } = {}): Database {
  return createDatabase({
    database: parseDatabaseUrl((options.role ?? 'owner') === 'owner' ? database.ownerUrl : database.url, os.tmpdir()),
    postgres: { poolMax: options.poolMax ?? 5, statementTimeoutMs: 30_000, applicationName: 'agentstore-test' },
  });
}

export interface TestStoreOptions {
  /** Any store option (auth limits, migrateOnStart, bootstrapServiceKey ...). */
  readonly store?: StoreOptions;
  /** Use this database instead of creating one; the caller then owns (and drops) it. */
  readonly database?: TestDatabase;
  readonly rateLimiter?: RateLimiter;
  readonly sqlite?: 'file' | 'memory';
  /**
   * PostgreSQL: the store gets no owner URL (the database is migrated before it opens), as a
   * server given only the runtime role's DATABASE_URL; declared indexes then go through
   * migration 0003's functions instead of CONCURRENTLY as the owner.
   */
  readonly runtimeOnly?: boolean;
}

export interface TestStore {
  readonly store: Store;
  readonly database: TestDatabase;
  /** Closes the store, and drops the database when this helper created it. */
  close(): Promise<void>;
}

/**
 * Opens a `Store` on a fresh database (or `options.database`), migrated on start. The
 * configuration is resolved from the options alone, never from the process environment,
 * so a developer's DATABASE_URL or AGENTSTORE_SERVICE_KEY cannot leak into a test.
 */
export async function openTestStore(backend: Backend, options: TestStoreOptions = {}): Promise<TestStore> {
  const owned = options.database === undefined;
  const runtimeOnly = options.runtimeOnly === true && backend.dialect === 'postgres';
  const database =
    options.database ?? (runtimeOnly ? await createMigratedTestDatabase(backend) : await createTestDatabase(backend, { sqlite: options.sqlite ?? 'file' }));
  try {
    const { bootstrapServiceKey, ...storeOptions } = options.store ?? {};
    const config = resolveStoreConfig(
      {
        dataDir: path.join(os.tmpdir(), 'agentstore-test-data'),
        migrateOnStart: !runtimeOnly,
        ...storeOptions,
        databaseUrl: database.url,
        ...(database.backend.dialect === 'postgres' && !runtimeOnly ? { migrateDatabaseUrl: database.ownerUrl } : {}),
      },
      {},
    );
    const store = await openStore(config, {
      ...(bootstrapServiceKey !== undefined ? { bootstrapServiceKey } : {}),
      ...(options.rateLimiter ? { rateLimiter: options.rateLimiter } : {}),
    });
    return {
      store,
      database,
      async close() {
        await store.close();
        if (owned) await database.drop();
      },
    };
  } catch (error) {
    if (owned) await database.drop().catch(() => undefined);
    throw error;
  }
}

/**
 * Registers beforeAll/afterAll around the enclosing describe: one store on one fresh
 * database for the whole block. Read `.store` inside tests (not at collection time).
 */
export function useTestStore(backend: Backend, options: TestStoreOptions = {}): { readonly store: Store; readonly database: TestDatabase } {
  let current: TestStore | undefined;
  beforeAll(async () => {
    current = await openTestStore(backend, options);
  });
  afterAll(async () => {
    await current?.close();
    current = undefined;
  });
  const get = (): TestStore => {
    if (!current) throw new Error('useTestStore: the store is opened in beforeAll; read it inside a test or hook');
    return current;
  };
  return {
    get store() {
      return get().store;
    },
    get database() {
      return get().database;
    },
  };
}
