/**
 * The database becomes unreachable mid-run: the store reaches PostgreSQL (directly or via
 * pgbouncer) through a TCP proxy of ours, which we then switch to accepting connections and
 * destroying them at once. Requests must answer a 503 problem with Retry-After after a
 * bounded retry (seconds, not a hang), never a 500, and work again once it is back.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApp } from '../../src/server/app.js';
import { createMigratedTestDatabase, forEachBackend, openTestStore, type TestDatabase, type TestStore } from '../helpers/index.js';
import { SERVICE_KEY, bearer, createKey, createTenant, expectProblem, type HttpTenant } from './http-kit.js';

interface Proxy {
  readonly port: number;
  /** down: every open connection is cut and new ones are accepted then destroyed. */
  setDown(down: boolean): void;
  close(): Promise<void>;
}

async function startProxy(target: { host: string; port: number }): Promise<Proxy> {
  let down = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    if (down) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    setDown(value) {
      down = value;
      if (down) for (const s of sockets) s.destroy();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

forEachBackend(
  'http backend failure',
  (backend) => {
    let database: TestDatabase;
    let proxy: Proxy;
    let test: TestStore;
    let app: Awaited<ReturnType<typeof buildApp>>;
    let T: HttpTenant;

    beforeAll(async () => {
      database = await createMigratedTestDatabase(backend);
      const url = new URL(database.url);
      proxy = await startProxy({ host: url.hostname, port: Number(url.port || 5432) });
      url.hostname = '127.0.0.1';
      url.port = String(proxy.port);
      test = await openTestStore(backend, { database: { ...database, url: url.toString() }, store: { auth: { serviceKey: SERVICE_KEY } } });
      app = await buildApp(test.store, { logger: false });
      T = await createTenant(app, `failure-${randomBytes(4).toString('hex')}`, 'owner');
    });
    afterAll(async () => {
      proxy?.setDown(false);
      await app?.close();
      await test?.close();
      await proxy?.close();
      await database?.drop();
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
