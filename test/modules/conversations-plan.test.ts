/**
 * The plans of conversation memory's reads, as the store runs them (PostgreSQL as the runtime
 * role with RLS in force): the last N, after a seq and before a seq are one range scan of
 * the messages' primary key; listing conversations newest first, alone or by agent, end user
 * or status, reads one index in order and stops after the page; search reads the full-text
 * index (GIN through tenant_messages; the FTS5 table) instead of the tenant's messages.
 */
import { CompiledQuery, sql } from 'kysely';
import { beforeAll, expect, it } from 'vitest';
import type { TenantContext } from '../../src/core/context.js';
import { uuidv7 } from '../../src/core/ids.js';
import { selectMessages, type MessageRead } from '../../src/modules/conversations/messages.js';
import { checkSearch, searchSql } from '../../src/modules/conversations/search.js';
import { selectConversations } from '../../src/modules/conversations/service.js';
import { forEachBackend, openTestDb, useTestStore } from '../helpers/backends.js';
import { newTenant } from '../helpers/fixtures.js';

const CONVERSATIONS = 3000;
const MESSAGES = 20_000;
const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel'];

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  'Rows Removed by Filter'?: number;
  Plans?: PlanNode[];
}
const nodes = (plan: PlanNode): PlanNode[] => [plan, ...(plan.Plans ?? []).flatMap(nodes)];
const rowsRead = (plan: PlanNode[]) =>
  plan.filter((n) => /Scan/.test(n['Node Type']) && !/Bitmap Index/.test(n['Node Type'])).reduce((sum, n) => sum + (n['Actual Rows'] + (n['Rows Removed by Filter'] ?? 0)) * n['Actual Loops'], 0);

