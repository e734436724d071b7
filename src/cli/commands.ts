/**
 * What the CLI's commands do, loaded by src/cli/main.ts only once the arguments parsed: the
 * database layer (Kysely, both drivers, the migrations' runner) and the store are most of a
 * command's start-up time, and `--help`, a mistyped option or a bad `--to` need none of it.
 */
import fs from 'node:fs';
import { sql } from 'kysely';
import { sqliteDatabase, type StoreConfig } from '../config/config.js';
import { loadConfig, describeBackends } from '../config/env.js';
import type { Role } from '../core/context.js';
import { AgentstoreError, isAgentstoreError } from '../core/errors.js';
import { createDatabase, type Database } from '../db/database.js';
import { migrateUp as applyMigrations, migrationPlan, migrationStatus } from '../db/migrator.js';
import { TENANT_TABLES } from '../db/schema.js';
import type { Store } from '../store.js';

function print(value: unknown): void {
  process.stdout.write(`${typeof value === 'string' ? value : JSON.stringify(value, null, 2)}\n`);
}

/**
 * The configured SQLite file when it does not exist. Opening it would create it (and its
 * directory): a read-only command (`status`, `migrate status` and `plan`, the lists) reads a
 * missing file as what it is, an empty database, and says so, instead of writing one.
 */
function missingSqliteFile(store: StoreConfig): string | undefined {
  const database = store.database;
  return database.kind === 'sqlite' && database.file !== ':memory:' && !fs.existsSync(database.file) ? database.file : undefined;
}

/** The configuration a read-only command opens: a missing SQLite file stands in as an empty in-memory database. */
function readOnlyConfig(store: StoreConfig): StoreConfig {
  return missingSqliteFile(store) === undefined ? store : { ...store, database: sqliteDatabase(':memory:') };
}

/**
 * A raw database handle. `owner`: the migration commands connect as the role that owns the
 * tables (AGENTSTORE_MIGRATE_DATABASE_URL) when one is configured, since the server's role
 * may not run DDL. `readOnly`: the command only reads (see `missingSqliteFile`).
 */
