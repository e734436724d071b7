/**
 * A store on PostgreSQL says when its role could step around row-level security
 * (superuser, BYPASSRLS, owner of the tables): a warning at open, in /ready, and with
 * AGENTSTORE_REQUIRE_RLS=true a refusal to start.
 */
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/env.js';
import { buildApp } from '../../src/server/app.js';
import { RUNTIME_GROUP_ROLE } from '../../src/db/migrations/runtime-role.js';
import { createMigratedTestDatabase, forEachBackend, openTestStore, type TestDatabase } from '../helpers/backends.js';
import { expectError } from '../helpers/fixtures.js';
import { PG_ADMIN_URL, withAdmin } from '../helpers/pg-admin.js';

const BYPASS_ROLE = 'agentstore_bypass_test';
const BYPASS_PASSWORD = 'agentstore_bypass_test';

it('AGENTSTORE_MIGRATE_DATABASE_URL is a PostgreSQL URL beside a PostgreSQL DATABASE_URL', () => {
  const pgUrl = 'postgres://agentstore_owner:secret@db.example.com/agentstore';
  expect(loadConfig({ DATABASE_URL: 'postgres://app@db.example.com/agentstore', AGENTSTORE_MIGRATE_DATABASE_URL: pgUrl }).store.migrateDatabase).toEqual({ kind: 'postgres', url: pgUrl });
  expect(loadConfig({ DATABASE_URL: 'postgres://app@db.example.com/agentstore' }).store.migrateDatabase).toBeUndefined();
  for (const env of [{ AGENTSTORE_MIGRATE_DATABASE_URL: pgUrl }, { DATABASE_URL: 'postgres://app@db.example.com/a', AGENTSTORE_MIGRATE_DATABASE_URL: 'sqlite:other.db' }]) {
    expect(() => loadConfig(env)).toThrow(/^AGENTSTORE_MIGRATE_DATABASE_URL: is for PostgreSQL only/);
  }
  expect(() => loadConfig({ DATABASE_URL: 'postgres://app@db.example.com/a', AGENTSTORE_MIGRATE_DATABASE_URL: 'postgres://' })).toThrow(/^AGENTSTORE_MIGRATE_DATABASE_URL: /);
});

it('AGENTSTORE_REQUIRE_RLS is off by default and parsed as a boolean', () => {
  expect(loadConfig({}).store.requireRls).toBe(false);
  expect(loadConfig({ AGENTSTORE_REQUIRE_RLS: 'true' }).store.requireRls).toBe(true);
  expect(() => loadConfig({ AGENTSTORE_REQUIRE_RLS: 'sometimes' })).toThrow(/^AGENTSTORE_REQUIRE_RLS: /);
});

forEachBackend(
  'AGENTSTORE_REQUIRE_RLS on SQLite',
  (backend) => {
    it('refuses to start: SQLite has no row-level security; without it, no warning', async () => {
      await expectError(openTestStore(backend, { store: { requireRls: true } }), 'agentstore.config', { message: /^AGENTSTORE_REQUIRE_RLS: refusing to start: SQLite has no row-level security/ });
      const opened = await openTestStore(backend);
      try {
        expect(opened.store.securityWarnings).toEqual([]);
      } finally {
        await opened.close();
      }
    });
  },
  { only: ['sqlite'] },
);

forEachBackend(
  'privilege warnings',
  (backend) => {
    let database: TestDatabase;
    const as = (user: string, password: string): TestDatabase => {
      const url = new URL(database.directUrl);
      url.username = user;
      url.password = password;
      return { ...database, url: url.toString() };
    };
    const superuser = (): TestDatabase => {
      const admin = new URL(PG_ADMIN_URL);
      return as(decodeURIComponent(admin.username || 'postgres'), decodeURIComponent(admin.password));
    };

    beforeAll(async () => {
      database = await createMigratedTestDatabase(backend);
      await withAdmin(async (client: pg.Client) => {
        const exists = await client.query('select 1 from pg_roles where rolname = $1', [BYPASS_ROLE]);
        if (exists.rows.length === 0) {
          await client.query(`CREATE ROLE ${BYPASS_ROLE} LOGIN NOSUPERUSER BYPASSRLS PASSWORD '${BYPASS_PASSWORD}'`).catch((error: { code?: string }) => {
            if (!['42710', '23505', 'XX000'].includes(error.code ?? '')) throw error;
          });
        }
        await client.query(`GRANT ${RUNTIME_GROUP_ROLE} TO ${BYPASS_ROLE}`).catch(() => undefined);
      });
    });
    afterAll(async () => {
      await database?.drop();
    });

    const open = (db: TestDatabase, requireRls = false) => openTestStore(backend, { database: db, store: { migrateOnStart: false, requireRls } });

    it('the runtime role: no warning, /ready shows none, and AGENTSTORE_REQUIRE_RLS=true starts', async () => {
      const opened = await open(database, true);
      try {
        expect(opened.store.securityWarnings).toEqual([]);
        const app = await buildApp(opened.store, { logger: false });
        const ready = await app.inject({ method: 'GET', url: '/ready' });
        expect(ready.statusCode).toBe(200);
        expect(ready.json()).not.toHaveProperty('warnings');
        await app.close();
      } finally {
        await opened.close();
      }
    });

    it.each([
      ['the owner of the tables', () => as('agentstore_owner', 'agentstore_owner'), /owns .* of agentstore's tables .* could turn row-level security off/],
      ['a superuser', superuser, /is a superuser: row-level security does not apply/],
      ['a BYPASSRLS role', () => as(BYPASS_ROLE, BYPASS_PASSWORD), /has BYPASSRLS: row-level security does not apply/],
    ])('%s: a warning in the store and in /ready; AGENTSTORE_REQUIRE_RLS=true refuses to start', async (_who, db, message) => {
      const opened = await open(db());
      try {
        expect(opened.store.securityWarnings).toHaveLength(1);
        expect(opened.store.securityWarnings[0]).toMatch(message);
        expect(opened.store.securityWarnings[0]).toContain("tenant isolation then rests on the application's filters alone");
        const app = await buildApp(opened.store, { logger: false });
        const ready = await app.inject({ method: 'GET', url: '/ready' });
        expect(ready.statusCode).toBe(200);
        expect(ready.json()).toMatchObject({ status: 'ready', warnings: [expect.stringMatching(message)] });
        await app.close();
      } finally {
        await opened.close();
      }
      await expectError(open(db(), true), 'agentstore.config', { message: /^AGENTSTORE_REQUIRE_RLS: refusing to start: / });
    });
  },
  { only: ['postgres'] },
);
