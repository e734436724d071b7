/**
 * Least privilege on PostgreSQL (design goal 10): the role the stores connect as owns
 * nothing and may only do DML through the policies; DDL (migrations, declared indexes)
 * belongs to the owner, declared indexes going through migration 0003's SECURITY DEFINER
 * functions; `tenants` and `service_keys` are guarded too.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateCollectionName } from '../../src/modules/collections/validation.js';
import { parseFieldPath } from '../../src/modules/collections/json-path.js';
import { RUNTIME_GROUP_ROLE, RUNTIME_TABLE_PRIVILEGES } from '../../src/db/migrations/runtime-role.js';
import { forEachBackend, useTestStore } from '../helpers/backends.js';
import { newTenant } from '../helpers/fixtures.js';
import { APP_ROLE, OWNER_ROLE } from '../helpers/pg-admin.js';

const errorCode = (error: unknown): string | undefined => (error as { code?: string } | undefined)?.code;

/** The name `indexName()` in collections/service.ts gives a declared index. */
const expectedIndexName = (tenantId: string, collection: string, field: string) =>
  `records_f_${createHash('sha256').update(`${tenantId}\0${collection}\0${field}`).digest('hex').slice(0, 24)}`;

forEachBackend(
  'least privilege',
  (backend) => {
    const t = useTestStore(backend);
    /** A raw client as the runtime role, the way the store connects (through pgbouncer on that backend). */
    let client: pg.Client;

    beforeAll(async () => {
      client = new pg.Client({ connectionString: t.database.url });
      await client.connect();
    });
    afterAll(async () => {
      await client?.end();
    });

    /** Runs `fn` in a transaction with the given settings, always rolled back. */
    const inTransaction = async <T>(settings: Record<string, string>, fn: () => Promise<T>): Promise<T> => {
      await client.query('begin');
      try {
        for (const [name, value] of Object.entries(settings)) await client.query('select set_config($1, $2, true)', [name, value]);
        return await fn();
      } finally {
        await client.query('rollback');
      }
    };
    const failure = (settings: Record<string, string>, text: string, values: unknown[] = []) =>
      inTransaction(settings, () => client.query(text, values).then(() => undefined, (e: unknown) => e));

    const indexesOf = async (tenantId: string) => {
      // pg_indexes is a catalog view: readable by any role, RLS does not apply.
      const { rows } = await client.query<{ indexname: string; indexdef: string }>(
        "select indexname, indexdef from pg_indexes where tablename = 'records' and indexdef like $1 order by indexname",
        [`%${tenantId}%`],
      );
      return rows;
    };

    describe('the runtime role', () => {
      it('is agentstore_app, owns nothing, and is neither superuser, BYPASSRLS nor a member of the owner', async () => {
        const { rows } = await client.query(`
          select current_user as who, r.rolsuper, r.rolbypassrls,
            (select count(*)::int from pg_class c where c.relowner = r.oid) as owned,
            pg_has_role(current_user, '${OWNER_ROLE}', 'MEMBER') as owner_member,
            pg_has_role(current_user, '${RUNTIME_GROUP_ROLE}', 'USAGE') as runtime_member
          from pg_roles r where r.rolname = current_user`);
        expect(rows).toEqual([{ who: APP_ROLE, rolsuper: false, rolbypassrls: false, owned: 0, owner_member: false, runtime_member: true }]);
        const owners = await client.query<{ owner: string }>(
          "select distinct tableowner as owner from pg_tables where schemaname = current_schema()",
        );
        expect(owners.rows).toEqual([{ owner: OWNER_ROLE }]);
      });

      it.each([
        ['ALTER TABLE records NO FORCE ROW LEVEL SECURITY'],
        ['ALTER TABLE records DISABLE ROW LEVEL SECURITY'],
        ['ALTER TABLE tenants DISABLE ROW LEVEL SECURITY'],
        ['ALTER TABLE service_keys NO FORCE ROW LEVEL SECURITY'],
        ['DROP POLICY records_tenant_isolation ON records'],
        ['DROP POLICY tenants_visibility ON tenants'],
        ['CREATE POLICY everything ON records USING (true)'],
        ['ALTER POLICY records_tenant_isolation ON records USING (true)'],
        ['CREATE TABLE stolen (a int)'],
        ['CREATE INDEX records_mine ON records (id)'],
        ['DROP TABLE records'],
        ['TRUNCATE records'],
        ['ALTER TABLE records OWNER TO agentstore_app'],
        ['CREATE SCHEMA stolen'],
        ['CREATE FUNCTION agentstore_mine() RETURNS int LANGUAGE sql AS $$ select 1 $$'],
        ['CREATE OR REPLACE FUNCTION agentstore_create_record_index(p_collection text, p_path text[]) RETURNS void LANGUAGE sql AS $$ select $$'],
        ['DELETE FROM schema_migrations'],
        ["INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (99, 'x', 'x', now())"],
      ])('may not: %s', async (statement) => {
        const error = await failure({}, statement);
        expect(errorCode(error), `${statement}: ${String(error)}`).toBe('42501');
      });

      it('has exactly the documented privileges on every table, and never TRUNCATE, REFERENCES or TRIGGER', async () => {
        const { rows } = await client.query<{ table: string; privilege: string }>(`
          select c.relname as table, p.privilege
          from pg_class c join pg_namespace n on n.oid = c.relnamespace
          cross join unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) as p(privilege)
          where n.nspname = current_schema() and c.relkind = 'r' and has_table_privilege(current_user, c.oid, p.privilege)
          order by c.relname, p.privilege`);
        const granted: Record<string, string[]> = {};
        for (const row of rows) (granted[row.table] ??= []).push(row.privilege);
        for (const [table, privileges] of Object.entries(RUNTIME_TABLE_PRIVILEGES)) {
          expect(granted[table]?.sort(), table).toEqual(privileges.split(', ').sort());
        }
        // A table a later migration adds gets DML by default privileges; never more.
        for (const [table, privileges] of Object.entries(granted)) {
          expect(privileges.filter((p) => ['TRUNCATE', 'REFERENCES', 'TRIGGER'].includes(p)), table).toEqual([]);
        }
      });
    });

    describe('tenants and service_keys', () => {
      it('a tenant context sees its own tenant row only, no service key, and cannot insert another tenant', async () => {
        const a = await newTenant(t.store, 'privilege-a');
        const b = await newTenant(t.store, 'privilege-b');
        await t.store.tenants.ensureServiceKey();
        const seen = await inTransaction({ 'app.tenant_id': a.ctx.tenantId }, async () => ({
          tenants: (await client.query<{ id: string; name: string }>('select id, name from tenants')).rows,
          keys: (await client.query('select key_hash from service_keys')).rows,
        }));
        expect(seen).toEqual({ tenants: [{ id: a.ctx.tenantId, name: 'privilege-a' }], keys: [] });
        const now = new Date().toISOString();
        const insert = await failure({ 'app.tenant_id': a.ctx.tenantId }, 'insert into tenants (id, name, version, created_at, updated_at) values ($1, $2, 1, $3, $3)', [
          '0190f0f0-0000-7000-8000-000000000001',
          'forged',
          now,
        ]);
        expect(errorCode(insert), String(insert)).toBe('42501');
        const rename = await inTransaction({ 'app.tenant_id': a.ctx.tenantId }, async () => (await client.query("update tenants set name = 'x' where id = $1", [b.ctx.tenantId])).rowCount);
        expect(rename).toBe(0);
        const key = await failure({ 'app.tenant_id': a.ctx.tenantId }, "insert into service_keys (id, key_hash, created_at) values ('forged', 'x', now())");
        expect(errorCode(key), String(key)).toBe('42501');
      });

      it('with no context, or an empty tenant, nothing; the system context (app.system) sees every tenant and the service key', async () => {
        await newTenant(t.store, 'privilege-c');
        await t.store.tenants.ensureServiceKey();
        for (const settings of [{}, { 'app.tenant_id': '' }, { 'app.system': 'off' }] as Record<string, string>[]) {
          const n = await inTransaction(settings, async () => ({
            tenants: (await client.query('select 1 from tenants')).rowCount,
            keys: (await client.query('select 1 from service_keys')).rowCount,
          }));
          expect(n, JSON.stringify(settings)).toEqual({ tenants: 0, keys: 0 });
        }
        const system = await inTransaction({ 'app.system': 'on' }, async () => ({
          tenants: (await client.query('select 1 from tenants')).rowCount ?? 0,
          keys: (await client.query('select 1 from service_keys')).rowCount ?? 0,
        }));
        expect(system.tenants).toBeGreaterThanOrEqual(1);
        expect(system.keys).toBe(1);
        // The system context is for tenants and keys only: it sees no tenant's rows.
        const records = await inTransaction({ 'app.system': 'on' }, async () => (await client.query('select 1 from records')).rowCount);
        expect(records).toBe(0);
      });

      it('the store’s system operations still work: create, get and list tenants, the service key', async () => {
        const created = await t.store.tenants.create({ name: 'privilege-system' });
        expect(await t.store.tenants.get(created.id)).toMatchObject({ name: 'privilege-system' });
        const listed = [];
        let cursor: string | undefined;
        do {
          const page = await t.store.tenants.list({ limit: 100, ...(cursor ? { cursor } : {}) });
          listed.push(...page.items.map((x) => x.id));
          cursor = page.nextCursor ?? undefined;
        } while (cursor);
        expect(listed).toContain(created.id);
        const key = await t.store.tenants.ensureServiceKey();
        if (key) expect(await t.store.tenants.verifyServiceKey(key)).toBe(true);
        expect(await t.store.tenants.verifyServiceKey('assk_not_the_key_0123456789')).toBe(false);
      });
    });

    describe('declared indexes as the runtime role', () => {
      it('define, redefine and delete a collection with indexes: the owner-built indexes come and go', async () => {
        const { ctx } = await newTenant(t.store);
        await t.store.collections.define(ctx, 'people', { indexes: ['name', 'address.city', 'data.age'] });
        expect((await indexesOf(ctx.tenantId)).map((i) => i.indexname).sort()).toEqual(
          ['name', 'address.city', 'age'].map((f) => expectedIndexName(ctx.tenantId, 'people', f)).sort(),
        );
        const city = (await indexesOf(ctx.tenantId)).find((i) => i.indexname === expectedIndexName(ctx.tenantId, 'people', 'address.city'));
        expect(city?.indexdef).toContain("(data #> '{address,city}'::text[])");
        expect(city?.indexdef).toContain(`WHERE ((tenant_id = '${ctx.tenantId}'::text) AND (collection = 'people'::text))`);

        await t.store.collections.define(ctx, 'people', { indexes: ['name', 'email'] });
        expect((await indexesOf(ctx.tenantId)).map((i) => i.indexname).sort()).toEqual(
          ['name', 'email'].map((f) => expectedIndexName(ctx.tenantId, 'people', f)).sort(),
        );
        await t.store.collections.create(ctx, 'people', { name: 'Ada', email: 'ada@example.com' });
        const found = await t.store.collections.list(ctx, 'people', { filter: { name: 'Ada' } });
        expect(found.items.map((r) => r.data.email)).toEqual(['ada@example.com']);

        await t.store.collections.deleteCollection(ctx, 'people');
        expect(await indexesOf(ctx.tenantId)).toEqual([]);
      });

      it('an index of the same name on another expression (a path once written unquoted) is rebuilt', async () => {
        const { ctx } = await newTenant(t.store);
        const name = expectedIndexName(ctx.tenantId, 'legacy', 'NULL');
        // As the owner, the way the server itself built it before migration 3: '{NULL}' is
        // an SQL NULL element, not the key "NULL".
        const owner = new pg.Client({ connectionString: t.database.ownerUrl });
        await owner.connect();
        try {
          await owner.query(`CREATE INDEX ${name} ON records ((data #> '{NULL}')) WHERE tenant_id = '${ctx.tenantId}' AND collection = 'legacy'`);
        } finally {
          await owner.end();
        }
        await t.store.collections.define(ctx, 'legacy', { indexes: ['NULL', 'plain'] });
        const rebuilt = await indexesOf(ctx.tenantId);
        expect(rebuilt.find((i) => i.indexname === name)?.indexdef).toContain(`(data #> '{"NULL"}'::text[])`);
        expect(rebuilt).toHaveLength(2);
        // Defining again keeps the right one as it is.
        const oid = async () => (await client.query<{ oid: number }>('select oid from pg_class where relname = $1', [name])).rows[0]?.oid;
        const before = await oid();
        await t.store.collections.define(ctx, 'legacy', { indexes: ['NULL', 'plain'] });
        expect(await oid()).toBe(before);
      });

      it('the functions build and drop only the current tenant’s indexes, whatever they are called with', async () => {
        const a = await newTenant(t.store);
        const b = await newTenant(t.store);
        await t.store.collections.define(b.ctx, 'shared', { indexes: ['x'] });
        const bIndexes = await indexesOf(b.ctx.tenantId);
        expect(bIndexes).toHaveLength(1);
        await inTransaction({ 'app.tenant_id': a.ctx.tenantId }, async () => {
          // Same collection and field as B's: A's own index, on A's rows.
          await client.query("select agentstore_create_record_index('shared', array['x'])");
          await client.query("select agentstore_drop_record_index('shared', array['x'])");
          const { rows } = await client.query<{ n: number }>("select count(*)::int as n from pg_indexes where indexname = $1", [bIndexes[0]?.indexname]);
          expect(rows[0]?.n, 'B’s index survives A’s drop').toBe(1);
        });
        await inTransaction({ 'app.tenant_id': a.ctx.tenantId }, async () => {
          await client.query("select agentstore_create_record_index('shared', array['y'])");
          const built = await client.query<{ indexdef: string }>('select indexdef from pg_indexes where indexname = $1', [expectedIndexName(a.ctx.tenantId, 'shared', 'y')]);
          expect(built.rows[0]?.indexdef).toContain(`tenant_id = '${a.ctx.tenantId}'`);
          expect(built.rows[0]?.indexdef).not.toContain(b.ctx.tenantId);
        });
      });

      it.each([
        ['no tenant context', {}, 'c', ['x'], '42501'],
        ['a tenant that is not a UUID', { 'app.tenant_id': "x' OR '1'='1" }, 'c', ['x'], '42501'],
        ['a quote in the collection', 'tenant', "c') WHERE true; DROP TABLE records; --", ['x'], '22023'],
        ['a quote in a path segment', 'tenant', 'c', ["x'}')) WHERE true; --"], '22023'],
        ['a brace in a path segment', 'tenant', 'c', ['x}'], '22023'],
        ['an empty path', 'tenant', 'c', [], '22023'],
        ['a null segment', 'tenant', 'c', [null], '22023'],
        ['a path too deep', 'tenant', 'c', Array.from({ length: 9 }, () => 'a'), '22023'],
        ['a two-dimensional path', 'tenant', 'c', [['a'], ['b']], '22023'],
      ] as const)('refuses %s', async (_what, settings, collection, path, code) => {
        const { ctx } = await newTenant(t.store);
        const set = settings === 'tenant' ? { 'app.tenant_id': ctx.tenantId } : settings;
        for (const fn of ['agentstore_create_record_index', 'agentstore_drop_record_index']) {
          const error = await failure(set, `select ${fn}($1, $2::text[])`, [collection, path]);
          expect(errorCode(error), `${fn}: ${String(error)}`).toBe(code);
        }
        const tables = await client.query<{ n: number }>("select count(*)::int as n from pg_tables where tablename = 'records'");
        expect(tables.rows[0]?.n).toBe(1);
      });

      it('accepts exactly the collection names and path segments the service accepts', async () => {
        const { ctx } = await newTenant(t.store);
        const accepts = (fn: () => unknown) => {
          try {
            fn();
            return true;
          } catch {
            return false;
          }
        };
        const names = ['a', 'A_b.c-d', '_x', '9', '.a', '-a', 'a b', 'a/b', "a'", 'é', 'a'.repeat(64), 'a'.repeat(65), 'a\u0000', 'a$', 'a,b', 'a\nb'];
        // One segment each (a dot would make two).
        const segments = ['a', 'A_b-c', '_x', '9', '-a', 'a b', 'a,b', 'a"b', '{a}', 'é', 'a'.repeat(64), 'a'.repeat(65), 'a\nb'];
        for (const name of names) {
          if (name.includes('\u0000')) continue; // not even a PostgreSQL text value
          const sqlAccepts = (await failure({ 'app.tenant_id': ctx.tenantId }, 'select agentstore_drop_record_index($1, $2::text[])', [name, ['x']])) === undefined;
          expect(sqlAccepts, JSON.stringify(name)).toBe(accepts(() => validateCollectionName(name)));
        }
        for (const segment of segments) {
          const sqlAccepts = (await failure({ 'app.tenant_id': ctx.tenantId }, 'select agentstore_drop_record_index($1, $2::text[])', ['c', [segment]])) === undefined;
          expect(sqlAccepts, JSON.stringify(segment)).toBe(accepts(() => parseFieldPath(segment, 'f')));
        }
      });

      it('EXECUTE is granted to agentstore_runtime only, and the functions are owned by the owner with a fixed search_path', async () => {
        const { rows } = await client.query<{ proname: string; owner: string; config: string[] | null; public_execute: boolean; runtime_execute: boolean }>(`
          select p.proname, pg_get_userbyid(p.proowner) as owner, p.proconfig as config,
            has_function_privilege('public', p.oid, 'EXECUTE') as public_execute,
            has_function_privilege('${RUNTIME_GROUP_ROLE}', p.oid, 'EXECUTE') as runtime_execute
          from pg_proc p where p.proname like 'agentstore_%_record_index' order by p.proname`);
        expect(rows).toEqual(
          ['agentstore_create_record_index', 'agentstore_drop_record_index'].map((proname) => ({
            proname,
            owner: OWNER_ROLE,
            config: ['search_path=public, pg_temp', 'lock_timeout=2s'],
            public_execute: false,
            runtime_execute: true,
          })),
        );
      });

      it("the expiry sweep's function likewise, and it returns tenant ids only", async () => {
        const { rows } = await client.query<{ owner: string; config: string[] | null; public_execute: boolean; runtime_execute: boolean; security_definer: boolean; result: string }>(`
          select pg_get_userbyid(p.proowner) as owner, p.proconfig as config, p.prosecdef as security_definer,
            pg_get_function_result(p.oid) as result,
            has_function_privilege('public', p.oid, 'EXECUTE') as public_execute,
            has_function_privilege('${RUNTIME_GROUP_ROLE}', p.oid, 'EXECUTE') as runtime_execute
          from pg_proc p where p.proname = 'agentstore_expiry_due_tenants'`);
        expect(rows).toEqual([{ owner: OWNER_ROLE, config: ['search_path=public, pg_temp'], security_definer: true, result: 'SETOF text', public_execute: false, runtime_execute: true }]);
      });
    });
  },
  { only: ['postgres', 'pgbouncer'] },
);
