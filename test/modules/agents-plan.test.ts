/**
 * Agent reads are index lookups whatever the table size: the plans of get by id, the
 * listings by status, by tag and by name prefix, and a version history, on both dialects
 * (PostgreSQL as the runtime role with RLS in force, after ANALYZE). 3,000 agents of the
 * tenant among 6,000, each with two tags and three versions.
 */
import { CompiledQuery, sql, type Compilable } from 'kysely';
import { beforeAll, expect, it } from 'vitest';
import type { TenantContext } from '../../src/core/context.js';
import { uuidv7 } from '../../src/core/ids.js';
import { agentListQuery, type AgentListSpec } from '../../src/modules/agents/list-query.js';
import type { Store } from '../../src/store.js';
import { forEachBackend, openTestDb, useTestStore } from '../helpers/backends.js';
import { newTenant } from '../helpers/fixtures.js';

const AGENTS = 3000;
const STATUSES = ['active', 'paused', 'archived'] as const;

async function seed(store: Store, ctx: TenantContext): Promise<string[]> {
  const ids: string[] = [];
  const now = new Date().toISOString();
  await store.internals.db.inTenant(ctx.tenantId, async (trx) => {
    for (let start = 0; start < AGENTS; start += 250) {
      const agents = [];
      const tags = [];
      const versions = [];
      for (let i = start; i < start + 250; i++) {
        const id = uuidv7();
        ids.push(id);
        // `status` is mostly active; 1 in 100 is paused.
        const status = i % 100 === 3 ? 'paused' : i % 100 === 4 ? 'archived' : STATUSES[0];
        const name = `${['Sales', 'Support', 'Ops', 'Research'][i % 4]} agent ${String(i).padStart(5, '0')}`;
        const doc = JSON.stringify({ name, status, tags: [`t${i % 50}`, 'all'] });
        agents.push({ tenant_id: ctx.tenantId, id, name, name_key: name.toLowerCase(), status, version: 3, doc, created_at: now, updated_at: now });
        tags.push({ tenant_id: ctx.tenantId, tag: `t${i % 50}`, agent_id: id }, { tenant_id: ctx.tenantId, tag: 'all', agent_id: id });
        for (let n = 1; n <= 3; n++) versions.push({ tenant_id: ctx.tenantId, agent_id: id, n, action: n === 1 ? 'create' : 'update', doc, changed: '[]', actor_type: 'system', actor_id: 'x', request_id: null, rolled_back_from: null, created_at: now });
      }
      await trx.insertInto('agents').values(agents).execute();
      await trx.insertInto('agent_tags').values(tags).execute();
      await trx.insertInto('agent_versions').values(versions).execute();
    }
  });
  return ids;
}

interface PlanNode {
  'Node Type': string;
  'Actual Rows': number;
  'Actual Loops': number;
  'Rows Removed by Filter'?: number;
  'Index Name'?: string;
  'Relation Name'?: string;
  Plans?: PlanNode[];
}

const nodes = (plan: PlanNode): PlanNode[] => [plan, ...(plan.Plans ?? []).flatMap(nodes)];

