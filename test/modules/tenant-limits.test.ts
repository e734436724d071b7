/**
 * Per-tenant limits on collections and declared indexes: every declared index is a partial
 * index on the one shared records table, so one tenant's DDL costs every tenant's writes.
 * The limits hold under concurrency (counted under a per-tenant lock) and a refused
 * request changes nothing.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/env.js';
import { DEFAULT_TENANT_LIMITS } from '../../src/config/config.js';
import { forEachBackend, useTestStore } from '../helpers/backends.js';
import { expectError, newTenant, snapshotCounts } from '../helpers/fixtures.js';
import { bearer, createTenant, expectProblem, useHttp } from '../http/http-kit.js';

const LIMITS = { collections: 3, declaredIndexes: 4, declaredIndexesTotal: 10_000 };

describe('tenant limit configuration', () => {
  it('defaults, and reads AGENTSTORE_MAX_COLLECTIONS_PER_TENANT / AGENTSTORE_MAX_INDEXES_PER_TENANT / AGENTSTORE_MAX_DECLARED_INDEXES', () => {
    expect(loadConfig({}).store.tenantLimits).toEqual(DEFAULT_TENANT_LIMITS);
    expect(DEFAULT_TENANT_LIMITS).toEqual({ collections: 100, declaredIndexes: 32, declaredIndexesTotal: 256 });
    const env = { AGENTSTORE_MAX_COLLECTIONS_PER_TENANT: '7', AGENTSTORE_MAX_INDEXES_PER_TENANT: '0', AGENTSTORE_MAX_DECLARED_INDEXES: '9' };
    expect(loadConfig(env).store.tenantLimits).toEqual({ collections: 7, declaredIndexes: 0, declaredIndexesTotal: 9 });
  });

  it.each([
    ['AGENTSTORE_MAX_COLLECTIONS_PER_TENANT', '0'],
    ['AGENTSTORE_MAX_COLLECTIONS_PER_TENANT', 'many'],
    ['AGENTSTORE_MAX_INDEXES_PER_TENANT', '-1'],
    ['AGENTSTORE_MAX_INDEXES_PER_TENANT', '1e3'],
    ['AGENTSTORE_MAX_DECLARED_INDEXES', '-5'],
  ])('refuses %s=%s naming the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`^${name}: `));
  });
});

forEachBackend('tenant limits', (backend) => {
  const t = useTestStore(backend, { store: { tenantLimits: LIMITS } });

  describe('collections', () => {
    it('a define past the limit is a 409 conflict naming `collection`, and changes nothing', async () => {
      const { ctx } = await newTenant(t.store);
      for (const name of ['a', 'b', 'c']) await t.store.collections.define(ctx, name, {});
      const before = await snapshotCounts(t.store, ctx.tenantId);
      await expectError(t.store.collections.define(ctx, 'd', {}), 'agentstore.conflict', { field: 'collection', message: /limit of 3 collections/ });
      expect(await snapshotCounts(t.store, ctx.tenantId)).toEqual(before);
      // Redefining an existing one is not a new collection.
      await t.store.collections.define(ctx, 'a', { schema: { type: 'object' } });
      // Deleting one makes room.
      await t.store.collections.deleteCollection(ctx, 'c');
      await t.store.collections.define(ctx, 'd', {});
    });

    it('applies to a collection created by its first record write too', async () => {
      const { ctx } = await newTenant(t.store);
      for (const name of ['a', 'b', 'c']) await t.store.collections.create(ctx, name, { n: 1 });
      const before = await snapshotCounts(t.store, ctx.tenantId);
      await expectError(t.store.collections.create(ctx, 'd', { n: 1 }), 'agentstore.conflict', { field: 'collection' });
      expect(await snapshotCounts(t.store, ctx.tenantId)).toEqual(before);
      // Writes to the existing collections go on.
      await t.store.collections.create(ctx, 'a', { n: 2 });
    });

    it('is per tenant: one tenant at its limit does not limit another', async () => {
      const full = await newTenant(t.store);
      const other = await newTenant(t.store);
      for (const name of ['a', 'b', 'c']) await t.store.collections.define(full.ctx, name, {});
      for (const name of ['a', 'b', 'c']) await t.store.collections.define(other.ctx, name, {});
    });

    it('holds under concurrency: of 12 concurrent new collections (defines and first writes), exactly 3 exist', async () => {
      const { ctx } = await newTenant(t.store);
      const attempts = Array.from({ length: 12 }, (_, i) =>
        i % 2 === 0 ? t.store.collections.define(ctx, `c${i}`, {}) : t.store.collections.create(ctx, `c${i}`, { i }),
      );
      const results = await Promise.allSettled(attempts);
      const refused = results.filter((r) => r.status === 'rejected');
      for (const r of refused) expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'agentstore.conflict' });
      expect(results.length - refused.length).toBe(3);
      expect((await t.store.collections.listCollections(ctx)).items).toHaveLength(3);
    });
  });

  describe('declared indexes', () => {
    it('count over all of a tenant’s collections: past the limit is a 409 naming `indexes`, and changes nothing', async () => {
      const { ctx } = await newTenant(t.store);
      await t.store.collections.define(ctx, 'a', { indexes: ['x', 'y', 'z'] });
      const before = await snapshotCounts(t.store, ctx.tenantId);
      await expectError(t.store.collections.define(ctx, 'b', { indexes: ['p', 'q'] }), 'agentstore.conflict', {
        field: '/indexes',
        message: /at most 4 indexes.*other collections have 3, this one asks for 2/,
      });
      expect(await snapshotCounts(t.store, ctx.tenantId)).toEqual(before);
      expect((await t.store.collections.listCollections(ctx)).items.map((c) => c.name)).toEqual(['a']);
      await t.store.collections.define(ctx, 'b', { indexes: ['p'] });
      // A collection's own indexes are replaced, not added to: 1 + 3 stays within 4.
      await t.store.collections.define(ctx, 'a', { indexes: ['u', 'v', 'w'] });
      await expectError(t.store.collections.define(ctx, 'a', { indexes: ['u', 'v', 'w', 'x2'] }), 'agentstore.conflict', { field: '/indexes' });
      expect((await t.store.collections.getCollection(ctx, 'a')).indexes).toEqual(['u', 'v', 'w']);
      // Redefining without `indexes` keeps them and is not counted again.
      await t.store.collections.define(ctx, 'a', { schema: { type: 'object' } });
    });

    it('holds under concurrency: concurrent defines of two indexes each never exceed the limit', async () => {
      const { ctx } = await newTenant(t.store);
      const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => t.store.collections.define(ctx, `i${i}`, { indexes: ['a', 'b'] })));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(2);
      const total = (await t.store.collections.listCollections(ctx)).items.reduce((n, c) => n + c.indexes.length, 0);
      expect(total).toBe(4);
    });
  });
});

forEachBackend('declared indexes over all tenants', (backend) => {
  // A database of its own: the cap counts every declared index in it.
  const t = useTestStore(backend, { store: { tenantLimits: { collections: 10, declaredIndexes: 5, declaredIndexesTotal: 6 } } });

  it('past the database-wide cap a define is a 409 naming `indexes`; replacing indexes, or fewer, fits', async () => {
    const a = await newTenant(t.store);
    const b = await newTenant(t.store);
    await t.store.collections.define(a.ctx, 'x', { indexes: ['f1', 'f2', 'f3', 'f4'] });
    const before = await snapshotCounts(t.store, b.ctx.tenantId);
    await expectError(t.store.collections.define(b.ctx, 'y', { indexes: ['g1', 'g2', 'g3'] }), 'agentstore.conflict', { field: '/indexes', message: /limit of 6 declared indexes over all tenants/ });
    expect(await snapshotCounts(t.store, b.ctx.tenantId)).toEqual(before);
    await t.store.collections.define(b.ctx, 'y', { indexes: ['g1', 'g2'] });
    // 6 of 6: swapping one of A's for another stays at 6; adding one more does not fit.
    await t.store.collections.define(a.ctx, 'x', { indexes: ['f1', 'f2', 'f3', 'f5'] });
    await expectError(t.store.collections.define(a.ctx, 'z', { indexes: ['h1'] }), 'agentstore.conflict', { field: '/indexes', message: /over all tenants/ });
    // Deleting a collection frees its indexes.
    await t.store.collections.deleteCollection(b.ctx, 'y');
    await t.store.collections.define(a.ctx, 'z', { indexes: ['h1'] });
  });

});

forEachBackend('declared indexes over all tenants, concurrently', (backend) => {
  const t = useTestStore(backend, { store: { tenantLimits: { collections: 10, declaredIndexes: 5, declaredIndexesTotal: 6 } } });

  it('of 4 tenants defining 3 indexes each at once, exactly 2 fit the cap of 6', async () => {
    const tenants = await Promise.all(Array.from({ length: 4 }, () => newTenant(t.store)));
    const results = await Promise.allSettled(tenants.map(({ ctx }) => t.store.collections.define(ctx, 'c', { indexes: ['a', 'b', 'c'] })));
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'agentstore.conflict' });
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(2);
    let total = 0;
    for (const { ctx } of tenants) for (const c of (await t.store.collections.listCollections(ctx)).items) total += c.indexes.length;
    expect(total).toBe(6);
  });
});

forEachBackend('tenant limits over HTTP', (backend) => {
  const h = useHttp(backend, { store: { tenantLimits: { collections: 1, declaredIndexes: 1 } } });

  it('PUT past either limit answers 409 problem+json naming the field', async () => {
    const tenant = await createTenant(h.app);
    const put = (name: string, payload: Record<string, unknown>) => h.app.inject({ method: 'PUT', url: `/v1/collections/${name}`, headers: bearer(tenant.key), payload });
    expectProblem(await put('one', { indexes: ['a', 'b'] }), 409, { field: '/indexes' });
    expect((await put('one', { indexes: ['a'] })).statusCode).toBe(200);
    expectProblem(await put('two', {}), 409, { field: 'collection' });
    const write = await h.app.inject({ method: 'POST', url: '/v1/collections/three/records', headers: bearer(tenant.key), payload: { a: 1 } });
    expectProblem(write, 409, { field: 'collection' });
  });
});
