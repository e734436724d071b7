import { beforeAll, describe, expect, it } from 'vitest';
import type { TenantContext } from '../../src/core/context.js';
import type { StoredRecord } from '../../src/modules/collections/types.js';
import { forEachBackend, useTestStore } from '../helpers/backends.js';
import { expectError, newTenant } from '../helpers/fixtures.js';
import { matches } from './filter-reference.js';

/** Mixed types on purpose: numbers vs numeric strings, booleans vs 0/1, nulls vs missing. */
const DATA: Record<string, unknown>[] = [
  { id: 'r01', name: 'alice', age: 30, active: true, tags: ['a', 'b'], score: 5, address: { city: 'Paris', zip: '75001' } },
  { id: 'r02', name: 'bob', age: 25, active: false, tags: ['b'], score: '5', address: { city: 'Berlin' } },
  { id: 'r03', name: 'carol', age: 35, active: 1, tags: [], score: 5.5, nickname: null },
  { id: 'r04', name: 'dave', age: null, tags: ['c', 5, true, null], score: 10, address: { city: 'paris', geo: { lat: 48.8 } } },
  { id: 'r05', name: 'Eve', tags: 'a,b', score: -1, active: 'true' },
  { id: 'r06', name: 'alice smith', age: 30.5, level: { deep: { x: 1 } }, active: 0 },
  { id: 'r07', name: 'frank', age: 41, tags: ['a'], score: 0, address: 'Paris' },
  { id: 'r08', name: "o'brien; drop table records; --", age: 19, tags: ['%', '_'], score: 7 },
  { id: 'r09', name: '', age: 0, active: null, score: 5, tags: ['5'] },
  { id: 'r10', title: 'no name', age: -3, score: 1e3, address: { city: 'Rome', zip: 100 } },
  // Array paths: items.0.name indexes an array, and names the key "0" of an object.
  { id: 'r11', items: [{ name: 'pen', qty: 2 }, { name: 'ink', qty: 5, tags: ['blue'] }], grid: [[1, 2], [3, 4]] },
  { id: 'r12', items: { '0': { name: 'pen' }, '1': { name: 'cap' } }, grid: { '0': { '1': 2 } }, years: { '2024': 7, '007': 'bond' } },
  { id: 'r13', items: [{ name: 'cap' }], grid: [[0, 2]], years: [null, 5] },
];

