/**
 * Projects, branches, tasks and context over HTTP: status codes, ETags, preconditions,
 * idempotent creates, and the problem members of refused moves, transitions and cycles.
 */
import type { LightMyRequestResponse } from 'fastify';
import { beforeAll, expect, it } from 'vitest';
import { forEachBackend } from '../helpers/index.js';
import { bearer, createTenant, expectProblem, useHttp, type HttpTenant } from './http-kit.js';

forEachBackend('http projects, branches, tasks, context', (backend) => {
  const h = useHttp(backend);
  let T: HttpTenant;
  const send = (method: string, url: string, payload?: unknown, headers: Record<string, string> = {}) =>
    h.app.inject({ method: method as 'GET', url, headers: { ...bearer(T.key), ...headers }, ...(payload === undefined ? {} : { payload: payload as string }) });
  const ok = <B = Record<string, unknown>>(res: LightMyRequestResponse, status = 200): B => {
    expect(res.statusCode, res.body).toBe(status);
    return res.json<B>();
  };

  beforeAll(async () => {
    T = await createTenant(h.app, `tasks-http-${Date.now()}`);
  });

  it('creates a project, a branch and tasks; ETags, If-Match and idempotency keys', async () => {
    const created = await send('POST', '/v1/projects', { name: 'Apollo', metadata: { a: 1 } }, { 'idempotency-key': 'p-1' });
    const project = ok<{ id: string; version: number }>(created, 201);
    expect(created.headers.etag).toBe('"1"');
    expect(created.headers.location).toBe(`/v1/projects/${project.id}`);
    const replay = await send('POST', '/v1/projects', { name: 'Apollo', metadata: { a: 1 } }, { 'idempotency-key': 'p-1' });
    expect(ok(replay, 201)).toEqual(created.json());
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expectProblem(await send('PATCH', `/v1/projects/${project.id}`, { name: 'x' }, { 'if-match': '"2"' }), 412, { code: 'agentstore.precondition_failed' });
    const patched = await send('PATCH', `/v1/projects/${project.id}`, { name: 'Apollo 11' }, { 'if-match': '"1"' });
    expect(ok(patched).name).toBe('Apollo 11');
    expect(patched.headers.etag).toBe('"2"');
    const branch = ok<{ id: string }>(await send('POST', `/v1/projects/${project.id}/branches`, { name: 'main' }), 201);
    expectProblem(await send('POST', `/v1/projects/${project.id}/branches`, { name: 'main' }), 409, { field: '/name' });
    expect(ok<{ items: unknown[] }>(await send('GET', `/v1/projects/${project.id}/branches`)).items).toHaveLength(1);
    const task = ok<{ id: string; status: string }>(await send('POST', `/v1/branches/${branch.id}/tasks`, { title: 'one', labels: ['x'], assignee: 'user:u1' }), 201);
    expect(task.status).toBe('todo');
    const refused = expectProblem(await send('PATCH', `/v1/tasks/${task.id}`, { status: 'review' }), 409, { field: '/status' });
    expect(refused).toMatchObject({ from: 'todo', to: 'review' });
    expect(ok(await send('GET', `/v1/branches/${branch.id}/tasks?label=x&assignee=user:u1&status=todo`)).items).toHaveLength(1);
    expectProblem(await send('GET', `/v1/branches/${branch.id}/tasks?status=later`), 400, { field: 'status' });
    expectProblem(await send('DELETE', `/v1/projects/${project.id}`), 409, { code: 'agentstore.conflict' });
    expectProblem(await send('DELETE', `/v1/branches/${branch.id}`), 409);
    expect((await send('DELETE', `/v1/projects/${project.id}?cascade=true`)).statusCode).toBe(204);
    expectProblem(await send('GET', `/v1/tasks/${task.id}`), 404);
  });

  it('moves, subtasks and dependencies, with the ids of a refused move or cycle', async () => {
    const project = ok<{ id: string }>(await send('POST', '/v1/projects', { name: 'P' }), 201);
    const branch = ok<{ id: string }>(await send('POST', `/v1/projects/${project.id}/branches`, { name: 'main' }), 201);
    const make = async (title: string, parentId?: string) => ok<{ id: string }>(await send('POST', `/v1/branches/${branch.id}/tasks`, { title, ...(parentId ? { parentId } : {}) }), 201).id;
    const root = await make('root');
    const a = await make('a', root);
    const b = await make('b', root);
    const a1 = await make('a1', a);
    const moved = await send('POST', `/v1/tasks/${b}/move`, { before: a });
    expect(ok(moved).parentId).toBe(root);
    const sub = ok<{ items: { title: string }[]; truncated: boolean }>(await send('GET', `/v1/tasks/${root}/subtasks`));
    expect(sub.items.map((x) => x.title)).toEqual(['b', 'a', 'a1']);
    const loop = expectProblem(await send('POST', `/v1/tasks/${a}/move`, { parentId: a1 }), 409, { field: '/parentId' });
    expect(loop.path).toEqual([a, a1]);
    ok(await send('POST', `/v1/tasks/${a}/dependencies`, { taskId: b }));
    ok(await send('POST', `/v1/tasks/${b}/dependencies`, { taskId: a1 }));
    const cycle = expectProblem(await send('POST', `/v1/tasks/${a1}/dependencies`, { taskId: a }), 409, { field: '/taskId' });
    expect(cycle.cycle).toEqual([a1, a, b, a1]);
    expect(ok<{ dependsOn: string[] }>(await send('DELETE', `/v1/tasks/${a}/dependencies/${b}`)).dependsOn).toEqual([]);
    expectProblem(await send('DELETE', `/v1/tasks/${a}/dependencies/${b}`), 404);
    expectProblem(await send('DELETE', `/v1/tasks/${root}`), 409);
    expect((await send('DELETE', `/v1/tasks/${root}?cascade=true`)).statusCode).toBe(204);
  });

  it('context documents: PUT, merge patch, If-Match, and the resolved view of each level', async () => {
    const project = ok<{ id: string }>(await send('POST', '/v1/projects', { name: 'C' }), 201);
    const branch = ok<{ id: string }>(await send('POST', `/v1/projects/${project.id}/branches`, { name: 'main' }), 201);
    const task = ok<{ id: string }>(await send('POST', `/v1/branches/${branch.id}/tasks`, { title: 't' }), 201);
    expectProblem(await send('GET', '/v1/context/global'), 404);
    const put = await send('PUT', '/v1/context/global', { model: 'm', limits: { a: 1, b: 2 } });
    expect(ok(put, 201)).toMatchObject({ level: 'global', id: null, version: 1 });
    expect(put.headers.etag).toBe('"1"');
    ok(await send('PUT', `/v1/projects/${project.id}/context`, { repo: 'r' }), 201);
    ok(await send('PUT', `/v1/branches/${branch.id}/context`, { limits: { b: 3 } }), 201);
    const patch = await send('PATCH', `/v1/tasks/${task.id}/context`, JSON.stringify({ tools: ['x'] }), { 'content-type': 'application/merge-patch+json' });
    expect(ok(patch).version).toBe(1);
    const merged = await send('PATCH', `/v1/tasks/${task.id}/context`, { tools: null, note: 'n' }, { 'if-match': '"1"' });
    expect(ok(merged)).toMatchObject({ data: { note: 'n' }, version: 2 });
    expectProblem(await send('PUT', `/v1/tasks/${task.id}/context`, {}, { 'if-match': '"1"' }), 412);
    expectProblem(await send('PUT', `/v1/tasks/${task.id}/context`, {}, { 'if-none-match': '*' }), 412);
    expect(ok(await send('GET', `/v1/tasks/${task.id}/context/resolved`))).toEqual({
      context: { model: 'm', limits: { a: 1, b: 3 }, repo: 'r', note: 'n' },
      sources: { model: 'global', limits: 'branch', repo: 'project', note: 'task' },
    });
    expect(ok(await send('GET', `/v1/branches/${branch.id}/context/resolved`)).sources).toEqual({ model: 'global', limits: 'branch', repo: 'project' });
    expect(ok(await send('GET', `/v1/projects/${project.id}/context/resolved`)).context).toEqual({ model: 'm', limits: { a: 1, b: 2 }, repo: 'r' });
    const got = await send('GET', `/v1/tasks/${task.id}/context`);
    expect(got.headers.etag).toBe('"2"');
  });
});
