/**
 * A 412 carries the ETag of the version the record is at, so a client can retry against
 * it without another read; where the record is gone there is no version and no ETag.
 */
import { randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import { forEachBackend } from '../helpers/index.js';
import { bearer, createTenant, expectProblem, useHttp } from './http-kit.js';

forEachBackend('412 with the current ETag', (backend) => {
  const h = useHttp(backend);

  const setup = async () => {
    const t = await createTenant(h.app, `etag-${randomBytes(4).toString('hex')}`);
    const url = `/v1/collections/tasks/records/r1`;
    const created = await h.app.inject({ method: 'POST', url: '/v1/collections/tasks/records', headers: bearer(t.key), payload: { id: 'r1', n: 1 } });
    expect(created.statusCode).toBe(201);
    const updated = await h.app.inject({ method: 'PATCH', url, headers: bearer(t.key), payload: { n: 2 } });
    expect(updated.headers.etag).toBe('"2"');
    return { t, url };
  };

  for (const method of ['PUT', 'PATCH', 'DELETE'] as const) {
    it(`${method} with a stale If-Match: 412, ETag of the current version, nothing changed`, async () => {
      const { t, url } = await setup();
      const res = await h.app.inject({ method, url, headers: { ...bearer(t.key), 'if-match': '"1"' }, ...(method === 'DELETE' ? {} : { payload: { n: 9 } }) });
      expectProblem(res, 412, { code: 'agentstore.precondition_failed' });
      expect(res.headers.etag).toBe('"2"');
      const unchanged = await h.app.inject({ method: 'GET', url, headers: bearer(t.key) });
      expect([unchanged.headers.etag, unchanged.json<{ data: unknown }>().data]).toEqual(['"2"', { id: 'r1', n: 2 }]);
      // Retrying with that ETag succeeds.
      const retry = await h.app.inject({ method, url, headers: { ...bearer(t.key), 'if-match': String(res.headers.etag) }, ...(method === 'DELETE' ? {} : { payload: { n: 9 } }) });
      expect(retry.statusCode, retry.body).toBe(method === 'DELETE' ? 204 : 200);
    });

    it(`${method} with If-Match on a missing record: 412 without an ETag`, async () => {
      const { t } = await setup();
      const res = await h.app.inject({ method, url: '/v1/collections/tasks/records/missing', headers: { ...bearer(t.key), 'if-match': '"1"' }, ...(method === 'DELETE' ? {} : { payload: { n: 9 } }) });
      expectProblem(res, 412, { code: 'agentstore.precondition_failed' });
      expect(res.headers.etag).toBeUndefined();
    });
  }
});
