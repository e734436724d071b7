import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { AgentstoreError } from '../core/errors.js';
import type { Database, Executor } from './database.js';
import { nowIso, toIso } from './dialect.js';
import { MIGRATIONS, type Migration } from './migrations/index.js';

export type MigrationState = 'applied' | 'pending' | 'changed' | 'unknown';

export interface MigrationStatus {
  readonly version: number;
  readonly name: string;
  readonly state: MigrationState;
  readonly appliedAt: string | null;
}

export interface SchemaStatus {
  /** Highest applied version (0 for an empty database). */
  readonly current: number;
  /** Highest version this code knows. */
  readonly latest: number;
  readonly migrations: readonly MigrationStatus[];
  /** True when exactly this code's migrations are applied, unchanged. */
  readonly upToDate: boolean;
}

// An arbitrary constant: the advisory lock that serialises migrators on one PostgreSQL database.
const MIGRATION_LOCK = 727_401_113;

export function checksum(migration: Migration, dialect: Database['dialect']): string {
  return createHash('sha256').update(migration.statements(dialect).join(';\n')).digest('hex');
}

async function ensureTable(db: Database): Promise<void> {
  const ts = db.dialect === 'sqlite' ? 'TEXT' : 'timestamptz';
  const ddl = sql.raw(
    `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at ${ts} NOT NULL)`,
  );
  if (db.dialect === 'sqlite') {
    await ddl.execute(db.kysely);
    return;
  }
  // IF NOT EXISTS is not race-safe on PostgreSQL: two migrators starting together on an
  // empty database both create the table's row type and one fails on pg_type's unique
  // index. The migration lock serialises them here too.
  await db.kysely.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${MIGRATION_LOCK})`.execute(trx);
    await ddl.execute(trx);
  });
}

async function tableExists(db: Database): Promise<boolean> {
  // PostgreSQL: the catalog, not information_schema, which lists only the tables the role
  // has a privilege on, and so would call a database the runtime role may not read empty.
  const query =
    db.dialect === 'sqlite'
      ? sql<{ n: number }>`select count(*) as n from sqlite_master where type = 'table' and name = 'schema_migrations'`
      : sql<{ n: number }>`select count(*)::int as n from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = current_schema() and c.relname = 'schema_migrations' and c.relkind = 'r'`;
  const { rows } = await query.execute(db.kysely);
  return Number(rows[0]?.n ?? 0) > 0;
}

async function appliedRows(db: Database) {
  try {
    return await db.kysely.selectFrom('schema_migrations').selectAll().orderBy('version').execute();
  } catch (error) {
    if ((error as { code?: unknown }).code !== '42501') throw error;
    throw new AgentstoreError(
      'agentstore.schema_mismatch',
      'this database role may not read schema_migrations: the schema predates migration 3 (least privilege), or the role is not a member of agentstore_runtime; ' +
        'run `agentstore migrate up` as the owner role (AGENTSTORE_MIGRATE_DATABASE_URL) and grant agentstore_runtime to this role (docs/operations.md)',
      {},
      { cause: error },
    );
  }
}

export async function migrationStatus(db: Database, migrations: readonly Migration[] = MIGRATIONS): Promise<SchemaStatus> {
  const applied = (await tableExists(db)) ? await appliedRows(db) : [];
  const byVersion = new Map(applied.map((row) => [Number(row.version), row]));
  const known = new Set(migrations.map((m) => m.version));
  const statuses: MigrationStatus[] = migrations.map((m) => {
    const row = byVersion.get(m.version);
    if (!row) return { version: m.version, name: m.name, state: 'pending', appliedAt: null };
    const state: MigrationState = row.checksum === checksum(m, db.dialect) ? 'applied' : 'changed';
    return { version: m.version, name: m.name, state, appliedAt: toIso(row.applied_at) };
  });
  for (const row of applied) {
    if (!known.has(Number(row.version))) {
      statuses.push({ version: Number(row.version), name: row.name, state: 'unknown', appliedAt: toIso(row.applied_at) });
    }
  }
  statuses.sort((a, b) => a.version - b.version);
  const current = applied.reduce((max, row) => Math.max(max, Number(row.version)), 0);
  const latest = migrations.reduce((max, m) => Math.max(max, m.version), 0);
  return { current, latest, migrations: statuses, upToDate: statuses.every((s) => s.state === 'applied') };
}

/** The SQL that `migrateUp` would run, for review before applying it. */
export async function migrationPlan(db: Database, migrations: readonly Migration[] = MIGRATIONS): Promise<string> {
  const status = await migrationStatus(db, migrations);
  assertNoDrift(status);
  const pending = migrations.filter((m) => status.migrations.find((s) => s.version === m.version)?.state === 'pending');
  return pending
    .map((m) => `-- ${String(m.version).padStart(4, '0')} ${m.name}\n${m.statements(db.dialect).map((s) => `${s};`).join('\n')}\n`)
    .join('\n');
}

function assertNoDrift(status: SchemaStatus): void {
  const changed = status.migrations.filter((s) => s.state === 'changed');
  if (changed.length > 0) {
    throw new AgentstoreError(
      'agentstore.schema_mismatch',
      `applied migration ${changed.map((s) => s.version).join(', ')} differs from this code's (checksum mismatch)`,
    );
  }
  const unknown = status.migrations.filter((s) => s.state === 'unknown');
  if (unknown.length > 0) {
    throw new AgentstoreError(
      'agentstore.schema_mismatch',
      `the database is at schema version ${status.current}, ahead of this code (latest ${status.latest}); upgrade agentstore`,
    );
  }
}

