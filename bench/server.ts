/**
 * The server under test, run as a child process of bench/run.ts so that autocannon (in the
 * parent) and the server do not share an event loop. Modes:
 *
 *   app       the agentstore HTTP API (buildApp) over DATABASE_URL, logger off
 *   baseline  bare Fastify: GET and POST /bare (a constant), GET /spin (a constant after 100 µs of
 *             CPU), GET /raw-sqlite/:id (a prepared
 *             better-sqlite3 pk select), GET /raw-pg/:id (one pg pool query)
 *
 * It listens on an ephemeral port, waits BENCH_IDLE_SETTLE_MS (start-up work settles: the
 * first timers, lazy module loads, V8's first collections), reads its idle RSS (after a
 * global.gc() only when the child runs with --expose-gc: the benchmark's children do not, as
 * `npm start` does not), and reports port and idle RSS over IPC; on {type:'stop'} it reports
 * its RSS (current and peak) and exits.
 */
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Sqlite } from '../src/db/sqlite-driver.js';
import Fastify, { type FastifyInstance } from 'fastify';
import pg from 'pg';
import { BENCH } from './lib/config.js';

type Message = { type: 'stop' };

function send(message: unknown): void {
  process.send?.(message);
}

/** VmHWM is the peak resident set since start (Linux); 0 elsewhere. */
export function peakRssBytes(): number {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return match?.[1] ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

async function appServer(): Promise<{ app: FastifyInstance; close: () => Promise<void> }> {
  const { createStore } = await import('../src/store.js');
  const { buildApp } = await import('../src/server/app.js');
  const url = process.env.BENCH_DATABASE_URL;
  if (!url) throw new Error('BENCH_DATABASE_URL is required');
  const store = await createStore({ databaseUrl: url, migrateOnStart: false });
  // As `agentstore serve` reads it, so a run can compare settings (0 turns admission off).
  const budget = process.env.AGENTSTORE_LOOP_BUDGET_MS;
  if (budget !== undefined && !/^\d+$/.test(budget)) throw new Error(`AGENTSTORE_LOOP_BUDGET_MS must be a whole number of ms, got ${JSON.stringify(budget)}`);
  // Logging is off as in the bare baselines; BENCH_APP_LOG_LEVEL=info measures what
  // `npm start`'s default (a JSON line per request received and per response) costs, written
  // to /dev/null rather than to the benchmark's terminal.
  const logLevel = process.env.BENCH_APP_LOG_LEVEL;
  const logger = logLevel ? { level: logLevel, file: '/dev/null' } : false;
  const app = await buildApp(store, { logger, ...(budget !== undefined ? { server: { loopBudgetMs: Number(budget) } } : {}) });
  return { app, close: async () => { await app.close(); await store.close(); } };
}

async function baselineServer(): Promise<{ app: FastifyInstance; close: () => Promise<void> }> {
  const app = Fastify({ logger: false });
  const closers: Array<() => Promise<void> | void> = [];
  app.get('/bare', async () => ({ hello: 'world' }));
  // The same with a JSON body parsed: the write half of a conversation turn (bench/conversations.ts).
  app.post('/bare', async () => ({ hello: 'world' }));
  // A constant after ~100 µs of CPU: a route as slow as a real one, with nothing of ours in
  // it, to tell client-side artefacts at 1000 connections from our server's behaviour.
  app.get('/spin', async () => {
    const until = process.hrtime.bigint() + 100_000n;
    while (process.hrtime.bigint() < until);
    return { hello: 'world' };
  });

  const file = process.env.BENCH_SQLITE_FILE;
  if (file) {
    const tenant = process.env.BENCH_SQLITE_TENANT ?? '';
    // The same pragmas as the store's SQLite connection (src/db/database.ts).
    const db = new Sqlite(file);
    db.pragma('busy_timeout = 5000');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = full');
    const stmt = db.prepare<[string, string, string], { id: string; version: number; data: string; created_at: string; updated_at: string }>(
      'select * from records where tenant_id = ? and collection = ? and id = ?',
    );
    app.get<{ Params: { id: string } }>('/raw-sqlite/:id', async (req, reply) => {
      const row = stmt.get(tenant, 'items', req.params.id);
      if (!row) return reply.status(404).send({ error: 'not found' });
      return { id: row.id, version: row.version, createdAt: row.created_at, updatedAt: row.updated_at, data: JSON.parse(row.data) as unknown };
    });
    closers.push(() => void db.close());
  }

  const pgUrl = process.env.BENCH_PG_URL;
  if (pgUrl) {
    const tenant = process.env.BENCH_PG_TENANT ?? '';
    // Same pool size as the store's default; the tenant is set once per session, so each
    // request is exactly one round trip (the store needs a transaction per request instead).
    // The tenant id is a UUID from the fixture, safe in a startup option.
    const pool = new pg.Pool({ connectionString: pgUrl, max: 10, options: `-c app.tenant_id=${tenant}` });
    app.get<{ Params: { id: string } }>('/raw-pg/:id', async (req, reply) => {
      const { rows } = await pool.query('select * from records where tenant_id = $1 and collection = $2 and id = $3', [tenant, 'items', req.params.id]);
      const row = rows[0] as { id: string; version: number; data: unknown; created_at: Date; updated_at: Date } | undefined;
      if (!row) return reply.status(404).send({ error: 'not found' });
      return { id: row.id, version: row.version, createdAt: row.created_at.toISOString(), updatedAt: row.updated_at.toISOString(), data: row.data };
    });
    closers.push(() => pool.end());
  }
  return { app, close: async () => { await app.close(); for (const c of closers) await c(); } };
}

const mode = process.argv[2];
const server = mode === 'app' ? await appServer() : mode === 'baseline' ? await baselineServer() : undefined;
if (!server) throw new Error(`usage: server.ts app|baseline (got ${mode})`);
// The same backlog as `agentstore serve` (src/cli/serve.ts), for every server alike.
await server.app.listen({ host: '127.0.0.1', port: 0, backlog: 4096 });
const address = server.app.server.address();
await sleep(BENCH.idleSettleMs);
const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
send({ type: 'ready', port: typeof address === 'object' && address ? address.port : 0, idleRss: process.memoryUsage().rss, idleGc: gc !== undefined });
process.on('message', (message: Message) => {
  if (message.type !== 'stop') return;
  const rss = process.memoryUsage().rss;
  const peakRss = peakRssBytes();
  void server.close().finally(() => {
    send({ type: 'stopped', rss, peakRss });
    // Exit after the IPC message is flushed; --cpu-prof writes its profile on exit.
    setTimeout(() => process.exit(0), 50);
  });
});
