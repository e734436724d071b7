import { expect, it } from 'vitest';
import { isAgentstoreError } from '../../src/core/errors.js';
import { forEachBackend, useTestStore } from '../helpers/backends.js';
import { newTenant } from '../helpers/fixtures.js';

const N = 12;

forEachBackend('collections: concurrent writers', (backend) => {
  const t = useTestStore(backend);

  /** Settles all and splits into successes and agentstore error codes (other errors fail the test). */
  const settle = async <T>(ops: Promise<T>[]) => {
    const results = await Promise.allSettled(ops);
    const ok = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const codes = results.flatMap((r) => {
      if (r.status === 'fulfilled') return [];
      if (!isAgentstoreError(r.reason)) throw r.reason;
      return [r.reason.code];
    });
    return { ok, codes };
  };

  it.each(['patch', 'replace', 'delete'] as const)(`of ${N} concurrent %s calls with the same ifMatch exactly one wins`, async (op) => {
    const { ctx } = await newTenant(t.store);
    const { record } = await t.store.collections.create(ctx, 'race', { n: 0 });
    const ops = Array.from({ length: N }, (_, i) => {
      if (op === 'patch') return t.store.collections.patch(ctx, 'race', record.id, { n: i, [`f${i}`]: true }, { ifMatch: 1 });
      if (op === 'replace') return t.store.collections.replace(ctx, 'race', record.id, { n: i }, { ifMatch: 1 });
      return t.store.collections.delete(ctx, 'race', record.id, { ifMatch: 1 });
    });
    const { ok, codes } = await settle<unknown>(ops);
    expect(ok).toHaveLength(1);
    expect(codes).toEqual(Array(N - 1).fill('agentstore.precondition_failed'));
    if (op === 'delete') return;
    const current = await t.store.collections.get(ctx, 'race', record.id);
    expect(current.version).toBe(2);
    expect(current).toEqual(ok[0]);
    // Only the winner's fields are present.
    expect(Object.keys(current.data).filter((k) => k.startsWith('f')).length).toBe(op === 'patch' ? 1 : 0);
  });

  it('concurrent defines of one new collection all succeed, with distinct versions', async () => {
    const { ctx } = await newTenant(t.store);
    const { ok, codes } = await settle(
      Array.from({ length: 6 }, (_, i) => t.store.collections.define(ctx, 'defined', { schema: { type: 'object', title: `v${i}` }, indexes: ['a', `f${i}`] })),
    );
    expect(codes).toEqual([]);
    expect(ok.map((c) => c.version).sort()).toEqual([1, 2, 3, 4, 5, 6]);
    const final = await t.store.collections.getCollection(ctx, 'defined');
    expect(final.version).toBe(6);
    expect(final).toEqual(ok.find((c) => c.version === 6));
  });

  it('a define racing the first record writes of the same collection', async () => {
    const { ctx } = await newTenant(t.store);
    const { codes } = await settle<unknown>([
      t.store.collections.create(ctx, 'raced', { a: 1 }),
      t.store.collections.define(ctx, 'raced', { indexes: ['a'] }),
      t.store.collections.create(ctx, 'raced', { a: 2 }),
      t.store.collections.define(ctx, 'raced', { indexes: ['b'] }),
    ]);
    expect(codes).toEqual([]);
    expect((await t.store.collections.list(ctx, 'raced')).items).toHaveLength(2);
  });

  it('concurrent patches of different fields without ifMatch all land (no lost update)', async () => {
    const { ctx } = await newTenant(t.store);
    const { record } = await t.store.collections.create(ctx, 'race', { base: true });
    const results = await Promise.all(Array.from({ length: N }, (_, i) => t.store.collections.patch(ctx, 'race', record.id, { [`field${i}`]: i })));
    const current = await t.store.collections.get(ctx, 'race', record.id);
    expect(current.version).toBe(N + 1);
    expect(current.data).toEqual({ base: true, ...Object.fromEntries(Array.from({ length: N }, (_, i) => [`field${i}`, i])) });
    // Each patch saw a distinct version.
    expect(new Set(results.map((r) => r.version)).size).toBe(N);
  });

  it('a version chain of concurrent read-modify-write retries never loses an increment', async () => {
    const { ctx } = await newTenant(t.store);
    const { record } = await t.store.collections.create(ctx, 'race', { count: 0 });
    const worker = async () => {
      for (;;) {
        const current = await t.store.collections.get(ctx, 'race', record.id);
        try {
          await t.store.collections.patch(ctx, 'race', record.id, { count: (current.data.count as number) + 1 }, { ifMatch: current.version });
          return;
        } catch (error) {
          if (!isAgentstoreError(error, 'agentstore.precondition_failed')) throw error;
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    expect((await t.store.collections.get(ctx, 'race', record.id)).data.count).toBe(8);
  });
});
