/**
 * `collections.bulk`: many records per call in chunks of units of work, a result per line in
 * order, idempotent by client id (the same lines again are `unchanged` and write nothing),
 * failures per line, on every backend.
 */
import { expect, it } from 'vitest';
import type { TenantContext } from '../../src/core/context.js';
import { AgentstoreError } from '../../src/core/errors.js';
import type { BulkLine, BulkOptions, BulkResult } from '../../src/modules/collections/bulk.js';
import type { Store } from '../../src/store.js';
import { forEachBackend, useTestStore } from '../helpers/backends.js';
import { asRole, expectError, newTenant, snapshotCounts } from '../helpers/fixtures.js';

async function load(store: Store, ctx: TenantContext, collection: string, lines: Iterable<BulkLine | AgentstoreError> | AsyncIterable<BulkLine | AgentstoreError>, options?: BulkOptions): Promise<BulkResult[]> {
  const out: BulkResult[] = [];
  for await (const result of store.collections.bulk(ctx, collection, lines, options)) out.push(result);
  return out;
}

const statuses = (results: readonly BulkResult[]) => results.map((r) => (r.status === 'failed' ? `${r.line}:failed:${r.error.code}` : `${r.line}:${r.status}:${r.version}`));

forEachBackend('collections: bulk loads', (backend) => {
  const t = useTestStore(backend, { store: { tenantLimits: { collections: 3 } } });

  it('creates records in chunks; sending the same lines again changes nothing', async () => {
    const { ctx } = await newTenant(t.store);
    const N = 1234;
    const lines = (): BulkLine[] => Array.from({ length: N }, (_, i) => ({ id: `r${i}`, data: { n: i, tags: ['a', `t${i % 7}`], nested: { b: i % 2 === 0, a: 'x' } } }));
    const first = await load(t.store, ctx, 'items', lines());
    expect(first).toHaveLength(N);
    expect(first.every((r, i) => r.line === i + 1 && r.status === 'created' && r.id === `r${i}`)).toBe(true);
    const page = await t.store.collections.list(ctx, 'items', { limit: 500, sort: 'id' });
    expect(page.items[0]).toMatchObject({ id: 'r0', version: 1, data: { n: 0 } });
    const before = await snapshotCounts(t.store, ctx.tenantId);
    expect(before.records).toBe(N);
    // The same file again, even with keys in another order: unchanged, nothing written.
    const reordered = lines().map((l) => ({ id: l.id as string, data: Object.fromEntries(Object.entries(l.data).reverse()) }));
    const again = await load(t.store, ctx, 'items', reordered);
    expect(again.every((r) => r.status === 'unchanged' && r.version === 1)).toBe(true);
    expect(await snapshotCounts(t.store, ctx.tenantId)).toEqual(before);
  });

  it('create mode refuses other data for an existing id; upsert replaces it; lines see the lines before them', async () => {
    const { ctx } = await newTenant(t.store);
    await t.store.collections.create(ctx, 'c', { id: 'old', n: 1 });
    const head = await t.store.changes.head(ctx);
    const results = await load(t.store, ctx, 'c', [
      { id: 'old', data: { n: 2 } },
      { id: 'old', data: { n: 2 }, mode: 'upsert' },
      { id: 'new', data: { n: 1 } },
      { id: 'new', data: { n: 1 } },
      { id: 'new', data: { n: 5 }, mode: 'upsert' },
      { id: 'new', data: { n: 6 } },
      { data: { id: 'fromdata', n: 1 } },
      { data: { n: 'no id' } },
    ]);
    expect(statuses(results)).toEqual(['1:failed:agentstore.conflict', '2:updated:2', '3:created:1', '4:unchanged:1', '5:updated:2', '6:failed:agentstore.conflict', '7:created:1', '8:created:1']);
    expect(results[6]).toMatchObject({ id: 'fromdata' });
    expect(results[7]?.status === 'created' && results[7].id).toMatch(/^[0-9a-f-]{36}$/);
    expect((await t.store.collections.get(ctx, 'c', 'old')).data).toEqual({ n: 2 });
    expect((await t.store.collections.get(ctx, 'c', 'new'))).toMatchObject({ version: 2, data: { n: 5 } });
    // The change feed holds the lines' changes, in line order.
    const changes = await t.store.changes.read(ctx, { after: head });
    expect(changes.map((c) => [c.type, c.resourceId, c.version])).toEqual([
      ['record.update', 'old', 2],
      ['record.create', 'new', 1],
      ['record.update', 'new', 2],
      ['record.create', 'fromdata', 1],
      ['record.create', results[7]?.id, 1],
    ]);
    expect(changes[2]?.data).toMatchObject({ id: 'new', version: 2, data: { n: 5 } });
    // The call's default mode.
    expect(statuses(await load(t.store, ctx, 'c', [{ id: 'old', data: { n: 3 } }], { mode: 'upsert' }))).toEqual(['1:updated:3']);
  });

  it('a bad line fails alone, named by pointers into the line; the others are written', async () => {
    const { ctx } = await newTenant(t.store);
    await t.store.collections.define(ctx, 'typed', { schema: { type: 'object', properties: { n: { type: 'integer' } } } });
    const lines = [
      { id: 'ok1', data: { n: 1 } },
      'not an object',
      { id: 'x', data: { n: 1 }, extra: true },
      { id: 'x' },
      { id: 'x', data: [1] },
      { id: '-bad', data: {} },
      { id: 'x', data: { id: 'y' } },
      { id: 'x', data: { n: 'one' } },
      { id: 'x', data: {}, mode: 'replace' },
      { id: 'x', data: { s: 'a\u0000' } },
      AgentstoreError.invalidField('body', 'the line is not valid JSON'),
      { id: 'ok2', data: { n: 2 } },
    ] as unknown as BulkLine[];
    const results = await load(t.store, ctx, 'typed', lines);
    const fields = results.map((r) => (r.status === 'failed' ? (r.error.context.errors ?? []).map((e) => e.field).join(',') : r.status));
    expect(fields).toEqual(['created', 'body', '/extra', '/data', '/data', '/id', '/data/id', '/data/n', '/mode', '/data', 'body', 'created']);
    expect((await t.store.collections.list(ctx, 'typed')).items.map((r) => r.id).sort()).toEqual(['ok1', 'ok2']);
  });

  it('role and collection are checked at the call; the collection limit fails each line', async () => {
    const { ctx } = await newTenant(t.store);
    expect(() => t.store.collections.bulk(asRole(ctx, 'viewer'), 'c', [])).toThrow(expect.objectContaining({ code: 'agentstore.forbidden' }));
    expect(() => t.store.collections.bulk(ctx, 'bad name', [])).toThrow(expect.objectContaining({ code: 'agentstore.validation' }));
    expect(() => t.store.collections.bulk(ctx, 'c', [], { mode: 'merge' as 'create' })).toThrow(expect.objectContaining({ code: 'agentstore.validation' }));
    await t.store.collections.create(ctx, 'one', {});
    await t.store.collections.create(ctx, 'two', {});
    await t.store.collections.create(ctx, 'three', {});
    const results = await load(t.store, ctx, 'four', [{ data: {} }, { data: {} }]);
    expect(statuses(results)).toEqual(['1:failed:agentstore.conflict', '2:failed:agentstore.conflict']);
  });

  it('stops after maxLines: the next line fails with 413 and is not read further', async () => {
    const { ctx } = await newTenant(t.store);
    let read = 0;
    function* lines() {
      for (let i = 0; i < 100; i++) {
        read++;
        yield { data: { i } };
      }
    }
    const results = await load(t.store, ctx, 'c', lines(), { maxLines: 5 });
    expect(statuses(results).map((s) => s.split(':')[1])).toEqual(['created', 'created', 'created', 'created', 'created', 'failed']);
    const last = results[5];
    expect(last?.status === 'failed' && last.error.code).toBe('agentstore.payload_too_large');
    expect(read).toBe(6);
    expect((await snapshotCounts(t.store, ctx.tenantId)).records).toBe(5);
  });

  it('concurrent loads of the same ids: every line created once or unchanged, none failed', async () => {
    const { ctx } = await newTenant(t.store);
    const lines = () => Array.from({ length: 700 }, (_, i) => ({ id: `k${i}`, data: { i } }));
    const all = await Promise.all(Array.from({ length: 3 }, () => load(t.store, ctx, 'shared', lines())));
    for (const results of all) expect(results.filter((r) => r.status === 'failed')).toEqual([]);
    for (let i = 0; i < 700; i++) expect(all.filter((results) => results[i]?.status === 'created')).toHaveLength(1);
    expect((await snapshotCounts(t.store, ctx.tenantId)).records).toBe(700);
  });

  if (backend.dialect === 'postgres') {
    it('a value too large for a declared index fails its line only (the chunk is retried line by line)', async () => {
      const { ctx } = await newTenant(t.store);
      await t.store.collections.define(ctx, 'indexed', { indexes: ['title'] });
      const results = await load(t.store, ctx, 'indexed', [
        { id: 'a', data: { title: 'short' } },
        { id: 'b', data: { title: 'x'.repeat(9000).replace(/x/g, () => String.fromCharCode(65 + Math.floor(Math.random() * 26))) } },
        { id: 'c', data: { title: 'fine' } },
      ]);
      expect(statuses(results)).toEqual(['1:created:1', '2:failed:agentstore.validation', '3:created:1']);
      const failed = results[1];
      expect(failed?.status === 'failed' && failed.error.context.errors?.[0]?.field).toBe('/data');
    });
  }

  it('the library takes an async iterable and reports a refused call at once', async () => {
    const { ctx } = await newTenant(t.store);
    async function* lines() {
      for (let i = 0; i < 3; i++) yield { id: `a${i}`, data: { i } };
    }
    expect(statuses(await load(t.store, ctx, 'asyncs', lines()))).toEqual(['1:created:1', '2:created:1', '3:created:1']);
    await expectError(async () => load(t.store, asRole(ctx, 'viewer'), 'asyncs', lines()), 'agentstore.forbidden');
  });
});
