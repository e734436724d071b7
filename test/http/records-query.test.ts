/**
 * The HTTP contract of counting, aggregating and projecting records: `GET …/records:count`,
 * `GET …/records:aggregate` (a literal colon in the path), `fields=` on get and list, their
 * problem+json errors by parameter name, and their OpenAPI entries.
 */
import { randomBytes } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { beforeAll, describe, expect, it } from 'vitest';
import { forEachBackend } from '../helpers/index.js';
import { bearer, createKey, createTenant, expectProblem, useHttp, type HttpTenant } from './http-kit.js';

forEachBackend('http records: count, aggregate, fields', (backend) => {
  const h = useHttp(backend);
  let T: HttpTenant;
  let viewer: string;
  const coll = 'orders';
  beforeAll(async () => {
    T = await createTenant(h.app, `query-${randomBytes(4).toString('hex')}`, 'owner');
    viewer = (await createKey(h.app, T, 'viewer')).key;
    const put = await req('PUT', `/v1/collections/${coll}`, { indexes: ['status', 'lines.0.sku'] });
    expect(put.statusCode, put.body).toBe(200);
    for (const [i, status] of ['open', 'open', 'paid', 'paid', 'paid', 'void'].entries()) {
      const res = await req('POST', `/v1/collections/${coll}/records`, { id: `o${i}`, status, total: i * 10, lines: [{ sku: i % 2 ? 'pen' : 'ink', qty: i }], note: 'x'.repeat(20) });
      expect(res.statusCode, res.body).toBe(201);
    }
  });

  const req = (method: string, url: string, payload?: unknown, key = T.key) =>
    h.app.inject({ method: method as 'GET', url, headers: bearer(key), ...(payload === undefined ? {} : { payload: payload as string }) });
  const json = <X>(res: LightMyRequestResponse, status = 200): X => {
    expect(res.statusCode, res.body).toBe(status);
    return res.json<X>();
  };
  const q = (params: Record<string, string>) => new URLSearchParams(params).toString();

  describe('GET /v1/collections/{c}/records:count', () => {
    it('counts all records or those a filter matches; a viewer may', async () => {
      expect(json(await req('GET', `/v1/collections/${coll}/records:count`))).toEqual({ count: 6 });
      expect(json(await req('GET', `/v1/collections/${coll}/records:count?${q({ filter: '{"status":"paid"}' })}`))).toEqual({ count: 3 });
      expect(json(await req('GET', `/v1/collections/${coll}/records:count?${q({ filter: '{"lines.0.sku":"pen","total":{"gt":10}}' })}`, undefined, viewer))).toEqual({ count: 2 });
      expect(json(await req('GET', '/v1/collections/never-written/records:count'))).toEqual({ count: 0 });
    });

    it('refuses a bad filter, an unknown parameter and a bad collection, by name', async () => {
      expectProblem(await req('GET', `/v1/collections/${coll}/records:count?${q({ filter: '{"a":{"near":1}}' })}`), 400, { code: 'agentstore.validation', field: 'filter' });
      expectProblem(await req('GET', `/v1/collections/${coll}/records:count?limit=5`), 400, { code: 'agentstore.validation', field: 'limit' });
      expectProblem(await req('GET', '/v1/collections/bad%20name/records:count'), 400, { code: 'agentstore.validation', field: 'collection' });
      // The colon is literal: another name after it is no route.
      expect((await req('GET', `/v1/collections/${coll}/records:sum`)).statusCode).toBe(404);
    });
  });

  describe('GET /v1/collections/{c}/records:aggregate', () => {
    it('groups with counts and metrics, ordered by key', async () => {
      const body = json(await req('GET', `/v1/collections/${coll}/records:aggregate?${q({ groupBy: 'status', metrics: 'sum:total,avg:total,max:lines.0.qty' })}`));
      expect(body).toEqual({
        groups: [
          { key: { status: 'open' }, count: 2, metrics: { 'sum:total': 10, 'avg:total': 5, 'max:lines.0.qty': 1 } },
          { key: { status: 'paid' }, count: 3, metrics: { 'sum:total': 90, 'avg:total': 30, 'max:lines.0.qty': 4 } },
          { key: { status: 'void' }, count: 1, metrics: { 'sum:total': 50, 'avg:total': 50, 'max:lines.0.qty': 5 } },
        ],
        truncated: false,
      });
      const two = json<{ groups: unknown[]; truncated: boolean }>(await req('GET', `/v1/collections/${coll}/records:aggregate?${q({ groupBy: 'status,lines.0.sku', limit: '2', filter: '{"total":{"gte":10}}' })}`, undefined, viewer));
      expect(two).toEqual({
        groups: [
          { key: { status: 'open', 'lines.0.sku': 'pen' }, count: 1, metrics: {} },
          { key: { status: 'paid', 'lines.0.sku': 'ink' }, count: 2, metrics: {} },
        ],
        truncated: true,
      });
      expect(json(await req('GET', `/v1/collections/${coll}/records:aggregate`))).toEqual({ groups: [{ key: {}, count: 6, metrics: {} }], truncated: false });
    });

    it('refuses bad groupBy, metrics, limit and filter, each by name', async () => {
      const url = (params: Record<string, string>) => `/v1/collections/${coll}/records:aggregate?${q(params)}`;
      for (const [params, field] of [
        [{ groupBy: 'a,b,c' }, 'groupBy'],
        [{ groupBy: 'id' }, 'groupBy'],
        [{ metrics: 'median:total' }, 'metrics'],
        [{ metrics: 'sum:a b' }, 'metrics'],
        [{ limit: '0' }, 'limit'],
        [{ limit: '1001' }, 'limit'],
        [{ limit: 'many' }, 'limit'],
        [{ filter: '[1]' }, 'filter'],
        [{ sort: 'status' }, 'sort'],
        [{ groupBy: 'x'.repeat(700) }, 'groupBy'],
      ] as Array<[Record<string, string>, string]>) {
        expectProblem(await req('GET', url(params)), 400, { code: 'agentstore.validation', field });
      }
    });
  });

  describe('fields', () => {
    it('get returns the selected data; the ETag is still the record version', async () => {
      const full = await req('GET', `/v1/collections/${coll}/records/o3`);
      const some = await req('GET', `/v1/collections/${coll}/records/o3?fields=status,lines.0.sku`);
      expect(json<{ data: unknown }>(some)).toEqual({ ...full.json<object>(), data: { status: 'paid', lines: [{ sku: 'pen' }] } });
      expect(some.headers.etag).toBe(full.headers.etag);
      expect(some.headers.etag).toBe('"1"');
    });

    it('list returns the selected data of every item, with the same cursor', async () => {
      const page = json<{ items: Array<{ id: string; data: unknown }>; nextCursor: string | null }>(await req('GET', `/v1/collections/${coll}/records?${q({ fields: 'total', limit: '2', sort: '-total' })}`));
      expect(page.items).toEqual([expect.objectContaining({ id: 'o5', data: { total: 50 } }), expect.objectContaining({ id: 'o4', data: { total: 40 } })]);
      const next = json<{ items: Array<{ id: string }> }>(await req('GET', `/v1/collections/${coll}/records?${q({ fields: 'total', limit: '2', sort: '-total', cursor: page.nextCursor ?? '' })}`));
      expect(next.items.map((i) => i.id)).toEqual(['o3', 'o2']);
    });

    it('bad fields are a 400 naming fields; an unknown parameter on get is a 400 naming it', async () => {
      for (const fields of ['a..b', 'a b', '', 'a.0.1.2.3']) {
        expectProblem(await req('GET', `/v1/collections/${coll}/records/o1?${q({ fields })}`), 400, { code: 'agentstore.validation', field: 'fields' });
        expectProblem(await req('GET', `/v1/collections/${coll}/records?${q({ fields })}`), 400, { code: 'agentstore.validation', field: 'fields' });
      }
      expectProblem(await req('GET', `/v1/collections/${coll}/records/o1?${q({ fields: Array.from({ length: 33 }, (_, i) => `f${i}`).join(',') })}`), 400, { field: 'fields' });
      expectProblem(await req('GET', `/v1/collections/${coll}/records/o1?expand=1`), 400, { code: 'agentstore.validation', field: 'expand' });
    });
  });

  it('OpenAPI lists the routes with the colon and their parameters', async () => {
    const spec = json<{ paths: Record<string, Record<string, { parameters?: Array<{ name: string }> }>> }>(await h.app.inject({ method: 'GET', url: '/openapi.json' }));
    const paths = Object.keys(spec.paths);
    expect(paths).toContain('/v1/collections/{collection}/records:count');
    expect(paths).toContain('/v1/collections/{collection}/records:aggregate');
    const names = (path: string) => (spec.paths[path]?.get?.parameters ?? []).map((p) => p.name).sort();
    expect(names('/v1/collections/{collection}/records:aggregate')).toEqual(['collection', 'filter', 'groupBy', 'limit', 'metrics']);
    expect(names('/v1/collections/{collection}/records/{id}')).toEqual(['collection', 'fields', 'id']);
  });
});
