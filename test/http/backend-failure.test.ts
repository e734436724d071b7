/**
 * The database becomes unreachable mid-run: the store reaches PostgreSQL (directly or via
 * pgbouncer) through a TCP proxy of ours (test/helpers/tcp-proxy.ts), which we then switch to
 * accepting connections and destroying them at once. Requests must answer a 503 problem with
 * Retry-After after a bounded retry (seconds, not a hang), never a 500, and work again once it
 * is back. (An open event stream through the same outage: event-stream-outage.test.ts.)
 */
import { randomBytes } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApp } from '../../src/server/app.js';
import { forEachBackend } from '../helpers/index.js';
import { openStoreBehindProxy, type StoreBehindProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { SERVICE_KEY, bearer, createKey, createTenant, expectProblem, type HttpTenant } from './http-kit.js';

forEachBackend(
  'http backend failure',
  (backend) => {
    let behind: StoreBehindProxy;
    let proxy: TcpProxy;
    let app: Awaited<ReturnType<typeof buildApp>>;
    let T: HttpTenant;

    beforeAll(async () => {
      behind = await openStoreBehindProxy(backend, { auth: { serviceKey: SERVICE_KEY } });
      proxy = behind.proxy;
      app = await buildApp(behind.test.store, { logger: false });
      T = await createTenant(app, `failure-${randomBytes(4).toString('hex')}`, 'owner');
    });
    afterAll(async () => {
      proxy?.setDown(false);
      await app?.close();
      await behind?.close();
    });

    const timed = async (run: () => Promise<LightMyRequestResponse>): Promise<{ res: LightMyRequestResponse; ms: number }> => {
      const started = Date.now();
      const res = await run();
      return { res, ms: Date.now() - started };
    };

    it('answers 503 problem+json with Retry-After within seconds while the database is unreachable, then recovers', async () => {
      const created = await app.inject({ method: 'POST', url: '/v1/collections/f/records', headers: bearer(T.key), payload: { id: 'before' } });
      expect(created.statusCode, created.body).toBe(201);
      // A key the auth cache has never seen: its lookup needs the database too.
      const fresh = await createKey(app, T, 'member');

      proxy.setDown(true);
      const attempts: [string, () => Promise<LightMyRequestResponse>][] = [
        ['create', () => app.inject({ method: 'POST', url: '/v1/collections/f/records', headers: bearer(T.key), payload: { id: 'during' } })],
        ['read', () => app.inject({ method: 'GET', url: '/v1/collections/f/records/before', headers: bearer(T.key) })],
        ['list', () => app.inject({ method: 'GET', url: '/v1/collections/f/records', headers: bearer(T.key) })],
        ['increment', () => app.inject({ method: 'POST', url: '/v1/counters/f/increment', headers: bearer(T.key) })],
        ['uncached key', () => app.inject({ method: 'GET', url: '/v1/counters', headers: bearer(fresh.key) })],
        ['service key', () => app.inject({ method: 'GET', url: '/v1/tenants', headers: bearer(SERVICE_KEY) })],
        ['login', () => app.inject({ method: 'POST', url: '/v1/auth/login', payload: { tenantId: T.id, email: 'x@example.com', password: 'whatever-password' } })],
        ['ready', () => app.inject({ method: 'GET', url: '/ready' })],
      ];
      for (const [what, run] of attempts) {
        const { res, ms } = await timed(run);
        expect(res.statusCode, `${what}: ${res.body}`).not.toBe(500);
        expectProblem(res, 503, { code: 'agentstore.unavailable' });
        expect(Number(res.headers['retry-after']), what).toBeGreaterThanOrEqual(1);
        expect(ms, `${what} took ${ms} ms`).toBeLessThan(5000);
        expect(res.body).not.toMatch(/ECONNRESET|Connection terminated|127\.0\.0\.1|postgres:\/\//);
      }
      const concurrent = await Promise.all(Array.from({ length: 10 }, (_, i) => app.inject({ method: 'POST', url: `/v1/counters/c${i}/increment`, headers: bearer(T.key) })));
      for (const res of concurrent) expectProblem(res, 503);

      proxy.setDown(false);
      // The pool drops its broken clients; within a few retries the store works again.
      let recovered: LightMyRequestResponse | undefined;
      for (let i = 0; i < 20; i++) {
        recovered = await app.inject({ method: 'POST', url: '/v1/collections/f/records', headers: bearer(T.key), payload: { id: 'after' } });
        if (recovered.statusCode === 201) break;
        expect(recovered.statusCode, recovered.body).toBe(503);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(recovered?.statusCode, recovered?.body).toBe(201);
      const list = await app.inject({ method: 'GET', url: '/v1/collections/f/records', headers: bearer(T.key) });
      // Nothing written while the database was down.
      expect(list.json<{ items: { id: string }[] }>().items.map((r) => r.id).sort()).toEqual(['after', 'before']);
      expect((await app.inject({ method: 'GET', url: '/ready' })).statusCode).toBe(200);
    });
  },
  { only: ['postgres', 'pgbouncer'] },
);
