/**
 * Row-level security on PostgreSQL, seen from outside the services: a raw client as the
 * application role, with no tenant filter in its SQL, must still see only the tenant set
 * in `app.tenant_id`, nothing without it, and must not write rows of another tenant.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TenantContext } from '../../src/core/context.js';
import { TENANT_TABLES } from '../../src/db/schema.js';
import { forEachBackend, useTestStore } from '../helpers/backends.js';
import { TEST_ENCRYPTION_KEY, newTenant } from '../helpers/fixtures.js';
import { APP_ROLE } from '../helpers/pg-admin.js';

type Seeded = { ctx: TenantContext; userId: string; conversationId: string; agentId: string };

/** Puts at least one row of `tenant` into every tenant table, through the store. */
async function seed(store: ReturnType<typeof useTestStore>['store'], name: string): Promise<Seeded> {
  const { ctx } = await newTenant(store, name);
  const email = `${name}@example.com`;
  const user = await store.users.create(ctx, { email, password: 'a long enough password', role: 'member' });
  await store.auth.login({ tenantId: ctx.tenantId, email, password: 'a long enough password' }, '127.0.0.1');
  await store.apiKeys.create(ctx, { name: 'key', role: 'viewer' });
  await store.collections.create(ctx, 'notes', { id: 'n1', owner: name }, { idempotencyKey: 'idem-1' });
  await store.counters.increment(ctx, 'hits');
  const { conversation } = await store.conversations.create(ctx, { endUserId: name });
  await store.conversations.append(ctx, conversation.id, { role: 'user', content: `hello from ${name}` });
  await store.memoryBlocks.put(ctx, 'persona', {}, { value: name });
  const { agent } = await store.agents.create(ctx, { name: `agent of ${name}`, tags: ['support'] });
  await store.agents.setSecret(ctx, agent.id, 'OPENAI_API_KEY', `sk-${name}`);
  const project = (await store.projects.create(ctx, { name: `${name}-project` })).project;
  const branch = (await store.branches.create(ctx, project.id, { name: 'main' })).branch;
  const first = (await store.tasks.create(ctx, branch.id, { title: 'first', labels: ['l'] })).task;
  await store.tasks.create(ctx, branch.id, { title: 'second', dependsOn: [first.id] });
  await store.context.put(ctx, { level: 'global' }, { owner: name });
  return { ctx, userId: user.id, conversationId: conversation.id, agentId: agent.id };
}

// A project, its branch and its task, each insert refused by the policy for another tenant
// (the rows below a project need the rows above them).
const withProject = `with p as (insert into projects (tenant_id, id, name, metadata, version, created_at, updated_at) values ($1, $2, 'p', '{}', 1, $3, $3) returning id)`;
const withBranch = `${withProject}, b as (insert into branches (tenant_id, id, project_id, name, metadata, version, created_at, updated_at) select $1, $2, p.id, 'b', '{}', 1, $3, $3 from p returning id)`;
const withTask = `${withBranch}, t as (insert into tasks (tenant_id, id, branch_id, depth, rank, title, status, priority, labels, metadata, version, created_at, updated_at)
  select $1, $2, b.id, 0, 'a0', 't', 'todo', 0, '[]', '{}', 1, $3, $3 from b returning id)`;