forEachBackend('agents: query plans', (backend) => {
  const t = useTestStore(backend);
  let ctx: TenantContext;
  let ids: string[];
  beforeAll(async () => {
    ({ ctx } = await newTenant(t.store));
    const { ctx: other } = await newTenant(t.store);
    ids = await seed(t.store, ctx);
    await seed(t.store, other);
    if (backend.dialect === 'postgres') {
      // As the owner: the runtime role may not ANALYZE.
      const owner = openTestDb(t.database);
      try {
        for (const table of ['agents', 'agent_tags', 'agent_versions']) await sql`analyze ${sql.table(table)}`.execute(owner.kysely);
      } finally {
        await owner.close();
      }
    }
  });

  const spec = (over: Partial<AgentListSpec>): AgentListSpec => ({ tenantId: ctx.tenantId, dialect: backend.dialect, match: 'prefix', limit: 51, ...over });
  const kysely = () => t.store.internals.db.kysely;

  /** The plan of `query` as the store runs it (PostgreSQL: EXPLAIN ANALYZE as the runtime role, RLS on). */
  const explain = async (query: Compilable<unknown>, options: { indexSearch?: boolean; indexOrder?: boolean } = {}): Promise<{ text: string; scans: PlanNode[]; sorted: boolean; rowsRead: number }> => {
    const compiled = query.compile();
    return t.store.internals.db.inTenant(
      ctx.tenantId,
      async (trx) => {
        if (backend.dialect === 'sqlite') {
          const rows = (await trx.executeQuery<{ detail: string }>(CompiledQuery.raw(`explain query plan ${compiled.sql}`, [...compiled.parameters]))).rows.map((r) => r.detail);
          return { text: rows.join(' | '), scans: [], sorted: rows.some((r) => r.includes('USE TEMP B-TREE')), rowsRead: 0 };
        }
        const result = await trx.executeQuery<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(CompiledQuery.raw(`explain (analyze, format json) ${compiled.sql}`, [...compiled.parameters]));
        const all = nodes((result.rows[0]?.['QUERY PLAN'][0] as { Plan: PlanNode }).Plan);
        // Scans of tables (a Subquery Scan reads its subquery, not a table).
        const scans = all.filter((n) => /Scan/.test(n['Node Type']) && n['Relation Name'] !== undefined);
        return {
          text: all.map((n) => `${n['Node Type']}${n['Index Name'] ? ` ${n['Index Name']}` : ''}${n['Relation Name'] ? ` on ${n['Relation Name']}` : ''}`).join(' | '),
          scans,
          sorted: all.some((n) => n['Node Type'] === 'Sort'),
          rowsRead: scans.reduce((sum, n) => sum + (n['Actual Rows'] + (n['Rows Removed by Filter'] ?? 0)) * n['Actual Loops'], 0),
        };
      },
      { readOnly: true, ...options },
    );
  };

  /** Every scan an index scan (no sequential or bitmap heap scan), no sort, and few rows read. */
  const expectIndexLookup = (plan: Awaited<ReturnType<typeof explain>>, index: RegExp, label: string) => {
    expect(plan.text, label).toMatch(index);
    expect(plan.sorted, `${label}: ${plan.text}`).toBe(false);
    if (backend.dialect === 'sqlite') {
      expect(plan.text, label).not.toMatch(/(^|\| )SCAN /);
    } else {
      for (const scan of plan.scans) expect(scan['Node Type'], `${label}: ${plan.text}`).toMatch(/^Index( Only)? Scan$/);
      expect(plan.rowsRead, `${label}: ${plan.text}`).toBeLessThan(AGENTS / 10);
    }
  };

  it('get by id reads the primary key', async () => {
    const query = kysely().selectFrom('agents').selectAll().where('tenant_id', '=', ctx.tenantId).where('id', '=', ids[1234] as string);
    expectIndexLookup(await explain(query), /agents_pkey|sqlite_autoindex_agents_1|PRIMARY KEY/, 'get');
  });

  it('listing by status reads agents_status in order, first page and later', async () => {
    expectIndexLookup(await explain(agentListQuery(kysely(), spec({ status: 'paused' }))), /agents_status/, 'status');
    // Most agents are active: reading the primary key in order and skipping the few others is
    // as good a plan, and PostgreSQL takes it.
    expectIndexLookup(await explain(agentListQuery(kysely(), spec({ status: 'active', after: [ids[1500]] }))), /agents_status|agents_pkey|sqlite_autoindex_agents_1/, 'status, later page');
  });

  it('listing by tag reads the tag key in order and joins agents by key (with a status filter too)', async () => {
    for (const [label, over] of [
      ['tag', { tag: 't7' }],
      ['tag, later page', { tag: 'all', after: [ids[2000]] }],
      ['tag and status', { tag: 't3', status: 'paused' as const }],
    ] as const) {
      expectIndexLookup(await explain(agentListQuery(kysely(), spec(over))), /agent_tags_pkey|sqlite_autoindex_agent_tags_1|PRIMARY KEY/, label);
    }
  });

  it('listing by name prefix reads agents_name in name order', async () => {
    expectIndexLookup(await explain(agentListQuery(kysely(), spec({ q: 'support agent 01' }))), /agents_name/, 'prefix');
    expectIndexLookup(await explain(agentListQuery(kysely(), spec({ q: 'ops', after: ['ops agent 01002', ids[1002]] }))), /agents_name/, 'prefix, later page');
  });

  it('the listing of everything reads the primary key in order', async () => {
    expectIndexLookup(await explain(agentListQuery(kysely(), spec({}))), /agents_pkey|sqlite_autoindex_agents_1|PRIMARY KEY/, 'all');
  });

  it("an agent's versions are a range of agent_versions' key, newest first", async () => {
    const query = kysely()
      .selectFrom('agent_versions')
      .select(['agent_id', 'n', 'action', 'changed', 'actor_type', 'actor_id', 'request_id', 'rolled_back_from', 'created_at'])
      .where('tenant_id', '=', ctx.tenantId)
      .where('agent_id', '=', ids[42] as string)
      .orderBy('n', 'desc')
      .limit(51);
    expectIndexLookup(await explain(query), /agent_versions_pkey|sqlite_autoindex_agent_versions_1|PRIMARY KEY/, 'versions');
  });
});
