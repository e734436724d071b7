/**
 * `store.batch`: up to 100 writes to records and counters in one unit of work, all or
 * nothing, on every backend. A batch sees its own writes, its changes reach the feed in
 * operation order with one commit, and the first failure is the batch's answer (its code,
 * `failedIndex`, fields as pointers into the batch) with nothing written.
 */
import { describe, expect, it } from 'vitest';
import type { TenantContext } from '../../src/core/context.js';
import type { BatchOperation } from '../../src/modules/batch/service.js';
import type { Store } from '../../src/store.js';
import { forEachBackend, useTestStore } from '../helpers/backends.js';
import { asRole, expectError, newTenant, snapshotCounts } from '../helpers/fixtures.js';

async function state(store: Store, ctx: TenantContext) {
  const counters = (await store.counters.list(ctx, { limit: 500 })).items.map((c) => [c.name, c.value]);
  return { counts: await snapshotCounts(store, ctx.tenantId), counters, head: await store.changes.head(ctx) };
}

forEachBackend('batch', (backend) => {
  const t = useTestStore(backend, { store: { tenantLimits: { collections: 3 } } });

  it('applies every operation in one unit: each sees the writes before it, results in order', async () => {
    const { ctx } = await newTenant(t.store);
    await t.store.collections.create(ctx, 'conversations', { id: 'c1', title: 'hello', messages: 0 });
    await t.store.collections.create(ctx, 'messages', { id: 'old', text: 'bye' });
    const { results, replayed } = await t.store.batch(ctx, [
      { op: 'create', collection: 'messages', id: 'm1', data: { text: 'hi' } },
      { op: 'patch', collection: 'messages', id: 'm1', data: { read: true } },
      { op: 'patch', collection: 'conversations', id: 'c1', data: { messages: 1 }, ifMatch: 1 },
      { op: 'increment', counter: 'messages.total', by: 2 },
      { op: 'increment', counter: 'messages.total' },
      { op: 'delete', collection: 'messages', id: 'old' },
      { op: 'replace', collection: 'messages', id: 'm2', data: { text: 'upserted' } },
      { op: 'replace', collection: 'messages', id: 'm2', data: { text: 'replaced' }, ifMatch: '*' },
    ]);
    expect(replayed).toBe(false);
    expect(results.map((r) => [r.op, r.status])).toEqual([
      ['create', 201],
      ['patch', 200],
      ['patch', 200],
      ['increment', 200],
      ['increment', 200],
      ['delete', 204],
      ['replace', 201],
      ['replace', 200],
    ]);
    expect(results[1]).toMatchObject({ record: { id: 'm1', version: 2, data: { text: 'hi', read: true } } });
    expect(results[4]).toMatchObject({ counter: { name: 'messages.total', value: 3 } });
    expect(results[5]).toEqual({ op: 'delete', status: 204, collection: 'messages', id: 'old', version: 1 });
    expect((await t.store.collections.get(ctx, 'messages', 'm1')).data).toEqual({ text: 'hi', read: true });
    expect((await t.store.collections.get(ctx, 'conversations', 'c1')).version).toBe(2);
    expect((await t.store.collections.get(ctx, 'messages', 'm2')).data).toEqual({ text: 'replaced' });
    await expectError(t.store.collections.get(ctx, 'messages', 'old'), 'agentstore.not_found');
    expect((await t.store.counters.get(ctx, 'messages.total')).value).toBe(3);
  });

  it('its changes reach the feed in operation order, at one instant, with consecutive positions', async () => {
    const { ctx } = await newTenant(t.store);
    await t.store.collections.create(ctx, 'notes', { id: 'gone' });
    const head = await t.store.changes.head(ctx);
    await t.store.batch(ctx, [
      { op: 'create', collection: 'notes', id: 'a', data: { n: 1 } },
      { op: 'increment', counter: 'k' },
      { op: 'create', collection: 'fresh', id: 'b', data: {} },
      { op: 'patch', collection: 'notes', id: 'a', data: { n: 2 } },
      { op: 'delete', collection: 'notes', id: 'gone' },
    ]);
    const changes = await t.store.changes.read(ctx, { after: head });
    expect(changes.map((c) => [c.type, c.resourceId])).toEqual([
      ['record.create', 'a'],
      ['counter.increment', 'k'],
      // A collection's first write creates it, just before that write.
      ['collection.create', 'fresh'],
      ['record.create', 'b'],
      ['record.update', 'a'],
      ['record.delete', 'gone'],
    ]);
    expect(changes.map((c) => c.seq)).toEqual([1, 2, 3, 4, 5, 6].map((i) => head + i));
    expect(new Set(changes.map((c) => c.at)).size).toBe(1);
    const audit = (await t.store.audit.list(ctx, { limit: 10 })).items;
    expect(audit.slice(0, 6).map((a) => a.action).reverse()).toEqual(['record.create', 'counter.increment', 'collection.create', 'record.create', 'record.update', 'record.delete']);
  });

  it('all or nothing: the first failing operation is the answer, with its index, and nothing is written', async () => {
    const { ctx } = await newTenant(t.store);
    await t.store.collections.create(ctx, 'notes', { id: 'n1', v: 1 });
    await t.store.counters.increment(ctx, 'k', 5);
    const before = await state(t.store, ctx);
    const cases: [BatchOperation[], string, number, string | undefined][] = [
      [[{ op: 'increment', counter: 'k' }, { op: 'patch', collection: 'notes', id: 'missing', data: { a: 1 } }], 'agentstore.not_found', 1, undefined],
      [[{ op: 'create', collection: 'notes', id: 'n2', data: {} }, { op: 'create', collection: 'notes', id: 'n1', data: {} }], 'agentstore.conflict', 1, undefined],
      // A create then a create of the same id in one batch: the second sees the first.
      [[{ op: 'create', collection: 'notes', id: 'n3', data: {} }, { op: 'increment', counter: 'k' }, { op: 'create', collection: 'notes', id: 'n3', data: {} }], 'agentstore.conflict', 2, undefined],
      [[{ op: 'patch', collection: 'notes', id: 'n1', data: { v: 2 } }, { op: 'patch', collection: 'notes', id: 'n1', data: { v: 3 }, ifMatch: 1 }], 'agentstore.precondition_failed', 1, undefined],
      [[{ op: 'increment', counter: 'k', by: Number.MAX_SAFE_INTEGER }], 'agentstore.validation', 0, '/operations/0/by'],
      [[{ op: 'create', collection: 'notes', data: {} }, { op: 'create', collection: 'new1', data: {} }, { op: 'create', collection: 'new2', data: {} }, { op: 'create', collection: 'new3', data: {} }], 'agentstore.conflict', 3, '/operations/3/collection'],
    ];
    for (const [operations, code, index, field] of cases) {
      const error = await expectError(t.store.batch(ctx, operations), code as 'agentstore.conflict');
      expect(error.context.failedIndex, error.message).toBe(index);
      if (field) expect((error.context.errors ?? []).map((e) => e.field)).toContain(field);
      expect(await state(t.store, ctx), error.message).toEqual(before);
    }
    // A stale ifMatch tells the version the record is at.
    const stale = await expectError(t.store.batch(ctx, [{ op: 'delete', collection: 'notes', id: 'n1', ifMatch: 7 }]), 'agentstore.precondition_failed');
    expect(stale.context.currentVersion).toBe(1);
    await expectError(t.store.batch(ctx, [{ op: 'replace', collection: 'notes', id: 'nope', data: {}, ifMatch: 1 }]), 'agentstore.precondition_failed');
    expect(await state(t.store, ctx)).toEqual(before);
  });

  it('checks every operation before writing, naming fields as pointers into the batch', async () => {
    const { ctx } = await newTenant(t.store);
    await t.store.collections.define(ctx, 'typed', { schema: { type: 'object', properties: { priority: { type: 'integer' } } } });
    const before = await state(t.store, ctx);
    const ok: BatchOperation = { op: 'increment', counter: 'k' };
    const bad: [unknown, string][] = [
      [{ op: 'create', collection: 'bad name', data: {} }, 'collection'],
      [{ op: 'create', collection: 7, data: {} }, 'collection'],
      [{ op: 'create', collection: 'c', id: '-bad', data: {} }, 'id'],
      [{ op: 'create', collection: 'c', data: { id: '-bad' } }, 'data/id'],
      [{ op: 'create', collection: 'c', data: [1] }, 'data'],
      [{ op: 'create', collection: 'c' }, 'data'],
      [{ op: 'create', collection: 'c', data: { s: 'a\u0000b' } }, 'data'],
      [{ op: 'create', collection: 'typed', data: { priority: 'high' } }, 'data/priority'],
      [{ op: 'replace', collection: 'c', data: {} }, 'id'],
      [{ op: 'patch', collection: 'c', id: 'x', data: { id: 'y' } }, 'data/id'],
      [{ op: 'delete', collection: 'c', id: 'x', ifMatch: -1 }, 'ifMatch'],
      [{ op: 'delete', collection: 'c', id: 'x', ifMatch: '"1"' }, 'ifMatch'],
      [{ op: 'delete', collection: 'c', id: 'x', data: {} }, 'data'],
      [{ op: 'increment', counter: 'bad name' }, 'counter'],
      [{ op: 'increment', counter: 'k', by: 1.5 }, 'by'],
      [{ op: 'increment', counter: 'k', collection: 'c' }, 'collection'],
      [{ op: 'upsert', collection: 'c', data: {} }, 'op'],
      [{ collection: 'c', data: {} }, 'op'],
      ['create', ''],
    ];
    for (const [op, member] of bad) {
      const error = await expectError(t.store.batch(ctx, [ok, ok, op as BatchOperation]), 'agentstore.validation', { field: member ? `/operations/2/${member}` : '/operations/2' });
      expect(error.context.failedIndex).toBe(2);
      expect(error.message).toMatch(/^\/operations\/2|^operation 2/);
    }
    await expectError(t.store.batch(ctx, []), 'agentstore.validation', { field: '/operations' });
    await expectError(t.store.batch(ctx, Array.from({ length: 101 }, () => ok)), 'agentstore.validation', { field: '/operations' });
    expect(await state(t.store, ctx)).toEqual(before);
    // 100 is the limit, not past it.
    expect((await t.store.batch(ctx, Array.from({ length: 100 }, () => ok))).results).toHaveLength(100);
  });

  it("applies each operation's role rule: a viewer's batch is 403 at its first write", async () => {
    const { ctx } = await newTenant(t.store);
    const before = await state(t.store, ctx);
    const error = await expectError(t.store.batch(asRole(ctx, 'viewer'), [{ op: 'increment', counter: 'k' }]), 'agentstore.forbidden');
    expect(error.context.failedIndex).toBe(0);
    expect(await state(t.store, ctx)).toEqual(before);
    const { results } = await t.store.batch(asRole(ctx, 'member'), [{ op: 'increment', counter: 'k' }, { op: 'create', collection: 'c', data: {} }]);
    expect(results).toHaveLength(2);
  });

  describe('Idempotency-Key', () => {
    it('a retry with the same key and operations returns the first results and writes nothing', async () => {
      const { ctx } = await newTenant(t.store);
      const ops: BatchOperation[] = [
        { op: 'create', collection: 'c', data: { n: 1 } },
        { op: 'increment', counter: 'k' },
      ];
      const first = await t.store.batch(ctx, ops, { idempotencyKey: 'batch-1' });
      const after = await state(t.store, ctx);
      const again = await t.store.batch(ctx, ops, { idempotencyKey: 'batch-1' });
      expect(again).toEqual({ results: first.results, replayed: true });
      expect(await state(t.store, ctx)).toEqual(after);
      await expectError(t.store.batch(ctx, [{ op: 'increment', counter: 'k' }], { idempotencyKey: 'batch-1' }), 'agentstore.conflict', { field: 'idempotency-key' });
      // A record create's key is not a batch's.
      await t.store.collections.create(ctx, 'c', { n: 2 }, { idempotencyKey: 'create-1' });
      await expectError(t.store.batch(ctx, ops, { idempotencyKey: 'create-1' }), 'agentstore.conflict', { field: 'idempotency-key' });
      await expectError(t.store.batch(ctx, ops, { idempotencyKey: 'x'.repeat(256) }), 'agentstore.validation', { field: 'idempotency-key' });
    });

    it('concurrent batches with one key: one writes, the others replay its results', async () => {
      const { ctx } = await newTenant(t.store);
      const ops: BatchOperation[] = [{ op: 'increment', counter: 'once', by: 10 }];
      const outcomes = await Promise.all(Array.from({ length: 6 }, () => t.store.batch(ctx, ops, { idempotencyKey: 'same' })));
      expect(outcomes.filter((o) => !o.replayed)).toHaveLength(1);
      for (const o of outcomes) expect(o.results).toEqual(outcomes[0]?.results);
      expect((await t.store.counters.get(ctx, 'once')).value).toBe(10);
    });
  });

  it('concurrent batches over the same records and counters lose nothing', async () => {
    const { ctx } = await newTenant(t.store);
    await t.store.collections.create(ctx, 'acc', { id: 'a', n: 0 });
    await t.store.collections.create(ctx, 'acc', { id: 'b', n: 0 });
    const N = 12;
    await Promise.all(
      Array.from({ length: N }, (_, i) =>
        t.store.batch(ctx, [
          { op: 'patch', collection: 'acc', id: 'a', data: { [`w${i}`]: true } },
          { op: 'increment', counter: 'total', by: i },
          { op: 'patch', collection: 'acc', id: 'b', data: { [`w${i}`]: true } },
        ]),
      ),
    );
    for (const id of ['a', 'b']) {
      const record = await t.store.collections.get(ctx, 'acc', id);
      expect(record.version).toBe(N + 1);
      expect(Object.keys(record.data).filter((k) => k.startsWith('w'))).toHaveLength(N);
    }
    expect((await t.store.counters.get(ctx, 'total')).value).toBe((N * (N - 1)) / 2);
  });
});
