/**
 * Hostile and malformed input on every route that takes input: each answer is a 4xx
 * application/problem+json with status, code and detail (and the wrong field named where
 * there is one), never a 500, and every table's row count is the same afterwards
 * (checked after each test).
 */
import { randomBytes } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { forEachBackend } from '../helpers/index.js';
import { TEST_ENCRYPTION_KEY } from '../helpers/fixtures.js';
import { MAX_TTL_SECONDS } from '../../src/modules/collections/expiry.js';
import { INJECTIONS, SERVICE_KEY, bearer, countEverything, createKey, createTenant, expectProblem, useHttp, type HttpTenant } from './http-kit.js';

const BODY_LIMIT = 4096;


type Auth = 'service' | 'tenant' | 'none';

interface BodyRoute {
  readonly method: 'POST' | 'PUT' | 'PATCH';
  readonly url: (w: World) => string;
  readonly auth: Auth;
  /** Unknown fields are refused (records are free-form JSON objects, so they are not). */
  readonly strict: boolean;
  /** Per field: values of a wrong type (none may be coerced into a valid one). */
  readonly wrongTypes: Record<string, readonly unknown[]>;
  /** A body that is valid except for the field being replaced. */
  readonly base: (w: World) => Record<string, unknown>;
  /** Fields whose format is constrained, so an injection string is refused. */
  readonly constrained: readonly string[];
}

interface World {
  T: HttpTenant;
  conv: string;
  coll: string;
  rec: string;
  userId: string;
  keyId: string;
  agent: string;
  project: string;
  branch: string;
  task: string;
}

// Values no validator may coerce into a valid one: JSON bodies are typed already.
const notString = [5, true, ['x'], { x: 1 }, null];
const notInteger = ['5', 'five', true, 1.5, [3], { n: 1 }, null];
const notRole = ['superuser', 5, ['admin'], null, 'ADMIN'];
const notObject = ['s', 5, true, [1]];
const notId = ['nope', 5, true, ['x'], { id: 1 }];
const absentTask = '0190a0a0-0000-7000-8000-00000000000f';
const projectFields = { name: [...notString, ''], description: [5, true, ['x'], { x: 1 }], metadata: notObject };
const taskFields = {
  title: [...notString, ''],
  description: [5, true, ['x'], { x: 1 }],
  status: [...notString, 'later', 'DONE'],
  priority: [...notInteger, -1, 101],
  assignee: [5, true, ['agent:a'], 'bob', 'agent:', 'robot:x'],
  labels: ['a', [5], ['a,b'], [''], { a: 1 }],
  dueAt: [5, true, 'tomorrow', '2026-02-30T00:00:00Z'],
  metadata: notObject,
};
const contextBody = (url: (w: World) => string, method: 'PUT' | 'PATCH'): BodyRoute => ({ method, url, auth: 'tenant', strict: false, wrongTypes: {}, base: () => ({}), constrained: [] });

const contentWrong = [5, true, null, { x: 1 }, [5], ['x']];

