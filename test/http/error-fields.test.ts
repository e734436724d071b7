/**
 * The one convention of problem+json `errors[].field` (docs/api.md "Errors"), walked over
 * many error cases, whichever layer finds the error (Fastify's schemas or a service):
 * a path, query or header parameter by the name the client sent (`id`, `limit`,
 * `if-match`), a member of the JSON body by a JSON pointer into it (`/name`, `/indexes/1`,
 * a record's data as `/data/...`), and `body` for the body as a whole.
 */
import { randomBytes } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { beforeAll, expect, it } from 'vitest';
import { forEachBackend } from '../helpers/index.js';
import { SERVICE_KEY, bearer, createTenant, expectProblem, useHttp, type HttpTenant } from './http-kit.js';

interface Case {
  readonly name: string;
  readonly method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly url: string;
  readonly headers?: Record<string, string>;
  readonly payload?: unknown;
  /** Use the service key instead of the tenant's admin key. */
  readonly service?: boolean;
  readonly field: string;
}

/** Parameters by name (lower-case header names too); body members by JSON pointer; or `body`. */
const CONVENTION = /^(?:body|query|params|headers|[A-Za-z][A-Za-z0-9_-]*|(?:\/(?:[^/~]|~[01])*)+)$/;
const PART_PREFIX = /^\/(?:querystring|query|headers|params|body)(?:\/|$)/;

