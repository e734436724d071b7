import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { systemContext } from '../../src/core/context.js';
import { uuidv7 } from '../../src/core/ids.js';
import type { Database } from '../../src/db/database.js';
import { toJsonColumn } from '../../src/db/dialect.js';
import { MIGRATIONS } from '../../src/db/migrations/index.js';
import { assertSchemaCurrent, migrateUp, migrationPlan, migrationStatus } from '../../src/db/migrator.js';
import { createTestDatabase, forEachBackend, openTestDb, openTestStore, type TestDatabase } from '../helpers/backends.js';
import { expectError } from '../helpers/fixtures.js';

const LATEST = Math.max(...MIGRATIONS.map((m) => m.version));

forEachBackend('migrations', (backend) => {
  // Each test gets an empty database; everything opened is closed and dropped after it.
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  const emptyDatabase = async (): Promise<{ database: TestDatabase; db: Database }> => {
    const database = await createTestDatabase(backend);
    cleanups.push(() => database.drop());
    const db = openTestDb(database);
    cleanups.push(() => db.close());
    return { database, db };
  };

  it('from empty: status all pending, plan shows the SQL, up applies all, second up is a no-op', async () => {
    const { db } = await emptyDatabase();
    const before = await migrationStatus(db);
    expect(before).toMatchObject({ current: 0, latest: LATEST, upToDate: false });
    expect(before.migrations.map((m) => [m.version, m.state, m.appliedAt])).toEqual(MIGRATIONS.map((m) => [m.version, 'pending', null]));

    const plan = await migrationPlan(db);
    expect(plan).toContain('CREATE TABLE tenants');
    expect(plan).toContain('CREATE TABLE records');
    for (const m of MIGRATIONS) expect(plan).toContain(`-- ${String(m.version).padStart(4, '0')} ${m.name}`);
    if (backend.dialect === 'postgres') expect(plan).toContain('FORCE ROW LEVEL SECURITY');
    else expect(plan).not.toContain('ROW LEVEL SECURITY');

    expect(await migrateUp(db)).toEqual(MIGRATIONS.map((m) => m.version));
    const after = await migrationStatus(db);
    expect(after).toMatchObject({ current: LATEST, latest: LATEST, upToDate: true });
    expect(after.migrations.every((m) => m.state === 'applied' && typeof m.appliedAt === 'string')).toBe(true);
    await assertSchemaCurrent(db);
    expect(await migrationPlan(db)).toBe('');
    expect(await migrateUp(db)).toEqual([]);
    expect(await migrationStatus(db)).toEqual(after);
  });

  if (backend.dialect === 'postgres') {
    it('as the runtime role, migrate up fails naming AGENTSTORE_MIGRATE_DATABASE_URL, and changes nothing', async () => {
      const { database, db } = await emptyDatabase();
      const runtime = openTestDb(database, { role: 'runtime' });
      cleanups.push(() => runtime.close());
      await expectError(migrateUp(runtime), 'agentstore.schema_mismatch', { message: /may not run the migrations .*AGENTSTORE_MIGRATE_DATABASE_URL/ });
      expect(await migrationStatus(db)).toMatchObject({ current: 0 });
    });
  }

  it('concurrent migrators apply each migration exactly once', async () => {
    const { database, db } = await emptyDatabase();
    const other = openTestDb(database);
    cleanups.push(() => other.close());
    const results = await Promise.allSettled([migrateUp(db), migrateUp(other)]);
    const applied = results.flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
    expect(results.map((r) => (r.status === 'fulfilled' ? 'ok' : String(r.reason)))).toEqual(['ok', 'ok']);
    expect([...applied].sort((a, b) => a - b)).toEqual(MIGRATIONS.map((m) => m.version));
    expect((await migrationStatus(db)).upToDate).toBe(true);
  });

  it('a target that names no migration is refused before anything is applied', async () => {
    const { db } = await emptyDatabase();
    for (const target of [0, 99, Number.NaN, 1.5]) {
      await expect(migrateUp(db, { target })).rejects.toMatchObject({ code: 'agentstore.validation', context: { errors: [{ field: 'target' }] } });
    }
    expect(await migrationStatus(db)).toMatchObject({ current: 0 });
  });

  it('upgrades a version-1 database holding data, keeping the data', async () => {
    const { database, db } = await emptyDatabase();
    expect(await migrateUp(db, { target: 1 })).toEqual([1]);
    expect(await migrationStatus(db)).toMatchObject({ current: 1, upToDate: false });
    // v1 data written with v1 tables only (inTenant: RLS is already on for them).
    const tenantId = uuidv7();
    const userId = uuidv7();
    const now = new Date().toISOString();
    await db.inTenant(tenantId, async (trx) => {
      await trx.insertInto('tenants').values({ id: tenantId, name: 'legacy', version: 1, created_at: now, updated_at: now }).execute();
      await trx
        .insertInto('users')
        .values({ tenant_id: tenantId, id: userId, email: 'old@example.com', password_hash: 'x', role: 'owner', version: 1, created_at: now, updated_at: now })
        .execute();
      await trx
        .insertInto('audit_log')
        .values({
          tenant_id: tenantId,
          id: uuidv7(),
          at: now,
          actor_type: 'system',
          actor_id: 'v1',
          action: 'user.create',
          resource_type: 'user',
          resource_id: userId,
          collection: null,
          request_id: null,
          details: toJsonColumn({ legacy: true }),
        })
        .execute();
    });
    expect(await migrateUp(db)).toEqual(MIGRATIONS.filter((m) => m.version > 1).map((m) => m.version));
    await db.close();
    cleanups.pop();

    const opened = await openTestStore(backend, { database, store: { migrateOnStart: false } });
    cleanups.push(() => opened.store.close());
    const ctx = systemContext(tenantId);
    expect(await opened.store.tenants.get(tenantId)).toMatchObject({ name: 'legacy' });
    expect((await opened.store.users.get(ctx, userId)).email).toBe('old@example.com');
    const audit = await opened.store.audit.list(ctx);
    expect(audit.items.map((e) => [e.action, e.resourceId, e.details])).toEqual([['user.create', userId, { legacy: true }]]);
    const { record } = await opened.store.collections.create(ctx, 'after-upgrade', { ok: true });
    expect((await opened.store.collections.list(ctx, 'after-upgrade')).items).toEqual([record]);
  });

  describe('drift', () => {
    it('a changed checksum is a schema_mismatch for status checks and for migrate up', async () => {
      const { db } = await emptyDatabase();
      await migrateUp(db);
      await sql`update schema_migrations set checksum = 'tampered' where version = 1`.execute(db.kysely);
      expect((await migrationStatus(db)).migrations[0]?.state).toBe('changed');
      await expectError(assertSchemaCurrent(db), 'agentstore.schema_mismatch', { message: /checksum/ });
      await expectError(migrateUp(db), 'agentstore.schema_mismatch');
      await expectError(migrationPlan(db), 'agentstore.schema_mismatch');
    });

    it('a database ahead of the code is a schema_mismatch', async () => {
      const { db } = await emptyDatabase();
      await migrateUp(db);
      // Code that knows only the first migration, against the full schema ...
      const older = MIGRATIONS.slice(0, 1);
      const status = await migrationStatus(db, older);
      expect(status.migrations.map((m) => m.state)).toEqual(['applied', ...MIGRATIONS.slice(1).map(() => 'unknown')]);
      await expectError(assertSchemaCurrent(db, older), 'agentstore.schema_mismatch', { message: /ahead/ });
      await expectError(migrateUp(db, { migrations: older }), 'agentstore.schema_mismatch', { message: /ahead/ });
      // ... and a future migration recorded by a newer release.
      await sql`insert into schema_migrations (version, name, checksum, applied_at) values (${LATEST + 1}, 'future', 'x', ${new Date().toISOString()})`.execute(db.kysely);
      await expectError(assertSchemaCurrent(db), 'agentstore.schema_mismatch', { message: /ahead/ });
    });
  });

  describe('opening a store with migrateOnStart=false', () => {
    it('on an empty database fails with a message saying what to run', async () => {
      const { database } = await emptyDatabase();
      const error = await expectError(openTestStore(backend, { database, store: { migrateOnStart: false } }), 'agentstore.schema_mismatch');
      expect(error.message).toMatch(/version 0/);
      expect(error.message).toContain('agentstore migrate up');
    });

    it('on a database that is behind fails the same way, and works once migrated', async () => {
      const { database, db } = await emptyDatabase();
      await migrateUp(db, { target: 1 });
      const error = await expectError(openTestStore(backend, { database, store: { migrateOnStart: false } }), 'agentstore.schema_mismatch');
      // PostgreSQL: before migration 3 the runtime role the store connects as has no grants.
      if (backend.dialect === 'sqlite') expect(error.message).toContain(`version 1, this code needs ${LATEST}`);
      else expect(error.message).toMatch(/may not read schema_migrations.*run `agentstore migrate up` as the owner/);
      await migrateUp(db);
      const opened = await openTestStore(backend, { database, store: { migrateOnStart: false } });
      cleanups.push(() => opened.store.close());
      expect((await opened.store.ready()).ok).toBe(true);
    });
  });
});
