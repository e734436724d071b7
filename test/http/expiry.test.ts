/**
 * Record expiry over HTTP: `?ttl=` and `?expiresAt=` on POST, PUT and PATCH, `expiresAt` in
 * the answer, a collection's `ttlSeconds`, an expired record answered 404 by the route that
 * sends the stored JSON text, batches and bulk lines with an expiry, the sweep's deletes in the
 * change feed, and its count in /metrics.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LightMyRequestResponse } from 'fastify';
import { beforeAll, expect, it } from 'vitest';
import { forEachBackend } from '../helpers/index.js';
import { bearer, createTenant, expectProblem, useHttp, type HttpTenant } from './http-kit.js';

interface Rec {
  id: string;
  version: number;
  createdAt: string;
  updatedAt: string;
  expiresAt?: string;
  data: Record<string, unknown>;
}

forEachBackend('http record expiry', (backend) => {
  const h = useHttp(backend, { store: { expirySweepIntervalMs: 0 } });
  let T: HttpTenant;
  beforeAll(async () => {
    T = await createTenant(h.app, `expiry-${randomBytes(4).toString('hex')}`, 'admin');
  });
  const req = (method: string, url: string, payload?: unknown, headers: Record<string, string> = {}) =>
    h.app.inject({ method: method as 'GET', url, headers: { ...bearer(T.key), ...headers }, ...(payload === undefined ? {} : { payload: payload as string }) });
  const json = <X>(res: LightMyRequestResponse, status = 200): X => {
    expect(res.statusCode, res.body).toBe(status);
    return res.json<X>();
  };

  it('POST, PUT and PATCH take ttl or expiresAt and answer expiresAt; once it passes, GET is 404 and lists leave it out', async () => {
    const at = new Date(Date.now() + 1000).toISOString();
    const posted = json<Rec>(await req('POST', `/v1/collections/tmp/records?expiresAt=${encodeURIComponent(at)}`, { id: 'p', n: 1 }), 201);
    expect(posted.expiresAt).toBe(at);
    const put = json<Rec>(await req('PUT', '/v1/collections/tmp/records/q?ttl=3600', { n: 2 }), 201);
    expect(Date.parse(put.expiresAt as string) - Date.parse(put.updatedAt)).toBe(3_600_000);
    const patched = json<Rec>(await req('PATCH', `/v1/collections/tmp/records/q?expiresAt=${encodeURIComponent(at)}`, { n: 3 }));
    expect(patched.expiresAt).toBe(at);
    const kept = json<Rec>(await req('PATCH', '/v1/collections/tmp/records/q', { n: 4 }));
    expect(kept.expiresAt).toBe(at);
    const plain = json<Rec>(await req('POST', '/v1/collections/tmp/records', { id: 'plain' }), 201);
    expect(plain).not.toHaveProperty('expiresAt');
    // The stored JSON text route carries it too.
    const got = await req('GET', '/v1/collections/tmp/records/p');
    expect(json<Rec>(got)).toEqual(posted);
    expect(got.headers.etag).toBe('"1"');

    await sleep(Math.max(0, Date.parse(at) - Date.now()) + 20);
    expectProblem(await req('GET', '/v1/collections/tmp/records/p'), 404, { code: 'agentstore.not_found' });
    expectProblem(await req('GET', '/v1/collections/tmp/records/q?fields=n'), 404);
    expect(json<{ items: Rec[] }>(await req('GET', '/v1/collections/tmp/records')).items.map((r) => r.id)).toEqual(['plain']);
    expect(json<{ count: number }>(await req('GET', `/v1/collections/tmp/records:count?filter=${encodeURIComponent('{"n":{"gte":0}}')}`)).count).toBe(0);
    expectProblem(await req('PATCH', '/v1/collections/tmp/records/p', { n: 9 }), 404);
    expectProblem(await req('PUT', '/v1/collections/tmp/records/p', { n: 9 }, { 'if-match': '"1"' }), 412);
    // Created again, as if absent: 201, version 1.
    expect(json<Rec>(await req('PUT', '/v1/collections/tmp/records/p', { n: 10 }), 201).version).toBe(1);
  });

  it("PUT /v1/collections/{c} sets ttlSeconds, which records written without an expiry get; null clears it", async () => {
    const defined = json<{ ttlSeconds: number | null }>(await req('PUT', '/v1/collections/sessions', { ttlSeconds: 900 }));
    expect(defined.ttlSeconds).toBe(900);
    expect(json<{ ttlSeconds: number | null }>(await req('GET', '/v1/collections/sessions')).ttlSeconds).toBe(900);
    const rec = json<Rec>(await req('POST', '/v1/collections/sessions/records', { user: 'u1' }), 201);
    expect(Date.parse(rec.expiresAt as string) - Date.parse(rec.createdAt)).toBe(900_000);
    expect(json<{ ttlSeconds: number | null }>(await req('PUT', '/v1/collections/sessions', { ttlSeconds: null })).ttlSeconds).toBeNull();
    expect(json<Rec>(await req('POST', '/v1/collections/sessions/records', { user: 'u2' }), 201)).not.toHaveProperty('expiresAt');
    // Other collections show null.
    expect(json<{ ttlSeconds: number | null }>(await req('GET', '/v1/collections/tmp')).ttlSeconds).toBeNull();
  });

  it('batches and bulk lines take ttl and expiresAt', async () => {
    const batch = json<{ results: Array<{ record: Rec }> }>(
      await req('POST', '/v1/batch', { operations: [{ op: 'create', collection: 'b', id: 'x', data: {}, ttl: 60 }, { op: 'replace', collection: 'b', id: 'y', data: {}, ttl: 120 }] }),
    );
    expect(batch.results.map((r) => Date.parse(r.record.expiresAt as string) - Date.parse(r.record.createdAt))).toEqual([60_000, 120_000]);
    const at = new Date(Date.now() + 3_600_000).toISOString();
    const body = `${JSON.stringify({ id: 'l1', data: { n: 1 }, expiresAt: at })}\n${JSON.stringify({ id: 'l2', data: { n: 1 }, ttl: 0 })}\n`;
    const res = await req('POST', '/v1/collections/b/records:bulk', body, { 'content-type': 'application/x-ndjson' });
    expect(res.statusCode, res.body).toBe(200);
    const lines = res.body
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { line?: number; status: string; error?: { errors?: Array<{ field: string }> } })
      .filter((l) => l.line !== undefined);
    expect(lines.map((l) => l.status)).toEqual(['created', 'failed']);
    expect(lines[1]?.error?.errors?.[0]?.field).toBe('/ttl');
    expect(json<Rec>(await req('GET', '/v1/collections/b/records/l1')).expiresAt).toBe(at);
  });

  it('the sweep emits a delete per expired record to the change feed and counts them in /metrics', async () => {
    const at = new Date(Date.now() + 1000).toISOString();
    for (const id of ['s1', 's2']) json<Rec>(await req('POST', `/v1/collections/swept/records?expiresAt=${encodeURIComponent(at)}`, { id }), 201);
    const head = json<{ lastSeq: number }>(await req('GET', '/v1/changes?types=record')).lastSeq;
    await sleep(Math.max(0, Date.parse(at) - Date.now()) + 20);
    await h.store.internals.expiry.sweep();
    const page = json<{ items: Array<{ action: string; resourceId: string; collection: string }> }>(await req('GET', `/v1/changes?after=${head}&types=record`));
    expect(page.items.filter((c) => c.collection === 'swept').map((c) => `${c.action}:${c.resourceId}`).sort()).toEqual(['delete:s1', 'delete:s2']);
    const metrics = (await h.app.inject({ method: 'GET', url: '/metrics' })).body;
    const expired = /^agentstore_records_expired_total (\d+)$/m.exec(metrics)?.[1];
    expect(Number(expired)).toBeGreaterThanOrEqual(2);
    expect(metrics).toMatch(/^agentstore_expiry_sweep_failures_total 0$/m);
  });
});