/**
 * SQLite: BEGIN IMMEDIATE (through `inSystem`, which also retries on SQLITE_BUSY). A
 * deferred transaction that reads schema_migrations and then writes fails at once with
 * "database is locked" when another process migrated in between, busy_timeout or not.
 */
function migrationTransaction<T>(db: Database, fn: (trx: Executor) => Promise<T>): Promise<T> {
  return db.dialect === 'sqlite' ? db.inSystem(fn) : db.kysely.transaction().execute(fn);
}

/**
 * Applies pending migrations, each in its own transaction with its bookkeeping row, up to
 * `target` (default: all). On PostgreSQL an advisory lock makes concurrent migrators wait
 * for each other instead of racing.
 */
export async function migrateUp(
  db: Database,
  options: { target?: number; migrations?: readonly Migration[] } = {},
): Promise<number[]> {
  try {
    return await applyPending(db, options);
  } catch (error) {
    // The server's role owns nothing: the usual first mistake is migrating as it.
    if ((error as { code?: unknown }).code !== '42501') throw error;
    throw new AgentstoreError(
      'agentstore.schema_mismatch',
      `this database role may not run the migrations (${(error as Error).message}): run them as the role that owns the schema, ` +
        'with AGENTSTORE_MIGRATE_DATABASE_URL set to a URL as that role (docs/operations.md, "PostgreSQL roles")',
      {},
      { cause: error },
    );
  }
}

async function applyPending(db: Database, options: { target?: number; migrations?: readonly Migration[] }): Promise<number[]> {
  const migrations = options.migrations ?? MIGRATIONS;
  // A version that names no migration would stop at an arbitrary place (or, as NaN, nowhere).
  if (options.target !== undefined && !migrations.some((m) => m.version === options.target)) {
    throw AgentstoreError.invalidField('target', `must be the version of one of this code's migrations: ${migrations.map((m) => m.version).join(', ')}`);
  }
  await ensureTable(db);
  assertNoDrift(await migrationStatus(db, migrations));
  const appliedNow: number[] = [];
  for (const migration of migrations) {
    if (options.target !== undefined && migration.version > options.target) break;
    const ran = await migrationTransaction(db, async (trx) => {
      if (db.dialect === 'postgres') await sql`select pg_advisory_xact_lock(${MIGRATION_LOCK})`.execute(trx);
      const existing = await trx
        .selectFrom('schema_migrations')
        .select('version')
        .where('version', '=', migration.version)
        .executeTakeFirst();
      if (existing) return false;
      for (const statement of migration.statements(db.dialect)) await sql.raw(statement).execute(trx);
      await trx
        .insertInto('schema_migrations')
        .values({ version: migration.version, name: migration.name, checksum: checksum(migration, db.dialect), applied_at: nowIso() })
        .execute();
      return true;
    });
    if (ran) appliedNow.push(migration.version);
  }
  return appliedNow;
}

/** Refuses to run against a schema that is behind, ahead of, or different from the code. */
export async function assertSchemaCurrent(db: Database, migrations: readonly Migration[] = MIGRATIONS): Promise<void> {
  const status = await migrationStatus(db, migrations);
  assertNoDrift(status);
  if (!status.upToDate) {
    throw new AgentstoreError(
      'agentstore.schema_mismatch',
      `the database schema is at version ${status.current}, this code needs ${status.latest}: run \`agentstore migrate up\` (or set AGENTSTORE_MIGRATE_ON_START=true)`,
    );
  }
}
