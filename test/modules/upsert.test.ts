/**
 * `collections.upsert` (HTTP PUT): replaces a record, or creates it when it does not exist;
 * `ifMatch` makes it replace-only and `ifNoneMatch: '*'` create-only (RFC 9110 §13.1: If-Match
 * on a missing record is false, If-None-Match: * on an existing one is false: both 412).
 */
import { expect, it } from 'vitest';
import { isAgentstoreError } from '../../src/core/errors.js';
import { forEachBackend, useTestStore } from '../helpers/backends.js';
import { expectError, newTenant, snapshotCounts } from '../helpers/fixtures.js';

forEachBackend('collections: upsert', (backend) => {
  const t = useTestStore(backend, { store: { tenantLimits: { collections: 2 } } });

  it('creates a missing record (created), then replaces it', async () => {
    const { ctx } = await newTenant(t.store);
    const head = await t.store.changes.head(ctx);
    const first = await t.store.collections.upsert(ctx, 'sessions', 's1', { user: 'u1' });
    expect(first.created).toBe(true);
    expect(first.record).toMatchObject({ id: 's1', version: 1, data: { user: 'u1' } });
    const second = await t.store.collections.upsert(ctx, 'sessions', 's1', { user: 'u2' });
    expect(second).toMatchObject({ created: false, record: { id: 's1', version: 2, data: { user: 'u2' }, createdAt: first.record.createdAt } });
    const changes = await t.store.changes.read(ctx, { after: head });
    expect(changes.map((c) => c.type)).toEqual(['collection.create', 'record.create', 'record.update']);
    // replace stays replace-only.
    await expectError(t.store.collections.replace(ctx, 'sessions', 's2', {}), 'agentstore.not_found');
  });

  it('ifMatch on a missing record and ifNoneMatch on an existing one are 412, and write nothing', async () => {
    const { ctx } = await newTenant(t.store);
    await t.store.collections.upsert(ctx, 'c', 'exists', { n: 1 });
    const before = await snapshotCounts(t.store, ctx.tenantId);
    await expectError(t.store.collections.upsert(ctx, 'c', 'missing', { n: 1 }, { ifMatch: 1 }), 'agentstore.precondition_failed');
    await expectError(t.store.collections.upsert(ctx, 'c', 'missing', { n: 1 }, { ifMatch: '*' }), 'agentstore.precondition_failed');
    const exists = await expectError(t.store.collections.upsert(ctx, 'c', 'exists', { n: 2 }, { ifNoneMatch: '*' }), 'agentstore.precondition_failed');
    expect(exists.context.currentVersion).toBe(1);
    const stale = await expectError(t.store.collections.upsert(ctx, 'c', 'exists', { n: 2 }, { ifMatch: 9 }), 'agentstore.precondition_failed');
    expect(stale.context.currentVersion).toBe(1);
    expect(await snapshotCounts(t.store, ctx.tenantId)).toEqual(before);
    expect((await t.store.collections.upsert(ctx, 'c', 'new', { n: 1 }, { ifNoneMatch: '*' })).created).toBe(true);
    expect((await t.store.collections.upsert(ctx, 'c', 'exists', { n: 3 }, { ifMatch: 1 })).record.version).toBe(2);
  });

  it('a create by upsert meets the collection schema, the id rule and the collection limit', async () => {
    const { ctx } = await newTenant(t.store);
    await t.store.collections.define(ctx, 'typed', { schema: { type: 'object', required: ['n'] } });
    await expectError(t.store.collections.upsert(ctx, 'typed', 'a', {}), 'agentstore.validation', { field: '/data' });
    await expectError(t.store.collections.upsert(ctx, 'typed', 'a', { n: 1, id: 'b' }), 'agentstore.validation', { field: '/data/id' });
    expect((await t.store.collections.upsert(ctx, 'typed', 'a', { n: 1, id: 'a' })).created).toBe(true);
    await t.store.collections.upsert(ctx, 'second', 'x', {});
    await expectError(t.store.collections.upsert(ctx, 'third', 'x', {}), 'agentstore.conflict', { field: 'collection' });
  });

  it('concurrent upserts of one new id: one creates, the others replace, none fails', async () => {
    const { ctx } = await newTenant(t.store);
    const N = 16;
    const outcomes = await Promise.allSettled(Array.from({ length: N }, (_, i) => t.store.collections.upsert(ctx, 'race', 'same', { writer: i })));
    const failures = outcomes.flatMap((o) => (o.status === 'rejected' ? [isAgentstoreError(o.reason) ? o.reason.code : String(o.reason)] : []));
    expect(failures).toEqual([]);
    const results = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(results.map((r) => r.record.version).sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
    expect((await t.store.collections.get(ctx, 'race', 'same')).version).toBe(N);
  });
});
