import { beforeAll, describe, expect, it } from 'vitest';
import type { TenantContext } from '../../src/core/context.js';
import type { StoredRecord } from '../../src/modules/collections/types.js';
import { forEachBackend, useTestStore } from '../helpers/backends.js';
import { expectError, newTenant, seededRandom } from '../helpers/fixtures.js';
import { matches } from './filter-reference.js';

const COUNT = 60;
const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'Zulu', 'apple', 'b'];

/** Homogeneous types per field (mixed-type order is dialect-specific), with gaps and explicit nulls. */
function makeData(): Record<string, unknown>[] {
  const random = seededRandom(42);
  return Array.from({ length: COUNT }, (_, i) => {
    const data: Record<string, unknown> = { i };
    const r = random();
    if (r < 0.15) data.p = null;
    else if (r > 0.25) data.p = Math.floor(random() * 5) - 1; // few distinct values: many ties
    if (random() > 0.2) data.s = WORDS[Math.floor(random() * WORDS.length)];
    if (random() > 0.3) data.meta = { rank: Math.round(random() * 1000) / 10 };
    else if (random() > 0.5) data.meta = { other: true };
    return data;
  });
}

type Key = { path: string; desc: boolean };

function sortValue(record: StoredRecord, path: string): unknown {
  if (path === 'id' || path === 'createdAt' || path === 'updatedAt' || path === 'version') return record[path];
  let v: unknown = record.data;
  for (const seg of path.replace(/^data\./, '').split('.')) v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[seg] : undefined;
  return v === undefined ? null : v;
}

/** The documented order: missing/null first ascending, last descending; id breaks ties. */
function expectedOrder(records: readonly StoredRecord[], spec: string): string[] {
  const keys: Key[] = spec.split(',').map((p) => ({ path: p.replace(/^-/, ''), desc: p.startsWith('-') }));
  if (!keys.some((k) => k.path === 'id')) keys.push({ path: 'id', desc: false });
  const cmp = (a: StoredRecord, b: StoredRecord): number => {
    for (const key of keys) {
      const x = sortValue(a, key.path);
      const y = sortValue(b, key.path);
      if (x === y) continue;
      let c: number;
      if (x === null) c = -1;
      else if (y === null) c = 1;
      else c = (x as number | string) < (y as number | string) ? -1 : 1;
      return key.desc ? -c : c;
    }
    return 0;
  };
  return [...records].sort(cmp).map((r) => r.id);
}

const SORTS = ['p', '-p', 's', '-s', 'p,-s', '-p,s,meta.rank', 'meta.rank', '-meta.rank', '-createdAt', 'updatedAt', 'id', '-id', '-version,p', 'data.s,-id'];

