import { expect, it } from 'vitest';
import { forEachBackend, useTestStore } from '../helpers/backends.js';
import { asRole, countRows, expectError, newTenant } from '../helpers/fixtures.js';

forEachBackend('projects and branches', (backend) => {
  const t = useTestStore(backend);

  it('creates, reads, lists, updates (with If-Match) and deletes a project', async () => {
    const { ctx } = await newTenant(t.store);
    const { project } = await t.store.projects.create(ctx, { name: 'Apollo', description: 'moon', metadata: { owner: 'ops' } });
    expect(project).toMatchObject({ name: 'Apollo', description: 'moon', metadata: { owner: 'ops' }, version: 1 });
    expect(await t.store.projects.get(ctx, project.id)).toEqual(project);
    const second = (await t.store.projects.create(ctx, { name: 'Gemini' })).project;
    expect(second).toMatchObject({ description: null, metadata: {} });
    const page1 = await t.store.projects.list(ctx, { limit: 1 });
    expect(page1.items.map((p) => p.id)).toEqual([project.id]);
    const page2 = await t.store.projects.list(ctx, { limit: 1, cursor: page1.nextCursor as string });
    expect(page2).toEqual({ items: [second], nextCursor: null });
    const updated = await t.store.projects.update(ctx, project.id, { name: 'Apollo 11', description: null }, { ifMatch: 1 });
    expect(updated).toMatchObject({ name: 'Apollo 11', description: null, metadata: { owner: 'ops' }, version: 2 });
    const stale = await expectError(t.store.projects.update(ctx, project.id, { name: 'x' }, { ifMatch: 1 }), 'agentstore.precondition_failed');
    expect(stale.context.currentVersion).toBe(2);
    expect(await t.store.projects.delete(ctx, project.id)).toEqual({ branches: 0, tasks: 0 });
    await expectError(t.store.projects.get(ctx, project.id), 'agentstore.not_found');
  });

  it('an idempotency key replays the first create and writes nothing more', async () => {
    const { ctx } = await newTenant(t.store);
    const first = await t.store.projects.create(ctx, { name: 'P' }, { idempotencyKey: 'k1' });
    const again = await t.store.projects.create(ctx, { name: 'P' }, { idempotencyKey: 'k1' });
    expect(again).toEqual({ project: first.project, replayed: true });
    await expectError(t.store.projects.create(ctx, { name: 'Q' }, { idempotencyKey: 'k1' }), 'agentstore.conflict', { field: 'idempotency-key' });
    expect(await countRows(t.store, 'projects', ctx.tenantId)).toBe(1);
  });

  it('branch names are unique in a project; branches list by project', async () => {
    const { ctx } = await newTenant(t.store);
    const p = (await t.store.projects.create(ctx, { name: 'P' })).project;
    const q = (await t.store.projects.create(ctx, { name: 'Q' })).project;
    const main = (await t.store.branches.create(ctx, p.id, { name: 'main' })).branch;
    expect(main).toMatchObject({ projectId: p.id, name: 'main', version: 1 });
    await expectError(t.store.branches.create(ctx, p.id, { name: 'main' }), 'agentstore.conflict', { field: '/name' });
    await t.store.branches.create(ctx, q.id, { name: 'main' });
    const dev = (await t.store.branches.create(ctx, p.id, { name: 'dev' })).branch;
    await expectError(t.store.branches.update(ctx, dev.id, { name: 'main' }), 'agentstore.conflict', { field: '/name' });
    expect((await t.store.branches.list(ctx, p.id)).items.map((b) => b.name)).toEqual(['main', 'dev']);
    await expectError(t.store.branches.list(ctx, '0190a0a0-0000-7000-8000-000000000009'), 'agentstore.not_found');
    await expectError(t.store.branches.create(ctx, '0190a0a0-0000-7000-8000-000000000009', { name: 'x' }), 'agentstore.not_found');
    expect((await t.store.branches.update(ctx, dev.id, { metadata: { ci: true } })).metadata).toEqual({ ci: true });
  });

  it('a project with branches, or a branch with tasks, is deleted only with cascade, everything below in one unit', async () => {
    const { ctx } = await newTenant(t.store);
    const p = (await t.store.projects.create(ctx, { name: 'P' })).project;
    const b = (await t.store.branches.create(ctx, p.id, { name: 'main' })).branch;
    const top = (await t.store.tasks.create(ctx, b.id, { title: 'top', labels: ['x'] })).task;
    const sub = (await t.store.tasks.create(ctx, b.id, { title: 'sub', parentId: top.id })).task;
    await t.store.tasks.addDependency(ctx, sub.id, top.id);
    await t.store.context.put(ctx, { level: 'task', id: sub.id }, { a: 1 });
    await expectError(t.store.branches.delete(ctx, b.id), 'agentstore.conflict', { message: /2 tasks/ });
    await expectError(t.store.projects.delete(ctx, p.id), 'agentstore.conflict', { message: /1 branch/ });
    expect(await t.store.projects.delete(ctx, p.id, { cascade: true })).toEqual({ branches: 1, tasks: 2 });
    for (const table of ['projects', 'branches', 'tasks', 'task_labels', 'task_dependencies'] as const) expect(await countRows(t.store, table, ctx.tenantId), table).toBe(0);
    const audit = await t.store.audit.list(ctx, { action: 'project.delete' });
    expect(audit.items[0]?.details).toEqual({ branches: 1, tasks: 2 });
  });

  it('validates names, ids, metadata and unknown fields; roles apply', async () => {
    const { ctx } = await newTenant(t.store);
    for (const name of ['', '   ', 'x'.repeat(201), 5, 'a\u0000b']) await expectError(t.store.projects.create(ctx, { name: name as string }), 'agentstore.validation', { field: '/name' });
    await expectError(t.store.projects.create(ctx, { name: 'ok', metadata: [] as never }), 'agentstore.validation', { field: '/metadata' });
    await expectError(t.store.projects.create(ctx, { name: 'ok', metadata: { big: 'x'.repeat(17_000) } }), 'agentstore.payload_too_large', { field: '/metadata' });
    await expectError(t.store.projects.create(ctx, { name: 'ok', extra: 1 } as never), 'agentstore.validation', { field: '/extra' });
    await expectError(t.store.projects.get(ctx, "x' or 1=1"), 'agentstore.validation', { field: 'id' });
    await expectError(t.store.projects.update(ctx, '0190a0a0-0000-7000-8000-000000000009', {}), 'agentstore.validation', { field: 'body' });
    await expectError(t.store.projects.create(asRole(ctx, 'viewer'), { name: 'v' }), 'agentstore.forbidden');
    const p = (await t.store.projects.create(asRole(ctx, 'member'), { name: 'm' })).project;
    await expectError(t.store.projects.delete(asRole(ctx, 'member'), p.id), 'agentstore.forbidden');
    expect((await t.store.projects.list(asRole(ctx, 'viewer'))).items).toHaveLength(1);
  });
});
