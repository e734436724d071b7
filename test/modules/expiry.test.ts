/**
 * Record expiry on every backend: a record written with `ttl` or `expiresAt` (or under a
 * collection's `ttlSeconds`) is absent from every read from its instant on, before any sweep;
 * writes treat it as absent (a create of its id succeeds, emitting a delete and then a
 * create); the sweep deletes expired records in batches, each with a delete change and audit
 * entry, exactly once even with two stores sweeping one database, and lets writers in
 * between its batches.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { TenantContext } from '../../src/core/context.js';
import type { BulkLine } from '../../src/modules/collections/bulk.js';
import { MAX_TTL_SECONDS } from '../../src/modules/collections/expiry.js';
import { SWEEP_BATCH } from '../../src/modules/collections/expiry-sweep.js';
import type { ChangeEvent } from '../../src/modules/changes/service.js';
import type { Store } from '../../src/store.js';
import { forEachBackend, openTestStore, useTestStore } from '../helpers/backends.js';
import { asRole, expectError, newTenant, snapshotCounts } from '../helpers/fixtures.js';

/** An instant `ms` from now, as the API takes it. */
const inMs = (ms: number) => new Date(Date.now() + ms).toISOString();

/** Waits until `at` (an ISO instant) has passed, plus a little. */
const until = async (at: string) => {
  await sleep(Math.max(0, Date.parse(at) - Date.now()) + 20);
};

/**
 * Moves the tenant's expiring records' expiry into the past, as if their time had passed: for
 * the sweep tests with thousands of records, whose loading could outlast a short TTL on a
 * loaded machine (the reads' own tests wait for a real instant instead).
 */
async function age(store: Store, ctx: TenantContext): Promise<void> {
  const past = new Date(Date.now() - 1000).toISOString();
  await store.internals.db.inTenant(ctx.tenantId, (trx) => trx.updateTable('records').set({ expires_at: past }).where('tenant_id', '=', ctx.tenantId).where('expires_at', 'is not', null).execute());
}

async function bulk(store: Store, ctx: TenantContext, collection: string, lines: BulkLine[]) {
  const out = [];
  for await (const r of store.collections.bulk(ctx, collection, lines)) out.push(r);
  return out;
}

/** Every record change after `after`, page by page. */
async function recordChanges(store: Store, ctx: TenantContext, after: number): Promise<ChangeEvent[]> {
  const all: ChangeEvent[] = [];
  for (let from = after; ; ) {
    const page = await store.changes.read(ctx, { after: from, resourceTypes: ['record'], limit: 1000 });
    all.push(...page);
    if (page.length < 1000) return all;
    from = page[page.length - 1]?.seq as number;
  }
}

const describeChanges = (changes: readonly ChangeEvent[]) => changes.map((c) => `${c.action}:${c.resourceId}:${c.version}`);

