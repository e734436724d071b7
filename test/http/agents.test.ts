/**
 * The HTTP contract of agents: status codes, Location/ETag/If-Match, Idempotency-Key replays,
 * versions and rollback, secrets (201/200, names only, reveal to admins with no-store), and
 * the 503 naming AGENTSTORE_ENCRYPTION_KEY when none is configured.
 */
import { randomBytes } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { beforeAll, describe, expect, it } from 'vitest';
import { forEachBackend } from '../helpers/index.js';
import { TEST_ENCRYPTION_KEY } from '../helpers/fixtures.js';
import { bearer, createKey, createTenant, expectProblem, useHttp, type HttpTenant } from './http-kit.js';

interface AgentBody {
  id: string;
  version: number;
  name: string;
  status: string;
  tags: string[];
  config: Record<string, unknown>;
  [key: string]: unknown;
}

const json = <X>(res: LightMyRequestResponse, status = 200): X => {
  expect(res.statusCode, res.body).toBe(status);
  return res.json<X>();
};

forEachBackend('http agents', (backend) => {
  describe('with an encryption key', () => {
    const h = useHttp(backend, { store: { encryptionKey: TEST_ENCRYPTION_KEY } });
    let T: HttpTenant;
    beforeAll(async () => {
      T = await createTenant(h.app, `agents-${randomBytes(4).toString('hex')}`, 'owner');
    });
    const req = (method: string, url: string, payload?: unknown, headers: Record<string, string> = {}, token = T.key) =>
      h.app.inject({ method: method as 'GET', url, headers: { ...bearer(token), ...headers }, ...(payload === undefined ? {} : { payload: payload as string }) });

    it('POST is 201 with Location and ETag; GET at the Location gives the same agent; PATCH, rollback and DELETE honour If-Match', async () => {
      const res = await req('POST', '/v1/agents', { name: 'Concierge', model: 'gpt-4.1', config: { a: 1, b: { c: 2 } }, tags: ['travel'] });
      const created = json<AgentBody>(res, 201);
      expect(res.headers.etag).toBe('"1"');
      expect(res.headers.location).toBe(`/v1/agents/${created.id}`);
      const got = await req('GET', String(res.headers.location));
      expect(json<AgentBody>(got)).toEqual(created);
      expect(got.headers.etag).toBe('"1"');
      expect(String(got.headers['content-type'])).toMatch(/^application\/json/);

      const url = `/v1/agents/${created.id}`;
      const merge = await req('PATCH', url, JSON.stringify({ config: { b: { c: null, d: 3 } }, status: 'paused' }), { 'if-match': '"1"', 'content-type': 'application/merge-patch+json' });
      expect(json<AgentBody>(merge)).toMatchObject({ version: 2, status: 'paused', config: { a: 1, b: { d: 3 } } });
      expect(merge.headers.etag).toBe('"2"');
      const stale = await req('PATCH', url, { name: 'x' }, { 'if-match': '"1"' });
      expectProblem(stale, 412, { code: 'agentstore.precondition_failed' });
      expect(stale.headers.etag).toBe('"2"');

      const versions = json<{ items: { version: number; action: string; changed: string[] }[]; nextCursor: string | null }>(await req('GET', `${url}/versions`));
      expect(versions.items.map((v) => [v.version, v.action])).toEqual([
        [2, 'update'],
        [1, 'create'],
      ]);
      expect(versions.items[0]?.changed).toEqual(['config', 'status']);
      const v1 = json<{ agent: { config: unknown; status: string } }>(await req('GET', `${url}/versions/1`));
      expect(v1.agent).toMatchObject({ config: { a: 1, b: { c: 2 } }, status: 'active' });
      expectProblem(await req('GET', `${url}/versions/7`), 404, { code: 'agentstore.not_found' });

      expectProblem(await req('POST', `${url}/rollback`, { version: 1 }, { 'if-match': '"1"' }), 412);
      const rolled = await req('POST', `${url}/rollback`, { version: 1 }, { 'if-match': '"2"' });
      expect(json<AgentBody>(rolled)).toMatchObject({ version: 3, status: 'active', config: { a: 1, b: { c: 2 } } });
      expect(rolled.headers.etag).toBe('"3"');

      expectProblem(await req('DELETE', url, undefined, { 'if-match': '"2"' }), 412);
      expect((await req('DELETE', url, undefined, { 'if-match': '"3"' })).statusCode).toBe(204);
      expectProblem(await req('GET', url), 404, { code: 'agentstore.not_found' });
      expectProblem(await req('GET', `${url}/versions`), 404, { code: 'agentstore.not_found' });
    });

    it('Idempotency-Key: a retried POST replays the first agent', async () => {
      const key = `idem-${randomBytes(4).toString('hex')}`;
      const first = json<AgentBody>(await req('POST', '/v1/agents', { name: 'once' }, { 'idempotency-key': key }), 201);
      const again = await req('POST', '/v1/agents', { name: 'once' }, { 'idempotency-key': key });
      expect(json<AgentBody>(again, 201)).toEqual(first);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expectProblem(await req('POST', '/v1/agents', { name: 'other' }, { 'idempotency-key': key }), 409, { field: 'idempotency-key' });
    });

    it('lists with filters and cursors', async () => {
      const tag = `t-${randomBytes(3).toString('hex')}`;
      for (const name of ['Zeta one', 'zeta two', 'Zeta three']) json(await req('POST', '/v1/agents', { name, tags: [tag] }), 201);
      const page = json<{ items: AgentBody[]; nextCursor: string }>(await req('GET', `/v1/agents?tag=${tag}&limit=2`));
      expect(page.items.map((a) => a.name)).toEqual(['Zeta one', 'zeta two']);
      const next = json<{ items: AgentBody[]; nextCursor: string | null }>(await req('GET', `/v1/agents?tag=${tag}&limit=2&cursor=${page.nextCursor}`));
      expect(next.items.map((a) => a.name)).toEqual(['Zeta three']);
      expect(next.nextCursor).toBeNull();
      const byName = json<{ items: AgentBody[] }>(await req('GET', '/v1/agents?q=zeta%20t'));
      expect(byName.items.map((a) => a.name)).toEqual(['Zeta three', 'zeta two']);
      const inside = json<{ items: AgentBody[] }>(await req('GET', '/v1/agents?q=TA%20O&match=substring'));
      expect(inside.items.map((a) => a.name)).toEqual(['Zeta one']);
    });

    it('secrets: PUT 201 then 200, names only in the list, reveal to admins with no-store, DELETE 204', async () => {
      const agent = json<AgentBody>(await req('POST', '/v1/agents', { name: 'with secrets' }), 201);
      const url = `/v1/agents/${agent.id}/secrets/OPENAI_API_KEY`;
      const value = `sk-${randomBytes(8).toString('hex')}`;
      const put = await req('PUT', url, { value });
      expect(json<{ name: string; keyId: string }>(put, 201)).toMatchObject({ name: 'OPENAI_API_KEY', keyId: 'test-1' });
      expect(put.body).not.toContain(value);
      expect((await req('PUT', url, { value: `${value}-2` })).statusCode).toBe(200);
      const list = await req('GET', `/v1/agents/${agent.id}/secrets`);
      expect(json<{ items: { name: string }[] }>(list).items.map((s) => s.name)).toEqual(['OPENAI_API_KEY']);
      expect(list.body).not.toContain(value);
      const revealed = await req('POST', `${url}/reveal`);
      expect(json<{ value: string }>(revealed).value).toBe(`${value}-2`);
      expect(revealed.headers['cache-control']).toBe('no-store');
      const member = await createKey(h.app, T, 'member');
      expectProblem(await req('POST', `${url}/reveal`, undefined, {}, member.key), 403, { code: 'agentstore.forbidden' });
      expectProblem(await req('PUT', url, { value: 'x' }, {}, member.key), 403);
      for (const path of ['/v1/audit?limit=500', '/v1/changes?limit=1000', `/v1/agents/${agent.id}`, `/v1/agents/${agent.id}/versions`]) {
        const res = await req('GET', path);
        expect(res.statusCode, res.body).toBe(200);
        expect(res.body, path).not.toContain(value);
      }
      expect((await req('DELETE', url)).statusCode).toBe(204);
      expectProblem(await req('POST', `${url}/reveal`), 404);
    });

    it('the OpenAPI document lists the agent routes with their schemas', async () => {
      const doc = (await h.app.inject({ method: 'GET', url: '/openapi.json' })).json<{ paths: Record<string, Record<string, unknown>> }>();
      for (const path of ['/v1/agents', '/v1/agents/{id}', '/v1/agents/{id}/versions', '/v1/agents/{id}/versions/{n}', '/v1/agents/{id}/rollback', '/v1/agents/{id}/secrets', '/v1/agents/{id}/secrets/{name}', '/v1/agents/{id}/secrets/{name}/reveal']) {
        expect(doc.paths[path], path).toBeDefined();
      }
    });
  });

  describe('without an encryption key', () => {
    const h = useHttp(backend);
    it('secret writes and reveals are 503 naming AGENTSTORE_ENCRYPTION_KEY, without Retry-After; other agent routes work', async () => {
      const T = await createTenant(h.app, `no-key-${randomBytes(4).toString('hex')}`, 'owner');
      const req = (method: string, url: string, payload?: unknown) =>
        h.app.inject({ method: method as 'GET', url, headers: bearer(T.key), ...(payload === undefined ? {} : { payload: payload as string }) });
      const agent = json<AgentBody>(await req('POST', '/v1/agents', { name: 'keyless' }), 201);
      for (const [method, path, body] of [['PUT', '/secrets/K', { value: 'v' }], ['POST', '/secrets/K/reveal', undefined]] as const) {
        const res = await req(method, `/v1/agents/${agent.id}${path}`, body);
        const problem = expectProblem(res, 503, { code: 'agentstore.not_configured' });
        expect(problem.detail).toMatch(/AGENTSTORE_ENCRYPTION_KEY/);
        expect(res.headers['retry-after']).toBeUndefined();
      }
      expect(json<{ items: unknown[] }>(await req('GET', `/v1/agents/${agent.id}/secrets`)).items).toEqual([]);
      expect(json<AgentBody>(await req('PATCH', `/v1/agents/${agent.id}`, { model: 'm' })).version).toBe(2);
    });
  });
});