/** Filters checked against the reference evaluator, plus hand-counted anchors. */
const CASES: { filter: Record<string, unknown>; expect?: string[] }[] = [
  // eq / shorthand / type strictness
  { filter: { name: 'alice' }, expect: ['r01'] },
  { filter: { name: { eq: 'alice' } }, expect: ['r01'] },
  { filter: { score: 5 }, expect: ['r01', 'r09'] },
  { filter: { score: '5' }, expect: ['r02'] },
  { filter: { score: 5.5 } },
  { filter: { score: 1000 }, expect: ['r10'] },
  { filter: { active: true }, expect: ['r01'] },
  { filter: { active: 1 }, expect: ['r03'] },
  { filter: { active: false }, expect: ['r02'] },
  { filter: { active: 0 }, expect: ['r06'] },
  { filter: { active: 'true' }, expect: ['r05'] },
  { filter: { active: null }, expect: ['r09'] },
  { filter: { age: null }, expect: ['r04'] },
  { filter: { name: '' }, expect: ['r09'] },
  { filter: { 'address.city': 'Paris' }, expect: ['r01'] },
  { filter: { 'data.address.city': 'paris' }, expect: ['r04'] },
  { filter: { 'address.geo.lat': 48.8 }, expect: ['r04'] },
  { filter: { 'level.deep.x': 1 }, expect: ['r06'] },
  { filter: { 'address.zip': '75001' }, expect: ['r01'] },
  { filter: { 'address.zip': 100 }, expect: ['r10'] },
  { filter: { 'address.city.x': 'P' }, expect: [] },
  // ne: missing fields match
  { filter: { name: { ne: 'alice' } } },
  { filter: { score: { ne: 5 } } },
  { filter: { active: { ne: true } } },
  { filter: { age: { ne: null } } },
  { filter: { 'address.city': { ne: 'Paris' } } },
  // ordered
  { filter: { age: { gt: 30 } }, expect: ['r03', 'r06', 'r07'] },
  { filter: { age: { gte: 30 } }, expect: ['r01', 'r03', 'r06', 'r07'] },
  { filter: { age: { lt: 25 } }, expect: ['r08', 'r09', 'r10'] },
  { filter: { age: { lte: 25, gte: 0 } }, expect: ['r02', 'r08', 'r09'] },
  { filter: { score: { gte: 5 } } },
  { filter: { score: { lt: 0 } }, expect: ['r05'] },
  { filter: { name: { gt: 'c' } } },
  { filter: { name: { lte: 'bob' } } },
  { filter: { name: { gte: 'a', lt: 'b' } }, expect: ['r01', 'r06'] },
  { filter: { name: { lt: 'a' } }, expect: ['r05', 'r09'] },
  { filter: { score: { gt: '4' } }, expect: ['r02'] },
  // in
  { filter: { name: { in: ['bob', 'carol', 'zed'] } }, expect: ['r02', 'r03'] },
  { filter: { score: { in: [5, '5'] } }, expect: ['r01', 'r02', 'r09'] },
  { filter: { active: { in: [true, null] } }, expect: ['r01', 'r09'] },
  { filter: { age: { in: [30, 30.5] } }, expect: ['r01', 'r06'] },
  // contains: substring on strings, membership on arrays
  { filter: { name: { contains: 'alice' } }, expect: ['r01', 'r06'] },
  { filter: { name: { contains: 'li' } } },
  { filter: { name: { contains: '%' } }, expect: [] },
  { filter: { tags: { contains: '%' } }, expect: ['r08'] },
  { filter: { tags: { contains: '_' } }, expect: ['r08'] },
  { filter: { tags: { contains: 'a' } }, expect: ['r01', 'r05', 'r07'] },
  { filter: { tags: { contains: 5 } }, expect: ['r04'] },
  { filter: { tags: { contains: '5' } }, expect: ['r09'] },
  { filter: { tags: { contains: true } }, expect: ['r04'] },
  { filter: { tags: { contains: null } }, expect: ['r04'] },
  { filter: { name: { contains: "'" } }, expect: ['r08'] },
  { filter: { address: { contains: 'ari' } }, expect: ['r07'] },
  // exists
  { filter: { age: { exists: true } } },
  { filter: { age: { exists: false } }, expect: ['r05', 'r11', 'r12', 'r13'] },
  { filter: { nickname: { exists: true } }, expect: ['r03'] },
  { filter: { 'address.zip': { exists: true } }, expect: ['r01', 'r10'] },
  { filter: { 'level.deep': { exists: true } }, expect: ['r06'] },
  // and / or / not, nesting, several keys
  { filter: { name: { contains: 'a' }, age: { gte: 30 } } },
  { filter: { and: [{ score: 5 }, { tags: { contains: 'a' } }] }, expect: ['r01'] },
  { filter: { or: [{ score: '5' }, { age: { gt: 40 } }] }, expect: ['r02', 'r07'] },
  { filter: { not: { score: 5 } } },
  { filter: { not: { age: { gt: 20 } } } },
  { filter: { not: { or: [{ active: true }, { active: false }] } } },
  { filter: { or: [{ and: [{ age: { gte: 30 } }, { not: { tags: { contains: 'a' } } }] }, { name: '' }] } },
  { filter: { not: { not: { score: 5 } } }, expect: ['r01', 'r09'] },
  { filter: {} },
  // meta fields
  { filter: { id: 'r03' }, expect: ['r03'] },
  { filter: { id: { in: ['r01', 'r10', 'nope'] } }, expect: ['r01', 'r10'] },
  { filter: { id: { gt: 'r08' } }, expect: ['r09', 'r10', 'r11', 'r12', 'r13'] },
  { filter: { id: { contains: '0' } } },
  { filter: { id: { ne: 'r01' } } },
  { filter: { 'data.id': 'r02' }, expect: ['r02'] },
  { filter: { version: 1 } },
  { filter: { version: { gt: 1 } }, expect: [] },
  { filter: { id: { exists: true } } },
  // array indexes and numeric keys
  { filter: { 'items.0.name': 'pen' }, expect: ['r11', 'r12'] },
  { filter: { 'items.1.name': { in: ['ink', 'cap'] } }, expect: ['r11', 'r12'] },
  { filter: { 'items.1.qty': { gt: 3 } }, expect: ['r11'] },
  { filter: { 'items.2.name': { exists: true } }, expect: [] },
  { filter: { 'items.0': { exists: true } }, expect: ['r11', 'r12', 'r13'] },
  { filter: { 'items.1.tags': { contains: 'blue' } }, expect: ['r11'] },
  { filter: { 'items.1.tags.0': 'blue' }, expect: ['r11'] },
  { filter: { 'grid.0.1': 2 }, expect: ['r11', 'r12', 'r13'] },
  { filter: { 'grid.1.0': 3 }, expect: ['r11'] },
  { filter: { 'years.2024': 7 }, expect: ['r12'] },
  { filter: { 'years.007': 'bond' }, expect: ['r12'] },
  { filter: { 'years.1': 5 }, expect: ['r13'] },
  { filter: { 'years.01': 5 }, expect: ['r13'] },
  { filter: { 'years.0': null }, expect: ['r13'] },
  { filter: { 'tags.0': 'a' }, expect: ['r01', 'r07'] },
  { filter: { 'tags.3': null }, expect: ['r04'] },
  { filter: { 'tags.99999999999': { exists: true } }, expect: [] },
  { filter: { 'items.0.name': { ne: 'pen' } } },
  { filter: { not: { 'items.0.qty': { gte: 2 } } } },
];

