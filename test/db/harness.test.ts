import { sql } from 'kysely';
import pg from 'pg';
import { expect, it } from 'vitest';
import { createMigratedTestDatabase, forEachBackend, openTestStore, useTestStore } from '../helpers/backends.js';
import { newTenant } from '../helpers/fixtures.js';
import { PG_ADMIN_URL } from '../helpers/pg-admin.js';

// The harness itself: each backend really is what it claims to be.
forEachBackend('test harness', (backend) => {
  const t = useTestStore(backend);

  it('opens a migrated store on the expected dialect', async () => {
    expect(t.store.internals.db.dialect).toBe(backend.dialect);
    expect((await t.store.ready()).ok).toBe(true);
    const { ctx } = await newTenant(t.store);
    expect((await t.store.counters.increment(ctx, 'smoke')).value).toBe(1);
  });

  it('createMigratedTestDatabase gives a database a store opens without migrating', async () => {
    const database = await createMigratedTestDatabase(backend);
    try {
      const opened = await openTestStore(backend, { database, store: { migrateOnStart: false } });
      expect((await opened.store.ready()).ok).toBe(true);
      await opened.close();
    } finally {
      await database.drop();
    }
  });

  if (backend.dialect === 'postgres') {
    it('never sends named prepared statements (they break behind pgbouncer in transaction mode)', async () => {
      const named: string[] = [];
      const original = pg.Client.prototype.query;
      const spy = function (this: pg.Client, config: unknown, ...rest: unknown[]) {
        if (typeof config === 'object' && config !== null && 'name' in config && (config as { name?: unknown }).name) {
          named.push(String((config as { name?: unknown }).name));
        }
        return (original as (...args: unknown[]) => unknown).call(this, config, ...rest);
      };
      pg.Client.prototype.query = spy as unknown as typeof original;
      try {
        const { ctx } = await newTenant(t.store);
        await Promise.all(Array.from({ length: 20 }, (_, i) => t.store.collections.create(ctx, 'n', { i })));
        await t.store.collections.list(ctx, 'n', { filter: { i: { gte: 3 } }, sort: '-i', limit: 5 });
        await t.store.counters.increment(ctx, 'c');
        await t.store.audit.list(ctx);
        // Positive control: the spy does see a named statement when one is sent.
        const probe = new pg.Client({ connectionString: t.database.directUrl });
        await probe.connect();
        await probe.query({ name: 'harness-probe', text: 'select 1' }).finally(() => probe.end());
      } finally {
        pg.Client.prototype.query = original;
      }
      expect(named).toEqual(['harness-probe']);
    });

    it('leaves no tenant setting behind on pooled connections', async () => {
      const { ctx } = await newTenant(t.store);
      await Promise.all(Array.from({ length: 20 }, (_, i) => t.store.collections.create(ctx, 'leak', { i })));
      // Plain queries without a tenant transaction, on whatever server connection comes next.
      const seen = await Promise.all(
        Array.from({ length: 20 }, async () => {
          const { rows } = await sql<{ tenant: string | null; n: number }>`
            select current_setting('app.tenant_id', true) as tenant, (select count(*)::int from records) as n`.execute(t.store.internals.db.kysely);
          return rows[0];
        }),
      );
      for (const row of seen) expect(row).toMatchObject({ n: 0, tenant: expect.toBeOneOf([null, '']) });
    });

    it('connects as agentstore_app, without superuser or BYPASSRLS', async () => {
      const { rows } = await sql<{ user: string; rolsuper: boolean; rolbypassrls: boolean; port: string }>`
        select current_user as user, r.rolsuper, r.rolbypassrls, current_setting('port') as port
        from pg_roles r where r.rolname = current_user`.execute(t.store.internals.db.kysely);
      expect(rows[0]).toMatchObject({ user: 'agentstore_app', rolsuper: false, rolbypassrls: false });
    });
  }

  if (backend.name === 'pgbouncer') {
    it('goes through pgbouncer in transaction mode', async () => {
      const url = new URL(t.database.url);
      expect(url.port).not.toBe(new URL(t.database.directUrl).port);
      // pgbouncer's admin console lists the pool this store's connections use.
      const admin = new URL(PG_ADMIN_URL);
      admin.port = url.port;
      admin.pathname = '/pgbouncer';
      const client = new pg.Client({ connectionString: admin.toString() });
      await client.connect();
      try {
        const { rows } = await client.query<{ database: string; user: string; pool_mode: string }>('SHOW POOLS');
        expect(rows.find((r) => r.database === t.database.name && r.user === 'agentstore_app')).toMatchObject({ pool_mode: 'transaction' });
      } finally {
        await client.end();
      }
    });
  }
});
