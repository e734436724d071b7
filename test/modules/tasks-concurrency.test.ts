/**
 * Concurrent writers on one tree and one dependency graph. On PostgreSQL the units really
 * overlap (a pool of connections): two moves into one gap compute the same rank and the
 * unique index turns the second into a retry; two dependency inserts that together close a
 * cycle are serialised by the tenant's advisory lock, so the second sees the first's edge.
 */
import { expect, it } from 'vitest';
import { isAgentstoreError } from '../../src/core/errors.js';
import { forEachBackend, useTestStore } from '../helpers/backends.js';
import { newTenant } from '../helpers/fixtures.js';

forEachBackend('tasks under concurrency', (backend) => {
  const t = useTestStore(backend);

  const setup = async (n: number) => {
    const { ctx } = await newTenant(t.store);
    const project = (await t.store.projects.create(ctx, { name: 'P' })).project;
    const branch = (await t.store.branches.create(ctx, project.id, { name: 'main' })).branch;
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push((await t.store.tasks.create(ctx, branch.id, { title: `t${i}` })).task.id);
    return { ctx, branchId: branch.id, ids };
  };

  it('concurrent creates under one parent and concurrent moves into one gap keep a total order without duplicates', async () => {
    const { ctx, branchId, ids } = await setup(2);
    const [first, second] = ids as [string, string];
    // 24 creates at once, all appended at the end of the same siblings.
    const created = await Promise.all(Array.from({ length: 24 }, (_, i) => t.store.tasks.create(ctx, branchId, { title: `c${i}` })));
    // Then every one of them moved into the same gap, between the first two, at once.
    const moved = await Promise.all(created.map(({ task }) => t.store.tasks.move(ctx, task.id, { after: first })));
    expect(moved).toHaveLength(24);
    const all = (await t.store.tasks.list(ctx, branchId, { limit: 500 })).items;
    expect(all).toHaveLength(26);
    const ranks = all.map((x) => x.rank);
    expect(new Set(ranks).size).toBe(26);
    const ordered = [...all].sort((a, b) => (a.rank < b.rank ? -1 : 1)).map((x) => x.id);
    expect(ordered[0]).toBe(first);
    expect(ordered.at(-1)).toBe(second);
    // Every task is where some order of the moves would have put it: right after `first` or after another moved one.
    expect(new Set(ordered.slice(1, -1))).toEqual(new Set(created.map((c) => c.task.id)));
  });

  it('concurrent dependency inserts that would together close a cycle: exactly the first wins', async () => {
    for (let round = 0; round < 8; round++) {
      const { ctx, ids } = await setup(2);
      const [a, b] = ids as [string, string];
      const results = await Promise.allSettled([t.store.tasks.addDependency(ctx, a, b), t.store.tasks.addDependency(ctx, b, a)]);
      const refused = results.filter((r) => r.status === 'rejected');
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(refused).toHaveLength(1);
      const error = (refused[0] as PromiseRejectedResult).reason;
      expect(isAgentstoreError(error, 'agentstore.conflict'), String(error)).toBe(true);
    }
  });

  it('two moves that each put one task under the other: one wins, the tree keeps its root', async () => {
    for (let round = 0; round < 6; round++) {
      const { ctx, ids } = await setup(2);
      const [a, b] = ids as [string, string];
      const results = await Promise.allSettled([t.store.tasks.move(ctx, a, { parentId: b }), t.store.tasks.move(ctx, b, { parentId: a })]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect(isAgentstoreError(refused.reason, 'agentstore.conflict'), String(refused.reason)).toBe(true);
      const tasks = await Promise.all([a, b].map((id) => t.store.tasks.get(ctx, id)));
      expect(tasks.filter((x) => x.parentId === null)).toHaveLength(1);
    }
  });

  it('concurrent first writes of the global context: one creates it, the other replaces it', async () => {
    const { ctx } = await setup(0);
    const results = await Promise.all([1, 2, 3].map((n) => t.store.context.put(ctx, { level: 'global' }, { n })));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(results.map((r) => r.document.version).sort()).toEqual([1, 2, 3]);
  });

  it('a ring of edges added all at once leaves the graph acyclic', async () => {
    const { ctx, ids } = await setup(8);
    const ring = ids.map((id, i) => [id, ids[(i + 1) % ids.length] as string] as const);
    const results = await Promise.allSettled(ring.map(([from, to]) => t.store.tasks.addDependency(ctx, from, to)));
    const refused = results.filter((r) => r.status === 'rejected');
    expect(refused.length).toBeGreaterThanOrEqual(1);
    for (const r of refused) expect(isAgentstoreError((r as PromiseRejectedResult).reason, 'agentstore.conflict')).toBe(true);
    // Read the stored edges back and look for a cycle.
    const edges = new Map<string, string[]>();
    for (const id of ids) edges.set(id, (await t.store.tasks.get(ctx, id)).dependsOn);
    const visiting = new Set<string>();
    const done = new Set<string>();
    const hasCycle = (id: string): boolean => {
      if (visiting.has(id)) return true;
      if (done.has(id)) return false;
      visiting.add(id);
      const found = (edges.get(id) ?? []).some(hasCycle);
      visiting.delete(id);
      done.add(id);
      return found;
    };
    expect(ids.some(hasCycle)).toBe(false);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(ids.length - 1);
  });
});
