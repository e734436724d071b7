/**
 * DELETE /v1/end-users/{endUserId} over HTTP: admin only, the counts in the answer, the
 * records of collections that declare an endUserField gone, deletes in the change feed, one
 * audit entry; the id is free text (quotes, spaces, slashes escaped), refused only when too
 * long or not storable text.
 */
import { randomBytes } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { beforeAll, expect, it } from 'vitest';
import { forEachBackend } from '../helpers/index.js';
import { INJECTIONS, bearer, createKey, createTenant, expectProblem, useHttp, type HttpTenant } from './http-kit.js';

forEachBackend('http end users', (backend) => {
  const h = useHttp(backend, { store: { expirySweepIntervalMs: 0 } });
  let T: HttpTenant;
  beforeAll(async () => {
    T = await createTenant(h.app, `end-users-${randomBytes(4).toString('hex')}`, 'admin');
  });
  const req = (method: string, url: string, payload?: unknown, key = T.key) =>
    h.app.inject({ method: method as 'GET', url, headers: bearer(key), ...(payload === undefined ? {} : { payload: payload as string }) });
  const json = <X>(res: LightMyRequestResponse, status = 200): X => {
    expect(res.statusCode, res.body).toBe(status);
    return res.json<X>();
  };

  it("erases the end user's records and answers the counts; a member may not", async () => {
    const user = "o'brien / 42";
    const put = json<{ endUserField: string | null }>(await req('PUT', '/v1/collections/memories', { indexes: ['user'], endUserField: 'user' }));
    expect(put.endUserField).toBe('user');
    for (const [id, who] of [['m1', user], ['m2', user], ['m3', 'someone else']]) json(await req('POST', '/v1/collections/memories/records', { id, user: who }), 201);
    const member = await createKey(h.app, T, 'member');
    const url = `/v1/end-users/${encodeURIComponent(user)}`;
    expectProblem(await req('DELETE', url, undefined, member.key), 403, { code: 'agentstore.forbidden' });
    const head = json<{ lastSeq: number }>(await req('GET', '/v1/changes?types=record')).lastSeq;
    const erased = json<{ subject: string; counts: Record<string, number>; total: number }>(await req('DELETE', url));
    expect(erased).toMatchObject({ counts: { records: 2 }, total: 2 });
    expect(erased.subject).toMatch(/^[0-9a-f]{32}$/);
    expect(json<{ items: Array<{ id: string }> }>(await req('GET', '/v1/collections/memories/records')).items.map((r) => r.id)).toEqual(['m3']);
    const changes = json<{ items: Array<{ action: string; resourceId: string }> }>(await req('GET', `/v1/changes?after=${head}&types=record`)).items;
    expect(changes.map((c) => `${c.action}:${c.resourceId}`).sort()).toEqual(['delete:m1', 'delete:m2']);
    const audit = json<{ items: Array<{ resourceId: string; details: unknown }> }>(await req('GET', '/v1/audit?action=end_user.erase')).items;
    expect(audit).toEqual([expect.objectContaining({ resourceId: erased.subject, details: { counts: { records: 2, conversations: 0, memoryBlocks: 0 }, total: 2 } })]);
    expect(JSON.stringify(audit)).not.toContain('brien');
    // Again: nothing left.
    expect(json<{ total: number }>(await req('DELETE', url)).total).toBe(0);
  });

  it('an id too long or not storable is a 400 naming endUserId', async () => {
    for (const id of ['x'.repeat(257), 'a%00b']) expectProblem(await req('DELETE', `/v1/end-users/${id}`), 400, { field: /endUserId/ });
    // Not UTF-8 (an unpaired surrogate): the router refuses the URL before any field exists.
    expectProblem(await req('DELETE', '/v1/end-users/%ED%A0%80'), 400);
    // Quotes, spaces and SQL are an end user's id like any other: an erasure of nothing.
    for (const id of ["a'b", 'bad name', ...INJECTIONS]) expect(json<{ total: number }>(await req('DELETE', `/v1/end-users/${encodeURIComponent(id)}`)).total).toBe(0);
  });
});