/** One row for `tenant` in each table, the minimum the constraints accept. */
function insertFor(table: (typeof TENANT_TABLES)[number], tenant: string, userId: string, conversationId = '', agentId = ''): [string, unknown[]] {
  const now = new Date().toISOString();
  const id = `rls-${Math.random().toString(36).slice(2)}`;
  switch (table) {
    case 'users':
      return ['insert into users (tenant_id, id, email, password_hash, role, version, created_at, updated_at) values ($1, $2, $3, $4, $5, 1, $6, $6)', [tenant, id, `${id}@x.y`, 'x', 'owner', now]];
    case 'sessions':
      return ['insert into sessions (tenant_id, id, user_id, token_hash, created_at, expires_at) values ($1, $2, $3, $4, $5, $5)', [tenant, id, userId, id, now]];
    case 'api_keys':
      return ['insert into api_keys (tenant_id, id, name, role, key_hash, prefix, created_at) values ($1, $2, $3, $4, $5, $6, $7)', [tenant, id, 'k', 'owner', id, 'p', now]];
    case 'audit_log':
      return ["insert into audit_log (tenant_id, id, at, actor_type, actor_id, action, resource_type, resource_id) values ($1, $2, $3, 'x', 'x', 'x', 'x', 'x')", [tenant, id, now]];
    case 'changes':
      return ["insert into changes (tenant_id, tenant_seq, at, resource_type, resource_id, action) values ($1, 1000000 + floor(random() * 1000000)::bigint, $2, 'x', 'x', 'x')", [tenant, now]];
    case 'change_heads':
      // The seeded tenants have their row already: another tenant's is the one to try.
      return ['insert into change_heads (tenant_id, seq) values ($1, 1) on conflict (tenant_id) do update set seq = change_heads.seq', [tenant]];
    case 'idempotency_keys':
      return ["insert into idempotency_keys (tenant_id, key, scope, request_hash, status, body, created_at) values ($1, $2, 'x', 'x', 201, '{}', $3)", [tenant, id, now]];
    case 'collections':
      return ["insert into collections (tenant_id, name, indexes, version, created_at, updated_at) values ($1, $2, '[]', 1, $3, $3)", [tenant, id, now]];
    case 'records':
      return ["insert into records (tenant_id, collection, id, version, data, created_at, updated_at) values ($1, 'notes', $2, 1, '{}', $3, $3)", [tenant, id, now]];
    case 'counters':
      return ['insert into counters (tenant_id, name, value, created_at, updated_at) values ($1, $2, 1, $3, $3)', [tenant, id, now]];
    case 'conversations':
      return ["insert into conversations (tenant_id, id, status, metadata, last_seq, message_count, version, created_at, updated_at) values ($1, $2, 'active', '{}', 0, 0, 1, $3, $3)", [tenant, id, now]];
    case 'messages':
      return ["insert into messages (tenant_id, conversation_id, seq, role, content, text, version, created_at, updated_at) values ($1, $2, 1000000 + floor(random() * 1000000)::bigint, 'user', '\"x\"', 'x', 1, $3, $3)", [tenant, conversationId, now]];
    case 'memory_blocks':
      return ["insert into memory_blocks (tenant_id, agent_id, end_user_id, label, value, char_limit, version, created_at, updated_at) values ($1, '', '', $2, 'v', 10, 1, $3, $3)", [tenant, id, now]];
    case 'agents':
      return ["insert into agents (tenant_id, id, name, name_key, status, version, doc, created_at, updated_at) values ($1, $2, 'a', 'a', 'active', 1, '{}', $3, $3)", [tenant, id, now]];
    case 'agent_tags':
      return ['insert into agent_tags (tenant_id, tag, agent_id) values ($1, $2, $3)', [tenant, id, agentId]];
    case 'agent_versions':
      return ["insert into agent_versions (tenant_id, agent_id, n, action, doc, changed, actor_type, actor_id, created_at) values ($1, $2, 1000 + floor(random() * 1000000)::int, 'update', '{}', '[]', 'x', 'x', $3)", [tenant, agentId, now]];
    case 'agent_secrets':
      return ["insert into agent_secrets (tenant_id, agent_id, name, key_id, nonce, ciphertext, auth_tag, created_at, updated_at) values ($1, $2, $3, 'k', 'n', 'c', 't', $4, $4)", [tenant, agentId, id, now]];
    case 'projects':
      return [`${withProject} select 1`, [tenant, id, now]];
    case 'branches':
      return [`${withBranch} select 1`, [tenant, id, now]];
    case 'tasks':
      return [`${withTask} select 1`, [tenant, id, now]];
    case 'task_labels':
      return [`${withTask} insert into task_labels (tenant_id, task_id, label, branch_id) select $1, t.id, 'l', $2 from t`, [tenant, id, now]];
    case 'task_dependencies':
      return [`${withTask} insert into task_dependencies (tenant_id, task_id, depends_on_id, created_at) select $1, t.id, t.id, $3::timestamptz from t`, [tenant, id, now]];
    case 'context_global':
      return ["insert into context_global (tenant_id, data, version, created_at, updated_at) values ($1, '{}', 1, $2, $2) on conflict (tenant_id) do nothing", [tenant, now]];
  }
}

