import { describe, expect, it } from 'vitest';
import { forEachBackend, useTestStore } from '../helpers/backends.js';
import { expectError, newTenant, seededRandom } from '../helpers/fixtures.js';

forEachBackend('counters', (backend) => {
  const t = useTestStore(backend);

  it('increments by 1 by default, creating the counter at 0', async () => {
    const { ctx } = await newTenant(t.store);
    const first = await t.store.counters.increment(ctx, 'hits');
    expect(first).toMatchObject({ name: 'hits', value: 1 });
    expect(first.createdAt).toBe(first.updatedAt);
    expect((await t.store.counters.increment(ctx, 'hits')).value).toBe(2);
    expect((await t.store.counters.get(ctx, 'hits')).value).toBe(2);
  });

  it('increments by any safe integer, negative included', async () => {
    const { ctx } = await newTenant(t.store);
    expect((await t.store.counters.increment(ctx, 'balance', 10)).value).toBe(10);
    expect((await t.store.counters.increment(ctx, 'balance', -25)).value).toBe(-15);
    expect((await t.store.counters.increment(ctx, 'balance', 0)).value).toBe(-15);
    expect((await t.store.counters.increment(ctx, 'big', 2 ** 52)).value).toBe(2 ** 52);
    expect((await t.store.counters.increment(ctx, 'big', 2 ** 52 - 1)).value).toBe(2 ** 53 - 1);
  });

  it('refuses to leave the safe integer range and keeps the old value', async () => {
    const { ctx } = await newTenant(t.store);
    await t.store.counters.increment(ctx, 'edge', Number.MAX_SAFE_INTEGER);
    await expectError(t.store.counters.increment(ctx, 'edge', 1), 'agentstore.validation', { field: '/by' });
    expect((await t.store.counters.get(ctx, 'edge')).value).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('resets to 0 or to a given value, creating the counter if needed', async () => {
    const { ctx } = await newTenant(t.store);
    await t.store.counters.increment(ctx, 'r', 5);
    expect((await t.store.counters.reset(ctx, 'r')).value).toBe(0);
    expect((await t.store.counters.reset(ctx, 'r', 42)).value).toBe(42);
    expect((await t.store.counters.increment(ctx, 'r')).value).toBe(43);
    expect((await t.store.counters.reset(ctx, 'fresh', -7)).value).toBe(-7);
  });

  it('get of an unknown counter is not_found', async () => {
    const { ctx } = await newTenant(t.store);
    await expectError(t.store.counters.get(ctx, 'never'), 'agentstore.not_found');
  });

  it('rejects invalid names and amounts without writing', async () => {
    const { ctx } = await newTenant(t.store);
    for (const name of ['', ' x', 'a/b', "x'; drop table counters; --", 'n'.repeat(129), '-lead', 'é']) {
      await expectError(t.store.counters.increment(ctx, name), 'agentstore.validation', { field: 'name' });
      await expectError(t.store.counters.get(ctx, name), 'agentstore.validation', { field: 'name' });
      await expectError(t.store.counters.reset(ctx, name), 'agentstore.validation', { field: 'name' });
    }
    for (const by of [1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '1', null]) {
      await expectError(t.store.counters.increment(ctx, 'ok', by as number), 'agentstore.validation', { field: '/by' });
    }
    await expectError(t.store.counters.reset(ctx, 'ok', 0.5), 'agentstore.validation', { field: '/value' });
    expect((await t.store.counters.list(ctx)).items).toEqual([]);
  });

  it('lists by name with keyset pagination', async () => {
    const { ctx } = await newTenant(t.store);
    const names = Array.from({ length: 11 }, (_, i) => `c:${String(10 - i).padStart(2, '0')}`);
    for (const name of names) await t.store.counters.increment(ctx, name, 3);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await t.store.counters.list(ctx, { limit: 4, ...(cursor ? { cursor } : {}) });
      pages++;
      seen.push(...page.items.map((c) => c.name));
      expect(page.items.every((c) => c.value === 3)).toBe(true);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual([...names].sort());
    await expectError(t.store.counters.list(ctx, { limit: 0 }), 'agentstore.validation', { field: 'limit' });
    await expectError(t.store.counters.list(ctx, { cursor: 'nope!' }), 'agentstore.validation', { field: 'cursor' });
  });

  describe('concurrency', () => {
    it('200 concurrent increments of random amounts: exact sum, every returned value distinct', async () => {
      const { ctx } = await newTenant(t.store);
      const random = seededRandom(7);
      const amounts = Array.from({ length: 200 }, () => Math.floor(random() * 1000) + 1);
      const results = await Promise.all(amounts.map((by) => t.store.counters.increment(ctx, 'race', by)));
      const sum = amounts.reduce((a, b) => a + b, 0);
      expect((await t.store.counters.get(ctx, 'race')).value).toBe(sum);
      const values = results.map((r) => r.value);
      expect(new Set(values).size).toBe(values.length);
      expect(Math.max(...values)).toBe(sum);
      // Each caller saw its own increment applied on top of some earlier total.
      const sorted = [...results].sort((a, b) => a.value - b.value);
      const byValue = new Map(results.map((r, i) => [r.value, amounts[i] as number]));
      let previous = 0;
      for (const r of sorted) {
        expect(r.value - previous).toBe(byValue.get(r.value));
        previous = r.value;
      }
    });

    it('concurrent increments of several counters in one tenant do not interfere', async () => {
      const { ctx } = await newTenant(t.store);
      const ops = Array.from({ length: 60 }, (_, i) => t.store.counters.increment(ctx, `k${i % 3}`, i % 2 === 0 ? 2 : -1));
      await Promise.all(ops);
      const values = (await t.store.counters.list(ctx)).items.map((c) => [c.name, c.value]);
      expect(values).toEqual([
        ['k0', 10 * 2 + 10 * -1],
        ['k1', 10 * -1 + 10 * 2],
        ['k2', 10 * 2 + 10 * -1],
      ]);
    });
  });
});