const INVALID: [string, unknown][] = [
  ['unknown operator', { age: { between: [1, 2] } }],
  ['empty condition object', { age: {} }],
  ['path with a space', { 'a b': 1 }],
  ['path with a quote', { "a'b": 1 }],
  ['path with SQL', { "x'); drop table records; --": 1 }],
  ['JSONPath syntax', { '$.name': 'alice' }],
  ['empty segment', { 'a..b': 1 }],
  ['path too deep', { 'a.b.c.d.e.f.g.h.i': 1 }],
  ['more than three numeric segments', { 'a.0.1.2.3': 1 }],
  ['not an object', ['name', 'alice']],
  ['and with an empty array', { and: [] }],
  ['or with a non-array', { or: { name: 'alice' } }],
  ['nested filter not an object', { not: 'name' }],
  ['in with an empty array', { name: { in: [] } }],
  ['in with too many values', { name: { in: Array.from({ length: 101 }, (_, i) => i) } }],
  ['in with a non-array', { name: { in: 'alice' } }],
  ['eq with an object', { name: { eq: { a: 1 } } }],
  ['eq with an array', { tags: { eq: ['a'] } }],
  ['gt with a boolean', { age: { gt: true } }],
  ['gt with null', { age: { gt: null } }],
  ['exists with a non-boolean', { age: { exists: 1 } }],
  ['contains with an object', { tags: { contains: { a: 1 } } }],
  ['version with a string', { version: '1' }],
  ['version with a fraction', { version: 1.5 }],
  ['createdAt with a non-date', { createdAt: { gt: 'yesterday' } }],
  ['id with a number', { id: 5 }],
  ['too deep', Array.from({ length: 12 }).reduce<unknown>((f) => ({ not: f }), { a: 1 })],
  ['too many conditions', { or: Array.from({ length: 120 }, (_, i) => ({ a: i })) }],
];