async function withDatabase<T>(fn: (db: Database) => Promise<T>, options: { owner?: boolean; readOnly?: boolean } = {}): Promise<T> {
  const configured = loadConfig().store;
  const store = options.readOnly ? readOnlyConfig(configured) : configured;
  const database = (options.owner ? store.migrateDatabase : undefined) ?? store.database;
  const db = createDatabase({ database, postgres: store.postgres, sqlite: store.sqlite });
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

/**
 * The store (every service, argon2, jose) and the HTTP server (Fastify, swagger, TypeBox) are
 * loaded only by the commands that use them: imported at the top, they were most of the
 * start-up time of every command, `status` and `migrate` included.
 *
 * `readOnly`: the lists. They neither create a missing SQLite file (it reads as an empty
 * database, migrated in memory) nor migrate a database that is behind (they refuse, naming
 * `agentstore migrate up`, as the server does without AGENTSTORE_MIGRATE_ON_START).
 */
async function withStore<T>(fn: (store: Store) => Promise<T>, options: { readOnly?: boolean } = {}): Promise<T> {
  const { openStore } = await import('../store.js');
  const configured = loadConfig().store;
  const missing = missingSqliteFile(configured) !== undefined;
  // No background expiry sweep: a command is a short-lived process beside the server, which
  // sweeps, and a read-only one must not delete anything.
  const config = { ...(options.readOnly ? { ...readOnlyConfig(configured), migrateOnStart: missing } : configured), expirySweepIntervalMs: 0 };
  let store: Store;
  try {
    store = await openStore(config);
  } catch (error) {
    if (!options.readOnly || !isAgentstoreError(error, 'agentstore.schema_mismatch')) throw error;
    // The store's refusal of a schema that is behind tells to set AGENTSTORE_MIGRATE_ON_START,
    // which is the server's setting: this command never migrates.
    const status = await withDatabase((db) => migrationStatus(db));
    if (status.current >= status.latest) throw error;
    throw new AgentstoreError('agentstore.schema_mismatch', `the database schema is at version ${status.current} of ${status.latest}, and this command only reads: run \`agentstore migrate up\` first`, {}, { cause: error });
  }
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** The line a read-only command adds when the SQLite file is not there yet. */
function printIfMissing(): void {
  const file = missingSqliteFile(loadConfig().store);
  if (file) print(`database: sqlite ${file} does not exist yet (created by \`agentstore migrate up\` or the server's start)`);
}

/** The service key acts as owner of the tenant it administers from the CLI. */
const owner = (tenantId: string) => ({ tenantId, actor: { type: 'service' as const, id: 'cli' }, role: 'owner' as const });


export async function migrateStatusCommand(): Promise<void> {
  await withDatabase(async (db) => {
    const status = await migrationStatus(db);
    print(`schema version ${status.current} of ${status.latest} (${status.upToDate ? 'up to date' : 'NOT up to date'})`);
    for (const m of status.migrations) print(`  ${String(m.version).padStart(4, '0')} ${m.name.padEnd(32)} ${m.state}${m.appliedAt ? `  ${m.appliedAt}` : ''}`);
    printIfMissing();
  }, { owner: true, readOnly: true });
}

export async function migratePlanCommand(): Promise<void> {
  await withDatabase(async (db) => {
    if (missingSqliteFile(loadConfig().store)) print('-- the database file does not exist yet: `migrate up` creates it, then runs:');
    print((await migrationPlan(db)) || '-- nothing to apply');
  }, { owner: true, readOnly: true });
}

export async function migrateUpCommand(to: number | undefined): Promise<void> {
  await withDatabase(async (db) => {
    const applied = await applyMigrations(db, to !== undefined ? { target: to } : {});
    print(applied.length ? `applied ${applied.join(', ')}` : 'nothing to apply');
  }, { owner: true });
}

/** `agentstore status`: backends, schema version and row counts; reads only. */
export async function statusCommand(): Promise<void> {
  const { store } = loadConfig();
  // There is nothing to report on yet (missingSqliteFile).
  const missing = missingSqliteFile(store);
  for (const line of describeBackends(store)) {
    if (line.startsWith('database: ') && missing) print(`database: sqlite ${missing} (does not exist yet)`);
    // What `serve` does with pending migrations, not what this command did (nothing).
    else if (line.startsWith('migrations: ')) print(`migrations: ${store.migrateOnStart ? 'pending ones are applied when the server starts' : 'the server refuses to start while any is pending'}`);
    else print(line);
  }
  const next = store.migrateOnStart ? '`agentstore serve` applies them at start, or run `agentstore migrate up`' : 'run `agentstore migrate up`';
  if (missing) {
    print(`schema: none yet (${next})`);
    return;
  }
  await withDatabase(async (db) => {
    const status = await migrationStatus(db);
    print(`schema: version ${status.current} of ${status.latest}${status.upToDate ? '' : ` (NOT up to date: ${next})`}`);
    if (status.current === 0) return;
    // On PostgreSQL, FORCE ROW LEVEL SECURITY hides every tenant row from a query without
    // a tenant context, even to the tables' owner: count tenant tables tenant by tenant.
    const count = async (trx: Database['kysely'], table: string) =>
      Number((await sql<{ n: string | number }>`select count(*) as n from ${sql.table(table)}`.execute(trx)).rows[0]?.n ?? 0);
    // `tenants` itself is visible to the system context only (migration 0003).
    const tenantIds =
      db.dialect === 'postgres' ? (await db.inSystem((trx) => trx.selectFrom('tenants').select('id').execute(), { readOnly: true })).map((t) => t.id) : undefined;
    for (const table of ['tenants', ...TENANT_TABLES]) {
      try {
        let n = 0;
        if (table === 'tenants') n = await db.inSystem((trx) => count(trx, table), { readOnly: true });
        else if (!tenantIds) n = await count(db.kysely, table);
        else for (const id of tenantIds) n += await db.inTenant(id, (trx) => count(trx, table), { readOnly: true });
        print(`  ${table.padEnd(18)} ${n}`);
      } catch {
        print(`  ${table.padEnd(18)} (not present)`);
      }
    }
  });
}

export const tenantsCreateCommand = (name: string) => withStore(async (store) => print(await store.tenants.create({ name })));

export const tenantsListCommand = (limit: string) => withStore(async (store) => print(await store.tenants.list({ limit: Number(limit) })), { readOnly: true });

export const keysCreateCommand = (opts: { tenant: string; name: string; role: string }) =>
  withStore(async (store) => {
    await store.tenants.assertExists(opts.tenant);
    print(await store.apiKeys.create(owner(opts.tenant), { name: opts.name, role: opts.role as Role }));
  });

export const keysListCommand = (tenant: string) => withStore(async (store) => print(await store.apiKeys.list(owner(tenant), { limit: 500 })), { readOnly: true });

export const keysRevokeCommand = (keyId: string, tenant: string) => withStore(async (store) => print(await store.apiKeys.revoke(owner(tenant), keyId)));

/**
 * `agentstore secrets rotate`: the counts as JSON. Secrets under a key that is not configured
 * are left as they are and make the command fail (exit 1), naming the variable that would
 * let it read them.
 */
export const secretsRotateCommand = (batchSize: number) =>
  withStore(async (store) => {
    const report = await store.agents.rotateSecrets({ batchSize });
    print(report);
    const missing = Object.keys(report.undecryptable);
    if (missing.length > 0) {
      throw AgentstoreError.config(
        'AGENTSTORE_ENCRYPTION_KEYS_OLD',
        `${Object.values(report.undecryptable).reduce((a, b) => a + b, 0)} secret(s) are under key(s) ${missing.map((id) => `"${id}"`).join(', ')}, which are not configured: add them there and run again`,
      );
    }
  });
