/**
 * Counting and aggregating records (src/modules/collections/aggregate.ts), on every backend:
 * exact counts, group keys compared type-strictly with null and missing as one group and
 * objects and arrays in none, metrics over numbers only, key order, the group limit with
 * `truncated`, and the errors, each naming its parameter. The same answers with declared
 * indexes on the fields (SQLite then names the index, search.ts).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { TenantContext } from '../../src/core/context.js';
import type { AggregateOptions } from '../../src/modules/collections/types.js';
import { forEachBackend, useTestStore } from '../helpers/backends.js';
import { asRole, expectError, newTenant } from '../helpers/fixtures.js';

const DATA: Record<string, unknown>[] = [
  { id: 'a1', status: 'open', region: 'eu', amount: 10, score: 1.5, items: [{ sku: 'x', qty: 2 }] },
  { id: 'a2', status: 'open', region: 'us', amount: 0.1, score: 2, items: [{ sku: 'y', qty: 1 }] },
  { id: 'a3', status: 'open', region: 'eu', amount: 0.2, items: [{ sku: 'x', qty: 5 }] },
  { id: 'a4', status: 'closed', region: 'eu', amount: '7', score: -3 },
  { id: 'a5', status: 'closed', amount: true, score: 1e20 },
  { id: 'a6', status: null, region: 'us', amount: -5 },
  { id: 'a7', region: 'eu', amount: null },
  { id: 'a8', status: 1, amount: 2 },
  { id: 'a9', status: '1', amount: 3 },
  { id: 'b1', status: true, amount: 4 },
  { id: 'b2', status: false, amount: 1.0 },
  { id: 'b3', status: 1.0, amount: 2.5 },
  { id: 'b4', status: { nested: 1 }, amount: 100 },
  { id: 'b5', status: ['open'], amount: 100 },
  { id: 'b6', status: 'Open', amount: 1 },
  { id: 'b7', status: 'éa', amount: 1 },
  { id: 'b8', status: 'zz', amount: 1 },
];

forEachBackend('collections: count and aggregate', (backend) => {
  const t = useTestStore(backend);
  let ctx: TenantContext;

  beforeAll(async () => {
    ctx = (await newTenant(t.store)).ctx;
    await t.store.collections.define(ctx, 'indexed', { indexes: ['status', 'amount', 'items.0.sku'] });
    for (const data of DATA) {
      await t.store.collections.create(ctx, 'plain', data);
      await t.store.collections.create(ctx, 'indexed', data);
    }
    // Another tenant's and another collection's records never count.
    const other = await newTenant(t.store);
    await t.store.collections.create(other.ctx, 'plain', { id: 'x1', status: 'open', amount: 1000 });
    await t.store.collections.create(ctx, 'plain-other', { id: 'y1', status: 'open', amount: 1000 });
  });

  const both = async (options: AggregateOptions) => {
    const plain = await t.store.collections.aggregate(ctx, 'plain', options);
    expect(await t.store.collections.aggregate(ctx, 'indexed', options), 'with declared indexes').toEqual(plain);
    return plain;
  };

  describe('count', () => {
    it('counts all records, or those a filter matches, exactly', async () => {
      for (const collection of ['plain', 'indexed']) {
        expect(await t.store.collections.count(ctx, collection)).toBe(DATA.length);
        expect(await t.store.collections.count(ctx, collection, { filter: { status: 'open' } })).toBe(3);
        expect(await t.store.collections.count(ctx, collection, { filter: '{"amount":{"gte":2}}' })).toBe(7);
        expect(await t.store.collections.count(ctx, collection, { filter: { 'items.0.sku': 'x' } })).toBe(2);
        expect(await t.store.collections.count(ctx, collection, { filter: { status: { in: ['open', 'closed', 1] } } })).toBe(7);
      }
      expect(await t.store.collections.count(ctx, 'nothing-here')).toBe(0);
    });

    it('is a viewer read; a bad filter is a 400 on filter', async () => {
      expect(await t.store.collections.count(asRole(ctx, 'viewer'), 'plain')).toBe(DATA.length);
      await expectError(t.store.collections.count(ctx, 'plain', { filter: '{' }), 'agentstore.validation', { field: 'filter' });
      await expectError(t.store.collections.count(ctx, 'plain', { filter: { 'a b': 1 } }), 'agentstore.validation', { field: 'filter' });
      await expectError(t.store.collections.count(ctx, 'bad name'), 'agentstore.validation', { field: 'collection' });
    });
  });

  describe('aggregate', () => {
    it('without groupBy: one group of every match, with count and metrics (zero matches too)', async () => {
      const all = await both({ metrics: 'sum:amount,min:amount,max:amount,avg:amount' });
      // The numbers among amount: 10, 0.1, 0.2, -5, 2, 3, 4, 1, 2.5, 100, 100, 1, 1, 1.
      expect(all).toEqual({
        groups: [{ key: {}, count: DATA.length, metrics: { 'sum:amount': 220.8, 'min:amount': -5, 'max:amount': 100, 'avg:amount': 15.7714285714286 } }],
        truncated: false,
      });
      expect(await both({})).toEqual({ groups: [{ key: {}, count: DATA.length, metrics: {} }], truncated: false });
      const none = await both({ filter: { status: 'nobody' }, metrics: ['sum:amount', 'avg:score'] });
      expect(none.groups).toEqual([{ key: {}, count: 0, metrics: { 'sum:amount': null, 'avg:score': null } }]);
    });

    it('groups type-strictly: 1 and "1" and true apart, 1 and 1.0 together, null with missing, objects and arrays in no group', async () => {
      const { groups, truncated } = await both({ groupBy: 'status', metrics: 'sum:amount' });
      expect(truncated).toBe(false);
      // Ordered by key: null, false, true, numbers, strings in byte order ("Open" < "open" < "zz" < "éa").
      expect(groups.map((g) => [g.key.status, g.count, g.metrics['sum:amount']])).toEqual([
        [null, 2, -5],
        [false, 1, 1],
        [true, 1, 4],
        [1, 2, 4.5],
        ['1', 1, 3],
        ['Open', 1, 1],
        ['closed', 2, null],
        ['open', 3, 10.3],
        ['zz', 1, 1],
        ['éa', 1, 1],
      ]);
      // b4 and b5 hold an object and an array: counted nowhere.
      expect(groups.reduce((n, g) => n + g.count, 0)).toBe(DATA.length - 2);
    });

    it('by two fields (an array path among them), ordered by the first then the second', async () => {
      const { groups } = await both({ groupBy: ['region', 'items.0.sku'], metrics: ['max:items.0.qty', 'min:score'], filter: { region: { exists: true } } });
      expect(groups.map((g) => [g.key.region, g.key['items.0.sku'], g.count, g.metrics['max:items.0.qty'], g.metrics['min:score']])).toEqual([
        ['eu', null, 2, null, -3],
        ['eu', 'x', 2, 5, 1.5],
        ['us', null, 1, null, null],
        ['us', 'y', 1, 1, 2],
      ]);
    });

    it('metrics read numbers only: strings, booleans and nulls are skipped; sums and averages to 15 significant digits', async () => {
      const { groups } = await both({ groupBy: 'region', metrics: 'sum:amount,avg:amount,min:score,max:score' });
      const eu = groups.find((g) => g.key.region === 'eu');
      // eu: amount 10, 0.2 ("7" and null skipped); score 1.5, -3.
      expect(eu).toEqual({ key: { region: 'eu' }, count: 4, metrics: { 'sum:amount': 10.2, 'avg:amount': 5.1, 'min:score': -3, 'max:score': 1.5 } });
      const unset = groups.find((g) => g.key.region === null);
      expect(unset?.metrics['max:score']).toBe(1e20);
    });

    it('a group holding a number of magnitude 1e300 or more has a null sum and average (a double sum could overflow), its min and max still', async () => {
      await t.store.collections.create(ctx, 'huge', { id: 'h1', v: 1.7976931348623157e308 });
      await t.store.collections.create(ctx, 'huge', { id: 'h2', v: 1.7976931348623157e308 });
      await t.store.collections.create(ctx, 'huge', { id: 'h3', v: -1e300 });
      const { groups } = await t.store.collections.aggregate(ctx, 'huge', { metrics: 'sum:v,avg:v,min:v,max:v' });
      expect(groups[0]?.metrics).toEqual({ 'sum:v': null, 'avg:v': null, 'min:v': -1e300, 'max:v': 1.7976931348623157e308 });
      const below = await t.store.collections.aggregate(ctx, 'huge', { metrics: 'sum:v', filter: { v: { lt: 1e300, gt: -1e300 } } });
      expect(below.groups[0]?.metrics).toEqual({ 'sum:v': null });
    });

    it('returns at most limit groups, in key order, with truncated when more exist', async () => {
      const first = await both({ groupBy: 'status', limit: 3 });
      expect(first.groups.map((g) => g.key.status)).toEqual([null, false, true]);
      expect(first.truncated).toBe(true);
      const exact = await both({ groupBy: 'status', limit: 10 });
      expect(exact.truncated).toBe(false);
      expect(exact.groups).toHaveLength(10);
    });

    it('refuses bad input, naming the parameter', async () => {
      const bad: Array<[AggregateOptions, string]> = [
        [{ groupBy: 'a,b,c' }, 'groupBy'],
        [{ groupBy: 'a,a' }, 'groupBy'],
        [{ groupBy: 'createdAt' }, 'groupBy'],
        [{ groupBy: 'a..b' }, 'groupBy'],
        [{ groupBy: 'a.0.1.2.3' }, 'groupBy'],
        [{ groupBy: '' }, 'groupBy'],
        [{ metrics: 'count:a' }, 'metrics'],
        [{ metrics: 'sum' }, 'metrics'],
        [{ metrics: 'sum:' }, 'metrics'],
        [{ metrics: 'sum:version' }, 'metrics'],
        [{ metrics: 'sum:a,sum:a' }, 'metrics'],
        [{ metrics: Array.from({ length: 11 }, (_, i) => `sum:f${i}`) }, 'metrics'],
        [{ metrics: ['constructor:a'] }, 'metrics'],
        [{ limit: 0 }, 'limit'],
        [{ limit: 1001 }, 'limit'],
        [{ limit: 1.5 }, 'limit'],
        [{ filter: '{"a":{"between":1}}' }, 'filter'],
      ];
      for (const [options, field] of bad) await expectError(t.store.collections.aggregate(ctx, 'plain', options), 'agentstore.validation', { field });
    });

    it('is a viewer read', async () => {
      expect((await t.store.collections.aggregate(asRole(ctx, 'viewer'), 'plain', { groupBy: 'region' })).groups.length).toBe(3);
    });
  });
});