forEachBackend('collections: filter language', (backend) => {
  const t = useTestStore(backend);
  let ctx: TenantContext;
  let stored: StoredRecord[] = [];

  beforeAll(async () => {
    ctx = (await newTenant(t.store)).ctx;
    stored = [];
    for (const data of DATA) stored.push((await t.store.collections.create(ctx, 'people', data)).record);
    // A second tenant and collection with look-alike data must never show up.
    const other = await newTenant(t.store);
    await t.store.collections.create(other.ctx, 'people', { id: 'x01', name: 'alice', score: 5 });
    await t.store.collections.create(ctx, 'people-other', { id: 'y01', name: 'alice', score: 5 });
    // The same records with declared indexes: listings then look matches up through an index
    // first (list-query.ts), and SQLite's indexes hold the array-path expressions.
    await t.store.collections.define(ctx, 'people-indexed', { indexes: ['name', 'age', 'score', 'active', 'tags', 'address.city', 'items.0.name', 'items.1.qty', 'grid.0.1', 'years.2024'] });
    for (const data of DATA) await t.store.collections.create(ctx, 'people-indexed', data);
  });

  const ids = async (filter: unknown, collection = 'people'): Promise<string[]> => {
    const page = await t.store.collections.list(ctx, collection, { filter: filter as Record<string, unknown>, limit: 500 });
    return page.items.map((r) => r.id).sort();
  };

  describe('matches the reference semantics', () => {
    it.each(CASES.map((c) => [JSON.stringify(c.filter), c] as const))('%s', async (_name, c) => {
      const expected = stored.filter((r) => matches(r as never, c.filter)).map((r) => r.id).sort();
      if (c.expect) expect(expected, 'reference evaluator disagrees with the hand count').toEqual([...c.expect].sort());
      expect(await ids(c.filter)).toEqual(expected);
      expect(await ids(c.filter, 'people-indexed'), 'with declared indexes').toEqual(expected);
      expect(await t.store.collections.count(ctx, 'people', { filter: c.filter as Record<string, unknown> })).toBe(expected.length);
    });
  });

  it('takes the filter as JSON text too', async () => {
    expect(await ids(JSON.stringify({ score: 5 }))).toEqual(['r01', 'r09']);
  });

  it('filters on createdAt/updatedAt with ISO timestamps', async () => {
    const sorted = [...stored].sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
    const pivot = sorted[5] as StoredRecord;
    const expected = stored.filter((r) => r.createdAt >= pivot.createdAt).map((r) => r.id).sort();
    expect(await ids({ createdAt: { gte: pivot.createdAt } })).toEqual(expected);
    const before = stored.filter((r) => r.createdAt < pivot.createdAt).map((r) => r.id).sort();
    expect(await ids({ createdAt: { lt: pivot.createdAt } })).toEqual(before);
    // Another spelling of the same instant means the same instant.
    const offset = new Date(pivot.createdAt).toISOString().replace('Z', '+00:00');
    expect(await ids({ updatedAt: { gte: offset } })).toEqual(stored.filter((r) => r.updatedAt >= pivot.updatedAt).map((r) => r.id).sort());
    expect(await ids({ createdAt: { gt: '2999-01-01T00:00:00Z' } })).toEqual([]);
  });

  describe('rejects invalid filters as validation errors on "filter"', () => {
    it.each(INVALID)('%s', async (_name, filter) => {
      await expectError(t.store.collections.list(ctx, 'people', { filter: filter as Record<string, unknown> }), 'agentstore.validation', { field: 'filter' });
    });

    it('strings with U+0000, which PostgreSQL cannot hold (same answer on every backend)', async () => {
      await expectError(t.store.collections.list(ctx, 'people', { filter: { name: 'a\u0000' } }), 'agentstore.validation', { field: 'filter' });
      await expectError(t.store.collections.list(ctx, 'people', { filter: { tags: { contains: '\u0000' } } }), 'agentstore.validation', { field: 'filter' });
      // A backslash followed by "u0000" is ordinary text.
      expect(await ids({ name: '\\u0000' })).toEqual([]);
    });

    it('malformed and over-long JSON text', async () => {
      await expectError(t.store.collections.list(ctx, 'people', { filter: '{"name": ' }), 'agentstore.validation', { field: 'filter' });
      await expectError(t.store.collections.list(ctx, 'people', { filter: JSON.stringify({ name: 'x'.repeat(9000) }) }), 'agentstore.validation', {
        field: 'filter',
      });
    });
  });

  it('treats SQL in filter values as plain data and leaves the database unchanged', async () => {
    const attacks = ["' or 1=1 --", "x'); delete from records; --", '"; drop table records; --', '\\', "%' or '%'='"];
    for (const value of attacks) {
      expect(await ids({ name: value })).toEqual([]);
      expect(await ids({ name: { contains: value } })).toEqual([]);
      expect(await ids({ name: { in: [value, 'bob'] } })).toEqual(['r02']);
      expect(await ids({ id: value })).toEqual([]);
    }
    expect(await ids({ name: "o'brien; drop table records; --" })).toEqual(['r08']);
    expect(await ids({})).toHaveLength(DATA.length);
  });
});
