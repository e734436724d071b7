/**
 * The plan of a listing on PostgreSQL under row-level security. The planner cannot estimate
 * jsonb conditions (it guessed ~1 matching row) and, with `created_at asc nulls first` not
 * matching the index's order, it sorted the whole collection to return 21 rows. A listing in
 * an indexed order must read the index in order and stop after its page.
 *
 * And the declared indexes (migration 0005, docs/architecture.md): as the runtime role with
 * RLS in force, a count, an aggregate or a listing filtered on a declared field must search
 * that field's expression index, which on the `records` table itself it cannot.
 *
 * Every listing, count and aggregate carries the expiry condition (`expires_at is null or
 * expires_at > now`, expiry.ts), so these plans show it changes none of that; and the expiry
 * sweep's queries (which tenants have due records, and a tenant's due records) search the
 * partial index records_expiry instead of reading the table.
 */
import { CompiledQuery, sql } from 'kysely';
import { beforeAll, expect, it } from 'vitest';
import type { TenantContext } from '../../src/core/context.js';
import type { Store } from '../../src/store.js';
import { toJsonColumn } from '../../src/db/dialect.js';
import { aggregateQuery, countQuery, parseAggregate } from '../../src/modules/collections/aggregate.js';
import { compileFilter, parseFilter } from '../../src/modules/collections/filter.js';
import { indexGivesOrder, selectPage } from '../../src/modules/collections/list-query.js';
import { searchPage, searchQuery, SEARCH_ROWS, withIndex } from '../../src/modules/collections/search.js';
import { indexName } from '../../src/modules/collections/index-builds.js';
import { keysetAfter, parseSort } from '../../src/modules/collections/sort.js';
import { deleteDueQuery, SWEEP_BATCH } from '../../src/modules/collections/expiry-sweep.js';
import { endUserRecordsQuery } from '../../src/modules/collections/end-user-eraser.js';
import { DUE_TENANTS_SQL } from '../../src/db/migrations/0006-record-expiry.js';
import { forEachBackend, openTestDb, useTestStore } from '../helpers/backends.js';
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

/**
 * `status` takes four values and, in 1 record of 500, `rare`; `n` is a permutation of 0..RECORDS-1.
 * Every 4th record expires in a year (none expired: the listings' answers are unchanged), so the
 * expiry index holds a quarter of them.
 */