forEachBackend('collections: sort and keyset pagination', (backend) => {
  const t = useTestStore(backend);
  let ctx: TenantContext;
  let records: StoredRecord[] = [];

  beforeAll(async () => {
    ctx = (await newTenant(t.store)).ctx;
    const created: StoredRecord[] = [];
    for (const data of makeData()) created.push((await t.store.collections.create(ctx, 'items', data)).record);
    // Some records get a later updatedAt and a higher version.
    for (const r of created.filter((_, i) => i % 7 === 3)) await t.store.collections.patch(ctx, 'items', r.id, { touched: true });
    records = (await t.store.collections.list(ctx, 'items', { limit: 500 })).items;
    expect(records).toHaveLength(COUNT);
  });

  /** Walks every page; checks each page's size and that the cursor ends the walk. */
  const walk = async (options: { sort?: string; filter?: Record<string, unknown> }, limit: number): Promise<string[]> => {
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 1000; pages++) {
      const page = await t.store.collections.list(ctx, 'items', { ...options, limit, ...(cursor ? { cursor } : {}) });
      seen.push(...page.items.map((r) => r.id));
      if (!page.nextCursor) return seen;
      expect(page.items).toHaveLength(limit);
      cursor = page.nextCursor;
    }
    throw new Error('pagination did not end');
  };

  describe('single page order', () => {
    it.each(SORTS)('sort=%s', async (sort) => {
      const page = await t.store.collections.list(ctx, 'items', { sort, limit: 500 });
      expect(page.items.map((r) => r.id)).toEqual(expectedOrder(records, sort));
      expect(page.nextCursor).toBeNull();
    });

    it('defaults to createdAt ascending', async () => {
      const page = await t.store.collections.list(ctx, 'items', { limit: 500 });
      expect(page.items.map((r) => r.id)).toEqual(expectedOrder(records, 'createdAt'));
    });
  });

  describe('walking every page: no duplicates, no gaps', () => {
    it.each(SORTS.map((s, i) => [s, [1, 4, 7, 13, 59, 60][i % 6] as number] as const))('sort=%s limit=%i', async (sort, limit) => {
      const seen = await walk({ sort }, limit);
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen).toEqual(expectedOrder(records, sort));
    });

    it('with a filter', async () => {
      const filter = { or: [{ p: { gte: 1 } }, { s: { in: ['alpha', 'b'] } }, { p: null }] };
      const expected = expectedOrder(
        records.filter((r) => matches(r as never, filter)),
        '-p,s',
      );
      expect(expected.length).toBeGreaterThan(5);
      expect(await walk({ sort: '-p,s', filter }, 3)).toEqual(expected);
    });

    it('an exact multiple of the page size ends without an empty page', async () => {
      const page = await t.store.collections.list(ctx, 'items', { limit: COUNT });
      expect(page.items).toHaveLength(COUNT);
      expect(page.nextCursor).toBeNull();
    });
  });

  describe('invalid sort, limit and cursor', () => {
    it.each(['a,b,c,d', 'p,,s', 'p,-p', 'a b', '-', '--p', 'x;drop table records', '$.p', 'a..b'])('sort=%s', async (sort) => {
      await expectError(t.store.collections.list(ctx, 'items', { sort }), 'agentstore.validation', { field: 'sort' });
    });

    it.each([0, -1, 501, 1.5, Number.NaN])('limit=%s', async (limit) => {
      await expectError(t.store.collections.list(ctx, 'items', { limit }), 'agentstore.validation', { field: 'limit' });
    });

    it('rejects malformed cursors and cursors of another listing', async () => {
      const first = await t.store.collections.list(ctx, 'items', { sort: 'p', limit: 2 });
      const cursor = first.nextCursor as string;
      expect(cursor).toEqual(expect.any(String));
      const bad = ['garbage!', 'e30', Buffer.from('not json').toString('base64url'), 'x'.repeat(5000)];
      for (const c of bad) {
        await expectError(t.store.collections.list(ctx, 'items', { sort: 'p', cursor: c }), 'agentstore.validation', { field: 'cursor' });
      }
      // Same cursor, different query shape: sort, filter, collection.
      await expectError(t.store.collections.list(ctx, 'items', { sort: '-p', cursor }), 'agentstore.validation', { field: 'cursor' });
      await expectError(t.store.collections.list(ctx, 'items', { sort: 'p', filter: { p: 1 }, cursor }), 'agentstore.validation', { field: 'cursor' });
      await expectError(t.store.collections.list(ctx, 'other', { sort: 'p', cursor }), 'agentstore.validation', { field: 'cursor' });
      // A cursor of another listing type.
      await t.store.counters.increment(ctx, 'c1');
      await t.store.counters.increment(ctx, 'c2');
      const counterCursor = (await t.store.counters.list(ctx, { limit: 1 })).nextCursor as string;
      await expectError(t.store.collections.list(ctx, 'items', { cursor: counterCursor }), 'agentstore.validation', { field: 'cursor' });
      await expectError(t.store.counters.list(ctx, { cursor }), 'agentstore.validation', { field: 'cursor' });
    });

    it('rejects a tampered cursor (right scope, forged values) as a validation error', async () => {
      const first = await t.store.collections.list(ctx, 'items', { sort: 'p,-createdAt', limit: 2 });
      const decoded = JSON.parse(Buffer.from(first.nextCursor as string, 'base64url').toString('utf8')) as { s: string; v: unknown[] };
      const forged = (values: unknown[]) => Buffer.from(JSON.stringify({ s: decoded.s, v: values })).toString('base64url');
      const attempts: unknown[][] = [
        [],
        [1, 2],
        [{ a: '\u0000' }, decoded.v[1], decoded.v[2]],
        [decoded.v[0], 'not a date', decoded.v[2]],
        [decoded.v[0], decoded.v[1], 42],
        [decoded.v[0], decoded.v[1], ["'); drop table records; --"]],
      ];
      for (const values of attempts) {
        await expectError(t.store.collections.list(ctx, 'items', { sort: 'p,-createdAt', cursor: forged(values) }), 'agentstore.validation', {
          field: 'cursor',
        });
      }
      // A data field's cursor value is a JSON value on every backend: any one both can store
      // is a position (where other types sort differs by backend, as documented).
      for (const value of ['not json {', { a: 1 }, true, 1e308]) {
        const odd = await t.store.collections.list(ctx, 'items', { sort: 'p,-createdAt', cursor: forged([value, decoded.v[1], decoded.v[2]]) });
        expect(odd.items.length).toBeLessThanOrEqual(COUNT);
      }
      expect((await t.store.collections.list(ctx, 'items', { limit: 500 })).items).toHaveLength(COUNT);
    });
  });
});
