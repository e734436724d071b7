import { sql } from 'kysely';
import pg from 'pg';
import { expect, it } from 'vitest';
import { forEachBackend, useTestStore } from '../helpers/backends.js';
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

  if (backend.dialect === 'postgres') {
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