const BODY_ROUTES: Record<string, BodyRoute> = {
  'POST /v1/conversations': {
    method: 'POST',
    url: () => '/v1/conversations',
    auth: 'tenant',
    strict: true,
    wrongTypes: { agentId: [5, true, ['x'], { x: 1 }, ''], endUserId: [5, true, ['x'], ''], title: [5, true, ['x'], { x: 1 }], status: ['open', 5, true, null], metadata: notObject },
    base: () => ({}),
    constrained: ['status'],
  },
  'PATCH /v1/conversations/:id': {
    method: 'PATCH',
    url: (w) => `/v1/conversations/${w.conv}`,
    auth: 'tenant',
    strict: true,
    wrongTypes: { title: [5, true, ['x']], status: ['open', 5, null], metadata: notObject, agentId: [5, ''] },
    base: () => ({}),
    constrained: ['status'],
  },
  // The base is a valid message: each test replaces one field with a wrong value, so nothing is written.
  'POST /v1/conversations/:id/messages': {
    method: 'POST',
    url: (w) => `/v1/conversations/${w.conv}/messages`,
    auth: 'tenant',
    strict: true,
    wrongTypes: { role: ['robot', 5, null, ['user']], content: contentWrong, clientId: [5, '', true], model: [5, true], usage: notObject, metadata: notObject, messages: ['x', 5, [], [5]] },
    base: () => ({ role: 'user', content: 'hi' }),
    constrained: ['role', 'clientId'],
  },
  'PATCH /v1/conversations/:id/messages/:seq': {
    method: 'PATCH',
    url: (w) => `/v1/conversations/${w.conv}/messages/1`,
    auth: 'tenant',
    strict: true,
    wrongTypes: { content: contentWrong.filter((v) => v !== null), model: [5, true, ['x']], usage: ['s', 5, [1]], metadata: ['s', 5, [1]] },
    base: () => ({}),
    constrained: [],
  },
  // atSeq past the conversation's last seq: refused at the check, nothing written.
  'POST /v1/conversations/:id/fork': {
    method: 'POST',
    url: (w) => `/v1/conversations/${w.conv}/fork`,
    auth: 'tenant',
    strict: true,
    wrongTypes: { atSeq: [...notInteger, 0, -1], title: [5, true], metadata: notObject },
    base: () => ({ atSeq: 99 }),
    constrained: [],
  },
  'PUT /v1/memory-blocks/:label': {
    method: 'PUT',
    url: () => '/v1/memory-blocks/persona',
    auth: 'tenant',
    strict: true,
    wrongTypes: { value: notString, limit: [...notInteger, 0, 100_001], description: [5, true, ['x']] },
    base: () => ({ value: 'x' }),
    constrained: [],
  },
  'POST /v1/tenants': { method: 'POST', url: () => '/v1/tenants', auth: 'service', strict: true, wrongTypes: { name: [...notString, ''] }, base: () => ({ name: 'n' }), constrained: [] },
  'POST /v1/tenants/:tenantId/api-keys': {
    method: 'POST',
    url: (w) => `/v1/tenants/${w.T.id}/api-keys`,
    auth: 'service',
    strict: true,
    wrongTypes: { name: [...notString, ''], role: notRole },
    base: () => ({ name: 'k', role: 'viewer' }),
    constrained: ['role'],
  },
  'POST /v1/tenants/:tenantId/users': {
    method: 'POST',
    url: (w) => `/v1/tenants/${w.T.id}/users`,
    auth: 'service',
    strict: true,
    wrongTypes: { email: notString, password: [...notString, 'short'], role: notRole },
    base: () => ({ email: 'svc@example.com', password: 'long enough password', role: 'viewer' }),
    constrained: ['email', 'role'],
  },
  'POST /v1/auth/login': {
    method: 'POST',
    url: () => '/v1/auth/login',
    auth: 'none',
    strict: true,
    wrongTypes: { tenantId: notString, email: notString, password: notString },
    base: (w) => ({ tenantId: w.T.id, email: 'nobody@example.com', password: 'long enough password' }),
    constrained: ['tenantId'],
  },
  'POST /v1/users': {
    method: 'POST',
    url: () => '/v1/users',
    auth: 'tenant',
    strict: true,
    wrongTypes: { email: notString, password: [...notString, 'short'], role: notRole },
    base: () => ({ email: 'new@example.com', password: 'long enough password', role: 'viewer' }),
    constrained: ['email', 'role'],
  },
  'PATCH /v1/users/:id': {
    method: 'PATCH',
    url: (w) => `/v1/users/${w.userId}`,
    auth: 'tenant',
    strict: true,
    wrongTypes: { role: notRole, password: [...notString, 'short'] },
    base: () => ({}),
    constrained: ['role'],
  },
  'POST /v1/api-keys': {
    method: 'POST',
    url: () => '/v1/api-keys',
    auth: 'tenant',
    strict: true,
    wrongTypes: { name: [...notString, ''], role: notRole },
    base: () => ({ name: 'k', role: 'viewer' }),
    constrained: ['role'],
  },
  'PUT /v1/collections/:collection': {
    method: 'PUT',
    url: (w) => `/v1/collections/${w.coll}`,
    auth: 'tenant',
    strict: true,
    wrongTypes: { schema: ['s', 5, true, [1]], indexes: ['status', 5, [5], [['a']], { a: 1 }], ttlSeconds: ['60', 0, -1, 1.5, true, [60], { s: 1 }, MAX_TTL_SECONDS + 1], endUserField: [5, true, ['status'], { a: 1 }, 'not-indexed', 'createdAt'] },
    base: () => ({}),
    constrained: [],
  },
  // A top-level "id" is the record's id only when it is a string; otherwise it is data.
  'POST /v1/collections/:collection/records': { method: 'POST', url: (w) => `/v1/collections/${w.coll}/records`, auth: 'tenant', strict: false, wrongTypes: {}, base: () => ({}), constrained: ['id'] },
  'PUT /v1/collections/:collection/records/:id': { method: 'PUT', url: (w) => `/v1/collections/${w.coll}/records/${w.rec}`, auth: 'tenant', strict: false, wrongTypes: {}, base: () => ({}), constrained: [] },
  'PATCH /v1/collections/:collection/records/:id': { method: 'PATCH', url: (w) => `/v1/collections/${w.coll}/records/${w.rec}`, auth: 'tenant', strict: false, wrongTypes: {}, base: () => ({}), constrained: [] },
  'POST /v1/counters/:name/increment': { method: 'POST', url: () => '/v1/counters/hits/increment', auth: 'tenant', strict: true, wrongTypes: { by: notInteger }, base: () => ({}), constrained: [] },
  'POST /v1/counters/:name/reset': { method: 'POST', url: () => '/v1/counters/hits/reset', auth: 'tenant', strict: true, wrongTypes: { value: notInteger }, base: () => ({}), constrained: [] },
  'POST /v1/agents': {
    method: 'POST',
    url: () => '/v1/agents',
    auth: 'tenant',
    strict: true,
    wrongTypes: {
      name: [...notString, ''],
      status: ['deleted', 5, null, ['active']],
      tags: ['x', 5, [5], [''], { a: 1 }, Array.from({ length: 33 }, (_, i) => `t${i}`)],
      tools: ['x', 5, { a: 1 }, null],
      config: ['x', 5, [1], true, null],
      systemPrompt: [5, true, [], {}],
    },
    base: () => ({ name: 'a' }),
    constrained: ['status'],
  },
  'PATCH /v1/agents/:id': {
    method: 'PATCH',
    url: (w) => `/v1/agents/${w.agent}`,
    auth: 'tenant',
    strict: true,
    wrongTypes: { name: [...notString, ''], status: ['deleted', 5, null], tags: ['x', [5]], metadata: ['x', 5, [1]] },
    base: () => ({}),
    constrained: ['status'],
  },
  'POST /v1/agents/:id/rollback': {
    method: 'POST',
    url: (w) => `/v1/agents/${w.agent}/rollback`,
    auth: 'tenant',
    strict: true,
    wrongTypes: { version: [...notInteger, 0, -1] },
    base: () => ({ version: 1 }),
    constrained: [],
  },
  'PUT /v1/agents/:id/secrets/:name': {
    method: 'PUT',
    url: (w) => `/v1/agents/${w.agent}/secrets/API_KEY`,
    auth: 'tenant',
    strict: true,
    wrongTypes: { value: [...notString, ''] },
    base: () => ({ value: 'v' }),
    constrained: [],
  },
  'POST /v1/agents/:id/secrets/:name/reveal': { method: 'POST', url: (w) => `/v1/agents/${w.agent}/secrets/API_KEY/reveal`, auth: 'tenant', strict: true, wrongTypes: {}, base: () => ({}), constrained: [] },
  // Project, branch and task bodies are only ever sent refused: each test changes a field of the base.
  'POST /v1/projects': { method: 'POST', url: () => '/v1/projects', auth: 'tenant', strict: true, wrongTypes: projectFields, base: () => ({ name: 'n' }), constrained: [] },
  'PATCH /v1/projects/:id': { method: 'PATCH', url: (w) => `/v1/projects/${w.project}`, auth: 'tenant', strict: true, wrongTypes: projectFields, base: () => ({}), constrained: [] },
  'POST /v1/projects/:id/branches': { method: 'POST', url: (w) => `/v1/projects/${w.project}/branches`, auth: 'tenant', strict: true, wrongTypes: projectFields, base: () => ({ name: 'n' }), constrained: [] },
  'PATCH /v1/branches/:id': { method: 'PATCH', url: (w) => `/v1/branches/${w.branch}`, auth: 'tenant', strict: true, wrongTypes: projectFields, base: () => ({}), constrained: [] },
  'POST /v1/branches/:id/tasks': {
    method: 'POST',
    url: (w) => `/v1/branches/${w.branch}/tasks`,
    auth: 'tenant',
    strict: true,
    wrongTypes: { ...taskFields, parentId: notId, dependsOn: ['x', [5], ['nope'], { a: 1 }] },
    base: () => ({ title: 't' }),
    constrained: ['status', 'assignee', 'dueAt', 'parentId'],
  },
  'PATCH /v1/tasks/:id': { method: 'PATCH', url: (w) => `/v1/tasks/${w.task}`, auth: 'tenant', strict: true, wrongTypes: taskFields, base: () => ({}), constrained: ['status', 'assignee', 'dueAt'] },
  'POST /v1/tasks/:id/move': {
    method: 'POST',
    url: (w) => `/v1/tasks/${w.task}/move`,
    auth: 'tenant',
    strict: true,
    wrongTypes: { parentId: notId, branchId: [...notId, null], before: [...notId, null], after: [...notId, null] },
    base: () => ({}),
    constrained: ['parentId', 'branchId', 'before', 'after'],
  },
  'POST /v1/tasks/:id/dependencies': { method: 'POST', url: (w) => `/v1/tasks/${w.task}/dependencies`, auth: 'tenant', strict: true, wrongTypes: { taskId: [...notId, null] }, base: () => ({ taskId: absentTask }), constrained: ['taskId'] },
  'PUT /v1/context/global': contextBody(() => '/v1/context/global', 'PUT'),
  'PATCH /v1/context/global': contextBody(() => '/v1/context/global', 'PATCH'),
  'PUT /v1/projects/:id/context': contextBody((w) => `/v1/projects/${w.project}/context`, 'PUT'),
  'PATCH /v1/projects/:id/context': contextBody((w) => `/v1/projects/${w.project}/context`, 'PATCH'),
  'PUT /v1/branches/:id/context': contextBody((w) => `/v1/branches/${w.branch}/context`, 'PUT'),
  'PATCH /v1/branches/:id/context': contextBody((w) => `/v1/branches/${w.branch}/context`, 'PATCH'),
  'PUT /v1/tasks/:id/context': contextBody((w) => `/v1/tasks/${w.task}/context`, 'PUT'),
  'PATCH /v1/tasks/:id/context': contextBody((w) => `/v1/tasks/${w.task}/context`, 'PATCH'),
  // The base is valid but fails at its write (a record that does not exist), so it writes nothing.
  'POST /v1/batch': {
    method: 'POST',
    url: () => '/v1/batch',
    auth: 'tenant',
    strict: true,
    wrongTypes: { operations: [...notString, 'x', [], [5], ['create'], [null]] },
    base: () => ({ operations: [{ op: 'patch', collection: 'things', id: 'absent', data: { a: 1 } }] }),
    constrained: [],
  },
};

/** Path parameters: for each route, values of the parameter that must be refused. */
const malformedEscapes = ['%E0%A4%A', '%zz'];
const badSegments = [...malformedEscapes, 'bad name', "a'b", 'a"b', '..', '.hidden', '-dash', 'a%00b', 'a%2Fb', '%F0%9F%92%A9', ...INJECTIONS.map(encodeURIComponent)];
const tooLong = (n: number) => 'a'.repeat(n);

