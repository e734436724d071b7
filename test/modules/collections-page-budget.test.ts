/**
 * A page of records carries at most PAGE_DATA_BYTES of data (its first record always): a page
 * of 100 records of 1 MiB held the event loop for seconds to parse and serialise. The cursor
 * then continues after the last record the page carried, so a walk still sees every record
 * once, in order.
 */
import { describe, expect, it } from 'vitest';
import { PAGE_DATA_BYTES, pageWithinBudget } from '../../src/modules/collections/list-query.js';
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

  it('small records still come as one page of the limit', async () => {
    const { ctx } = await newTenant(t.store);
    for (let i = 0; i < 5; i++) await t.store.collections.create(ctx, 'tiny', { id: `t${i}`, n: i });
    const page = await t.store.collections.list(ctx, 'tiny', { sort: 'n', limit: 5 });
    expect(page.items.map((r) => r.data.n)).toEqual([0, 1, 2, 3, 4]);
    expect(page.nextCursor).toBeNull();
  });
});
