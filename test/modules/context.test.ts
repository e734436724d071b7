import { expect, it } from 'vitest';
import { forEachBackend, useTestStore } from '../helpers/backends.js';
import { asRole, expectError, newTenant } from '../helpers/fixtures.js';

forEachBackend('context documents', (backend) => {
  const t = useTestStore(backend);

  const tree = async () => {
    const { ctx } = await newTenant(t.store);
    const project = (await t.store.projects.create(ctx, { name: 'P' })).project;
    const branch = (await t.store.branches.create(ctx, project.id, { name: 'main' })).branch;
    const task = (await t.store.tasks.create(ctx, branch.id, { title: 'T' })).task;
    return { ctx, project, branch, task };
  };

  it('resolves global -> project -> branch -> task: nearest wins, objects merge, arrays replace, sources per key', async () => {
    const { ctx, project, branch, task } = await tree();
    await t.store.context.put(ctx, { level: 'global' }, { model: 'm1', tools: ['search', 'code'], limits: { tokens: 1000, calls: 10 }, tone: 'plain' });
    await t.store.context.put(ctx, { level: 'project', id: project.id }, { repo: 'git@x', limits: { calls: 20 } });
    await t.store.context.put(ctx, { level: 'branch', id: branch.id }, { tone: 'brief' });
    await t.store.context.put(ctx, { level: 'task', id: task.id }, { tools: ['code'], limits: { tokens: 50 } });
    expect(await t.store.context.resolve(ctx, { level: 'task', id: task.id })).toEqual({
      context: { model: 'm1', tools: ['code'], limits: { tokens: 50, calls: 20 }, tone: 'brief', repo: 'git@x' },
      sources: { model: 'global', tools: 'task', limits: 'task', tone: 'branch', repo: 'project' },
    });
    expect(await t.store.context.resolve(ctx, { level: 'branch', id: branch.id })).toEqual({
      context: { model: 'm1', tools: ['search', 'code'], limits: { tokens: 1000, calls: 20 }, tone: 'brief', repo: 'git@x' },
      sources: { model: 'global', tools: 'global', limits: 'project', tone: 'branch', repo: 'project' },
    });
    expect((await t.store.context.resolve(ctx, { level: 'project', id: project.id })).sources).toEqual({ model: 'global', tools: 'global', limits: 'project', tone: 'global', repo: 'project' });
    // A write at any level shows in the next resolve.
    await t.store.context.patch(ctx, { level: 'global' }, { model: 'm2' });
    expect((await t.store.context.resolve(ctx, { level: 'task', id: task.id })).context.model).toBe('m2');
  });

  it('a level without a document contributes nothing; GET of it is 404; resolve of a missing task is 404', async () => {
    const { ctx, task } = await tree();
    expect(await t.store.context.resolve(ctx, { level: 'task', id: task.id })).toEqual({ context: {}, sources: {} });
    await expectError(t.store.context.get(ctx, { level: 'task', id: task.id }), 'agentstore.not_found');
    await expectError(t.store.context.get(ctx, { level: 'global' }), 'agentstore.not_found');
    await expectError(t.store.context.resolve(ctx, { level: 'task', id: '0190a0a0-0000-7000-8000-000000000009' }), 'agentstore.not_found');
    await expectError(t.store.context.put(ctx, { level: 'branch', id: '0190a0a0-0000-7000-8000-000000000009' }, {}), 'agentstore.not_found');
  });

  it('PUT and PATCH (JSON merge patch) with versions, If-Match and If-None-Match', async () => {
    const { ctx, task } = await tree();
    const target = { level: 'task', id: task.id } as const;
    const { document, created } = await t.store.context.put(ctx, target, { a: 1, nested: { x: 1, y: 2 } }, { ifNoneMatch: '*' });
    expect(created).toBe(true);
    expect(document).toMatchObject({ level: 'task', id: task.id, data: { a: 1, nested: { x: 1, y: 2 } }, version: 1 });
    await expectError(t.store.context.put(ctx, target, {}, { ifNoneMatch: '*' }), 'agentstore.precondition_failed');
    const patched = await t.store.context.patch(ctx, target, { a: null, nested: { y: 3 }, b: [1] }, { ifMatch: 1 });
    expect(patched).toMatchObject({ data: { nested: { x: 1, y: 3 }, b: [1] }, version: 2 });
    await expectError(t.store.context.patch(ctx, target, { c: 1 }, { ifMatch: 1 }), 'agentstore.precondition_failed');
    expect(await t.store.context.get(ctx, target)).toEqual(patched);
    // The task's own version is untouched by its context.
    expect((await t.store.tasks.get(ctx, task.id)).version).toBe(1);
    // PATCH of a level without a document starts from {}.
    expect((await t.store.context.patch(ctx, { level: 'global' }, { g: true })).version).toBe(1);
    await expectError(t.store.context.patch(ctx, { level: 'global' }, { g: 1 }, { ifMatch: 9 }), 'agentstore.precondition_failed');
  });

  it('bounds size and shape; roles: members write levels below global, admins write global', async () => {
    const { ctx, task } = await tree();
    const target = { level: 'task', id: task.id } as const;
    await expectError(t.store.context.put(ctx, target, { big: 'x'.repeat(256 * 1024) }), 'agentstore.payload_too_large');
    await expectError(t.store.context.put(ctx, target, [] as never), 'agentstore.validation', { field: 'body' });
    await expectError(t.store.context.put(ctx, target, { s: '\u0000' }), 'agentstore.validation', { field: 'body' });
    await t.store.context.put(ctx, target, { half: 'x'.repeat(200 * 1024) });
    await expectError(t.store.context.patch(ctx, target, { more: 'y'.repeat(100 * 1024) }), 'agentstore.payload_too_large');
    await expectError(t.store.context.put(ctx, { level: 'task', id: 'nope' }, {}), 'agentstore.validation', { field: 'id' });
    await expectError(t.store.context.put(ctx, { level: 'tenant' } as never, {}), 'agentstore.validation', { field: 'level' });
    const member = asRole(ctx, 'member');
    await t.store.context.put(member, target, { ok: 1 });
    await expectError(t.store.context.put(member, { level: 'global' }, { no: 1 }), 'agentstore.forbidden');
    await expectError(t.store.context.put(asRole(ctx, 'viewer'), target, { no: 1 }), 'agentstore.forbidden');
    expect((await t.store.context.resolve(asRole(ctx, 'viewer'), target)).context).toEqual({ ok: 1 });
  });

  it('deleting a task, branch or project takes its context document with it', async () => {
    const { ctx, project, branch, task } = await tree();
    await t.store.context.put(ctx, { level: 'task', id: task.id }, { t: 1 });
    await t.store.context.put(ctx, { level: 'branch', id: branch.id }, { b: 1 });
    await t.store.tasks.delete(ctx, task.id);
    await expectError(t.store.context.get(ctx, { level: 'task', id: task.id }), 'agentstore.not_found');
    await t.store.projects.delete(ctx, project.id, { cascade: true });
    await expectError(t.store.context.resolve(ctx, { level: 'branch', id: branch.id }), 'agentstore.not_found');
  });
});