forEachBackend('http bad input', (backend) => {
  const h = useHttp(backend, { app: { server: { bodyLimitBytes: BODY_LIMIT } }, store: { encryptionKey: TEST_ENCRYPTION_KEY } });
  let w: World;
  let before: Record<string, number>;

  beforeAll(async () => {
    const T = await createTenant(h.app, `bad-input-${randomBytes(4).toString('hex')}`, 'owner');
    const coll = 'things';
    const put = await h.app.inject({ method: 'PUT', url: `/v1/collections/${coll}`, headers: bearer(T.key), payload: { indexes: ['status'] } });
    expect(put.statusCode, put.body).toBe(200);
    const rec = await h.app.inject({ method: 'POST', url: `/v1/collections/${coll}/records`, headers: bearer(T.key), payload: { id: 'r1', status: 'open', n: 1 } });
    expect(rec.statusCode, rec.body).toBe(201);
    // A collection with a JSON Schema, and a record that satisfies it.
    const typedSchema = { type: 'object', required: ['status'], properties: { status: { enum: ['open', 'closed'] }, n: { type: 'integer' } } };
    const typed = await h.app.inject({ method: 'PUT', url: '/v1/collections/typed', headers: bearer(T.key), payload: { schema: typedSchema } });
    expect(typed.statusCode, typed.body).toBe(200);
    const typedRec = await h.app.inject({ method: 'POST', url: '/v1/collections/typed/records', headers: bearer(T.key), payload: { id: 't1', status: 'open', n: 1 } });
    expect(typedRec.statusCode, typedRec.body).toBe(201);
    await h.app.inject({ method: 'POST', url: '/v1/counters/hits/increment', headers: bearer(T.key) });
    const user = await h.app.inject({ method: 'POST', url: '/v1/users', headers: bearer(T.key), payload: { email: 'u@example.com', password: 'long enough password', role: 'member' } });
    expect(user.statusCode, user.body).toBe(201);
    const key = await createKey(h.app, T, 'viewer');
    const conv = await h.app.inject({ method: 'POST', url: '/v1/conversations', headers: bearer(T.key), payload: { title: 't' } });
    expect(conv.statusCode, conv.body).toBe(201);
    const convId = conv.json<{ id: string }>().id;
    const msg = await h.app.inject({ method: 'POST', url: `/v1/conversations/${convId}/messages`, headers: bearer(T.key), payload: { role: 'user', content: 'hello' } });
    expect(msg.statusCode, msg.body).toBe(201);
    const block = await h.app.inject({ method: 'PUT', url: '/v1/memory-blocks/persona', headers: bearer(T.key), payload: { value: 'v', limit: 10 } });
    expect(block.statusCode, block.body).toBe(201);
    const agent = await h.app.inject({ method: 'POST', url: '/v1/agents', headers: bearer(T.key), payload: { name: 'bad-input agent' } });
    expect(agent.statusCode, agent.body).toBe(201);
    const agentId = agent.json<{ id: string }>().id;
    const secret = await h.app.inject({ method: 'PUT', url: `/v1/agents/${agentId}/secrets/API_KEY`, headers: bearer(T.key), payload: { value: 'v0' } });
    expect(secret.statusCode, secret.body).toBe(201);
    const project = await h.app.inject({ method: 'POST', url: '/v1/projects', headers: bearer(T.key), payload: { name: 'p' } });
    expect(project.statusCode, project.body).toBe(201);
    const branch = await h.app.inject({ method: 'POST', url: `/v1/projects/${project.json<{ id: string }>().id}/branches`, headers: bearer(T.key), payload: { name: 'main' } });
    expect(branch.statusCode, branch.body).toBe(201);
    const task = await h.app.inject({ method: 'POST', url: `/v1/branches/${branch.json<{ id: string }>().id}/tasks`, headers: bearer(T.key), payload: { title: 't' } });
    expect(task.statusCode, task.body).toBe(201);
    w = { T, conv: convId, agent: agentId, coll, rec: 'r1', userId: user.json<{ id: string }>().id, keyId: key.id, project: project.json<{ id: string }>().id, branch: branch.json<{ id: string }>().id, task: task.json<{ id: string }>().id };
  });

  beforeEach(async () => {
    before = await countEverything(h.store, [w.T.id]);
  });
  afterEach(async () => {
    expect(await countEverything(h.store, [w.T.id]), 'row counts changed').toEqual(before);
  });

  const headersFor = (auth: Auth): Record<string, string> => (auth === 'service' ? bearer(SERVICE_KEY) : auth === 'tenant' ? bearer(w.T.key) : {});
  const send = (method: string, url: string, auth: Auth, payload?: string, contentType = 'application/json', extra: Record<string, string> = {}) =>
    h.app.inject({
      method: method as 'GET',
      url,
      headers: { ...headersFor(auth), ...(payload === undefined ? {} : { 'content-type': contentType }), ...extra },
      ...(payload === undefined ? {} : { payload }),
    });
  const bad = (res: LightMyRequestResponse, field?: string | RegExp, status: number | readonly number[] = 400) =>
    expectProblem(res, status, field === undefined ? {} : { field });

  describe('bodies', () => {
    for (const [name, route] of Object.entries(BODY_ROUTES)) {
      it(`${name}: malformed JSON, non-object JSON, empty body`, async () => {
        for (const text of ['{"a":', '{a:1}', "{'a':1}", '{"a":1}}', '\u0000', 'nul', '{"a":1,}']) {
          bad(await send(route.method, route.url(w), route.auth, text), undefined, 400);
        }
        for (const text of ['[1,2]', '"text"', '42', 'true', '[]']) {
          bad(await send(route.method, route.url(w), route.auth, text), undefined, 400);
        }
      });

      if (route.strict) {
        it(`${name}: an unknown field is named in errors[].field`, async () => {
          const res = await send(route.method, route.url(w), route.auth, JSON.stringify({ ...route.base(w), zzUnknown: 1 }));
          const body = bad(res, '/zzUnknown');
          expect(body.code).toBe('agentstore.validation');
        });
      }

      for (const [field, values] of Object.entries(route.wrongTypes)) {
        it(`${name}: wrong types of "${field}" are refused, never coerced`, async () => {
          for (const value of values) {
            const res = await send(route.method, route.url(w), route.auth, JSON.stringify({ ...route.base(w), [field]: value }));
            bad(res, new RegExp(`(^|/)${field}(/\\d+)?$`));
          }
        });
      }

      it(`${name}: a body over the limit is 413`, async () => {
        const big = JSON.stringify({ ...route.base(w), pad: 'x'.repeat(BODY_LIMIT) });
        const res = await send(route.method, route.url(w), route.auth, big);
        expect(bad(res, undefined, 413).code).toBe('agentstore.payload_too_large');
      });

      it(`${name}: an unsupported content type is 415`, async () => {
        for (const type of ['application/xml', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'image/png']) {
          const res = await send(route.method, route.url(w), route.auth, JSON.stringify(route.base(w)), type);
          expect(bad(res, undefined, 415).code).toBe('agentstore.validation');
        }
        // The app removes Fastify's text/plain parser: only JSON bodies are accepted.
        bad(await send(route.method, route.url(w), route.auth, JSON.stringify(route.base(w)), 'text/plain'), undefined, 415);
      });

      if (route.constrained.length > 0) {
        it(`${name}: SQL-injection strings in constrained fields are refused`, async () => {
          for (const field of route.constrained) {
            for (const value of INJECTIONS) {
              const res = await send(route.method, route.url(w), route.auth, JSON.stringify({ ...route.base(w), [field]: value }));
              // login answers an unknown tenant like a wrong password, so as not to reveal tenants.
              expectProblem(res, name === 'POST /v1/auth/login' ? [400, 401] : [400]);
            }
          }
        });
      }
    }

    it('PATCH takes application/merge-patch+json, and refuses malformed or non-object merge patches', async () => {
      const url = `/v1/collections/${w.coll}/records/${w.rec}`;
      for (const text of ['{"a":', '[1]', '"x"', '12']) bad(await send('PATCH', url, 'tenant', text, 'application/merge-patch+json'), undefined, 400);
      // A valid merge patch against a record that does not exist: 404, nothing created.
      const missing = await send('PATCH', `/v1/collections/${w.coll}/records/nope`, 'tenant', '{"status":"x"}', 'application/merge-patch+json');
      expectProblem(missing, 404, { code: 'agentstore.not_found' });
      const oversize = await send('PATCH', url, 'tenant', JSON.stringify({ pad: 'x'.repeat(BODY_LIMIT) }), 'application/merge-patch+json');
      bad(oversize, undefined, 413);
    });

    it('records: data that cannot be stored (bad id, deep nesting, NUL key) is refused', async () => {
      const url = `/v1/collections/${w.coll}/records`;
      let deep: unknown = 1;
      for (let i = 0; i < 120; i++) deep = { d: deep };
      for (const body of [{ id: '' }, { id: tooLong(129) }, { id: 'a b' }, { id: "x'); DROP TABLE records;--" }, deep, { 'a\u0000b': 1 }, { s: '\ud800' }]) {
        const text = JSON.stringify(body);
        if (text.length > BODY_LIMIT) continue;
        bad(await send('POST', url, 'tenant', text));
      }
      // A record id that is taken: 409, not a raw unique violation.
      expectProblem(await send('POST', url, 'tenant', JSON.stringify({ id: w.rec })), 409, { code: 'agentstore.conflict' });
    });

    it("records that break their collection's JSON Schema are refused on create, replace and patch, naming the field", async () => {
      for (const data of [{ status: 'maybe' }, { status: 'open', n: 'one' }, { n: 1 }]) {
        const field = 'status' in data && data.status === 'open' ? '/data/n' : /\/data/;
        bad(await send('POST', '/v1/collections/typed/records', 'tenant', JSON.stringify(data)), field);
        bad(await send('PUT', '/v1/collections/typed/records/t1', 'tenant', JSON.stringify(data)), field);
      }
      bad(await send('PATCH', '/v1/collections/typed/records/t1', 'tenant', JSON.stringify({ status: 'maybe' })), '/data/status');
      bad(await send('PATCH', '/v1/collections/typed/records/t1', 'tenant', JSON.stringify({ status: null })), /\/data/);
      const after = await send('GET', '/v1/collections/typed/records/t1', 'tenant');
      expect(after.json<{ version: number; data: unknown }>()).toMatchObject({ version: 1, data: { status: 'open', n: 1 } });
    });

    it('collections: an invalid JSON Schema and invalid index paths are refused with the field named', async () => {
      const url = `/v1/collections/${w.coll}`;
      bad(await send('PUT', url, 'tenant', JSON.stringify({ schema: { type: 'no-such-type' } })), '/schema');
      bad(await send('PUT', url, 'tenant', JSON.stringify({ schema: { $ref: 'http://example.com/s.json' } })), '/schema');
      for (const index of [...INJECTIONS, 'a..b', '', 'id', tooLong(600)]) {
        bad(await send('PUT', url, 'tenant', JSON.stringify({ indexes: [index] })), /^\/indexes\/0$/);
      }
      bad(await send('PUT', url, 'tenant', JSON.stringify({ indexes: Array.from({ length: 17 }, (_, i) => `f${i}`) })), /indexes/);
    });

    it('users: PATCH with neither role nor password names the body', async () => {
      bad(await send('PATCH', `/v1/users/${w.userId}`, 'tenant', '{}'), 'body');
    });

    it('records:bulk: hostile lines fail one by one with a problem, write nothing, and never 500', async () => {
      const url = `/v1/collections/${w.coll}/records:bulk`;
      let deep: unknown = 1;
      for (let i = 0; i < 120; i++) deep = { d: deep };
      const lines = [
        '{"data":',
        '[1]',
        'null',
        '"text"',
        '',
        JSON.stringify({ data: deep }),
        JSON.stringify({ data: { 'a\u0000b': 1 } }),
        JSON.stringify({ data: { s: '\ud800' } }),
        JSON.stringify({ data: { n: 1 }, mode: 'replace' }),
        JSON.stringify({ data: { n: 1 }, __proto__x: 1 }),
        '{"data":{"n":1},"__proto__":{"polluted":true}}',
        JSON.stringify({ id: w.rec, data: { status: 'other' } }),
        JSON.stringify({ data: { pad: 'x'.repeat(BODY_LIMIT) } }),
        '{"data":{"n":1e400}}',
        ...INJECTIONS.map((id) => JSON.stringify({ id, data: {} })),
        ...INJECTIONS.map((id) => JSON.stringify({ data: { id } })),
      ];
      const body = `${lines.join('\n')}\n`;
      const res = await h.app.inject({ method: 'POST', url, headers: { ...headersFor('tenant'), 'content-type': 'application/x-ndjson' }, payload: body });
      expect(res.statusCode, res.body).toBe(200);
      const results = res.body.trim().split('\n').map((l) => JSON.parse(l) as { line?: number; status?: string; error?: { status: number; code: string }; summary?: { failed: number } });
      expect(results.at(-1)?.summary?.failed).toBe(lines.length);
      for (const r of results.slice(0, -1)) {
        expect(r.status, JSON.stringify(r)).toBe('failed');
        expect([400, 409, 413], JSON.stringify(r)).toContain(r.error?.status);
        expect(r.error?.code).toMatch(/^agentstore\./);
      }
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      for (const type of ['application/json', 'text/plain', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded']) {
        bad(await send('POST', url, 'tenant', body, type), undefined, 415);
      }
    });
  });

  describe('path parameters', () => {
    const routes: { route: string; method: string; url: (v: string) => string; field: RegExp; auth: Auth; payload?: string; contentType?: string; notFoundOk?: boolean }[] = [
      { route: 'GET /v1/collections/:collection', method: 'GET', url: (v) => `/v1/collections/${v}`, field: /collection/, auth: 'tenant' },
      { route: 'PUT /v1/collections/:collection', method: 'PUT', url: (v) => `/v1/collections/${v}`, field: /collection/, auth: 'tenant', payload: '{}' },
      { route: 'DELETE /v1/collections/:collection', method: 'DELETE', url: (v) => `/v1/collections/${v}`, field: /collection/, auth: 'tenant' },
      { route: 'POST /v1/collections/:collection/records', method: 'POST', url: (v) => `/v1/collections/${v}/records`, field: /collection/, auth: 'tenant', payload: '{"a":1}' },
      { route: 'GET /v1/collections/:collection/records', method: 'GET', url: (v) => `/v1/collections/${v}/records`, field: /collection/, auth: 'tenant' },
      { route: 'GET /v1/collections/:collection/records:count', method: 'GET', url: (v) => `/v1/collections/${v}/records:count`, field: /collection/, auth: 'tenant' },
      { route: 'GET /v1/collections/:collection/records:aggregate', method: 'GET', url: (v) => `/v1/collections/${v}/records:aggregate`, field: /collection/, auth: 'tenant' },
      {
        route: 'POST /v1/collections/:collection/records:bulk',
        method: 'POST',
        url: (v) => `/v1/collections/${v}/records:bulk`,
        field: /collection/,
        auth: 'tenant',
        payload: '{"data":{"a":1}}\n',
        contentType: 'application/x-ndjson',
      },
      { route: 'GET records/:id', method: 'GET', url: (v) => `/v1/collections/things/records/${v}`, field: /(^|\/)id$/, auth: 'tenant' },
      { route: 'PUT records/:id', method: 'PUT', url: (v) => `/v1/collections/things/records/${v}`, field: /(^|\/)id$/, auth: 'tenant', payload: '{"a":1}' },
      { route: 'PATCH records/:id', method: 'PATCH', url: (v) => `/v1/collections/things/records/${v}`, field: /(^|\/)id$/, auth: 'tenant', payload: '{"a":1}' },
      { route: 'DELETE records/:id', method: 'DELETE', url: (v) => `/v1/collections/things/records/${v}`, field: /(^|\/)id$/, auth: 'tenant' },
      { route: 'GET /v1/counters/:name', method: 'GET', url: (v) => `/v1/counters/${v}`, field: /name/, auth: 'tenant' },
      { route: 'POST /v1/counters/:name/increment', method: 'POST', url: (v) => `/v1/counters/${v}/increment`, field: /name/, auth: 'tenant', payload: '{}' },
      { route: 'POST /v1/counters/:name/reset', method: 'POST', url: (v) => `/v1/counters/${v}/reset`, field: /name/, auth: 'tenant', payload: '{}' },
      { route: 'GET /v1/conversations/:id', method: 'GET', url: (v) => `/v1/conversations/${v}`, field: /(^|\/)id$/, auth: 'tenant' },
      { route: 'PATCH /v1/conversations/:id', method: 'PATCH', url: (v) => `/v1/conversations/${v}`, field: /(^|\/)id$/, auth: 'tenant', payload: '{"title":"x"}' },
      { route: 'DELETE /v1/conversations/:id', method: 'DELETE', url: (v) => `/v1/conversations/${v}`, field: /(^|\/)id$/, auth: 'tenant' },
      { route: 'POST /v1/conversations/:id/messages', method: 'POST', url: (v) => `/v1/conversations/${v}/messages`, field: /(^|\/)id$/, auth: 'tenant', payload: '{"role":"user","content":"x"}' },
      { route: 'GET /v1/conversations/:id/messages', method: 'GET', url: (v) => `/v1/conversations/${v}/messages`, field: /(^|\/)id$/, auth: 'tenant' },
      { route: 'POST /v1/conversations/:id/fork', method: 'POST', url: (v) => `/v1/conversations/${v}/fork`, field: /(^|\/)id$/, auth: 'tenant', payload: '{"atSeq":1}' },
      { route: 'GET messages/:seq', method: 'GET', url: (v) => `/v1/conversations/0190a0a0-0000-7000-8000-000000000002/messages/${v}`, field: /seq/, auth: 'tenant' },
      { route: 'PATCH messages/:seq', method: 'PATCH', url: (v) => `/v1/conversations/0190a0a0-0000-7000-8000-000000000002/messages/${v}`, field: /seq/, auth: 'tenant', payload: '{"content":"x"}' },
      { route: 'DELETE messages/:seq', method: 'DELETE', url: (v) => `/v1/conversations/0190a0a0-0000-7000-8000-000000000002/messages/${v}`, field: /seq/, auth: 'tenant' },
      { route: 'GET /v1/memory-blocks/:label', method: 'GET', url: (v) => `/v1/memory-blocks/${v}`, field: /label/, auth: 'tenant' },
      { route: 'PUT /v1/memory-blocks/:label', method: 'PUT', url: (v) => `/v1/memory-blocks/${v}`, field: /label/, auth: 'tenant', payload: '{"value":"x"}' },
      { route: 'DELETE /v1/memory-blocks/:label', method: 'DELETE', url: (v) => `/v1/memory-blocks/${v}`, field: /label/, auth: 'tenant' },
      ...(
        [
          ['GET /v1/agents/:id', 'GET', ''],
          ['PATCH /v1/agents/:id', 'PATCH', '', '{"name":"x"}'],
          ['DELETE /v1/agents/:id', 'DELETE', ''],
          ['GET /v1/agents/:id/versions', 'GET', '/versions'],
          ['GET /v1/agents/:id/versions/:n', 'GET', '/versions/1'],
          ['POST /v1/agents/:id/rollback', 'POST', '/rollback', '{"version":1}'],
          ['GET /v1/agents/:id/secrets', 'GET', '/secrets'],
          ['PUT /v1/agents/:id/secrets/:name', 'PUT', '/secrets/K', '{"value":"v"}'],
          ['DELETE /v1/agents/:id/secrets/:name', 'DELETE', '/secrets/K'],
          ['POST /v1/agents/:id/secrets/:name/reveal', 'POST', '/secrets/K/reveal', '{}'],
        ] as const
      ).map(([route, method, rest, payload]: readonly string[]) => ({ route: route as string, method: method as string, url: (v: string) => `/v1/agents/${v}${rest}`, field: /^id$/, auth: 'tenant' as Auth, ...(payload ? { payload } : {}) })),
      ...(
        [
          ['PUT secrets/:name', 'PUT', '', '{"value":"v"}'],
          ['DELETE secrets/:name', 'DELETE', ''],
          ['POST secrets/:name/reveal', 'POST', '/reveal', '{}'],
        ] as const
      ).map(([route, method, rest, payload]: readonly string[]) => ({
        route: route as string,
        method: method as string,
        url: (v: string) => `/v1/agents/${w.agent}/secrets/${v}${rest}`,
        field: /^name$/,
        auth: 'tenant' as Auth,
        ...(payload ? { payload } : {}),
      })),
      { route: 'GET versions/:n', method: 'GET', url: (v) => `/v1/agents/${w.agent}/versions/${v}`, field: /^n$/, auth: 'tenant' },
      ...(
        [
          ['GET', '/v1/projects/:v'],
          ['PATCH', '/v1/projects/:v', '{"name":"n"}'],
          ['DELETE', '/v1/projects/:v'],
          ['POST', '/v1/projects/:v/branches', '{"name":"n"}'],
          ['GET', '/v1/projects/:v/branches'],
          ['GET', '/v1/branches/:v'],
          ['PATCH', '/v1/branches/:v', '{"name":"n"}'],
          ['DELETE', '/v1/branches/:v'],
          ['POST', '/v1/branches/:v/tasks', '{"title":"t"}'],
          ['GET', '/v1/branches/:v/tasks'],
          ['GET', '/v1/tasks/:v'],
          ['PATCH', '/v1/tasks/:v', '{"title":"t"}'],
          ['DELETE', '/v1/tasks/:v'],
          ['POST', '/v1/tasks/:v/move', '{}'],
          ['GET', '/v1/tasks/:v/subtasks'],
          ['POST', '/v1/tasks/:v/dependencies', `{"taskId":"${absentTask}"}`],
          ['DELETE', `/v1/tasks/:v/dependencies/${absentTask}`],
          ...['projects', 'branches', 'tasks'].flatMap((p) => [
            ['GET', `/v1/${p}/:v/context`],
            ['PUT', `/v1/${p}/:v/context`, '{}'],
            ['PATCH', `/v1/${p}/:v/context`, '{}'],
            ['GET', `/v1/${p}/:v/context/resolved`],
          ]),
        ] as [string, string, string?][]
      ).map(([method, pattern, payload]) => ({
        route: `${method} ${pattern}`,
        method,
        url: (v: string) => pattern.replace(':v', v),
        field: /(^|\/)id$/,
        auth: 'tenant' as const,
        ...(payload === undefined ? {} : { payload }),
      })),
      { route: 'DELETE /v1/tasks/:id/dependencies/:dependsOnId', method: 'DELETE', url: (v) => `/v1/tasks/${absentTask}/dependencies/${v}`, field: /dependsOnId/, auth: 'tenant' },
      // Unknown ids of users, keys and tenants are simply not found.
      { route: 'GET /v1/users/:id', method: 'GET', url: (v) => `/v1/users/${v}`, field: /id/, auth: 'tenant', notFoundOk: true },
      { route: 'PATCH /v1/users/:id', method: 'PATCH', url: (v) => `/v1/users/${v}`, field: /id/, auth: 'tenant', payload: '{"role":"viewer"}', notFoundOk: true },
      { route: 'DELETE /v1/users/:id', method: 'DELETE', url: (v) => `/v1/users/${v}`, field: /id/, auth: 'tenant', notFoundOk: true },
      { route: 'GET /v1/api-keys/:id', method: 'GET', url: (v) => `/v1/api-keys/${v}`, field: /id/, auth: 'tenant', notFoundOk: true },
      { route: 'DELETE /v1/api-keys/:id', method: 'DELETE', url: (v) => `/v1/api-keys/${v}`, field: /id/, auth: 'tenant', notFoundOk: true },
      { route: 'GET /v1/tenants/:tenantId', method: 'GET', url: (v) => `/v1/tenants/${v}`, field: /tenantId/, auth: 'service', notFoundOk: true },
      { route: 'POST /v1/tenants/:tenantId/api-keys', method: 'POST', url: (v) => `/v1/tenants/${v}/api-keys`, field: /tenantId/, auth: 'service', payload: '{"name":"k","role":"viewer"}', notFoundOk: true },
      {
        route: 'POST /v1/tenants/:tenantId/users',
        method: 'POST',
        url: (v) => `/v1/tenants/${v}/users`,
        field: /tenantId/,
        auth: 'service',
        payload: '{"email":"p@example.com","password":"long enough password","role":"viewer"}',
        notFoundOk: true,
      },
    ];
    for (const r of routes) {
      it(`${r.route}: bad characters, SQL-injection strings and over-long values are 4xx`, async () => {
        for (const value of [...badSegments, tooLong(129), tooLong(600)]) {
          const res = await send(r.method, r.url(value), r.auth, r.payload, r.contentType);
          // Over maxParamLength (512) the router refuses the URL (414); ".." is resolved away
          // to another route, so any 4xx will do there.
          const allowed = value === '..' ? [400, 401, 403, 404, 405] : value.length > 512 ? [414] : r.notFoundOk ? [400, 404] : [400];
          const body = expectProblem(res, allowed);
          // A malformed %-escape is refused by the router, before any field exists.
          if (res.statusCode === 400 && !malformedEscapes.includes(value)) {
            expect((body.errors ?? []).some((e) => r.field.test(e.field)), `${r.route} ${value}: ${JSON.stringify(body)}`).toBe(true);
          }
        }
      });
    }
  });

  describe('query strings and headers', () => {
    const records = () => `/v1/collections/${w.coll}/records`;
    const taskListings = () => ['/v1/projects', `/v1/projects/${w.project}/branches`, `/v1/branches/${w.branch}/tasks`];

    it('task listings: invalid status, assignee and label filters, and cascade flags, are 400 naming them', async () => {
      const tasks = `/v1/branches/${w.branch}/tasks`;
      for (const status of ['later', 'DONE', INJECTIONS[0] as string]) bad(await send('GET', `${tasks}?status=${encodeURIComponent(status)}`, 'tenant'), /status/);
      for (const assignee of ['bob', 'agent:', ...INJECTIONS, tooLong(200)]) bad(await send('GET', `${tasks}?assignee=${encodeURIComponent(assignee)}`, 'tenant'), /assignee/);
      for (const label of ['a,b', '', tooLong(65)]) bad(await send('GET', `${tasks}?label=${encodeURIComponent(label)}`, 'tenant'), /label/);
      for (const url of [`/v1/projects/${w.project}`, `/v1/branches/${w.branch}`, `/v1/tasks/${w.task}`]) bad(await send('DELETE', `${url}?cascade=maybe`, 'tenant'), /cascade/);
    });

    it('task, project and context writes: invalid If-Match is 400 naming if-match; a stale one is 412', async () => {
      for (const [method, url, payload] of [
        ['PATCH', `/v1/projects/${w.project}`, '{"name":"n"}'],
        ['DELETE', `/v1/branches/${w.branch}`, undefined],
        ['PATCH', `/v1/tasks/${w.task}`, '{"title":"t"}'],
        ['POST', `/v1/tasks/${w.task}/move`, '{}'],
        ['PUT', `/v1/tasks/${w.task}/context`, '{}'],
        ['PATCH', '/v1/context/global', '{}'],
      ] as const) {
        for (const value of ['3', 'W/"1"', '"abc"', INJECTIONS[0] as string]) bad(await send(method, url, 'tenant', payload, 'application/json', { 'if-match': value }), /if-match/);
        expectProblem(await send(method, url, 'tenant', payload, 'application/json', { 'if-match': '"99"' }), 412, { code: 'agentstore.precondition_failed' });
      }
      bad(await send('PUT', `/v1/tasks/${w.task}/context`, 'tenant', '{}', 'application/json', { 'if-none-match': '"1"' }), /if-none-match/);
    });

    it('invalid cursors are 400 naming cursor, on every listing', async () => {
      const forged = Buffer.from(JSON.stringify({ s: 'records:things:$created_at,$id:', v: ["x'); DROP TABLE records;--", { a: 1 }] })).toString('base64url');
      const otherScope = Buffer.from(JSON.stringify({ s: 'some-other-listing', v: ['a'] })).toString('base64url');
      for (const listing of [records(), '/v1/collections', '/v1/counters', '/v1/users', '/v1/api-keys', '/v1/audit', '/v1/conversations', `/v1/conversations/${w.conv}/messages`, '/v1/memory-blocks', '/v1/agents', `/v1/agents/${w.agent}/versions`, `/v1/agents/${w.agent}/secrets`, ...taskListings()]) {
        for (const cursor of ['not a cursor', '!!!', forged, otherScope, 'e30', encodeURIComponent(INJECTIONS[0] as string), tooLong(5000)]) {
          const res = await send('GET', `${listing}?cursor=${encodeURIComponent(cursor)}`, 'tenant');
          const body = bad(res);
          expect((body.errors ?? []).some((e) => /cursor/.test(e.field)), `${listing} ${cursor.slice(0, 40)}: ${res.body}`).toBe(true);
        }
      }
      const tenants = await send('GET', '/v1/tenants?cursor=garbage!', 'service');
      bad(tenants, /cursor/);
    });

    it('invalid limits are 400 naming limit', async () => {
      for (const listing of [records(), '/v1/collections', '/v1/counters', '/v1/users', '/v1/api-keys', '/v1/audit', '/v1/changes', '/v1/conversations', `/v1/conversations/${w.conv}/messages`, '/v1/memory-blocks', '/v1/messages/search?q=x', '/v1/agents', `/v1/agents/${w.agent}/versions`, `/v1/agents/${w.agent}/secrets`, ...taskListings()]) {
        for (const limit of ['0', '-1', '501000', 'abc', '1.5', '1e3x', "1' OR '1'='1"]) {
          bad(await send('GET', `${listing}${listing.includes('?') ? '&' : '?'}limit=${encodeURIComponent(limit)}`, 'tenant'), /limit/);
        }
      }
    });

    it('unknown query parameters are refused', async () => {
      for (const listing of [records(), `${records()}:count`, `${records()}:aggregate`, `${records()}/${w.rec}`, '/v1/collections', '/v1/counters', '/v1/users', '/v1/api-keys', '/v1/audit', '/v1/changes', '/v1/events', '/v1/conversations', `/v1/conversations/${w.conv}`, `/v1/conversations/${w.conv}/messages`, `/v1/conversations/${w.conv}/messages/1`, '/v1/memory-blocks', '/v1/memory-blocks/persona', '/v1/messages/search?q=x', '/v1/agents', `/v1/agents/${w.agent}`, `/v1/agents/${w.agent}/versions`, `/v1/agents/${w.agent}/versions/1`, `/v1/agents/${w.agent}/secrets`, ...taskListings()]) {
        bad(await send('GET', `${listing}${listing.includes('?') ? '&' : '?'}zzUnknown=1`, 'tenant'), /zzUnknown/);
      }
      for (const url of [`/v1/projects/${w.project}`, `/v1/branches/${w.branch}`, `/v1/tasks/${w.task}`]) bad(await send('DELETE', `${url}?zzUnknown=1`, 'tenant'), /zzUnknown/);
      bad(await send('GET', '/v1/tenants?zzUnknown=1', 'service'), /zzUnknown/);
    });

    it('conversations: invalid filters, message ranges, search queries and memory block scopes name the parameter', async () => {
      for (const [q, field] of [['agentId=', /agentId/], ['endUserId=', /endUserId/], ['status=open', /status/], [`agentId=${tooLong(257)}`, /agentId/], ['agentId=%00', /agentId/]] as const) {
        bad(await send('GET', `/v1/conversations?${q}`, 'tenant'), field);
      }
      const messages = `/v1/conversations/${w.conv}/messages`;
      for (const [q, field] of [['last=0', /last/], ['last=501', /last/], ['last=x', /last/], ['after=-1', /after/], ['before=abc', /before/], ['before=0', /before/], ['last=2&after=1', /after/], ['last=2&limit=3', /limit/], ['after=1.5', /after/]] as const) {
        bad(await send('GET', `${messages}?${q}`, 'tenant'), field);
      }
      for (const q of ['', 'q=', 'q=!!!', `q=${tooLong(513)}`, 'q=%00', `q=${Array.from({ length: 17 }, (_, i) => `w${i}`).join('+')}`]) bad(await send('GET', `/v1/messages/search?${q}`, 'tenant'), /(^|\/)q$|querystring/);
      for (const q of [`q=${encodeURIComponent('" AND NEAR( *')}`, `q=${encodeURIComponent(INJECTIONS[0] as string)}`, `q=${encodeURIComponent("x:* & !y | (z")}`]) {
        const res = await send('GET', `/v1/messages/search?${q}`, 'tenant');
        expect(res.statusCode, res.body).toBe(200);
      }
      for (const q of ['agentId=', 'endUserId=', `agentId=${tooLong(257)}`]) {
        bad(await send('GET', `/v1/memory-blocks?${q}`, 'tenant'), /agentId|endUserId/);
        bad(await send('GET', `/v1/memory-blocks/persona?${q}`, 'tenant'), /agentId|endUserId/);
      }
      // Over the block's limit: 413 naming the value and the block.
      const over = expectProblem(await send('PUT', '/v1/memory-blocks/persona', 'tenant', JSON.stringify({ value: 'x'.repeat(11) })), 413, { field: '/value' });
      expect(over.detail).toContain('persona');
      for (const value of ['3', '"abc"']) {
        bad(await send('PUT', '/v1/memory-blocks/persona', 'tenant', '{"value":"y"}', 'application/json', { 'if-match': value }), /if-match/);
        bad(await send('PATCH', `/v1/conversations/${w.conv}`, 'tenant', '{"title":"y"}', 'application/json', { 'if-match': value }), /if-match/);
      }
      expectProblem(await send('PUT', '/v1/memory-blocks/persona', 'tenant', '{"value":"y"}', 'application/json', { 'if-match': '"9"' }), 412);
      expectProblem(await send('PUT', '/v1/memory-blocks/persona', 'tenant', '{"value":"y"}', 'application/json', { 'if-none-match': '*' }), 412);
      // A batch that mixes {messages} with a message's own fields, and a bad message deep in a batch.
      bad(await send('POST', messages, 'tenant', JSON.stringify({ role: 'user', messages: [{ role: 'user', content: 'x' }] })), '/role');
      bad(await send('POST', messages, 'tenant', JSON.stringify({ messages: [{ role: 'user', content: 'x' }, { role: 'user', content: [{ type: 'tool-x', state: 'done' }] }] })), '/messages/1/content/0/toolCallId');
      bad(await send('POST', messages, 'tenant', JSON.stringify({ role: 'user', content: [{ type: 'file', mediaType: 'image/png', url: 'data:image/png;base64,AA' }] })), '/content/0/url');
    });

    it('the tenant listing refuses invalid limits too', async () => {
      for (const limit of ['0', '-1', '501000', 'abc', "1' OR '1'='1"]) bad(await send('GET', `/v1/tenants?limit=${encodeURIComponent(limit)}`, 'service'), /limit/);
    });

    it('the change feed and the event stream refuse an invalid collection filter', async () => {
      for (const collection of [INJECTIONS[0] as string, 'has space', 'x'.repeat(200)]) {
        for (const feed of ['/v1/changes', '/v1/events']) bad(await send('GET', `${feed}?collection=${encodeURIComponent(collection)}`, 'tenant'), /collection/);
      }
    });

    it('invalid filters are 400 naming filter; SQL in filter values is only ever compared', async () => {
      const filters: unknown[] = [
        'not json',
        '[1]',
        '"x"',
        { "status') OR 1=1 --": 'x' },
        { 'a.b"; DROP TABLE records; --': 1 },
        { "$.a') --": 1 },
        { status: { regex: '.*' } },
        { status: { gt: { nested: 1 } } },
        { status: { in: [] } },
        { status: { in: 'x' } },
        { status: { exists: 'yes' } },
        { and: [] },
        { or: 'x' },
        { not: 5 },
        { status: { eq: [1] } },
        { createdAt: { gt: "2020'); DROP TABLE records;--" } },
        { version: { eq: '1 OR 1=1' } },
        { status: {} },
        { '': 1 },
        { 'a..b': 1 },
      ];
      let deep: unknown = { status: 'x' };
      for (let i = 0; i < 12; i++) deep = { not: deep };
      filters.push(deep);
      filters.push({ or: Array.from({ length: 101 }, (_, i) => ({ [`f${i}`]: i })) });
      for (const filter of filters) {
        const text = typeof filter === 'string' ? filter : JSON.stringify(filter);
        // The same language on listings, counts and aggregates.
        for (const route of [records(), `${records()}:count`, `${records()}:aggregate`]) bad(await send('GET', `${route}?filter=${encodeURIComponent(text)}`, 'tenant'), /filter/);
      }
      bad(await send('GET', `${records()}?filter=${encodeURIComponent(JSON.stringify({ a: 'x'.repeat(9000) }))}`, 'tenant'), /filter/);
      for (const value of INJECTIONS) {
        const res = await send('GET', `${records()}?filter=${encodeURIComponent(JSON.stringify({ status: value }))}`, 'tenant');
        expect(res.statusCode, res.body).toBe(200);
        expect(res.json<{ items: unknown[] }>().items).toEqual([]);
        const contains = await send('GET', `${records()}?filter=${encodeURIComponent(JSON.stringify({ status: { contains: value } }))}`, 'tenant');
        expect(contains.statusCode, contains.body).toBe(200);
        expect(contains.json<{ items: unknown[] }>().items).toEqual([]);
      }
    });

    it('invalid groupBy, metrics and aggregate limits are 400 naming them; SQL in them is never run', async () => {
      const aggregate = (params: Record<string, string>) => send('GET', `${records()}:aggregate?${new URLSearchParams(params).toString()}`, 'tenant');
      for (const groupBy of [...INJECTIONS, 'a,b,c', 'a,a', 'id', 'createdAt', '', ',', 'a..b', 'a.0.1.2.3', tooLong(601)]) bad(await aggregate({ groupBy }), /groupBy/);
      for (const metrics of [...INJECTIONS, 'sum', 'sum:', ':a', 'count:a', 'SUM:a', 'sum:a,sum:a', 'sum:version', 'avg:a b', `sum:${INJECTIONS[0] as string}`, tooLong(2049)]) {
        bad(await aggregate({ metrics }), /metrics/);
      }
      for (const limit of ['0', '-1', '1001', 'abc', '1.5', "1' OR '1'='1"]) bad(await aggregate({ limit }), /limit/);
    });

    it('invalid fields are 400 naming fields, on get and list', async () => {
      for (const fields of [...INJECTIONS, '', ',', 'a,,b', 'a b', 'a..b', '$.a', 'a.0.1.2.3', Array.from({ length: 33 }, (_, i) => `f${i}`).join(','), tooLong(2049)]) {
        bad(await send('GET', `${records()}?fields=${encodeURIComponent(fields)}`, 'tenant'), /fields/);
        bad(await send('GET', `${records()}/${w.rec}?fields=${encodeURIComponent(fields)}`, 'tenant'), /fields/);
      }
    });

    it('invalid sorts are 400 naming sort', async () => {
      for (const sort of [...INJECTIONS, 'a,,b', 'a,b,c,d', '-', 'status,status', 'a b', 'createdAt desc', 'status;', tooLong(601)]) {
        bad(await send('GET', `${records()}?sort=${encodeURIComponent(sort)}`, 'tenant'), /sort/);
      }
    });

    it('audit and change-feed queries: invalid timestamps, sequence numbers and types', async () => {
      for (const q of ['from=yesterday', 'to=2020-13-45', `from=${encodeURIComponent(INJECTIONS[0] as string)}`]) bad(await send('GET', `/v1/audit?${q}`, 'tenant'), /from|to/);
      for (const [field, max] of [['actorType', 32], ['actorId', 256], ['action', 128], ['resourceType', 64], ['resourceId', 256]] as const) {
        bad(await send('GET', `/v1/audit?${field}=${tooLong(max + 1)}`, 'tenant'), new RegExp(field));
      }
      for (const q of ['after=-1', 'after=abc', `after=${encodeURIComponent(INJECTIONS[1] as string)}`]) bad(await send('GET', `/v1/changes?${q}`, 'tenant'), /after/);
      for (const types of [INJECTIONS[0] as string, 'Record', 'record;counter', 'a'.repeat(40)]) {
        bad(await send('GET', `/v1/changes?types=${encodeURIComponent(types)}`, 'tenant'), /types/);
        bad(await send('GET', `/v1/events?types=${encodeURIComponent(types)}`, 'tenant'), /types/);
      }
      for (const id of ['abc', '-1', "1' OR '1'='1", '1'.repeat(20)]) {
        bad(await send('GET', '/v1/events', 'tenant', undefined, 'application/json', { 'last-event-id': id }), /last-event-id/);
      }
      bad(await send('GET', '/v1/events?after=x1', 'tenant'), /after/);
      // A position past the end of the log is not one it gave out (a restored database).
      bad(await send('GET', '/v1/events', 'tenant', undefined, 'application/json', { 'last-event-id': '999999999999' }), /last-event-id/);
      bad(await send('GET', '/v1/events?after=999999999999', 'tenant'), /after/);
      // SQL in a filter value of the audit log is only compared.
      const res = await send('GET', `/v1/audit?resourceId=${encodeURIComponent(INJECTIONS[0] as string)}&action=${encodeURIComponent(INJECTIONS[1] as string)}`, 'tenant');
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json<{ items: unknown[] }>().items).toEqual([]);
    });

    it('invalid If-Match is 400 naming if-match; a stale one is 412', async () => {
      const url = `${records()}/${w.rec}`;
      for (const value of ['3', 'W/"1"', '"abc"', '"1"x', '"-1"', INJECTIONS[0] as string, '"1", "2"', `"${'9'.repeat(16)}"`, 'x'.repeat(65)]) {
        for (const [method, payload] of [['PUT', '{"a":1}'], ['PATCH', '{"a":1}'], ['DELETE', undefined]] as const) {
          const res = await send(method, url, 'tenant', payload, 'application/json', { 'if-match': value });
          bad(res, /if-match/);
        }
      }
      expectProblem(await send('PATCH', url, 'tenant', '{"a":1}', 'application/json', { 'if-match': '"99"' }), 412, { code: 'agentstore.precondition_failed' });
      expectProblem(await send('DELETE', url, 'tenant', undefined, 'application/json', { 'if-match': '"99"' }), 412);
    });

    it('invalid ttl and expiresAt are 400 naming them, on create, replace, patch and in batches; both at once name both', async () => {
      const future = encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString());
      const writes: Array<['POST' | 'PUT' | 'PATCH', string]> = [['POST', records()], ['PUT', `${records()}/${w.rec}`], ['PUT', `${records()}/absent-one`], ['PATCH', `${records()}/${w.rec}`]];
      for (const [method, url] of writes) {
        for (const ttl of ['0', '-1', '1.5', 'abc', String(MAX_TTL_SECONDS + 1), '1e400', encodeURIComponent(INJECTIONS[0] as string)]) {
          bad(await send(method, `${url}?ttl=${ttl}`, 'tenant', '{"a":1}'), /^ttl$/);
        }
        for (const at of ['tomorrow', '2020-01-01T00:00:00Z', '2026-02-30T00:00:00Z', '0000-01-01T00:00:00Z', encodeURIComponent(INJECTIONS[1] as string), tooLong(65)]) {
          bad(await send(method, `${url}?expiresAt=${at}`, 'tenant', '{"a":1}'), /^expiresAt$/);
        }
        const both = await send(method, `${url}?ttl=60&expiresAt=${future}`, 'tenant', '{"a":1}');
        bad(both, /^ttl$/);
        expect(both.json<{ errors: Array<{ field: string }> }>().errors.map((e) => e.field)).toEqual(['ttl', 'expiresAt']);
      }
      for (const operation of [{ ttl: 0 }, { ttl: '60' }, { expiresAt: 'soon' }, { expiresAt: '2020-01-01T00:00:00Z' }, { ttl: 5, expiresAt: decodeURIComponent(future) }]) {
        const res = await send('POST', '/v1/batch', 'tenant', JSON.stringify({ operations: [{ op: 'create', collection: w.coll, data: {}, ...operation }] }));
        bad(res, /^\/operations\/0\/(ttl|expiresAt)$/);
      }
      bad(await send('POST', '/v1/batch', 'tenant', JSON.stringify({ operations: [{ op: 'delete', collection: w.coll, id: w.rec, ttl: 5 }] })), '/operations/0/ttl');
    });

    it('an end-user id too long or not storable is 400 naming endUserId (any other text is an id: test/http/end-users.test.ts)', async () => {
      for (const id of [tooLong(257), 'a%00b']) bad(await send('DELETE', `/v1/end-users/${id}`, 'tenant'), /endUserId/);
      // A malformed %-escape (or one that decodes to an unpaired surrogate) is refused by the router, before any field exists.
      for (const id of ['%ED%A0%80', ...malformedEscapes]) bad(await send('DELETE', `/v1/end-users/${id}`, 'tenant'));

    });

    it('invalid Idempotency-Key is 400 naming idempotency-key', async () => {
      for (const key of ['', 'x'.repeat(256)]) {
        bad(await send('POST', records(), 'tenant', '{"a":1}', 'application/json', { 'idempotency-key': key }), /idempotency-key/);
        bad(await send('POST', '/v1/agents', 'tenant', '{"name":"a"}', 'application/json', { 'idempotency-key': key }), /idempotency-key/);
      }
    });

    it('agents: invalid status, tag, q, match and If-Match are 400 naming them; a stale If-Match is 412', async () => {
      for (const [param, values] of [
        ['status', ['deleted', 'ACTIVE', INJECTIONS[0] as string, '']],
        ['tag', ['a b', '.x', tooLong(65), INJECTIONS[0] as string]],
        ['q', ['', tooLong(201), 'a\u0000b']],
        ['match', ['exact', 'PREFIX', INJECTIONS[1] as string]],
      ] as const) {
        for (const value of values) bad(await send('GET', `/v1/agents?${param}=${encodeURIComponent(value)}`, 'tenant'), new RegExp(`^${param}$`));
      }
      const url = `/v1/agents/${w.agent}`;
      for (const value of ['3', 'W/"1"', '"abc"', INJECTIONS[0] as string]) {
        bad(await send('PATCH', url, 'tenant', '{"name":"x"}', 'application/json', { 'if-match': value }), /if-match/);
        bad(await send('DELETE', url, 'tenant', undefined, 'application/json', { 'if-match': value }), /if-match/);
        bad(await send('POST', `${url}/rollback`, 'tenant', '{"version":1}', 'application/json', { 'if-match': value }), /if-match/);
      }
      expectProblem(await send('PATCH', url, 'tenant', '{"name":"x"}', 'application/json', { 'if-match': '"99"' }), 412, { code: 'agentstore.precondition_failed' });
      expectProblem(await send('POST', `${url}/rollback`, 'tenant', '{"version":99}'), 404, { code: 'agentstore.not_found', field: '/version' });
      expectProblem(await send('PATCH', url, 'tenant', JSON.stringify({ name: null })), 400, { field: '/name' });
    });

    it('a 4 KiB Authorization header and odd auth schemes are 401, not 500', async () => {
      for (const authorization of [`Bearer ${'a'.repeat(5000)}`, 'Bearer', 'Bearer a b', `Bearer ${INJECTIONS[0]}`, 'Token abc']) {
        expectProblem(await h.app.inject({ method: 'GET', url: '/v1/counters', headers: { authorization } }), 401);
      }
      expectProblem(await h.app.inject({ method: 'GET', url: '/v1/counters', headers: { 'x-api-key': INJECTIONS[0] as string } }), 401);
    });
  });
});
