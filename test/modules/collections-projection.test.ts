/**
 * `fields` on get and list (src/modules/collections/projection.ts): only the named parts of
 * `data`, in the data's shape, alike on every backend; the record attributes and the version
 * stay; invalid paths are a 400 on `fields`.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { TenantContext } from '../../src/core/context.js';
import { MAX_FIELDS, parseFields, project } from '../../src/modules/collections/projection.js';
import { forEachBackend, useTestStore } from '../helpers/backends.js';
import { expectError, newTenant } from '../helpers/fixtures.js';

const RECORD = {
  id: 'p1',
  title: 'Quarterly report',
  owner: { id: 'u7', name: 'Ada', tags: ['x'] },
  items: [{ sku: 'a', qty: 1 }, { sku: 'b', qty: 2 }, { sku: 'c' }],
  byYear: { '2024': 3, '0': 'zero' },
  empty: null,
};

describe('project (the same code for every backend)', () => {
  const p = (fields: string) => project(RECORD, parseFields(fields) ?? []);

  it('keeps the shape of nested paths and leaves missing ones out', () => {
    expect(p('title,owner.id,nope,owner.nope.deeper')).toEqual({ title: 'Quarterly report', owner: { id: 'u7' } });
    expect(p('data.owner.name')).toEqual({ owner: { name: 'Ada' } });
    expect(p('empty')).toEqual({ empty: null });
  });

  it('indexes arrays with numeric segments, keeping the selected elements in order, and objects by key', () => {
    expect(p('items.2.sku,items.0.qty')).toEqual({ items: [{ qty: 1 }, { sku: 'c' }] });
    expect(p('items.1')).toEqual({ items: [{ sku: 'b', qty: 2 }] });
    expect(p('items.9.sku,items.sku')).toEqual({});
    expect(p('byYear.2024,byYear.0')).toEqual({ byYear: { '2024': 3, '0': 'zero' } });
    expect(p('owner.tags.0')).toEqual({ owner: { tags: ['x'] } });
  });

  it('a path inside another selected one adds nothing; keys follow the order of fields', () => {
    expect(p('owner.name,owner,title')).toEqual({ owner: RECORD.owner, title: RECORD.title });
    expect(Object.keys(p('title,owner.id'))).toEqual(['title', 'owner']);
    expect(Object.keys(p('owner.id,title'))).toEqual(['owner', 'title']);
  });

  it('record attributes select nothing more (they are always returned)', () => {
    expect(p('id,version,createdAt')).toEqual({});
    expect(p('id,data.id')).toEqual({ id: 'p1' });
  });

  it('a "__proto__" key stays a plain key', () => {
    const data = JSON.parse('{"__proto__": {"x": 1}, "a": 1}') as Record<string, unknown>;
    const out = project(data, parseFields('__proto__.x') ?? []);
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(JSON.stringify(out)).toBe('{"__proto__":{"x":1}}');
  });

  it('refuses what is not a list of field paths, naming fields', async () => {
    for (const bad of ['', ',', 'a,,b', 'a b', 'a..b', '$.a', 'a.0.1.2.3', Array.from({ length: MAX_FIELDS + 1 }, (_, i) => `f${i}`).join(',')]) {
      await expectError(async () => parseFields(bad), 'agentstore.validation', { field: 'fields' });
    }
    await expectError(async () => parseFields([]), 'agentstore.validation', { field: 'fields' });
    expect(parseFields(undefined)).toBeUndefined();
    expect(parseFields(['a', ' b '])).toEqual([['a'], ['b']]);
  });
});

forEachBackend('collections: fields on get and list', (backend) => {
  const t = useTestStore(backend);
  let ctx: TenantContext;
  beforeAll(async () => {
    ctx = (await newTenant(t.store)).ctx;
    await t.store.collections.create(ctx, 'docs', RECORD);
    await t.store.collections.create(ctx, 'docs', { id: 'p2', title: 'Other', items: { '0': { sku: 'obj' } } });
  });

  it('get returns the selected data, with the record attributes and version', async () => {
    const full = await t.store.collections.get(ctx, 'docs', 'p1');
    const some = await t.store.collections.get(ctx, 'docs', 'p1', { fields: 'title,items.1.sku' });
    expect(some).toEqual({ ...full, data: { title: 'Quarterly report', items: [{ sku: 'b' }] } });
    const json = await t.store.collections.getJson(ctx, 'docs', 'p1', { fields: ['owner.name'] });
    expect(json.version).toBe(full.version);
    expect(JSON.parse(json.json)).toEqual({ ...full, data: { owner: { name: 'Ada' } } });
  });

  it('list projects every item, and filters and sorts still see the whole record', async () => {
    const page = await t.store.collections.list(ctx, 'docs', { fields: 'items.0.sku', filter: { title: { exists: true } }, sort: '-title' });
    expect(page.items.map((r) => [r.id, r.data])).toEqual([
      ['p1', { items: [{ sku: 'a' }] }],
      ['p2', { items: { '0': { sku: 'obj' } } }],
    ]);
  });

  it('bad fields are a 400 on fields before anything is read', async () => {
    await expectError(t.store.collections.get(ctx, 'docs', 'missing', { fields: 'a b' }), 'agentstore.validation', { field: 'fields' });
    await expectError(t.store.collections.list(ctx, 'docs', { fields: 'a..b' }), 'agentstore.validation', { field: 'fields' });
  });
});
