/**
 * Operational endpoints: liveness, readiness (and 503 when the database is gone), Prometheus
 * metrics, the OpenAPI document and docs UI, request ids, and the 404 for unknown routes.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { forEachBackend } from '../helpers/index.js';
import { bearer, createTenant, expectProblem, listRoutes, openHttp, useHttp } from './http-kit.js';

forEachBackend('http operations', (backend) => {
  const h = useHttp(backend);

  it('/health is 200 without credentials; /ready is 200 with the schema version', async () => {
    const health = await h.app.inject({ method: 'GET', url: '/health' });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toEqual({ status: 'ok' });
    const ready = await h.app.inject({ method: 'GET', url: '/ready' });
    expect(ready.statusCode, ready.body).toBe(200);
    expect(ready.json<{ status: string; schemaVersion: unknown }>()).toMatchObject({ status: 'ready' });
    expect(ready.json<{ schemaVersion: unknown }>().schemaVersion).not.toBeNull();
  });

  it('/metrics counts requests by route pattern (never by raw URL) and reports the pool', async () => {
    const t = await createTenant(h.app, `metrics-${randomBytes(4).toString('hex')}`);
    const secretName = `never-a-label-${randomBytes(4).toString('hex')}`;
    await h.app.inject({ method: 'POST', url: `/v1/counters/${secretName}/increment`, headers: bearer(t.key) });
    await h.app.inject({ method: 'GET', url: '/health' });
    await h.app.inject({ method: 'GET', url: `/no/such/${secretName}` });
    const res = await h.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(String(res.headers['content-type'])).toMatch(/^text\/plain/);
    const text = res.body;
    expect(text).toMatch(/agentstore_http_requests_total\{method="GET",route="\/health",status_code="200"\} \d+/);
    expect(text).toMatch(/agentstore_http_requests_total\{method="POST",route="\/v1\/counters\/:name\/increment",status_code="200"\} \d+/);
    expect(text).toMatch(/agentstore_http_requests_total\{[^}]*status_code="404"\} \d+/);
    expect(text).toContain('agentstore_http_request_duration_seconds_bucket');
    for (const state of ['total', 'idle', 'waiting', 'max']) expect(text).toMatch(new RegExp(`agentstore_db_pool_connections\\{state="${state}"\\} \\d+`));
    expect(text).toMatch(/^agentstore_http_queued_requests 0$/m);
    expect(text).not.toContain(secretName);
    expect(text).not.toContain(t.id);
  });

  it('/metrics counts each request exactly once, under its own method and status, with a consistent histogram', async () => {
    const t = await createTenant(h.app, `metrics-exact-${randomBytes(4).toString('hex')}`);
    const route = '/v1/collections/:collection/records/:id';
    const series = (text: string, metric: string, labels: string) => {
      const line = text.split('\n').find((l) => l.startsWith(`${metric}{`) && l.includes(labels));
      return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    const scrape = async () => (await h.app.inject({ method: 'GET', url: '/metrics' })).body;
    const labels = (method: string, status: number) => `method="${method}",route="${route}",status_code="${status}"`;
    const before = await scrape();
    const url = `/v1/collections/metrics_exact/records/nope-${randomBytes(4).toString('hex')}`;
    for (let i = 0; i < 3; i++) expect((await h.app.inject({ method: 'GET', url, headers: bearer(t.key) })).statusCode).toBe(404);
    expect((await h.app.inject({ method: 'GET', url })).statusCode).toBe(401);
    expect((await h.app.inject({ method: 'HEAD', url, headers: bearer(t.key) })).statusCode).toBe(404);
    expect((await h.app.inject({ method: 'HEAD', url })).statusCode, 'HEAD routes are authenticated too').toBe(401);
    // No route: a plain 404, and a malformed body that fails before the not-found handler.
    const unmatched = (text: string, status: number) => series(text, 'agentstore_http_requests_total', `method="POST",route="unmatched",status_code="${status}"`);
    const nowhere = `/no/such/route-${randomBytes(4).toString('hex')}`;
    expect((await h.app.inject({ method: 'POST', url: nowhere, payload: {} })).statusCode).toBe(404);
    expect((await h.app.inject({ method: 'POST', url: nowhere, headers: { 'content-type': 'application/json' }, payload: '{nope' })).statusCode).toBe(400);
    const after = await scrape();
    expect(unmatched(after, 404) - unmatched(before, 404)).toBe(1);
    expect(unmatched(after, 400) - unmatched(before, 400)).toBe(1);
    const delta = (metric: string, method: string, status: number) => series(after, metric, labels(method, status)) - series(before, metric, labels(method, status));
    expect(delta('agentstore_http_requests_total', 'GET', 404)).toBe(3);
    expect(delta('agentstore_http_requests_total', 'GET', 401)).toBe(1);
    expect(delta('agentstore_http_requests_total', 'HEAD', 404)).toBe(1);
    expect(delta('agentstore_http_requests_total', 'HEAD', 401)).toBe(1);
    expect(delta('agentstore_http_request_duration_seconds_count', 'GET', 404)).toBe(3);
    // Buckets are cumulative and end at the count; the sum is positive.
    const buckets = after.split('\n').filter((l) => l.startsWith('agentstore_http_request_duration_seconds_bucket{') && l.includes(labels('GET', 404)));
    const values = buckets.map((l) => Number(l.slice(l.lastIndexOf(' ') + 1)));
    expect(buckets.at(-1)).toContain('le="+Inf"');
    expect(values).toEqual([...values].sort((a, b) => a - b));
    expect(values.at(-1)).toBe(series(after, 'agentstore_http_request_duration_seconds_count', labels('GET', 404)));
    expect(series(after, 'agentstore_http_request_duration_seconds_sum', labels('GET', 404))).toBeGreaterThan(0);
    // Every metric family is declared once.
    const types = after.split('\n').filter((l) => l.startsWith('# TYPE '));
    expect(new Set(types).size).toBe(types.length);
  });

  it('/openapi.json is OpenAPI 3.1.0 and documents every /v1 route with a summary; /docs serves the UI', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json<{ openapi: string; paths: Record<string, Record<string, { summary?: string; responses?: Record<string, unknown> }>> }>();
    expect(doc.openapi).toBe('3.1.0');
    const routes = listRoutes(h.app).filter((r) => r.split(' ')[1]?.startsWith('/v1/'));
    expect(routes.length).toBeGreaterThan(30);
    const missing: string[] = [];
    for (const route of routes) {
      const [method, path] = route.split(' ') as [string, string];
      // A parameter follows a slash; records:count and records:bulk have a literal colon.
      const op = doc.paths[path.replace(/\/:(\w+)/g, '/{$1}')]?.[method.toLowerCase()];
      if (!op?.summary) missing.push(route);
      else expect(Object.keys(op.responses ?? {}), route).toEqual(expect.arrayContaining(['4XX']));
    }
    expect(missing, 'routes without an OpenAPI operation and summary').toEqual([]);
    let docs = await h.app.inject({ method: 'GET', url: '/docs' });
    if (docs.statusCode >= 300 && docs.statusCode < 400) docs = await h.app.inject({ method: 'GET', url: String(docs.headers.location) });
    expect(docs.statusCode).toBe(200);
    expect(docs.body).toMatch(/swagger/i);
  });

  it('x-request-id: a well-formed one is echoed (header and problem body), a malformed one replaced', async () => {
    const given = `req-${randomBytes(6).toString('hex')}`;
    const ok = await h.app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': given } });
    expect(ok.headers['x-request-id']).toBe(given);
    const problem = await h.app.inject({ method: 'GET', url: '/v1/counters', headers: { 'x-request-id': given } });
    expect(expectProblem(problem, 401).requestId).toBe(given);
    for (const bad of ['has space', 'semi;colon', 'x'.repeat(129), '<script>', "'; DROP TABLE audit_log;--"]) {
      const res = await h.app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': bad } });
      const id = String(res.headers['x-request-id']);
      expect(id).not.toBe(bad);
      expect(id).toMatch(/^[0-9a-f]{16}-[0-9a-z]+$/);
    }
    const generated = await h.app.inject({ method: 'GET', url: '/health' });
    const next = await h.app.inject({ method: 'GET', url: '/health' });
    expect(String(generated.headers['x-request-id'])).toMatch(/^[0-9a-f]{16}-[0-9a-z]+$/);
    expect(next.headers['x-request-id']).not.toBe(generated.headers['x-request-id']);
  });

  it('an unknown route is a 404 problem, for any method', async () => {
    for (const [method, url] of [['GET', '/nope'], ['POST', '/v1/nope'], ['DELETE', '/v1/collections'], ['GET', '/v2/collections']] as const) {
      const body = expectProblem(await h.app.inject({ method, url }), [404, 405], { code: 'agentstore.not_found' });
      expect(body.instance).toBe(url);
    }
  });

  describe('readiness and file storage', () => {
    it('/ready names the file storage backend, and is a 503 problem once the storage fails', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentstore-ready-files-'));
      const own = await openHttp(backend, { store: { storage: { kind: 'local', dir: path.join(dir, 'files'), maxUploadBytes: 1024 } } });
      try {
        const ready = await own.app.inject({ method: 'GET', url: '/ready' });
        expect(ready.statusCode, ready.body).toBe(200);
        expect(ready.json()).toMatchObject({ status: 'ready', storage: { backend: 'local', status: 'ok' } });
        fs.rmSync(dir, { recursive: true, force: true });
        const res = await own.app.inject({ method: 'GET', url: '/ready' });
        const problem = expectProblem(res, 503, { code: 'agentstore.unavailable' });
        expect(problem.detail).toMatch(/^not ready: file storage \(local\): /);
        expect(problem.detail).not.toContain(dir);
        expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      } finally {
        await own.close();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('readiness when the database is gone', () => {
    it('/ready is a 503 problem with Retry-After once the database is closed; /health stays 200', async () => {
      const own = await openHttp(backend);
      try {
        expect((await own.app.inject({ method: 'GET', url: '/ready' })).statusCode).toBe(200);
        await own.store.internals.db.close();
        const started = Date.now();
        const res = await own.app.inject({ method: 'GET', url: '/ready' });
        expect(Date.now() - started).toBeLessThan(5000);
        expectProblem(res, 503, { code: 'agentstore.unavailable' });
        expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
        expect((await own.app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
      } finally {
        await own.app.close();
        await own.store.close().catch(() => undefined);
        await own.test.database.drop();
      }
    });
  });
});