async function seed(store: Store, ctx: TenantContext): Promise<void> {
  await store.collections.define(ctx, 'planned', { indexes: ['status', 'n', 'items.0.sku'] });
  const base = Date.parse('2024-01-01T00:00:00Z');
  await store.internals.db.inTenant(ctx.tenantId, async (trx) => {
    for (let start = 0; start < RECORDS; start += 500) {
      const rows = [];
      for (let i = start; i < start + 500; i++) {
        const at = new Date(base + i * 1000).toISOString();
        const data = { status: i % 500 === 7 ? 'rare' : STATUSES[i % STATUSES.length], n: (i * 7919) % RECORDS, amount: i % 10, items: [{ sku: `s${i % 800}` }] };
        const expiresAt = i % 4 === 0 ? new Date(Date.now() + 365 * 86_400_000 + i).toISOString() : null;
        rows.push({ tenant_id: ctx.tenantId, collection: 'planned', id: `p${String(i).padStart(5, '0')}`, version: 1, data: toJsonColumn(data), created_at: at, updated_at: at, expires_at: expiresAt });
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
      // As the owner: the runtime role may not ANALYZE (it was skipped with a warning), and
      // partial indexes built on an empty collection then look empty to the planner.
      const owner = openTestDb(t.database);
      try {
        await sql`analyze records`.execute(owner.kysely);
      } finally {
        await owner.close();
      }
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
          const query = selectPage(trx, 'postgres', { tenantId: ctx.tenantId, collection: 'planned', keys, filter, after, limit: 21, now: new Date().toISOString() }).compile();
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

    /** EXPLAIN ANALYZE of any query, as the runtime role in the tenant's transaction. */
    const explainQuery = (query: { sql: string; parameters: readonly unknown[] }, options: { indexSearch?: boolean; hashAggregate?: boolean } = {}) =>
      t.store.internals.db.inTenant(
        ctx.tenantId,
        async (trx) => {
          const result = await trx.executeQuery<{ 'QUERY PLAN': Array<{ Plan: PlanNode & { 'Index Name'?: string; 'Index Cond'?: string } }> }>(
            CompiledQuery.raw(`explain (analyze, format json) ${query.sql}`, [...query.parameters]),
          );
          return nodes((result.rows[0]?.['QUERY PLAN'][0] as { Plan: PlanNode }).Plan) as Array<PlanNode & { 'Index Name'?: string; 'Index Cond'?: string }>;
        },
        { readOnly: true, ...options },
      );
    /** Rows the scans of the table read (not of subqueries). */
    const tableRows = (plan: PlanNode[]) => rowsRead(plan.filter((n) => (n as { 'Relation Name'?: string })['Relation Name'] === 'records'));
    /** The scans whose index condition is on a data path: a declared index searched. */
    const searched = (plan: Array<PlanNode & { 'Index Name'?: string; 'Index Cond'?: string }>) =>
      plan.filter((n) => /Index/.test(n['Node Type']) && /^records_f_/.test(n['Index Name'] ?? '') && /data #>/.test(n['Index Cond'] ?? ''));
    const scope = (filter: Record<string, unknown>) => ({ tenantId: ctx.tenantId, collection: 'planned', filter: compileFilter(filter, 'postgres'), now: new Date().toISOString() });
    const db = () => t.store.internals.db.kysely;

    it('on the records table under RLS, no jsonb condition is an index condition: the declared index serves only as the whole collection', async () => {
      const query = db()
        .selectFrom('records')
        .select(sql`count(*)`.as('n'))
        .where('records.tenant_id', '=', ctx.tenantId)
        .where('records.collection', '=', 'planned')
        .where(compileFilter({ status: 'rare' }, 'postgres') as never)
        .compile();
      const plan = await explainQuery(query);
      expect(searched(plan)).toEqual([]);
      expect(rowsRead(plan)).toBeGreaterThanOrEqual(RECORDS);
    });

    it('a count filtered on a declared field searches its index (through tenant_records)', async () => {
      for (const filter of [{ status: 'rare' }, { n: { gte: RECORDS - 5 } }, { status: { in: ['rare', 'none'] } }, { 'items.0.sku': 's17' }]) {
        const plan = await explainQuery(countQuery(db(), 'postgres', scope(filter)).compile());
        expect(searched(plan).length, JSON.stringify(filter)).toBeGreaterThan(0);
        expect(rowsRead(plan), JSON.stringify(filter)).toBeLessThan(RECORDS / 20);
      }
    });

    it('an aggregate filtered on a declared field searches its index too', async () => {
      const spec = parseAggregate({ groupBy: 'status', metrics: 'sum:amount' });
      const plan = await explainQuery(aggregateQuery(db(), 'postgres', scope({ n: { lt: 10 } }), spec).compile(), { hashAggregate: true });
      expect(searched(plan).length).toBeGreaterThan(0);
      expect(rowsRead(plan)).toBeLessThan(RECORDS / 20);
      // Grouping by hashing: the planner cannot tell that a jsonb key has 5 values, and sorted.
      const whole = await explainQuery(aggregateQuery(db(), 'postgres', scope({}), spec).compile(), { hashAggregate: true });
      expect(whole.map((n) => n['Node Type'])).toContain('Aggregate');
      expect(whole.filter((n) => n['Node Type'] === 'Sort').length).toBe(1);
    });

    it('a listing filtered on a rare declared value finds its page through the index, in as many rows as match', async () => {
      const keys = parseSort(undefined, 'postgres');
      for (const filter of [{ status: 'rare' }, { n: { gte: RECORDS - 5 } }]) {
        const page = { ...scope(filter), keys, limit: 21 };
        const plan = await explainQuery(searchQuery(db(), 'postgres', page), { indexSearch: true });
        expect(searched(plan).length, JSON.stringify(filter)).toBeGreaterThan(0);
        expect(rowsRead(plan), JSON.stringify(filter)).toBeLessThan(RECORDS / 100);
        expect(plan.map((n) => n['Node Type'])).not.toContain('Seq Scan');
      }
    });

    it('a common declared value stops after SEARCH_ROWS + 1 index rows and is read in createdAt order instead', async () => {
      const keys = parseSort(undefined, 'postgres');
      const page = { ...scope({ status: { in: ['open', 'closed'] } }), keys, limit: 21 };
      const plan = await explainQuery(searchQuery(db(), 'postgres', page), { indexSearch: true });
      expect(searched(plan).length).toBeGreaterThan(0);
      expect(tableRows(plan)).toBeLessThanOrEqual(SEARCH_ROWS + 1);
      expect(await t.store.internals.db.inTenant(ctx.tenantId, (trx) => searchPage(trx, 'postgres', page), { readOnly: true, indexSearch: true })).toBeUndefined();
      // Either way the listing answers the same.
      const listed = await t.store.collections.list(ctx, 'planned', { filter: { status: { in: ['open', 'closed'] } }, limit: 4 });
      const rare = await t.store.collections.list(ctx, 'planned', { filter: { status: 'rare' }, limit: 5 });
      expect(listed.items.map((r) => r.id)).toEqual(['p00000', 'p00001', 'p00004', 'p00005']);
      expect(rare.items.map((r) => r.id)).toEqual(['p00007', 'p00507', 'p01007', 'p01507', 'p02007']);
    });

    /** Scans of records whose index is the expiry index, and whether any scan reads the table whole. */
    const expiryScans = (plan: Array<PlanNode & { 'Index Name'?: string }>) => plan.filter((n) => n['Index Name'] === 'records_expiry');
    const seqScans = (plan: PlanNode[]) => plan.filter((n) => n['Node Type'] === 'Seq Scan');

    it("the sweep's DELETE finds a tenant's due records through records_expiry, as the runtime role under RLS", async () => {
      const plan = await t.store.internals.db.inTenant(ctx.tenantId, async (trx) => {
        // Not ANALYZE: that would delete. The plan is what a sweep batch runs.
        const query = deleteDueQuery(trx, 'postgres', ctx.tenantId, new Date(Date.now() + 400 * 86_400_000).toISOString(), SWEEP_BATCH);
        const result = await trx.executeQuery<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(CompiledQuery.raw(`explain (format json) ${query.sql}`, [...query.parameters]));
        return nodes((result.rows[0]?.['QUERY PLAN'][0] as { Plan: PlanNode }).Plan) as Array<PlanNode & { 'Index Name'?: string }>;
      });
      expect(expiryScans(plan).length).toBeGreaterThan(0);
      expect(seqScans(plan)).toEqual([]);
    });

    it("erasing an end user finds the records of the collection's endUserField through its declared index", async () => {
      await t.store.collections.define(ctx, 'planned', { endUserField: 'status' });
      const plan = await explainQuery(endUserRecordsQuery(db(), 'postgres', ctx.tenantId, 'planned', 'status', 'rare', 500));
      expect(searched(plan).length).toBeGreaterThan(0);
      expect(rowsRead(plan)).toBeLessThan(RECORDS / 100);
    });

    it('the due-tenant function walks records_expiry, one probe per tenant, never the table', async () => {
      // Its body as its owner runs it (a SECURITY DEFINER function's plan is not shown by EXPLAIN of the call).
      const owner = openTestDb(t.database);
      try {
        const text = `explain (analyze, format json) ${DUE_TENANTS_SQL('$1::timestamptz', '$2', '$3')}`;
        const result = await owner.kysely.executeQuery<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(
          CompiledQuery.raw(text, [new Date(Date.now() + 400 * 86_400_000).toISOString(), '', 100]),
        );
        const plan = nodes((result.rows[0]?.['QUERY PLAN'][0] as { Plan: PlanNode }).Plan) as Array<PlanNode & { 'Index Name'?: string }>;
        expect(expiryScans(plan).length).toBeGreaterThan(0);
        expect(seqScans(plan)).toEqual([]);
        // Index probes, not the expiring rows: far fewer than the 1,000 in the index.
        expect(rowsRead(plan)).toBeLessThan(50);
      } finally {
        await owner.close();
      }
      // And the runtime role gets this tenant's id from the function, nothing more.
      const due = await t.store.internals.db.inSystem(
        async (trx) => (await sql<{ t: string }>`select t from agentstore_expiry_due_tenants(${new Date(Date.now() + 400 * 86_400_000).toISOString()}::timestamptz, '', 100) as t`.execute(trx)).rows,
        { readOnly: true },
      );
      expect(due.map((r) => r.t)).toContain(ctx.tenantId);
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
          const query = selectPage(trx, 'sqlite', { tenantId: ctx.tenantId, collection: 'planned', keys, filter, after, limit: 21, now: new Date().toISOString() }).compile();
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

    const explainQuery = (query: { sql: string; parameters: readonly unknown[] }) =>
      t.store.internals.db.inTenant(
        ctx.tenantId,
        async (trx) => (await trx.executeQuery<{ detail: string }>(CompiledQuery.raw(`explain query plan ${query.sql}`, [...query.parameters]))).rows.map((r) => r.detail).join(' | '),
        { readOnly: true },
      );
    const scope = (filter: Record<string, unknown>) => ({ tenantId: ctx.tenantId, collection: 'planned', filter: compileFilter(filter, 'sqlite'), now: new Date().toISOString() });
    const db = () => t.store.internals.db.kysely;
    // A declared index searched: `USING INDEX records_f_… (<expr>=?)` or a range `(<expr>>?)`.
    const searchedIndex = /USING INDEX records_f_\w+ \(<expr>/;

    it('counts, aggregates and listings filtered on a declared field search its expression index (array paths too)', async () => {
      for (const filter of [{ status: 'rare' }, { n: { gte: RECORDS - 5 } }, { 'items.0.sku': 's17' }, { status: { in: ['rare', 'none'] } }]) {
        const label = JSON.stringify(filter);
        // The index the service names for the filter's declared field (search.ts).
        const index = indexName(ctx.tenantId, 'planned', Object.keys(filter)[0] as string);
        expect(await explainQuery(withIndex(countQuery(db(), 'sqlite', scope(filter)), index)), label).toMatch(searchedIndex);
        const spec = parseAggregate({ groupBy: 'status', metrics: 'sum:amount' });
        expect(await explainQuery(withIndex(aggregateQuery(db(), 'sqlite', scope(filter), spec), index)), label).toMatch(searchedIndex);
        const page = { ...scope(filter), keys: parseSort(undefined, 'sqlite'), limit: 21 };
        expect(await explainQuery(searchQuery(db(), 'sqlite', page, index)), label).toMatch(searchedIndex);
        // Without the name, SQLite searches an equality in the index but a range in the primary key.
        if ('n' in filter) expect(await explainQuery(countQuery(db(), 'sqlite', scope(filter)).compile()), label).not.toMatch(searchedIndex);
      }
    });

    it("erasing an end user searches the endUserField's declared index", async () => {
      expect(await explainQuery(endUserRecordsQuery(db(), 'sqlite', ctx.tenantId, 'planned', 'status', 'rare', 500))).toMatch(searchedIndex);
    });

    it("the sweep's DELETE and the due-tenant query search records_expiry", async () => {
      const later = new Date(Date.now() + 400 * 86_400_000).toISOString();
      const del = await explainQuery(deleteDueQuery(db(), 'sqlite', ctx.tenantId, later, 100));
      expect(del).toMatch(/SEARCH records USING (COVERING )?INDEX records_expiry \(tenant_id=\? AND expires_at<\?\)/);
      const due = await explainQuery(CompiledQuery.raw(DUE_TENANTS_SQL('?', '?', '?'), ['', later, 100]));
      expect(due).toMatch(/SEARCH r USING COVERING INDEX records_expiry \(tenant_id>\?\)/);
      expect(due).toMatch(/SEARCH r EXISTS USING COVERING INDEX records_expiry \(tenant_id=\? AND expires_at<\?\)/);
      expect(due).not.toMatch(/SCAN r\b|SCAN records/);
    });
  },
  { only: ['sqlite'] },
);
