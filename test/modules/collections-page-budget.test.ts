/**
 * A page of records carries at most PAGE_DATA_BYTES of data (its first record always): a page
 * of 100 records of 1 MiB held the event loop for seconds to parse and serialise. The cursor
 * then continues after the last record the page carried, so a walk still sees every record
 * once, in order.
 */
import { describe, expect, it } from 'vitest';
import { PAGE_DATA_BYTES, pageWithinBudget } from '../../src/core/page-budget.js';
import { forEachBackend, newTenant, useTestStore } from '../helpers/index.js';

describe('pageWithinBudget', () => {
  const rows = (...sizes: number[]) => sizes.map((size, i) => ({ id: `r${i}`, _len: size }));
  it('keeps rows while their data fits, the first whatever its size, at most the limit', () => {
    expect(pageWithinBudget(rows(10, 20, 30), 2)).toEqual({ page: rows(10, 20), cut: false });
    expect(pageWithinBudget(rows(PAGE_DATA_BYTES + 1, 1), 10)).toEqual({ page: rows(PAGE_DATA_BYTES + 1), cut: true });
    const half = PAGE_DATA_BYTES / 2;
    expect(pageWithinBudget(rows(half, half, 1), 10)).toEqual({ page: rows(half, half), cut: true });
    expect(pageWithinBudget(rows(), 10)).toEqual({ page: [], cut: false });
  });
});

forEachBackend('collections: page byte budget', (backend) => {
  const t = useTestStore(backend);

  it('a listing of big records returns pages within the budget, and the walk sees each record once, in order', async () => {
    const { ctx } = await newTenant(t.store);
    const big = 'x'.repeat(900_000);
    const ids: string[] = [];
    for (let i = 0; i < 9; i++) {
      const id = `r${i}`;
      // Three small records among six of ~900 kB.
      await t.store.collections.create(ctx, 'blobs', { id, n: i, body: i % 3 === 1 ? 'small' : big });
      ids.push(id);
    }
    const seen: string[] = [];
    const pages: number[] = [];
    let cursor: string | undefined;
    for (let guard = 0; guard < 20; guard++) {
      const page = await t.store.collections.list(ctx, 'blobs', { sort: 'n', limit: 100, ...(cursor ? { cursor } : {}) });
      const bytes = page.items.reduce((sum, r) => sum + JSON.stringify(r.data).length, 0);
      expect(page.items.length === 1 || bytes <= PAGE_DATA_BYTES).toBe(true);
      for (const r of page.items) expect((r.data.body as string).length).toBe(r.data.n === 1 || r.data.n === 4 || r.data.n === 7 ? 5 : 900_000);
      seen.push(...page.items.map((r) => r.id));
      pages.push(page.items.length);
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    expect(seen).toEqual(ids);
    expect(pages.length).toBeGreaterThan(1);
  }, 60_000);

  it('the change feed pages big changes within the budget too, and a poller walking it gets every change once', async () => {
    const { ctx } = await newTenant(t.store);
    const start = await t.store.changes.head(ctx);
    const big = 'y'.repeat(900_000);
    for (let i = 0; i < 9; i++) await t.store.collections.create(ctx, 'feed', { id: `c${i}`, n: i, body: i % 3 === 1 ? 'small' : big });
    const head = await t.store.changes.head(ctx);
    const seen: number[] = [];
    let after = start;
    let polls = 0;
    while (after < head && polls++ < 30) {
      const page = await t.store.changes.poll(ctx, { after, limit: 1000, collection: 'feed' });
      const bytes = page.items.reduce((sum, e) => sum + JSON.stringify(e.data).length, 0);
      expect(page.items.length <= 1 || bytes <= PAGE_DATA_BYTES + 4096).toBe(true);
      for (const e of page.items) if (e.resourceType === 'record') expect(((e.data as { data: { body: string } }).data.body).length).toBeGreaterThan(4);
      seen.push(...page.items.map((e) => e.seq));
      after = page.lastSeq;
    }
    expect(polls).toBeGreaterThan(1);
    // Every change of the tenant since `start` is of this collection (its creation and 9
    // records), and positions have no gaps: the walk saw each once, in order.
    expect(seen).toEqual(Array.from({ length: head - start }, (_, i) => start + 1 + i));
    expect(seen).toHaveLength(10);
  }, 60_000);

  it('small records still come as one page of the limit', async () => {
    const { ctx } = await newTenant(t.store);
    for (let i = 0; i < 5; i++) await t.store.collections.create(ctx, 'tiny', { id: `t${i}`, n: i });
    const page = await t.store.collections.list(ctx, 'tiny', { sort: 'n', limit: 5 });
    expect(page.items.map((r) => r.data.n)).toEqual([0, 1, 2, 3, 4]);
    expect(page.nextCursor).toBeNull();
  });
});
