import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { isUuid } from '../../src/core/ids.js';
import { forEachBackend, useTestStore } from '../helpers/backends.js';
import { expectError, newTenant, snapshotCounts } from '../helpers/fixtures.js';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

forEachBackend('collections: records', (backend) => {
  const t = useTestStore(backend);

  describe('create', () => {
    it('generates a UUIDv7 id, version 1 and equal timestamps', async () => {
      const { ctx } = await newTenant(t.store);
      const { record, replayed } = await t.store.collections.create(ctx, 'notes', { title: 'hello', n: 1 });
      expect(replayed).toBe(false);
      expect(record.id).toMatch(UUID_V7);
      expect(isUuid(record.id)).toBe(true);
      expect(record.version).toBe(1);
      expect(record.createdAt).toBe(record.updatedAt);
      expect(new Date(record.createdAt).toISOString()).toBe(record.createdAt);
      expect(record.data).toEqual({ title: 'hello', n: 1 });
      expect(await t.store.collections.get(ctx, 'notes', record.id)).toEqual(record);
      // getJson (what the HTTP API sends) is the same record as JSON text, unparsed data.
      const text = await t.store.collections.getJson(ctx, 'notes', record.id);
      expect(text.version).toBe(record.version);
      expect(JSON.parse(text.json)).toEqual(record);
    });

    it('getJson keeps nested, unicode and numeric data exactly', async () => {
      const { ctx } = await newTenant(t.store);
      const data = { s: 'é "quoted" \\ \n 😀', n: -1.5e-7, big: 9007199254740991, nested: { a: [1, null, true, { b: 'c' }] }, empty: {} };
      const { record } = await t.store.collections.create(ctx, 'notes', data);
      expect(JSON.parse((await t.store.collections.getJson(ctx, 'notes', record.id)).json)).toEqual({ ...record, data });
    });

    it('generated ids increase with creation order', async () => {
      const { ctx } = await newTenant(t.store);
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await t.store.collections.create(ctx, 'seq', { i })).record.id);
      expect([...ids].sort()).toEqual(ids);
    });

    it('takes a client id from data.id or from options.id', async () => {
      const { ctx } = await newTenant(t.store);
      const a = await t.store.collections.create(ctx, 'notes', { id: 'note-a', title: 'a' });
      expect(a.record.id).toBe('note-a');
      expect(a.record.data).toEqual({ id: 'note-a', title: 'a' });
      const b = await t.store.collections.create(ctx, 'notes', { title: 'b' }, { id: 'user:42@x.y' });
      expect(b.record.id).toBe('user:42@x.y');
      expect((await t.store.collections.get(ctx, 'notes', 'user:42@x.y')).data).toEqual({ title: 'b' });
    });

    it('rejects a duplicate id with conflict and changes nothing', async () => {
      const { ctx } = await newTenant(t.store);
      await t.store.collections.create(ctx, 'notes', { id: 'dup', v: 1 });
      const before = await snapshotCounts(t.store, ctx.tenantId);
      await expectError(t.store.collections.create(ctx, 'notes', { id: 'dup', v: 2 }), 'agentstore.conflict');
      await expectError(t.store.collections.create(ctx, 'notes', { v: 3 }, { id: 'dup' }), 'agentstore.conflict');
      expect(await snapshotCounts(t.store, ctx.tenantId)).toEqual(before);
      expect((await t.store.collections.get(ctx, 'notes', 'dup')).data).toEqual({ id: 'dup', v: 1 });
    });

    it('allows the same id in two collections', async () => {
      const { ctx } = await newTenant(t.store);
      await t.store.collections.create(ctx, 'a', { id: 'same' });
      await t.store.collections.create(ctx, 'b', { id: 'same' });
      expect((await t.store.collections.get(ctx, 'b', 'same')).id).toBe('same');
    });

    it('rejects bad bodies, ids and collection names as validation errors', async () => {
      const { ctx } = await newTenant(t.store);
      await expectError(t.store.collections.create(ctx, 'notes', [] as never), 'agentstore.validation', { field: 'body' });
      await expectError(t.store.collections.create(ctx, 'notes', null as never), 'agentstore.validation', { field: 'body' });
      await expectError(t.store.collections.create(ctx, 'notes', { id: '-bad' }), 'agentstore.validation', { field: '/data/id' });
      await expectError(t.store.collections.create(ctx, 'notes', {}, { id: 'a b' }), 'agentstore.validation', { field: 'id' });
      await expectError(t.store.collections.create(ctx, 'notes', {}, { id: 'x'.repeat(129) }), 'agentstore.validation', { field: 'id' });
      await expectError(t.store.collections.create(ctx, '.hidden', {}), 'agentstore.validation', { field: 'collection' });
      await expectError(t.store.collections.create(ctx, 'c'.repeat(65), {}), 'agentstore.validation', { field: 'collection' });
      for (const read of [t.store.collections.get, t.store.collections.getJson]) {
        await expectError(read(ctx, 'notes', "x' or '1'='1"), 'agentstore.validation', { field: 'id' });
        await expectError(read(ctx, '.hidden', 'x'), 'agentstore.validation', { field: 'collection' });
        await expectError(read(ctx, 'notes', 'missing'), 'agentstore.not_found');
      }
    });

    it('rejects U+0000 in data, keys and idempotency keys on every backend (PostgreSQL cannot store it)', async () => {
      const { ctx } = await newTenant(t.store);
      await expectError(t.store.collections.create(ctx, 'notes', { a: 'x\u0000y' }), 'agentstore.validation', { field: 'body' });
      await expectError(t.store.collections.create(ctx, 'notes', { nested: [{ 'k\u0000': 1 }] }), 'agentstore.validation', { field: 'body' });
      await expectError(t.store.collections.create(ctx, 'notes', { a: 1 }, { idempotencyKey: 'k\u0000' }), 'agentstore.validation', {
        field: 'idempotency-key',
      });
      const { record } = await t.store.collections.create(ctx, 'notes', { a: 'fine \\u0000 text' });
      expect(record.data.a).toBe('fine \\u0000 text');
      await expectError(t.store.collections.patch(ctx, 'notes', record.id, { b: '\u0000' }), 'agentstore.validation', { field: 'body' });
      await expectError(t.store.collections.replace(ctx, 'notes', record.id, { b: '\u0000' }), 'agentstore.validation', { field: 'body' });
      expect((await t.store.collections.get(ctx, 'notes', record.id)).version).toBe(1);
    });

    it('rejects unpaired surrogates and nesting deeper than 100 levels on every backend; keeps other Unicode', async () => {
      const { ctx } = await newTenant(t.store);
      await expectError(t.store.collections.create(ctx, 'notes', { s: 'a\ud800b' }), 'agentstore.validation', { field: 'body' });
      await expectError(t.store.collections.create(ctx, 'notes', { ['\udc00']: 1 }), 'agentstore.validation', { field: 'body' });
      await expectError(t.store.collections.list(ctx, 'notes', { filter: { s: '\udc00' } }), 'agentstore.validation', { field: 'filter' });
      const nest = (levels: number) => {
        const root: Record<string, unknown> = {};
        let node = root;
        for (let i = 1; i < levels; i++) node = (node.a = {}) as Record<string, unknown>;
        return root;
      };
      await expectError(t.store.collections.create(ctx, 'notes', nest(2000)), 'agentstore.validation', { field: 'body' });
      await expectError(t.store.collections.create(ctx, 'notes', nest(101)), 'agentstore.validation', { field: 'body' });
      const deep = await t.store.collections.create(ctx, 'notes', nest(100));
      expect((await t.store.collections.get(ctx, 'notes', deep.record.id)).data).toEqual(nest(100));
      const text = { s: '😀 é ✓ 漢字 \u2028', [`k😀`]: ['\ud83d\ude00'] };
      const { record } = await t.store.collections.create(ctx, 'notes', text);
      expect((await t.store.collections.get(ctx, 'notes', record.id)).data).toEqual(text);
      expect((await t.store.collections.list(ctx, 'notes', { filter: { s: { contains: '漢字' } } })).items.map((r) => r.id)).toEqual([record.id]);
    });

    it('round-trips numbers as JavaScript sees them', async () => {
      const { ctx } = await newTenant(t.store);
      const data = { big: 2 ** 53 - 1, neg: -0.5, tiny: 1e-300, huge: 1.7976931348623157e308, sum: 0.1 + 0.2, zero: 0 };
      const { record } = await t.store.collections.create(ctx, 'nums', data);
      expect((await t.store.collections.get(ctx, 'nums', record.id)).data).toEqual(data);
    });

    it('creates the collection on first write', async () => {
      const { ctx } = await newTenant(t.store);
      await expectError(t.store.collections.getCollection(ctx, 'auto'), 'agentstore.not_found');
      await t.store.collections.create(ctx, 'auto', { x: 1 });
      expect(await t.store.collections.getCollection(ctx, 'auto')).toMatchObject({ name: 'auto', schema: null, indexes: [], version: 1 });
    });
  });

  describe('get / replace / patch / delete', () => {
    it('get of a missing record or collection is not_found', async () => {
      const { ctx } = await newTenant(t.store);
      await expectError(t.store.collections.get(ctx, 'nothing', 'x'), 'agentstore.not_found');
      await t.store.collections.create(ctx, 'notes', { id: 'x' });
      await expectError(t.store.collections.get(ctx, 'notes', 'y'), 'agentstore.not_found');
    });

    it('replace swaps the whole body and bumps the version', async () => {
      const { ctx } = await newTenant(t.store);
      const { record } = await t.store.collections.create(ctx, 'notes', { a: 1, b: { c: 2 } });
      const replaced = await t.store.collections.replace(ctx, 'notes', record.id, { z: true });
      expect(replaced).toMatchObject({ id: record.id, version: 2, createdAt: record.createdAt, data: { z: true } });
      expect(replaced.updatedAt >= record.updatedAt).toBe(true);
      expect(await t.store.collections.get(ctx, 'notes', record.id)).toEqual(replaced);
    });

    it('patch is an RFC 7396 merge patch: nested merge, null deletes, arrays replace', async () => {
      const { ctx } = await newTenant(t.store);
      const { record } = await t.store.collections.create(ctx, 'notes', {
        title: 'x',
        keep: 1,
        drop: 'me',
        nested: { a: 1, b: { c: 2, d: 3 } },
        tags: ['a', 'b'],
      });
      const patched = await t.store.collections.patch(ctx, 'notes', record.id, {
        title: 'y',
        drop: null,
        nested: { b: { d: null, e: 4 }, f: [1] },
        tags: ['c'],
        added: { deep: null, x: 'y' },
      });
      expect(patched.version).toBe(2);
      expect(patched.data).toEqual({
        title: 'y',
        keep: 1,
        nested: { a: 1, b: { c: 2, e: 4 }, f: [1] },
        tags: ['c'],
        added: { x: 'y' },
      });
      expect((await t.store.collections.get(ctx, 'notes', record.id)).data).toEqual(patched.data);
    });

    it('patch keeps a "__proto__" key as plain data', async () => {
      const { ctx } = await newTenant(t.store);
      const { record } = await t.store.collections.create(ctx, 'notes', { a: 1 });
      const patched = await t.store.collections.patch(ctx, 'notes', record.id, JSON.parse('{"__proto__": {"polluted": true}}'));
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(Object.keys(patched.data)).toContain('__proto__');
    });

    it('replace/patch/delete of a missing record is not_found', async () => {
      const { ctx } = await newTenant(t.store);
      await t.store.collections.create(ctx, 'notes', { id: 'here' });
      await expectError(t.store.collections.replace(ctx, 'notes', 'gone', {}), 'agentstore.not_found');
      await expectError(t.store.collections.patch(ctx, 'notes', 'gone', {}), 'agentstore.not_found');
      await expectError(t.store.collections.delete(ctx, 'notes', 'gone'), 'agentstore.not_found');
    });

    it('delete removes the record', async () => {
      const { ctx } = await newTenant(t.store);
      const { record } = await t.store.collections.create(ctx, 'notes', { a: 1 });
      await t.store.collections.delete(ctx, 'notes', record.id);
      await expectError(t.store.collections.get(ctx, 'notes', record.id), 'agentstore.not_found');
      // The id is free again.
      await t.store.collections.create(ctx, 'notes', { a: 2 }, { id: record.id });
    });
  });

  describe('versions and ifMatch', () => {
    it('honours a matching version and rejects a stale one with precondition_failed', async () => {
      const { ctx } = await newTenant(t.store);
      const { record } = await t.store.collections.create(ctx, 'notes', { n: 0 });
      const v2 = await t.store.collections.patch(ctx, 'notes', record.id, { n: 1 }, { ifMatch: 1 });
      expect(v2.version).toBe(2);
      const stale = await expectError(t.store.collections.patch(ctx, 'notes', record.id, { n: 9 }, { ifMatch: 1 }), 'agentstore.precondition_failed');
      expect(stale.status).toBe(412);
      await expectError(t.store.collections.replace(ctx, 'notes', record.id, { n: 9 }, { ifMatch: 1 }), 'agentstore.precondition_failed');
      await expectError(t.store.collections.delete(ctx, 'notes', record.id, { ifMatch: 1 }), 'agentstore.precondition_failed');
      const v3 = await t.store.collections.replace(ctx, 'notes', record.id, { n: 3 }, { ifMatch: 2 });
      expect(v3).toMatchObject({ version: 3, data: { n: 3 } });
      await t.store.collections.delete(ctx, 'notes', record.id, { ifMatch: 3 });
      await expectError(t.store.collections.get(ctx, 'notes', record.id), 'agentstore.not_found');
    });

    it("'*' matches any existing version and fails on a missing record", async () => {
      const { ctx } = await newTenant(t.store);
      const { record } = await t.store.collections.create(ctx, 'notes', { n: 0 });
      await t.store.collections.patch(ctx, 'notes', record.id, { n: 1 });
      expect((await t.store.collections.patch(ctx, 'notes', record.id, { n: 2 }, { ifMatch: '*' })).version).toBe(3);
      await expectError(t.store.collections.patch(ctx, 'notes', 'missing', { n: 2 }, { ifMatch: '*' }), 'agentstore.precondition_failed');
      await expectError(t.store.collections.replace(ctx, 'notes', 'missing', {}, { ifMatch: 1 }), 'agentstore.precondition_failed');
    });
  });

  describe('Idempotency-Key', () => {
    it('replays the first result for the same key and body, writing nothing new', async () => {
      const { ctx } = await newTenant(t.store);
      const first = await t.store.collections.create(ctx, 'orders', { sku: 'a', qty: 2 }, { idempotencyKey: 'k-1' });
      expect(first.replayed).toBe(false);
      const before = await snapshotCounts(t.store, ctx.tenantId);
      const again = await t.store.collections.create(ctx, 'orders', { sku: 'a', qty: 2 }, { idempotencyKey: 'k-1' });
      expect(again.replayed).toBe(true);
      expect(again.record).toEqual(first.record);
      expect(await snapshotCounts(t.store, ctx.tenantId)).toEqual(before);
      expect((await t.store.collections.list(ctx, 'orders')).items).toHaveLength(1);
    });

    it('replays even after the record changed (the original response, as HTTP APIs do)', async () => {
      const { ctx } = await newTenant(t.store);
      const first = await t.store.collections.create(ctx, 'orders', { qty: 1 }, { idempotencyKey: 'k-change' });
      await t.store.collections.patch(ctx, 'orders', first.record.id, { qty: 5 });
      const again = await t.store.collections.create(ctx, 'orders', { qty: 1 }, { idempotencyKey: 'k-change' });
      expect(again).toEqual({ record: first.record, replayed: true });
    });

    it('rejects the same key with a different body or collection as conflict', async () => {
      const { ctx } = await newTenant(t.store);
      await t.store.collections.create(ctx, 'orders', { qty: 1 }, { idempotencyKey: 'k-2' });
      const before = await snapshotCounts(t.store, ctx.tenantId);
      await expectError(t.store.collections.create(ctx, 'orders', { qty: 2 }, { idempotencyKey: 'k-2' }), 'agentstore.conflict', {
        field: 'idempotency-key',
      });
      await expectError(t.store.collections.create(ctx, 'other', { qty: 1 }, { idempotencyKey: 'k-2' }), 'agentstore.conflict');
      await expectError(t.store.collections.create(ctx, 'orders', { qty: 1 }, { idempotencyKey: 'k-2', id: 'explicit' }), 'agentstore.conflict');
      expect(await snapshotCounts(t.store, ctx.tenantId)).toEqual(before);
    });

    it('keys are per tenant', async () => {
      const a = await newTenant(t.store);
      const b = await newTenant(t.store);
      const ra = await t.store.collections.create(a.ctx, 'orders', { qty: 1 }, { idempotencyKey: 'shared' });
      const rb = await t.store.collections.create(b.ctx, 'orders', { qty: 1 }, { idempotencyKey: 'shared' });
      expect(rb.replayed).toBe(false);
      expect(rb.record.id).not.toBe(ra.record.id);
    });

    it('of concurrent requests with one key, exactly one creates a record', async () => {
      const { ctx } = await newTenant(t.store);
      await t.store.collections.create(ctx, 'orders', { warm: true });
      const results = await Promise.all(
        Array.from({ length: 12 }, () => t.store.collections.create(ctx, 'orders', { sku: 'z' }, { idempotencyKey: 'race' })),
      );
      expect(results.filter((r) => !r.replayed)).toHaveLength(1);
      expect(new Set(results.map((r) => r.record.id)).size).toBe(1);
      const list = await t.store.collections.list(ctx, 'orders', { filter: { sku: 'z' } });
      expect(list.items).toHaveLength(1);
      expect(list.items[0]?.id).toBe(results[0]?.record.id);
    });

    it('rejects an over-long key', async () => {
      const { ctx } = await newTenant(t.store);
      await expectError(t.store.collections.create(ctx, 'orders', {}, { idempotencyKey: 'k'.repeat(256) }), 'agentstore.validation', {
        field: 'idempotency-key',
      });
    });
  });

  describe('concurrent first writes', () => {
    it('many creates racing into a collection that does not exist yet all succeed', async () => {
      const { ctx } = await newTenant(t.store);
      const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => t.store.collections.create(ctx, 'fresh', { i })));
      const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => String(r.reason));
      expect(failures).toEqual([]);
      expect((await t.store.collections.list(ctx, 'fresh')).items).toHaveLength(10);
    });
  });

  describe('deleteCollection', () => {
    it('removes the collection and its records, not other collections', async () => {
      const { ctx } = await newTenant(t.store);
      for (let i = 0; i < 3; i++) await t.store.collections.create(ctx, 'doomed', { i });
      await t.store.collections.create(ctx, 'kept', { id: 'k' });
      await t.store.collections.deleteCollection(ctx, 'doomed');
      await expectError(t.store.collections.getCollection(ctx, 'doomed'), 'agentstore.not_found');
      expect((await t.store.collections.list(ctx, 'doomed')).items).toEqual([]);
      const { rows } = await t.store.internals.db.inTenant(ctx.tenantId, (trx) =>
        sql<{ n: number }>`select count(*) as n from records where tenant_id = ${ctx.tenantId} and collection = 'doomed'`.execute(trx),
      );
      expect(Number(rows[0]?.n)).toBe(0);
      expect((await t.store.collections.get(ctx, 'kept', 'k')).id).toBe('k');
      await expectError(t.store.collections.deleteCollection(ctx, 'doomed'), 'agentstore.not_found');
    });

    it('lists collections by name with pagination', async () => {
      const { ctx } = await newTenant(t.store);
      const names = ['c-e', 'c-a', 'c-d', 'c-b', 'c-c'];
      for (const name of names) await t.store.collections.define(ctx, name, {});
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await t.store.collections.listCollections(ctx, { limit: 2, ...(cursor ? { cursor } : {}) });
        expect(page.items.length).toBeLessThanOrEqual(2);
        seen.push(...page.items.map((c) => c.name));
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      expect(seen).toEqual([...names].sort());
    });
  });
});