forEachBackend('conversations: read plans', (backend) => {
  const t = useTestStore(backend);
  let ctx: TenantContext;
  let big: string;
  const dialect = backend.dialect;

  beforeAll(async () => {
    ({ ctx } = await newTenant(t.store));
    const { ctx: other } = await newTenant(t.store);
    big = (await t.store.conversations.create(ctx, { agentId: 'agent-0' })).conversation.id;
    const base = Date.parse('2024-01-01T00:00:00Z');
    for (const tenant of [ctx, other]) {
      await t.store.internals.db.inTenant(tenant.tenantId, async (trx) => {
        for (let start = 0; start < CONVERSATIONS; start += 500) {
          const rows = Array.from({ length: 500 }, (_, k) => {
            const i = start + k;
            const at = new Date(base + i * 1000).toISOString();
            return {
              tenant_id: tenant.tenantId, id: uuidv7(base + i * 1000), agent_id: `agent-${i % 30}`, end_user_id: `user-${i % 300}`, title: null,
              status: i % 50 === 0 ? 'archived' : 'active', metadata: '{}', last_seq: 0, message_count: 0, parent_id: null, fork_seq: null, version: 1, created_at: at, updated_at: at,
            };
          });
          await trx.insertInto('conversations').values(rows).execute();
        }
      });
    }
    await t.store.internals.db.inTenant(ctx.tenantId, async (trx) => {
      const at = new Date().toISOString();
      for (let start = 0; start < MESSAGES; start += 500) {
        const rows = Array.from({ length: 500 }, (_, k) => {
          const seq = start + k + 1;
          const text = `${WORDS[seq % WORDS.length]} ${WORDS[(seq * 3) % WORDS.length]} message ${seq}${seq % 997 === 0 ? ' zulu' : ''}`;
          return { tenant_id: ctx.tenantId, conversation_id: big, seq, client_id: null, role: 'user', content: JSON.stringify(text), text, model: null, usage: null, metadata: null, version: 1, created_at: at, updated_at: at };
        });
        await trx.insertInto('messages').values(rows).execute();
      }
      await sql`update conversations set last_seq = ${MESSAGES}, message_count = ${MESSAGES} where tenant_id = ${ctx.tenantId} and id = ${big}`.execute(trx);
    });
    if (dialect === 'postgres') {
      const owner = openTestDb(t.database);
      try {
        await sql`analyze conversations`.execute(owner.kysely);
        await sql`analyze messages`.execute(owner.kysely);
      } finally {
        await owner.close();
      }
    }
  }, 120_000);

  /** PostgreSQL: the EXPLAIN ANALYZE nodes; SQLite: the EXPLAIN QUERY PLAN lines joined. */
  const explain = (query: { sql: string; parameters: readonly unknown[] }): Promise<PlanNode[] | string> =>
    t.store.internals.db.inTenant(
      ctx.tenantId,
      async (trx) => {
        if (dialect === 'sqlite') return (await trx.executeQuery<{ detail: string }>(CompiledQuery.raw(`explain query plan ${query.sql}`, [...query.parameters]))).rows.map((r) => r.detail).join(' | ');
        const result = await trx.executeQuery<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(CompiledQuery.raw(`explain (analyze, format json) ${query.sql}`, [...query.parameters]));
        return nodes((result.rows[0]?.['QUERY PLAN'][0] as { Plan: PlanNode }).Plan);
      },
      { readOnly: true },
    );

  const reads: [string, MessageRead][] = [
    ['last 20', { direction: 'before', seq: null, limit: 20 }],
    ['after seq', { direction: 'after', seq: MESSAGES / 2, limit: 50 }],
    ['before seq', { direction: 'before', seq: MESSAGES / 2, limit: 50 }],
  ];
  for (const [name, read] of reads) {
    it(`${name}: one range scan of the primary key, no sort, only the page read`, async () => {
      const plan = await explain(selectMessages(t.store.internals.db.kysely, dialect, ctx.tenantId, big, read).compile());
      if (typeof plan === 'string') {
        expect(plan).toMatch(/SEARCH messages USING (INDEX sqlite_autoindex_messages_1|PRIMARY KEY) \(tenant_id=\? AND conversation_id=\?/);
        expect(plan).not.toContain('TEMP B-TREE');
        return;
      }
      expect(plan.map((n) => n['Node Type'])).not.toContain('Sort');
      expect(plan.some((n) => n['Index Name'] === 'messages_pkey')).toBe(true);
      expect(rowsRead(plan)).toBeLessThanOrEqual(read.limit + 1);
    });
  }

  const listings: [string, { agentId?: string; endUserId?: string; status?: string }, RegExp][] = [
    ['all', {}, /conversations_created/],
    ['by agent', { agentId: 'agent-7' }, /conversations_agent/],
    ['by end user', { endUserId: 'user-42' }, /conversations_end_user/],
    ['by status', { status: 'archived' }, /conversations_status/],
  ];
  for (const [name, filters, index] of listings) {
    it(`conversations ${name}: newest first from one index in order, stopping after the page`, async () => {
      const plan = await explain(selectConversations(t.store.internals.db.kysely, ctx.tenantId, filters, undefined, 20).compile());
      if (typeof plan === 'string') {
        expect(plan).toMatch(index);
        expect(plan).not.toContain('TEMP B-TREE');
        return;
      }
      expect(plan.map((n) => n['Node Type'])).not.toContain('Sort');
      expect(plan.map((n) => n['Index Name'] ?? '').join(' ')).toMatch(index);
      expect(rowsRead(plan)).toBeLessThanOrEqual(21);
    });
  }

  it('search reads the full-text index, not the tenant’s messages', async () => {
    // Selective words (a word in most messages is read from the tenant's rows, rightly: a scan, gated).
    for (const q of ['zulu', 'zulu message']) {
      const plan = await explain(searchSql(dialect, ctx.tenantId, checkSearch({ q })).compile(t.store.internals.db.kysely));
      if (typeof plan === 'string') {
        expect(plan, q).toMatch(/SCAN f VIRTUAL TABLE INDEX/);
        expect(plan, q).toMatch(/SEARCH m USING INTEGER PRIMARY KEY \(rowid=\?\)/);
        continue;
      }
      expect(plan.some((n) => n['Index Name'] === 'messages_search'), q).toBe(true);
      expect(plan.map((n) => n['Node Type']), q).not.toContain('Seq Scan');
    }
    const zulu = await t.store.conversations.search(ctx, { q: 'zulu', limit: 100 });
    expect(zulu.items.map((h) => h.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: Math.floor(MESSAGES / 997) }, (_, i) => (i + 1) * 997));
  });
});
