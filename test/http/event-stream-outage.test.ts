/**
 * An open event stream while its server cannot reach the database. The stream's server
 * reaches PostgreSQL (directly or via pgbouncer) through a TCP proxy that the test takes down
 * (test/helpers/tcp-proxy.ts); another store, as another instance would, keeps writing
 * directly. Also: the server's connections terminated by PostgreSQL (pg_terminate_backend).
 *
 * What docs/api.md ("Change feed") promises: the stream stays open (no 503 mid-stream, no
 * end that would make EventSource reconnect into a 503, which it does not retry), keeps
 * sending its keep-alive comment, and once the database answers again it delivers what was
 * committed meanwhile, in order, with nothing lost or repeated.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { systemContext } from '../../src/core/context.js';
import { buildApp } from '../../src/server/app.js';
import { forEachBackend, openTestStore, type TestDatabase, type TestStore } from '../helpers/index.js';
import { withAdmin } from '../helpers/pg-admin.js';
import { openStoreBehindProxy, type StoreBehindProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { SERVICE_KEY, bearer, createTenant, expectProblem, listen, openSse, type HttpTenant, type SseEvent } from './http-kit.js';

const HEARTBEAT_MS = 300;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const resourceIds = (events: readonly SseEvent[]) => events.map((e) => (JSON.parse(e.data) as { resourceId: string }).resourceId);

forEachBackend(
  'event stream through a database outage',
  (backend) => {
    let behind: StoreBehindProxy;
    let database: TestDatabase;
    let proxy: TcpProxy;
    let other: TestStore;
    let app: Awaited<ReturnType<typeof buildApp>>;
    let base: string;

    beforeAll(async () => {
      behind = await openStoreBehindProxy(backend, { auth: { serviceKey: SERVICE_KEY } });
      ({ database, proxy } = behind);
      // With no wake-up from another process, the stream reads the log at each heartbeat.
      app = await buildApp(behind.test.store, { logger: false, server: { eventsHeartbeatMs: HEARTBEAT_MS } });
      base = await listen(app);
      other = await openTestStore(backend, { database });
    });
    afterAll(async () => {
      proxy?.setDown(false);
      await app?.close();
      await other?.close();
      await behind?.close();
    });

    const tenant = () => createTenant(app, `outage-${randomBytes(4).toString('hex')}`);
    /** A record written by the other instance, which still reaches the database. */
    const writeElsewhere = async (t: HttpTenant, id: string) => {
      await other.store.collections.create(systemContext(t.id), 'outage', { n: 1 }, { id });
    };
    /** The tenant's record changes as the other instance reads them: the reference. */
    const log = async (t: HttpTenant) => (await other.store.changes.poll(systemContext(t.id), { after: 0, limit: 1000, resourceTypes: ['record'] })).items;
    // Records only: the tenant's own creation (its key, the collection) is in its log too.
    const stream = (t: HttpTenant) => openSse(`${base}/v1/events?after=0&types=record`, bearer(t.key));

    it('stays open and alive while the database is unreachable (past the credential cache), then delivers what was committed meanwhile, none lost or repeated', async () => {
      const t = await tenant();
      const sse = await stream(t);
      const seen: SseEvent[] = [];
      try {
        expect(sse.status).toBe(200);
        await writeElsewhere(t, 'before-1');
        await writeElsewhere(t, 'before-2');
        seen.push(...(await sse.take(2)));

        proxy.setDown(true);
        for (const id of ['during-1', 'during-2', 'during-3']) await writeElsewhere(t, id);
        // Longer than a few of the stream's retries (about 1 s each) and than the 5 s the
        // credential cache holds the stream's key: its periodic re-check cannot reach the
        // database either, which must not end the stream.
        const downUntil = performance.now() + 6_000;
        let quietest = 0;
        while (performance.now() < downUntil) {
          await sleep(250);
          quietest = Math.max(quietest, performance.now() - sse.lastBytesAt());
        }
        await expect(sse.take(1, 10), 'nothing could be read while the database was unreachable').rejects.toThrow(/timed out/);
        // A new stream (a client reconnecting now) cannot start: 503 with Retry-After, before
        // any byte of a stream. EventSource gives up on it (docs/api.md says to reconnect by hand).
        const refused = await app.inject({ method: 'GET', url: '/v1/events?types=record', headers: bearer(t.key) });
        expectProblem(refused, 503, { code: 'agentstore.unavailable' });
        expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
        // Keep-alive comments went on: the proxies between the client and us keep the stream.
        expect(quietest, 'longest silence of the stream during the outage, ms').toBeLessThan(3_000);
        proxy.setDown(false);

        seen.push(...(await sse.take(3, 10_000)));
        await writeElsewhere(t, 'after-1');
        seen.push(...(await sse.take(1, 5_000)));
        await expect(sse.take(1, 2 * HEARTBEAT_MS), 'no repeats').rejects.toThrow(/timed out/);
      } finally {
        proxy.setDown(false);
        sse.close();
      }
      const expected = await log(t);
      expect(seen.map((e) => Number(e.id))).toEqual(expected.map((c) => c.seq));
      expect(resourceIds(seen)).toEqual(['before-1', 'before-2', 'during-1', 'during-2', 'during-3', 'after-1']);
      // Once it is back, the server itself serves requests and new streams again.
      expect((await app.inject({ method: 'GET', url: '/v1/changes?after=0', headers: bearer(t.key) })).statusCode).toBe(200);
    }, 30_000);

    it("survives PostgreSQL terminating the server's connections, and reads on with the next ones", async () => {
      const t = await tenant();
      const sse = await stream(t);
      const seen: SseEvent[] = [];
      try {
        await writeElsewhere(t, 'k1');
        seen.push(...(await sse.take(1)));
        for (let round = 0; round < 3; round++) {
          // Every connection of the runtime role to this database: the server's pool (through the
          // proxy, or pgbouncer's server connections) and the other instance's alike.
          const terminated = await withAdmin(async (admin) => {
            const { rows } = await admin.query<{ n: number }>(
              "select count(pg_terminate_backend(pid))::int as n from pg_stat_activity where datname = $1 and usename = 'agentstore_app' and pid <> pg_backend_pid()",
              [database.name],
            );
            return rows[0]?.n ?? 0;
          });
          expect(terminated, 'connections terminated').toBeGreaterThan(0);
          await sleep(2 * HEARTBEAT_MS);
          await writeElsewhere(t, `k${round + 2}`);
          seen.push(...(await sse.take(1, 10_000)));
        }
        await expect(sse.take(1, 2 * HEARTBEAT_MS), 'no repeats').rejects.toThrow(/timed out/);
      } finally {
        sse.close();
      }
      const expected = await log(t);
      expect(seen.map((e) => Number(e.id))).toEqual(expected.map((c) => c.seq));
      expect(resourceIds(seen)).toEqual(['k1', 'k2', 'k3', 'k4']);
    }, 30_000);
  },
  { only: ['postgres', 'pgbouncer'] },
);
