import { expect, it } from 'vitest';
import type { TenantContext } from '../../src/core/context.js';
import type { Store } from '../../src/store.js';
import { uuidv7 } from '../../src/core/ids.js';
import { rebalance } from '../../src/modules/tasks/order.js';
import { evenRanks } from '../../src/modules/tasks/rank.js';
import { forEachBackend, useTestStore } from '../helpers/backends.js';
import { asRole, countRows, expectError, newTenant } from '../helpers/fixtures.js';

async function branchOf(store: Store): Promise<{ ctx: TenantContext; branchId: string; projectId: string }> {
  const { ctx } = await newTenant(store);
  const project = (await store.projects.create(ctx, { name: 'P' })).project;
  const branch = (await store.branches.create(ctx, project.id, { name: 'main' })).branch;
  return { ctx, branchId: branch.id, projectId: project.id };
}

const titles = (items: readonly { title: string }[]) => items.map((t) => t.title);

forEachBackend('tasks', (backend) => {
  const t = useTestStore(backend);

  it('creates tasks with every field, and reads them back', async () => {
    const { ctx, branchId } = await branchOf(t.store);
    const { task } = await t.store.tasks.create(ctx, branchId, {
      title: 'ship it',
      description: 'the release',
      priority: 3,
      assignee: 'agent:planner-1',
      labels: ['release', 'urgent', 'release'],
      dueAt: '2026-12-24T18:00:00+01:00',
      metadata: { ticket: 42 },
    });
    expect(task).toMatchObject({ branchId, parentId: null, depth: 0, status: 'todo', priority: 3, assignee: 'agent:planner-1', labels: ['release', 'urgent'], dueAt: '2026-12-24T17:00:00.000Z', metadata: { ticket: 42 }, dependsOn: [], version: 1 });
    expect(await t.store.tasks.get(ctx, task.id)).toEqual(task);
  });

  it('status changes follow the transition table; a refused one is 409 naming from and to', async () => {
    const { ctx, branchId } = await branchOf(t.store);
    const { task } = await t.store.tasks.create(ctx, branchId, { title: 'x' });
    const refused = await expectError(t.store.tasks.update(ctx, task.id, { status: 'review' }), 'agentstore.conflict', { field: '/status' });
    expect(refused.context).toMatchObject({ from: 'todo', to: 'review' });
    expect((await t.store.tasks.update(ctx, task.id, { status: 'in_progress' })).status).toBe('in_progress');
    expect((await t.store.tasks.update(ctx, task.id, { status: 'review' })).status).toBe('review');
    const done = await t.store.tasks.update(ctx, task.id, { status: 'done' }, { ifMatch: 3 });
    expect(done).toMatchObject({ status: 'done', version: 4 });
    await expectError(t.store.tasks.update(ctx, task.id, { status: 'blocked' }), 'agentstore.conflict', { message: /from done to blocked/ });
    expect((await t.store.tasks.update(ctx, task.id, { status: 'todo', assignee: 'user:u1', dueAt: null, labels: [] })).status).toBe('todo');
    await expectError(t.store.tasks.update(ctx, task.id, { status: 'later' as never }), 'agentstore.validation', { field: '/status' });
    await expectError(t.store.tasks.update(ctx, task.id, { title: 'y' }, { ifMatch: 1 }), 'agentstore.precondition_failed');
  });

  it('lists a branch by status, assignee and label, with keyset pages', async () => {
    const { ctx, branchId } = await branchOf(t.store);
    const other = (await t.store.branches.create(ctx, (await t.store.branches.get(ctx, branchId)).projectId, { name: 'other' })).branch;
    await t.store.tasks.create(ctx, other.id, { title: 'elsewhere', labels: ['a'] });
    for (let i = 0; i < 7; i++) {
      await t.store.tasks.create(ctx, branchId, { title: `t${i}`, status: i % 2 ? 'blocked' : 'todo', assignee: i % 3 ? 'agent:a' : 'user:u', labels: i % 2 ? ['a', 'b'] : ['b'] });
    }
    expect(titles((await t.store.tasks.list(ctx, branchId, { limit: 100 })).items)).toEqual(['t0', 't1', 't2', 't3', 't4', 't5', 't6']);
    expect(titles((await t.store.tasks.list(ctx, branchId, { status: 'blocked' })).items)).toEqual(['t1', 't3', 't5']);
    expect(titles((await t.store.tasks.list(ctx, branchId, { assignee: 'user:u' })).items)).toEqual(['t0', 't3', 't6']);
    expect(titles((await t.store.tasks.list(ctx, branchId, { label: 'a' })).items)).toEqual(['t1', 't3', 't5']);
    expect(titles((await t.store.tasks.list(ctx, branchId, { label: 'a', status: 'blocked', assignee: 'agent:a' })).items)).toEqual(['t1', 't5']);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await t.store.tasks.list(ctx, branchId, { label: 'b', limit: 3, ...(cursor ? { cursor } : {}) });
      seen.push(...titles(page.items));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen).toEqual(['t0', 't1', 't2', 't3', 't4', 't5', 't6']);
    const first = await t.store.tasks.list(ctx, branchId, { label: 'b', limit: 3 });
    await expectError(t.store.tasks.list(ctx, branchId, { label: 'a', cursor: first.nextCursor as string }), 'agentstore.validation', { field: 'cursor' });
    await expectError(t.store.tasks.list(ctx, branchId, { assignee: 'bob' }), 'agentstore.validation', { field: 'assignee' });
  });

  it('subtasks nest in one branch; the subtree comes depth-first in order', async () => {
    const { ctx, branchId } = await branchOf(t.store);
    const make = async (title: string, parentId?: string) => (await t.store.tasks.create(ctx, branchId, { title, ...(parentId ? { parentId } : {}) })).task;
    const root = await make('root');
    const a = await make('a', root.id);
    const b = await make('b', root.id);
    await make('a1', a.id);
    const a2 = await make('a2', a.id);
    await make('a2x', a2.id);
    await make('b1', b.id);
    const sub = await t.store.tasks.subtasks(ctx, root.id);
    expect(sub.truncated).toBe(false);
    expect(sub.items.map((x) => `${x.depth}:${x.title}`)).toEqual(['1:a', '2:a1', '2:a2', '3:a2x', '1:b', '2:b1']);
    // Moved before a: b's subtree follows it.
    await t.store.tasks.move(ctx, b.id, { before: a.id });
    expect(titles((await t.store.tasks.subtasks(ctx, root.id)).items)).toEqual(['b', 'b1', 'a', 'a1', 'a2', 'a2x']);
    const other = (await t.store.branches.create(ctx, (await t.store.branches.get(ctx, branchId)).projectId, { name: 'other' })).branch;
    await expectError(t.store.tasks.create(ctx, other.id, { title: 'x', parentId: a.id }), 'agentstore.validation', { field: '/parentId' });
  });

  it('moves among siblings, to another parent and to another branch with the subtree; never under itself', async () => {
    const { ctx, branchId, projectId } = await branchOf(t.store);
    const ids: string[] = [];
    for (const title of ['a', 'b', 'c', 'd']) ids.push((await t.store.tasks.create(ctx, branchId, { title })).task.id);
    const [a, b, c, d] = ids as [string, string, string, string];
    const roots = async () => titles((await t.store.tasks.list(ctx, branchId)).items.filter((x) => x.parentId === null).sort((x, y) => (x.rank < y.rank ? -1 : 1)));
    await t.store.tasks.move(ctx, d, { before: a });
    expect(await roots()).toEqual(['d', 'a', 'b', 'c']);
    await t.store.tasks.move(ctx, d, { after: b });
    expect(await roots()).toEqual(['a', 'b', 'd', 'c']);
    await t.store.tasks.move(ctx, a, {});
    expect(await roots()).toEqual(['b', 'd', 'c', 'a']);
    // c (with a child) under b, then under its own child: refused with the path.
    const child = (await t.store.tasks.create(ctx, branchId, { title: 'c1', parentId: c })).task;
    const moved = await t.store.tasks.move(ctx, c, { parentId: b });
    expect(moved).toMatchObject({ parentId: b, depth: 1 });
    expect((await t.store.tasks.get(ctx, child.id)).depth).toBe(2);
    const loop = await expectError(t.store.tasks.move(ctx, c, { parentId: child.id }), 'agentstore.conflict', { field: '/parentId' });
    expect(loop.context.path).toEqual([c, child.id]);
    await expectError(t.store.tasks.move(ctx, b, { parentId: child.id }), 'agentstore.conflict');
    await expectError(t.store.tasks.move(ctx, b, { parentId: b }), 'agentstore.validation', { field: '/parentId' });
    await expectError(t.store.tasks.move(ctx, b, { before: child.id, parentId: null }), 'agentstore.validation', { field: '/before' });
    await expectError(t.store.tasks.move(ctx, b, { before: a, after: d }), 'agentstore.validation', { field: '/after' });
    // Beside a subtask: the depth is the anchor's.
    const beside = await t.store.tasks.move(ctx, d, { before: child.id });
    expect(beside).toMatchObject({ parentId: c, depth: 2 });
    await t.store.tasks.move(ctx, d, { parentId: null });
    // To another branch: b, c and c1 go along, labels included.
    await t.store.tasks.update(ctx, child.id, { labels: ['deep'] });
    const other = (await t.store.branches.create(ctx, projectId, { name: 'other' })).branch;
    const there = await t.store.tasks.move(ctx, b, { branchId: other.id });
    expect(there).toMatchObject({ branchId: other.id, parentId: null, depth: 0 });
    expect(titles((await t.store.tasks.list(ctx, other.id)).items).sort()).toEqual(['b', 'c', 'c1']);
    expect(titles((await t.store.tasks.list(ctx, other.id, { label: 'deep' })).items)).toEqual(['c1']);
    expect(titles((await t.store.tasks.list(ctx, branchId, { label: 'deep' })).items)).toEqual([]);
    expect(titles((await t.store.tasks.list(ctx, branchId)).items).sort()).toEqual(['a', 'd']);
  });

  it('many inserts into one gap rebalance the siblings and keep their order', async () => {
    const { ctx, branchId } = await branchOf(t.store);
    const first = (await t.store.tasks.create(ctx, branchId, { title: 'first' })).task;
    const last = (await t.store.tasks.create(ctx, branchId, { title: 'last' })).task;
    const expected = ['first'];
    // Each new task goes right after the one before it: the gap before `last` halves each time.
    let previous = first.id;
    for (let i = 0; i < 400; i++) {
      const task = (await t.store.tasks.create(ctx, branchId, { title: `m${i}` })).task;
      await t.store.tasks.move(ctx, task.id, { after: previous });
      previous = task.id;
      expected.push(`m${i}`);
    }
    expected.push('last');
    const all = (await t.store.tasks.list(ctx, branchId, { limit: 500 })).items;
    expect(Math.max(...all.map((x) => x.rank.length))).toBeLessThanOrEqual(64);
    expect(titles([...all].sort((x, y) => (x.rank < y.rank ? -1 : 1)))).toEqual(expected);
    expect(last.id).toBeDefined();
  });

  it('a rebalance of more siblings than one statement takes keeps their order', async () => {
    const { ctx, branchId } = await branchOf(t.store);
    // 1,200 top-level tasks with long keys in reverse id order, straight into the table.
    const ranks = evenRanks(1200).map((r) => `${r}${'V'.repeat(40)}`);
    const ids = Array.from({ length: 1200 }, () => uuidv7());
    const now = new Date().toISOString();
    await t.store.internals.db.inTenant(ctx.tenantId, async (trx) => {
      for (let start = 0; start < 1200; start += 300) {
        const rows = ids.slice(start, start + 300).map((id, k) => ({ tenant_id: ctx.tenantId, id, branch_id: branchId, parent_id: null, depth: 0, rank: ranks[1199 - start - k] as string, title: `r${start + k}`, status: 'todo', priority: 0, labels: '[]', metadata: '{}', version: 1, created_at: now, updated_at: now }));
        await trx.insertInto('tasks').values(rows).execute();
      }
    });
    await t.store.internals.db.inTenant(ctx.tenantId, (trx) => rebalance(trx, { tenantId: ctx.tenantId, branchId, parentId: null }, null));
    const all: { id: string; rank: string }[] = [];
    let cursor: string | undefined;
    do {
      const page = await t.store.tasks.list(ctx, branchId, { limit: 500, ...(cursor ? { cursor } : {}) });
      all.push(...page.items);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    const byRank = [...all].sort((x, y) => (x.rank < y.rank ? -1 : 1));
    expect(byRank.map((x) => x.id)).toEqual([...ids].reverse());
    expect(byRank.map((x) => x.rank)).toEqual(evenRanks(1200));
  });

  it('a subtree past 5,000 tasks comes truncated: its upper levels whole, in tree order', async () => {
    const { ctx, branchId } = await branchOf(t.store);
    const root = (await t.store.tasks.create(ctx, branchId, { title: 'root' })).task;
    const now = new Date().toISOString();
    const children = Array.from({ length: 60 }, () => uuidv7());
    const childRanks = evenRanks(60);
    const grandRanks = evenRanks(85);
    const row = (id: string, parentId: string, depth: number, rank: string, title: string) => ({ tenant_id: ctx.tenantId, id, branch_id: branchId, parent_id: parentId, depth, rank, title, status: 'todo', priority: 0, labels: '[]', metadata: '{}', version: 1, created_at: now, updated_at: now });
    await t.store.internals.db.inTenant(ctx.tenantId, async (trx) => {
      await trx.insertInto('tasks').values(children.map((id, i) => row(id, root.id, 1, childRanks[i] as string, `c${i}`))).execute();
      for (const [i, child] of children.entries()) {
        await trx.insertInto('tasks').values(grandRanks.map((rank, j) => row(uuidv7(), child, 2, rank, `c${i}.${j}`))).execute();
      }
    });
    const sub = await t.store.tasks.subtasks(ctx, root.id);
    expect(sub.truncated).toBe(true);
    expect(sub.items).toHaveLength(5000);
    expect(sub.items.filter((x) => x.depth === 1)).toHaveLength(60);
    // Depth-first: each task comes after its parent and before the parent's next sibling.
    const seen = new Set([root.id]);
    let lastChild = -1;
    for (const x of sub.items) {
      expect(seen.has(x.parentId as string), x.title).toBe(true);
      seen.add(x.id);
      if (x.depth === 1) {
        const n = Number(x.title.slice(1));
        expect(n).toBe(lastChild + 1);
        lastChild = n;
      } else expect(x.title.startsWith(`c${lastChild}.`), x.title).toBe(true);
    }
  });

  it('dependencies: refused when they close a cycle (naming it), idempotent, removable', async () => {
    const { ctx, branchId } = await branchOf(t.store);
    const ids: string[] = [];
    for (const title of ['a', 'b', 'c', 'd']) ids.push((await t.store.tasks.create(ctx, branchId, { title })).task.id);
    const [a, b, c, d] = ids as [string, string, string, string];
    await t.store.tasks.addDependency(ctx, a, b);
    await t.store.tasks.addDependency(ctx, b, c);
    await t.store.tasks.addDependency(ctx, a, d);
    expect((await t.store.tasks.addDependency(ctx, c, d)).dependsOn).toEqual([d]);
    expect((await t.store.tasks.addDependency(ctx, a, b)).dependsOn).toEqual([b, d]);
    const cycle = await expectError(t.store.tasks.addDependency(ctx, d, a), 'agentstore.conflict', { field: '/taskId' });
    expect(cycle.context.cycle).toEqual([d, a, b, c, d].length === 5 ? expect.arrayContaining([d, a]) : []);
    const path = cycle.context.cycle as string[];
    expect(path[0]).toBe(d);
    expect(path.at(-1)).toBe(d);
    // Each step of the path is an edge that exists, or the new one.
    const edges = new Set([`${a}>${b}`, `${b}>${c}`, `${a}>${d}`, `${c}>${d}`, `${d}>${a}`]);
    for (let i = 0; i + 1 < path.length; i++) expect(edges.has(`${path[i]}>${path[i + 1]}`), `${path[i]} -> ${path[i + 1]}`).toBe(true);
    await expectError(t.store.tasks.addDependency(ctx, c, c), 'agentstore.conflict', { message: /cycle/ });
    await expectError(t.store.tasks.addDependency(ctx, c, '0190a0a0-0000-7000-8000-000000000009'), 'agentstore.validation', { field: '/taskId' });
    const after = await t.store.tasks.removeDependency(ctx, a, b);
    expect(after.dependsOn).toEqual([d]);
    await expectError(t.store.tasks.removeDependency(ctx, a, b), 'agentstore.not_found');
    // Created with dependencies; deleting a task drops the edges to it.
    const e = (await t.store.tasks.create(ctx, branchId, { title: 'e', dependsOn: [a, c] })).task;
    expect(e.dependsOn.sort()).toEqual([a, c].sort());
    await t.store.tasks.delete(ctx, c);
    expect((await t.store.tasks.get(ctx, e.id)).dependsOn).toEqual([a]);
    await expectError(t.store.tasks.create(ctx, branchId, { title: 'f', dependsOn: [c] }), 'agentstore.validation', { field: '/dependsOn/0' });
  });

  it('deletes a task, its subtree only with cascade', async () => {
    const { ctx, branchId } = await branchOf(t.store);
    const root = (await t.store.tasks.create(ctx, branchId, { title: 'root' })).task;
    const child = (await t.store.tasks.create(ctx, branchId, { title: 'child', parentId: root.id, labels: ['x'] })).task;
    await t.store.tasks.create(ctx, branchId, { title: 'grandchild', parentId: child.id });
    await expectError(t.store.tasks.delete(ctx, root.id), 'agentstore.conflict', { message: /2 subtasks/ });
    await expectError(t.store.tasks.delete(ctx, root.id, { cascade: true, ifMatch: 7 }), 'agentstore.precondition_failed');
    expect(await t.store.tasks.delete(ctx, root.id, { cascade: true })).toEqual({ tasks: 3 });
    expect(await countRows(t.store, 'tasks', ctx.tenantId)).toBe(0);
    expect(await countRows(t.store, 'task_labels', ctx.tenantId)).toBe(0);
  });

  it('writes an audit entry and a change per mutation', async () => {
    const { ctx, branchId } = await branchOf(t.store);
    const a = (await t.store.tasks.create(ctx, branchId, { title: 'a' })).task;
    const b = (await t.store.tasks.create(ctx, branchId, { title: 'b' })).task;
    await t.store.tasks.update(ctx, a.id, { status: 'in_progress' });
    await t.store.tasks.move(ctx, b.id, { before: a.id });
    await t.store.tasks.addDependency(ctx, a.id, b.id);
    const changes = await t.store.changes.read(ctx, { after: 0, resourceTypes: ['task'] });
    expect(changes.map((c) => c.action)).toEqual(['create', 'create', 'update', 'move', 'depend']);
    // Members and viewers read tasks, so they see their changes too (not the project's admin ones only).
    const asViewer = await t.store.changes.read(asRole(ctx, 'viewer'), { after: 0 });
    expect(asViewer.map((c) => c.resourceType)).toEqual(['project', 'branch', 'task', 'task', 'task', 'task', 'task']);
    const audit = await t.store.audit.list(ctx, { resourceType: 'task', resourceId: a.id });
    expect(audit.items.map((x) => x.action).sort()).toEqual(['task.create', 'task.depend', 'task.update']);
  });

  it('refuses bad input, naming the field, and writes nothing', async () => {
    const { ctx, branchId } = await branchOf(t.store);
    const bad: [Record<string, unknown>, string][] = [
      [{}, '/title'],
      [{ title: '' }, '/title'],
      [{ title: 'x', priority: 101 }, '/priority'],
      [{ title: 'x', priority: 1.5 }, '/priority'],
      [{ title: 'x', assignee: 'bob' }, '/assignee'],
      [{ title: 'x', assignee: 'agent:' }, '/assignee'],
      [{ title: 'x', labels: 'a' }, '/labels'],
      [{ title: 'x', labels: ['a,b'] }, '/labels/0'],
      [{ title: 'x', labels: Array.from({ length: 21 }, (_, i) => `l${i}`) }, '/labels'],
      [{ title: 'x', dueAt: 'tomorrow' }, '/dueAt'],
      [{ title: 'x', status: 'nope' }, '/status'],
      [{ title: 'x', parentId: 'nope' }, '/parentId'],
      [{ title: 'x', parentId: '0190a0a0-0000-7000-8000-000000000009' }, '/parentId'],
      [{ title: 'x', dependsOn: ['x'] }, '/dependsOn/0'],
      [{ title: 'x', whatever: 1 }, '/whatever'],
    ];
    for (const [input, field] of bad) await expectError(t.store.tasks.create(ctx, branchId, input as never), 'agentstore.validation', { field });
    expect(await countRows(t.store, 'tasks', ctx.tenantId)).toBe(0);
    await expectError(t.store.tasks.create(ctx, '0190a0a0-0000-7000-8000-000000000009', { title: 'x' }), 'agentstore.not_found');
  });
});