forEachBackend('collections: record expiry', (backend) => {
  // The sweep runs only when a test calls it.
  const t = useTestStore(backend, { store: { expirySweepIntervalMs: 0 } });

  it('ttl and expiresAt are returned as expiresAt; the record is absent from every read once it passes', async () => {
    const { ctx } = await newTenant(t.store);
    await t.store.collections.define(ctx, 'cache', { indexes: ['kind'] });
    const at = inMs(1000);
    const short = await t.store.collections.create(ctx, 'cache', { id: 'short', kind: 'k', n: 1 }, { expiresAt: at });
    expect(short.record.expiresAt).toBe(at);
    const ttl = await t.store.collections.create(ctx, 'cache', { id: 'ttl', kind: 'k', n: 2 }, { ttl: 3600 });
    expect(Date.parse(ttl.record.expiresAt as string) - Date.parse(ttl.record.createdAt)).toBe(3600_000);
    const forever = await t.store.collections.create(ctx, 'cache', { id: 'forever', kind: 'k', n: 3 });
    expect(forever.record).not.toHaveProperty('expiresAt');
    // Before it passes: everywhere, with its expiry.
    expect((await t.store.collections.get(ctx, 'cache', 'short')).expiresAt).toBe(at);
    expect(JSON.parse((await t.store.collections.getJson(ctx, 'cache', 'short')).json)).toMatchObject({ id: 'short', expiresAt: at });
    expect((await t.store.collections.list(ctx, 'cache')).items.map((r) => r.id)).toEqual(['short', 'ttl', 'forever']);
    expect(await t.store.collections.count(ctx, 'cache')).toBe(3);

    await until(at);
    await expectError(t.store.collections.get(ctx, 'cache', 'short'), 'agentstore.not_found');
    await expectError(t.store.collections.getJson(ctx, 'cache', 'short'), 'agentstore.not_found');
    await expectError(t.store.collections.get(ctx, 'cache', 'short', { fields: 'n' }), 'agentstore.not_found');
    const ids = async (options: Parameters<Store['collections']['list']>[2]) => (await t.store.collections.list(ctx, 'cache', options)).items.map((r) => r.id);
    expect(await ids({})).toEqual(['ttl', 'forever']);
    expect(await ids({ sort: '-n' })).toEqual(['forever', 'ttl']);
    // Filters: a declared index's search, a plain one, a meta field, and a projection.
    expect(await ids({ filter: { kind: 'k' } })).toEqual(['ttl', 'forever']);
    expect(await ids({ filter: { n: { lte: 1 } } })).toEqual([]);
    expect(await ids({ filter: { id: 'short' } })).toEqual([]);
    expect((await t.store.collections.list(ctx, 'cache', { fields: 'n' })).items.map((r) => r.data)).toEqual([{ n: 2 }, { n: 3 }]);
    expect(await t.store.collections.count(ctx, 'cache')).toBe(2);
    expect(await t.store.collections.count(ctx, 'cache', { filter: { kind: 'k' } })).toBe(2);
    const agg = await t.store.collections.aggregate(ctx, 'cache', { groupBy: 'kind', metrics: 'sum:n' });
    expect(agg.groups).toEqual([{ key: { kind: 'k' }, count: 2, metrics: { 'sum:n': 5 } }]);
    // Writes see it absent too: 404, or 412 for If-Match; nothing written by the failures.
    const before = await snapshotCounts(t.store, ctx.tenantId);
    await expectError(t.store.collections.patch(ctx, 'cache', 'short', { n: 9 }), 'agentstore.not_found');
    await expectError(t.store.collections.replace(ctx, 'cache', 'short', { n: 9 }), 'agentstore.not_found');
    await expectError(t.store.collections.delete(ctx, 'cache', 'short'), 'agentstore.not_found');
    await expectError(t.store.collections.upsert(ctx, 'cache', 'short', { n: 9 }, { ifMatch: 1 }), 'agentstore.precondition_failed');
    await expectError(t.store.collections.upsert(ctx, 'cache', 'short', { n: 9 }, { ifMatch: '*' }), 'agentstore.precondition_failed');
    await expectError(t.store.batch(ctx, [{ op: 'patch', collection: 'cache', id: 'short', data: { n: 9 } }]), 'agentstore.not_found');
    expect(await snapshotCounts(t.store, ctx.tenantId)).toEqual(before);
    // Still stored (nothing swept it): the reads hid it.
    expect(before.records).toBe(3);
  });

  it("a collection's ttlSeconds applies to writes without an expiry; a write's own wins; null clears it", async () => {
    const { ctx } = await newTenant(t.store);
    const defined = await t.store.collections.define(ctx, 'sessions', { ttlSeconds: 60 });
    expect(defined.ttlSeconds).toBe(60);
    const life = (r: { createdAt: string; updatedAt: string; expiresAt?: string }) => (r.expiresAt === undefined ? null : Date.parse(r.expiresAt) - Date.parse(r.updatedAt));
    expect(life((await t.store.collections.create(ctx, 'sessions', { id: 'a' })).record)).toBe(60_000);
    expect(life((await t.store.collections.create(ctx, 'sessions', { id: 'b' }, { ttl: 5 })).record)).toBe(5_000);
    // Redefining another setting keeps the TTL.
    expect((await t.store.collections.define(ctx, 'sessions', { indexes: [] })).ttlSeconds).toBe(60);
    expect((await t.store.collections.getCollection(ctx, 'sessions')).ttlSeconds).toBe(60);
    // A replace sets the expiry anew (the default, from now); a patch keeps it unless given.
    const patched = await t.store.collections.patch(ctx, 'sessions', 'b', { seen: true });
    expect(patched.expiresAt).toBe((await t.store.collections.create(ctx, 'sessions', { id: 'c' }, { ttl: 5 })).record.expiresAt === undefined ? null : patched.expiresAt);
    expect(life(patched) ?? 0).toBeLessThanOrEqual(5_000);
    const extended = await t.store.collections.patch(ctx, 'sessions', 'b', { seen: 2 }, { ttl: 120 });
    expect(life(extended)).toBe(120_000);
    expect(life(await t.store.collections.replace(ctx, 'sessions', 'b', { fresh: true }))).toBe(60_000);
    expect(life((await t.store.collections.upsert(ctx, 'sessions', 'new', { x: 1 })).record)).toBe(60_000);
    await t.store.collections.define(ctx, 'sessions', { ttlSeconds: null });
    expect(life((await t.store.collections.create(ctx, 'sessions', { id: 'd' })).record)).toBeNull();
    // Without a default, a replace without an expiry clears the record's (as SET does in Redis).
    expect(life(await t.store.collections.replace(ctx, 'sessions', 'a', { again: true }))).toBeNull();
    // A batch takes the same options.
    const { results } = await t.store.batch(ctx, [
      { op: 'create', collection: 'sessions', id: 'e', data: {}, ttl: 30 },
      { op: 'replace', collection: 'sessions', id: 'd', data: { y: 1 }, expiresAt: inMs(90_000) },
      { op: 'patch', collection: 'sessions', id: 'e', data: { z: 1 } },
    ]);
    const records = results.map((r) => ('record' in r ? r.record : undefined));
    expect(life(records[0] as never)).toBe(30_000);
    expect(records[1]?.expiresAt).toBeDefined();
    expect(records[2]?.expiresAt).toBe(records[0]?.expiresAt);
  });

  it('refuses a bad ttl, expiresAt or ttlSeconds naming the field, and both together naming both', async () => {
    const { ctx } = await newTenant(t.store);
    const create = (options: Record<string, unknown>) => t.store.collections.create(ctx, 'v', { a: 1 }, options as never);
    for (const ttl of [0, -1, 1.5, MAX_TTL_SECONDS + 1, '60', Number.NaN]) await expectError(create({ ttl }), 'agentstore.validation', { field: 'ttl' });
    for (const expiresAt of ['tomorrow', '2026-02-30T00:00:00Z', '2020-01-01T00:00:00Z', 5, inMs(-1000)]) {
      await expectError(create({ expiresAt }), 'agentstore.validation', { field: 'expiresAt' });
    }
    const both = await expectError(create({ ttl: 5, expiresAt: inMs(60_000) }), 'agentstore.validation', { field: 'ttl' });
    expect(both.context.errors?.map((e) => e.field)).toEqual(['ttl', 'expiresAt']);
    await expectError(t.store.collections.patch(ctx, 'v', 'x', { a: 1 }, { ttl: 0 }), 'agentstore.validation', { field: 'ttl' });
    for (const ttlSeconds of [0, -5, 2.5, MAX_TTL_SECONDS + 1, 'x']) {
      await expectError(t.store.collections.define(ctx, 'v', { ttlSeconds: ttlSeconds as never }), 'agentstore.validation', { field: '/ttlSeconds' });
    }
    const batch = await expectError(t.store.batch(ctx, [{ op: 'create', collection: 'v', data: {} }, { op: 'create', collection: 'v', data: {}, ttl: 0 }]), 'agentstore.validation', {
      field: '/operations/1/ttl',
    });
    expect(batch.context.failedIndex).toBe(1);
    await expectError(t.store.batch(ctx, [{ op: 'replace', collection: 'v', id: 'x', data: {}, ttl: 1, expiresAt: inMs(9000) }]), 'agentstore.validation', { field: '/operations/0/expiresAt' });
    // The role comes first, and nothing was written by any of it.
    await expectError(t.store.collections.create(asRole(ctx, 'viewer'), 'v', {}, { ttl: 0 }), 'agentstore.forbidden');
    expect((await snapshotCounts(t.store, ctx.tenantId)).records).toBe(0);
  });

  it('an expired id not yet swept can be created again: the feed gets a delete of the old record, then a create', async () => {
    const { ctx } = await newTenant(t.store);
    const at = inMs(1000);
    for (const id of ['post', 'put', 'bulk', 'batch']) await t.store.collections.create(ctx, 'c', { id, gen: 1 }, { expiresAt: at });
    await t.store.collections.patch(ctx, 'c', 'put', { gen: 1.5 });
    await until(at);
    const head = await t.store.changes.head(ctx);
    const created = await t.store.collections.create(ctx, 'c', { id: 'post', gen: 2 });
    expect(created.record).toMatchObject({ id: 'post', version: 1, data: { gen: 2 } });
    expect(created.record).not.toHaveProperty('expiresAt');
    const put = await t.store.collections.upsert(ctx, 'c', 'put', { gen: 2 }, { ttl: 60 });
    expect(put.created).toBe(true);
    expect(put.record.version).toBe(1);
    const loaded = await bulk(t.store, ctx, 'c', [{ id: 'bulk', data: { gen: 2 } }]);
    expect(loaded).toEqual([{ line: 1, id: 'bulk', status: 'created', version: 1 }]);
    const { results } = await t.store.batch(ctx, [{ op: 'create', collection: 'c', id: 'batch', data: { gen: 2 } }]);
    expect(results[0]).toMatchObject({ status: 201, record: { version: 1 } });
    const changes = await recordChanges(t.store, ctx, head);
    expect(describeChanges(changes)).toEqual(['delete:post:1', 'create:post:1', 'delete:put:2', 'create:put:1', 'delete:bulk:1', 'create:bulk:1', 'delete:batch:1', 'create:batch:1']);
    // The expired records' deletes are marked as such in the audit log.
    const audit = (await t.store.audit.list(ctx, { action: 'record.delete' })).items;
    expect(audit.map((a) => [a.resourceId, a.details])).toEqual(expect.arrayContaining([['post', { expired: true }], ['put', { expired: true }]]));
    for (const id of ['post', 'put', 'bulk', 'batch']) expect((await t.store.collections.get(ctx, 'c', id)).data).toMatchObject({ gen: 2 });
    // Nothing of this tenant's is left for the sweep.
    const swept = await t.store.changes.head(ctx);
    await t.store.internals.expiry.sweep();
    expect(await t.store.changes.head(ctx)).toBe(swept);
  });

  it('bulk lines take ttl and expiresAt; re-sending them unchanged keeps the expiry, a ttl refreshes it', async () => {
    const { ctx } = await newTenant(t.store);
    const at = inMs(3_600_000);
    const first = await bulk(t.store, ctx, 'b', [
      { id: 'a', data: { n: 1 }, expiresAt: at },
      { id: 'b', data: { n: 1 }, ttl: 60 },
      { id: 'c', data: { n: 1 } },
      { id: 'd', data: { n: 1 }, ttl: 0 },
    ]);
    expect(first.map((r) => r.status)).toEqual(['created', 'created', 'created', 'failed']);
    expect(first[3]?.status === 'failed' && first[3].error.context.errors?.[0]?.field).toBe('/ttl');
    expect((await t.store.collections.get(ctx, 'b', 'a')).expiresAt).toBe(at);
    const again = await bulk(t.store, ctx, 'b', [{ id: 'a', data: { n: 1 }, expiresAt: at }, { id: 'a', data: { n: 1 } }, { id: 'b', data: { n: 1 }, ttl: 60 }, { id: 'c', data: { n: 1 } }]);
    expect(again.map((r) => `${r.status}`)).toEqual(['unchanged', 'unchanged', 'updated', 'unchanged']);
    expect((await t.store.collections.get(ctx, 'b', 'a')).expiresAt).toBe(at);
  });

  it('the sweep deletes expired records with a delete change and audit entry each (system:expiry), only in their tenant', async () => {
    const { ctx } = await newTenant(t.store);
    const other = await newTenant(t.store);
    const N = SWEEP_BATCH + 37;
    await bulk(t.store, ctx, 'm', Array.from({ length: N }, (_, i) => ({ id: `e${i}`, data: { i }, ttl: 3600 })));
    await age(t.store, ctx);
    await t.store.collections.create(ctx, 'm', { id: 'kept' }, { ttl: 3600 });
    await t.store.collections.create(ctx, 'm', { id: 'plain' });
    // The other tenant's same names, not expired, and one that expires too.
    await t.store.collections.create(other.ctx, 'm', { id: 'e0' });
    await t.store.collections.create(other.ctx, 'm', { id: 'e1' }, { ttl: 3600 });
    await age(t.store, other.ctx);
    const head = await t.store.changes.head(ctx);
    const otherHead = await t.store.changes.head(other.ctx);
    const before = t.store.internals.expiry.stats();
    expect(await t.store.internals.expiry.sweep()).toBe(N + 1);
    const stats = t.store.internals.expiry.stats();
    expect(stats.expired - before.expired).toBe(N + 1);
    // Two batches for the big tenant, one for the other.
    expect(stats.batches - before.batches).toBe(3);
    expect((await snapshotCounts(t.store, ctx.tenantId)).records).toBe(2);
    const changes = await recordChanges(t.store, ctx, head);
    expect(changes).toHaveLength(N);
    expect(changes.every((c) => c.action === 'delete' && c.version === 1 && c.data === null)).toBe(true);
    expect(new Set(changes.map((c) => c.resourceId)).size).toBe(N);
    expect(describeChanges(await recordChanges(t.store, other.ctx, otherHead))).toEqual(['delete:e1:1']);
    expect((await t.store.collections.get(other.ctx, 'm', 'e0')).id).toBe('e0');
    const audit = (await t.store.audit.list(ctx, { actorType: 'system', actorId: 'expiry', limit: 500 })).items;
    expect(audit).toHaveLength(500);
    expect(audit[0]).toMatchObject({ action: 'record.delete', resourceType: 'record', collection: 'm', details: { expired: true } });
    expect(await t.store.internals.expiry.sweep()).toBe(0);
  });

  it('a write during a large sweep goes in between its batches instead of waiting for the whole sweep', async () => {
    const { ctx } = await newTenant(t.store);
    const N = SWEEP_BATCH * 6;
    await bulk(t.store, ctx, 'big', Array.from({ length: N }, (_, i) => ({ id: `r${i}`, data: { i, pad: 'x'.repeat(200) }, ttl: 3600 })));
    await age(t.store, ctx);
    const head = await t.store.changes.head(ctx);
    const sweep = t.store.internals.expiry.sweep();
    // Once this tenant's first batch has committed (its changes moved: the sweep's batch count
    // also counts other tenants' batches), a write of the same tenant.
    while ((await t.store.changes.head(ctx)) === head) await new Promise<void>((resolve) => setImmediate(resolve));
    const began = performance.now();
    const written = await t.store.collections.create(ctx, 'big', { id: 'during' });
    const took = performance.now() - began;
    // The sweep takes every tenant's due records: on a loaded machine a record of another test
    // in this database may come due meanwhile, so this tenant's deletes are counted below.
    expect(await sweep).toBeGreaterThanOrEqual(N);
    const changes = await recordChanges(t.store, ctx, head);
    expect(changes.filter((c) => c.action === 'delete')).toHaveLength(N);
    const position = changes.findIndex((c) => c.resourceId === 'during');
    expect(written.record.id).toBe('during');
    // Structural: deletes of the sweep came after the write, so it did not wait for the sweep.
    expect(position).toBeGreaterThanOrEqual(SWEEP_BATCH);
    expect(changes.slice(position + 1).filter((c) => c.action === 'delete').length).toBeGreaterThanOrEqual(SWEEP_BATCH);
    // Generous (a loaded 2-core machine): a batch is a few ms to tens of ms.
    expect(took).toBeLessThan(5000);
  });
});