forEachBackend(
  'row-level security',
  (backend) => {
    const t = useTestStore(backend, { store: { encryptionKey: TEST_ENCRYPTION_KEY } });
    let a: Seeded;
    let b: Seeded;
    let client: pg.Client;

    beforeAll(async () => {
      a = await seed(t.store, 'tenant-a');
      b = await seed(t.store, 'tenant-b');
      client = new pg.Client({ connectionString: t.database.directUrl });
      await client.connect();
    });
    afterAll(async () => {
      await client?.end();
    });

    /** Runs `fn` in a transaction with app.tenant_id set (or not), always rolled back. */
    const asTenant = async <T>(tenant: string | undefined, fn: () => Promise<T>): Promise<T> => {
      await client.query('begin');
      try {
        if (tenant !== undefined) await client.query("select set_config('app.tenant_id', $1, true)", [tenant]);
        return await fn();
      } finally {
        await client.query('rollback');
      }
    };

    it('the client is agentstore_app, neither superuser nor BYPASSRLS', async () => {
      const { rows } = await client.query('select current_user as who, rolsuper, rolbypassrls from pg_roles where rolname = current_user');
      expect(rows).toEqual([{ who: APP_ROLE, rolsuper: false, rolbypassrls: false }]);
    });

    it('every tenant table has forced RLS with a policy, and every table with tenant_id is listed', async () => {
      const { rows } = await client.query<{ relname: string; relrowsecurity: boolean; relforcerowsecurity: boolean; policies: string }>(`
        select c.relname, c.relrowsecurity, c.relforcerowsecurity, count(p.policyname)::int as policies
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        left join pg_policies p on p.schemaname = n.nspname and p.tablename = c.relname
        where n.nspname = current_schema() and c.relkind = 'r'
          and exists (select 1 from information_schema.columns col where col.table_schema = n.nspname and col.table_name = c.relname and col.column_name = 'tenant_id')
        group by c.relname, c.relrowsecurity, c.relforcerowsecurity order by c.relname`);
      expect(rows.map((r) => r.relname)).toEqual([...TENANT_TABLES].sort());
      // records and messages have a second policy: their view's owner reads them (migrations 0005 and 0008).
      for (const row of rows) expect(row, row.relname).toMatchObject({ relrowsecurity: true, relforcerowsecurity: true, policies: ['records', 'messages'].includes(row.relname) ? 2 : 1 });
      const { rows: extra } = await client.query(
        "select policyname, cmd, roles::text[] as roles, qual from pg_policies where tablename = 'records' and policyname <> 'records_tenant_isolation'",
      );
      const { rows: owner } = await client.query<{ owner: string }>("select viewowner as owner from pg_views where viewname = 'tenant_records'");
      expect(extra).toEqual([{ policyname: 'records_view_read', cmd: 'SELECT', roles: [owner[0]?.owner], qual: 'true' }]);
    });

    describe('tenant_records, the view listings read (migration 0005)', () => {
      it('with tenant A set, an unfiltered select returns only A’s records; with none, an empty one or the system context, nothing', async () => {
        for (const own of [a, b]) {
          const rows = await asTenant(own.ctx.tenantId, async () => (await client.query<{ tenant_id: string }>('select tenant_id from tenant_records')).rows);
          expect(rows.length).toBeGreaterThan(0);
          expect(new Set(rows.map((r) => r.tenant_id))).toEqual(new Set([own.ctx.tenantId]));
        }
        for (const tenant of [undefined, '']) {
          const { rows } = await asTenant(tenant, () => client.query<{ n: number }>('select count(*)::int as n from tenant_records'));
          expect(rows[0]?.n).toBe(0);
        }
        await client.query('begin');
        try {
          await client.query("select set_config('app.system', 'on', true)");
          expect((await client.query('select 1 from tenant_records')).rowCount).toBe(0);
        } finally {
          await client.query('rollback');
        }
      });

      it('is read-only for the application role, which cannot change or drop it', async () => {
        const [text, values] = insertFor('records', a.ctx.tenantId, a.userId);
        for (const [statement, params] of [
          [text.replace('insert into records', 'insert into tenant_records'), values],
          ["update tenant_records set data = '{}'", []],
          ['delete from tenant_records', []],
          ['create or replace view tenant_records as select * from records', []],
          ['drop view tenant_records', []],
        ] as [string, unknown[]][]) {
          const error = await asTenant(a.ctx.tenantId, () => client.query(statement, params).then(() => undefined, (e: unknown) => e));
          expect((error as { code?: string } | undefined)?.code, `${statement}: ${String(error)}`).toBe('42501');
        }
      });
    });

    it('tenant_messages, the view search reads (migration 0008): only the tenant set, nothing without one, read-only', async () => {
      for (const own of [a, b]) {
        const rows = await asTenant(own.ctx.tenantId, async () => (await client.query<{ tenant_id: string }>('select tenant_id from tenant_messages')).rows);
        expect(rows.length).toBeGreaterThan(0);
        expect(new Set(rows.map((r) => r.tenant_id))).toEqual(new Set([own.ctx.tenantId]));
      }
      for (const tenant of [undefined, '']) {
        const { rows } = await asTenant(tenant, () => client.query<{ n: number }>('select count(*)::int as n from tenant_messages'));
        expect(rows[0]?.n).toBe(0);
      }
      for (const statement of ["update tenant_messages set text = 'x'", 'delete from tenant_messages', 'drop view tenant_messages']) {
        const error = await asTenant(a.ctx.tenantId, () => client.query(statement).then(() => undefined, (e: unknown) => e));
        expect((error as { code?: string } | undefined)?.code, statement).toBe('42501');
      }
      const { rows: extra } = await client.query("select policyname, cmd, qual from pg_policies where tablename = 'messages' and policyname <> 'messages_tenant_isolation'");
      expect(extra).toEqual([{ policyname: 'messages_view_read', cmd: 'SELECT', qual: 'true' }]);
    });

    describe.each(TENANT_TABLES.map((table) => [table] as const))('%s', (table) => {
      it('with tenant A set, an unfiltered select returns only A’s rows (and B likewise)', async () => {
        for (const own of [a, b]) {
          const tenants = await asTenant(own.ctx.tenantId, async () => (await client.query<{ tenant_id: string }>(`select tenant_id from ${table}`)).rows);
          expect(tenants.length, `${table} has rows for the tenant`).toBeGreaterThan(0);
          expect(new Set(tenants.map((r) => r.tenant_id))).toEqual(new Set([own.ctx.tenantId]));
        }
      });

      it('with no tenant set, or an empty one, returns nothing', async () => {
        for (const tenant of [undefined, '']) {
          const { rows } = await asTenant(tenant, () => client.query<{ n: number }>(`select count(*)::int as n from ${table}`));
          expect(rows[0]?.n).toBe(0);
        }
      });

      it('refuses to insert a row of tenant B while A is set (WITH CHECK), and without a tenant', async () => {
        for (const current of [a.ctx.tenantId, undefined]) {
          const [text, values] = insertFor(table, b.ctx.tenantId, b.userId, b.conversationId, b.agentId);
          const error = await asTenant(current, () => client.query(text, values).then(() => undefined, (e: unknown) => e));
          expect((error as { code?: string } | undefined)?.code, String(error)).toBe('42501');
        }
        // The same insert for the tenant that is set passes the policy (proving the statement itself is valid).
        const [text, values] = insertFor(table, b.ctx.tenantId, b.userId, b.conversationId, b.agentId);
        await asTenant(b.ctx.tenantId, () => client.query(text, values));
      });

      it('cannot move A’s rows to B, nor touch B’s rows, while A is set', async () => {
        const moved = await asTenant(a.ctx.tenantId, () => client.query(`update ${table} set tenant_id = $1`, [b.ctx.tenantId]).then(() => undefined, (e: unknown) => e));
        expect((moved as { code?: string } | undefined)?.code, String(moved)).toMatch(/^(42501|23503)$/);
        const counts = await asTenant(a.ctx.tenantId, async () => {
          const deleted = await client.query(`delete from ${table} where tenant_id = $1`, [b.ctx.tenantId]);
          return deleted.rowCount;
        });
        expect(counts).toBe(0);
        const still = await asTenant(b.ctx.tenantId, async () => (await client.query(`select count(*)::int as n from ${table}`)).rows[0]?.n as number);
        expect(still).toBeGreaterThan(0);
      });
    });

    it('the store handle without a tenant context (kysely directly) sees no tenant rows', async () => {
      const rows = await t.store.internals.db.kysely.selectFrom('records').selectAll().execute();
      expect(rows).toEqual([]);
      expect((await t.store.collections.list(a.ctx, 'notes')).items.map((r) => r.data.owner)).toEqual(['tenant-a']);
    });
  },
  { only: ['postgres'] },
);
