/**
 * The plan of a listing on PostgreSQL under row-level security. The planner cannot estimate
 * jsonb conditions (it guessed ~1 matching row) and, with `created_at asc nulls first` not
 * matching the index's order, it sorted the whole collection to return 21 rows. A listing in
 * an indexed order must read the index in order and stop after its page.
 */
import { CompiledQuery, sql } from 'kysely';
import { beforeAll, expect, it } from 'vitest';
import type { TenantContext } from '../../src/core/context.js';
import type { Store } from '../../src/store.js';
import { toJsonColumn } from '../../src/db/dialect.js';
import { compileFilter, parseFilter } from '../../src/modules/collections/filter.js';
import { indexGivesOrder, selectPage } from '../../src/modules/collections/list-query.js';
import { keysetAfter, parseSort } from '../../src/modules/collections/sort.js';
import { forEachBackend, useTestStore } from '../helpers/backends.js';
import { newTenant } from '../helpers/fixtures.js';

const RECORDS = 4000;
const STATUSES = ['open', 'closed', 'pending', 'archived'];

interface PlanNode {
  'Node Type': string;
  'Actual Rows': number;
  'Actual Loops': number;
  'Rows Removed by Filter'?: number;
  Plans?: PlanNode[];
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

async function seed(store: Store, ctx: TenantContext): Promise<void> {
  await store.collections.define(ctx, 'planned', { indexes: ['status'] });
  const base = Date.parse('2024-01-01T00:00:00Z');
  await store.internals.db.inTenant(ctx.tenantId, async (trx) => {
    for (let start = 0; start < RECORDS; start += 500) {
      const rows = [];
      for (let i = start; i < start + 500; i++) {
        const at = new Date(base + i * 1000).toISOString();
        const data = { status: STATUSES[i % STATUSES.length], n: (i * 7919) % RECORDS };
        rows.push({ tenant_id: ctx.tenantId, collection: 'planned', id: `p${String(i).padStart(5, '0')}`, version: 1, data: toJsonColumn(data), created_at: at, updated_at: at });
      }
      await trx.insertInto('records').values(rows).execute();
    }
  });
}

forEachBackend(
  'collections: listing plans under RLS',
  (backend) => {
    const t = useTestStore(backend);
    let ctx: TenantContext;
    beforeAll(async () => {
      ({ ctx } = await newTenant(t.store));
      await seed(t.store, ctx);
      await sql`analyze records`.execute(t.store.internals.db.kysely);
    });

    /** EXPLAIN ANALYZE of one page, run as the store runs a listing (the app role, RLS on). */
    const explain = async (sort: string | undefined, cursor?: readonly unknown[]): Promise<PlanNode[]> => {
      const keys = parseSort(sort, 'postgres');
      const filter = compileFilter(parseFilter(JSON.stringify({ status: 'open', n: { gte: 100 } })), 'postgres');
      const after = cursor ? keysetAfter(keys, cursor, 'postgres') : undefined;
      expect(indexGivesOrder(keys)).toBe(true);
      return t.store.internals.db.inTenant(
        ctx.tenantId,
        async (trx) => {
          const query = selectPage(trx, 'postgres', { tenantId: ctx.tenantId, collection: 'planned', keys, filter, after, limit: 21 }).compile();
          const result = await trx.executeQuery<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(
            CompiledQuery.raw(`explain (analyze, format json) ${query.sql}`, [...query.parameters]),
          );
          return nodes((result.rows[0]?.['QUERY PLAN'][0] as { Plan: PlanNode }).Plan);
        },
        { readOnly: true, indexOrder: true },
      );
    };

    const rowsRead = (plan: PlanNode[]): number =>
      plan.filter((n) => /Scan/.test(n['Node Type'])).reduce((sum, n) => sum + (n['Actual Rows'] + (n['Rows Removed by Filter'] ?? 0)) * n['Actual Loops'], 0);

    it('the default order (createdAt) reads the index in order and stops after the page', async () => {
      const plan = await explain(undefined);
      expect(plan.map((n) => n['Node Type'])).not.toContain('Sort');
      expect(rowsRead(plan)).toBeLessThan(RECORDS / 10);
    });

    it('a descending order does too (ties on id sorted within equal timestamps only)', async () => {
      const plan = await explain('-createdAt');
      expect(plan.map((n) => n['Node Type'])).not.toContain('Sort');
      expect(rowsRead(plan)).toBeLessThan(RECORDS / 10);
    });

    it('a later page seeks to the cursor instead of reading from the first row', async () => {
      const plan = await explain(undefined, [new Date(Date.parse('2024-01-01T00:00:00Z') + 3000 * 1000).toISOString(), 'p03000']);
      expect(plan.map((n) => n['Node Type'])).not.toContain('Sort');
      expect(rowsRead(plan)).toBeLessThan(RECORDS / 10);
    });

    it('sorting by updatedAt and by id reads in index order too', async () => {
      for (const sort of ['updatedAt', 'id', '-id']) {
        const plan = await explain(sort);
        expect(plan.map((n) => n['Node Type']), sort).not.toContain('Sort');
        expect(rowsRead(plan), sort).toBeLessThan(RECORDS / 10);
      }
    });
  },
  { only: ['postgres'] },
);

// SQLite plans the same listings from its indexes without statistics: a full sort would
// show as `USE TEMP B-TREE FOR ORDER BY` (a right part of the order, the id tie-breaker of a
// descending sort, may be sorted within equal timestamps).
forEachBackend(
  'collections: listing plans',
  (backend) => {
    const t = useTestStore(backend);
    let ctx: TenantContext;
    beforeAll(async () => {
      ({ ctx } = await newTenant(t.store));
      await seed(t.store, ctx);
    });

    const plan = async (sort: string | undefined, cursor?: readonly unknown[]): Promise<string[]> => {
      const keys = parseSort(sort, 'sqlite');
      const filter = compileFilter(parseFilter(JSON.stringify({ status: 'open', n: { gte: 100 } })), 'sqlite');
      const after = cursor ? keysetAfter(keys, cursor, 'sqlite') : undefined;
      return t.store.internals.db.inTenant(
        ctx.tenantId,
        async (trx) => {
          const query = selectPage(trx, 'sqlite', { tenantId: ctx.tenantId, collection: 'planned', keys, filter, after, limit: 21 }).compile();
          const result = await trx.executeQuery<{ detail: string }>(CompiledQuery.raw(`explain query plan ${query.sql}`, [...query.parameters]));
          return result.rows.map((r) => r.detail);
        },
        { readOnly: true },
      );
    };

    it('reads the (tenant, collection, column, id) index in order for createdAt, updatedAt and id, first page and later', async () => {
      const cases: Array<[string | undefined, RegExp, (readonly unknown[])?]> = [
        [undefined, /records_created/],
        ['-createdAt', /records_created/],
        ['updatedAt', /records_updated/],
        ['id', /records_pkey|sqlite_autoindex_records|PRIMARY KEY/],
        [undefined, /records_created/, [new Date(Date.parse('2024-01-01T00:00:00Z') + 3000 * 1000).toISOString(), 'p03000']],
      ];
      for (const [sort, index, cursor] of cases) {
        const detail = await plan(sort, cursor);
        expect(detail.join(' | '), String(sort)).toMatch(index);
        expect(detail, String(sort)).not.toContain('USE TEMP B-TREE FOR ORDER BY');
      }
    });
  },
  { only: ['sqlite'] },
);
