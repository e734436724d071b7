import fs from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { sql } from 'kysely';
import { loadConfig, describeBackends } from '../config/env.js';
import type { Role } from '../core/context.js';
import { isAgentstoreError } from '../core/errors.js';
import { createDatabase, type Database } from '../db/database.js';
import { MIGRATIONS } from '../db/migrations/index.js';
import { migrateUp, migrationPlan, migrationStatus } from '../db/migrator.js';
import { TENANT_TABLES } from '../db/schema.js';
import { DEFAULT_API_KEY_ROLE } from '../modules/tenancy/api-keys-service.js';
import type { Store } from '../store.js';

function print(value: unknown): void {
  process.stdout.write(`${typeof value === 'string' ? value : JSON.stringify(value, null, 2)}\n`);
}

/**
 * A raw database handle. `owner`: the migration commands connect as the role that owns the
 * tables (AGENTSTORE_MIGRATE_DATABASE_URL) when one is configured, since the server's role
 * may not run DDL.
 */
async function withDatabase<T>(fn: (db: Database) => Promise<T>, options: { owner?: boolean } = {}): Promise<T> {
  const { store } = loadConfig();
  const database = (options.owner ? store.migrateDatabase : undefined) ?? store.database;
  const db = createDatabase({ database, postgres: store.postgres, sqlite: store.sqlite });
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

// The store (every service, argon2, jose) and the HTTP server (Fastify, swagger, TypeBox) are
// loaded only by the commands that use them: imported at the top, they were most of the
// start-up time of every command, `status` and `migrate` included.
async function withStore<T>(fn: (store: Store) => Promise<T>): Promise<T> {
  const { openStore } = await import('../store.js');
  const store = await openStore(loadConfig().store);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** The service key acts as owner of the tenant it administers from the CLI. */
const owner = (tenantId: string) => ({ tenantId, actor: { type: 'service' as const, id: 'cli' }, role: 'owner' as const });

/** `--to`: a version this code has; anything else (`abc` was NaN, which applied every migration) is refused. */
function parseVersion(value: string): number {
  const version = Number(value);
  if (!/^\d+$/.test(value) || version < 1 || version > MIGRATIONS.length) {
    throw new InvalidArgumentError(`must be a migration version from 1 to ${MIGRATIONS.length}`);
  }
  return version;
}

const program = new Command()
  .name('agentstore')
  .description('agentstore: storage backend for AI-agent platforms')
  .showHelpAfterError();

program
  .command('serve')
  .description('start the HTTP server (configured by the environment)')
  .action(async () => (await import('./serve.js')).serve());

const migrate = program.command('migrate').description('schema migrations');
migrate
  .command('status')
  .description('applied and pending migrations')
  .action(() =>
    withDatabase(async (db) => {
      const status = await migrationStatus(db);
      print(`schema version ${status.current} of ${status.latest} (${status.upToDate ? 'up to date' : 'NOT up to date'})`);
      for (const m of status.migrations) print(`  ${String(m.version).padStart(4, '0')} ${m.name.padEnd(32)} ${m.state}${m.appliedAt ? `  ${m.appliedAt}` : ''}`);
    }, { owner: true }),
  );
migrate
  .command('plan')
  .description('print the SQL that `migrate up` would run')
  .action(() => withDatabase(async (db) => print((await migrationPlan(db)) || '-- nothing to apply'), { owner: true }));
migrate
  .command('up')
  .description('apply pending migrations, each in its own transaction')
  .option('--to <version>', 'stop at this version', parseVersion)
  .action((opts: { to?: number }) =>
    withDatabase(async (db) => {
      const applied = await migrateUp(db, opts.to !== undefined ? { target: opts.to } : {});
      print(applied.length ? `applied ${applied.join(', ')}` : 'nothing to apply');
    }, { owner: true }),
  );

program
  .command('status')
  .description('backends, schema version and row counts (reads only: creates and migrates nothing)')
  .action(async () => {
    const { store } = loadConfig();
    const sqliteFile = store.database.kind === 'sqlite' && store.database.file !== ':memory:' ? store.database.file : undefined;
    // Opening a SQLite file that is not there would create it (and its directory): a status
    // that writes. There is nothing to report on yet.
    const missing = sqliteFile !== undefined && !fs.existsSync(sqliteFile);
    for (const line of describeBackends(store)) {
      if (line.startsWith('database: ') && missing) print(`database: sqlite ${sqliteFile} (does not exist yet)`);
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
  });

const tenants = program.command('tenants').description('tenants');
tenants
  .command('create <name>')
  .description('create a tenant')
  .action((name: string) => withStore(async (store) => print(await store.tenants.create({ name }))));
tenants
  .command('list')
  .description('list tenants')
  .option('--limit <n>', 'page size', '100')
  .action((opts: { limit: string }) => withStore(async (store) => print(await store.tenants.list({ limit: Number(opts.limit) }))));

const keys = program.command('keys').description("a tenant's API keys");
keys
  .command('create')
  .requiredOption('--tenant <id>', 'tenant id')
  .requiredOption('--name <name>', 'a name to recognise the key by')
  .option('--role <role>', 'owner | admin | member | viewer (admin and owner manage keys, users and collections)', DEFAULT_API_KEY_ROLE)
  .description('create an API key; the secret is printed once')
  .action((opts: { tenant: string; name: string; role: string }) =>
    withStore(async (store) => {
      await store.tenants.assertExists(opts.tenant);
      print(await store.apiKeys.create(owner(opts.tenant), { name: opts.name, role: opts.role as Role }));
    }),
  );
keys
  .command('list')
  .requiredOption('--tenant <id>', 'tenant id')
  .description('list API keys (never their secrets)')
  .action((opts: { tenant: string }) => withStore(async (store) => print(await store.apiKeys.list(owner(opts.tenant), { limit: 500 }))));
keys
  .command('revoke <keyId>')
  .requiredOption('--tenant <id>', 'tenant id')
  .description('revoke an API key')
  .action((keyId: string, opts: { tenant: string }) => withStore(async (store) => print(await store.apiKeys.revoke(owner(opts.tenant), keyId))));

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`agentstore: ${isAgentstoreError(error) ? error.message : error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