// PostgreSQL: several servers on one database. (Two stores on one SQLite file in one process
// would block each other's event loop in SQLite's busy wait; processes serialise on the file.)
forEachBackend('collections: concurrent expiry sweepers', (backend) => {
  const t = useTestStore(backend, { store: { expirySweepIntervalMs: 0 } });

  it('two stores sweeping one database delete and emit each expired record exactly once', async () => {
    const second = await openTestStore(backend, { database: t.database, store: { expirySweepIntervalMs: 0 } });
    try {
      const tenants = await Promise.all([newTenant(t.store), newTenant(t.store), newTenant(t.store)]);
      const per = SWEEP_BATCH * 2 + 11;
      const heads: number[] = [];
      for (const { ctx } of tenants) {
        await bulk(t.store, ctx, 'x', Array.from({ length: per }, (_, i) => ({ id: `k${i}`, data: { i }, ttl: 3600 })));
        await age(t.store, ctx);
        heads.push(await t.store.changes.head(ctx));
      }
      const [a, b] = await Promise.all([t.store.internals.expiry.sweep(), second.store.internals.expiry.sweep()]);
      expect(a + b).toBe(per * tenants.length);
      for (const [i, { ctx }] of tenants.entries()) {
        const changes = await recordChanges(t.store, ctx, heads[i] as number);
        expect(changes).toHaveLength(per);
        expect(new Set(changes.map((c) => c.resourceId)).size).toBe(per);
        expect((await snapshotCounts(t.store, ctx.tenantId)).records).toBe(0);
      }
    } finally {
      await second.close();
    }
  });
}, { only: ['postgres', 'pgbouncer'] });

describe('collections: the background expiry sweep', () => {
  forEachBackend('runs on its interval and stops on close', (backend) => {
    it('deletes expired records without being asked, and close waits for it', async () => {
      const opened = await openTestStore(backend, { store: { expirySweepIntervalMs: 50 } });
      try {
        const { ctx } = await newTenant(opened.store);
        const at = inMs(300);
        await opened.store.collections.create(ctx, 'auto', { id: 'gone' }, { expiresAt: at });
        await until(at);
        const deadline = Date.now() + 10_000;
        while ((await snapshotCounts(opened.store, ctx.tenantId)).records > 0 && Date.now() < deadline) await sleep(25);
        expect((await snapshotCounts(opened.store, ctx.tenantId)).records).toBe(0);
        expect(opened.store.internals.expiry.stats().expired).toBe(1);
      } finally {
        await opened.close();
      }
    });
  });
});