forEachBackend('errors[].field convention', (backend) => {
  const h = useHttp(backend);
  let t: HttpTenant;
  let userId: string;
  beforeAll(async () => {
    t = await createTenant(h.app, `fields-${randomBytes(4).toString('hex')}`);
    const put = await h.app.inject({ method: 'PUT', url: '/v1/collections/typed', headers: bearer(t.key), payload: { schema: { type: 'object', properties: { priority: { type: 'integer' } } } } });
    expect(put.statusCode, put.body).toBe(200);
    const rec = await h.app.inject({ method: 'POST', url: '/v1/collections/typed/records', headers: bearer(t.key), payload: { id: 'r1', priority: 1 } });
    expect(rec.statusCode, rec.body).toBe(201);
    const user = await h.app.inject({ method: 'POST', url: '/v1/users', headers: bearer(t.key), payload: { email: `f-${randomBytes(3).toString('hex')}@example.com`, password: 'long enough password', role: 'viewer' } });
    expect(user.statusCode, user.body).toBe(201);
    userId = user.json<{ id: string }>().id;
  });

  const cases = (): Case[] => [
    // Query parameters: Fastify's schema and the services alike.
    { name: 'query limit out of range (schema)', url: '/v1/collections/typed/records?limit=0', field: 'limit' },
    { name: 'query limit not a number (schema)', url: '/v1/counters?limit=abc', field: 'limit' },
    { name: 'unknown query parameter (schema)', url: '/v1/collections/typed/records?bogus=1', field: 'bogus' },
    { name: 'query filter (service)', url: `/v1/collections/typed/records?filter=${encodeURIComponent('{bad')}`, field: 'filter' },
    { name: 'query sort (service)', url: '/v1/collections/typed/records?sort=a..b', field: 'sort' },
    { name: 'query cursor (service)', url: '/v1/collections/typed/records?cursor=nope', field: 'cursor' },
    { name: 'query types (service)', url: '/v1/changes?types=bogus', field: 'types' },
    { name: 'query after (schema)', url: '/v1/changes?after=-1', field: 'after' },
    { name: 'query from (schema)', url: '/v1/audit?from=garbage', field: 'from' },
    // Headers.
    { name: 'if-match malformed (service)', method: 'PUT', url: '/v1/collections/typed/records/r1', headers: { 'if-match': 'W/"1"' }, payload: { priority: 2 }, field: 'if-match' },
    { name: 'if-match too long (schema)', method: 'PUT', url: '/v1/collections/typed/records/r1', headers: { 'if-match': `"${'1'.repeat(70)}"` }, payload: { priority: 2 }, field: 'if-match' },
    { name: 'idempotency-key empty (schema)', method: 'POST', url: '/v1/collections/typed/records', headers: { 'idempotency-key': '' }, payload: { priority: 2 }, field: 'idempotency-key' },
    { name: 'last-event-id malformed (route)', url: '/v1/events', headers: { 'last-event-id': 'abc' }, field: 'last-event-id' },
    // Path parameters.
    { name: 'collection too long (schema)', url: `/v1/collections/${'x'.repeat(70)}`, field: 'collection' },
    { name: 'collection bad alphabet (service)', url: '/v1/collections/%24bad', field: 'collection' },
    { name: 'record id bad alphabet (service)', url: '/v1/collections/typed/records/-bad', field: 'id' },
    { name: 'counter name (service)', url: '/v1/counters/bad%20name', field: 'name' },
    // Body members, as JSON pointers.
    { name: 'body member wrong type (schema)', method: 'POST', url: '/v1/tenants', service: true, payload: { name: 5 }, field: '/name' },
    { name: 'body member missing (schema)', method: 'POST', url: '/v1/tenants', service: true, payload: {}, field: '/name' },
    { name: 'body member unknown (schema)', method: 'POST', url: '/v1/tenants', service: true, payload: { name: 'x', extra: 1 }, field: '/extra' },
    { name: 'body member blank (service)', method: 'POST', url: '/v1/tenants', service: true, payload: { name: '   ' }, field: '/name' },
    { name: 'body role (schema)', method: 'POST', url: '/v1/api-keys', payload: { name: 'k', role: 'god' }, field: '/role' },
    { name: 'body password (service)', method: 'PATCH', url: `/v1/users/${userId}`, payload: { password: 'short' }, field: '/password' },
    { name: 'body as a whole (route)', method: 'PATCH', url: `/v1/users/${userId}`, payload: {}, field: 'body' },
    { name: 'login tenantId (service)', method: 'POST', url: '/v1/auth/login', payload: { tenantId: 'nope', email: 'a@example.com', password: 'long enough password' }, field: '/tenantId' },
    { name: 'nested body member (schema)', method: 'PUT', url: '/v1/collections/other', payload: { indexes: ['ok', 5] }, field: '/indexes/1' },
    { name: 'nested body member (service)', method: 'PUT', url: '/v1/collections/other', payload: { indexes: ['ok', 'a..b'] }, field: '/indexes/1' },
    { name: 'body schema (service)', method: 'PUT', url: '/v1/collections/other', payload: { schema: { type: 'nope' } }, field: '/schema' },
    { name: 'counter by (schema or service)', method: 'POST', url: '/v1/counters/c/increment', payload: { by: 1.5 }, field: '/by' },
    { name: 'record body not an object (schema)', method: 'POST', url: '/v1/collections/typed/records', payload: [1], field: 'body' },
    { name: 'record data against its schema (service)', method: 'POST', url: '/v1/collections/typed/records', payload: { priority: 'high' }, field: '/data/priority' },
    { name: 'record id in the body (service)', method: 'POST', url: '/v1/collections/typed/records', payload: { id: '-bad' }, field: '/data/id' },
    { name: 'if-none-match other than * (route)', method: 'PUT', url: '/v1/collections/typed/records/r1', headers: { 'if-none-match': '"1"' }, payload: { priority: 2 }, field: 'if-none-match' },
    // A batch names the member of the operation that failed, whichever layer refused it.
    { name: 'batch operation kind (schema)', method: 'POST', url: '/v1/batch', payload: { operations: [{ op: 'nope' }] }, field: '/operations/0/op' },
    { name: 'batch operation member (service)', method: 'POST', url: '/v1/batch', payload: { operations: [{ op: 'increment', counter: 'k', data: {} }] }, field: '/operations/0/data' },
    { name: 'batch record data against its schema (service)', method: 'POST', url: '/v1/batch', payload: { operations: [{ op: 'create', collection: 'typed', data: { priority: 'high' } }] }, field: '/operations/0/data/priority' },
    { name: 'batch counter name (service)', method: 'POST', url: '/v1/batch', payload: { operations: [{ op: 'increment', counter: 'bad name' }] }, field: '/operations/0/counter' },
    { name: 'batch operations (schema)', method: 'POST', url: '/v1/batch', payload: { operations: [] }, field: '/operations' },
    { name: 'bulk mode (schema)', method: 'POST', url: '/v1/collections/typed/records:bulk?mode=merge', field: 'mode' },
  ];

  const send = (c: Case): Promise<LightMyRequestResponse> =>
    h.app.inject({
      method: c.method ?? 'GET',
      url: c.url,
      headers: { ...bearer(c.service ? SERVICE_KEY : t.key), ...c.headers },
      ...(c.payload === undefined ? {} : { payload: JSON.stringify(c.payload), headers: { ...bearer(c.service ? SERVICE_KEY : t.key), ...c.headers, 'content-type': 'application/json' } }),
    });

  it('names the field of every case by the convention, and exactly as expected', async () => {
    const wrong: string[] = [];
    for (const c of cases()) {
      const res = await send(c);
      const problem = expectProblem(res, 400);
      const fields = (problem.errors ?? []).map((e) => e.field);
      expect(fields.length, `${c.name}: ${res.body}`).toBeGreaterThan(0);
      for (const field of fields) {
        if (!CONVENTION.test(field) || PART_PREFIX.test(field)) wrong.push(`${c.name}: "${field}" breaks the convention`);
      }
      if (!fields.includes(c.field)) wrong.push(`${c.name}: ${JSON.stringify(fields)}, expected "${c.field}"`);
    }
    expect(wrong).toEqual([]);
  });
});
