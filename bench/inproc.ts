/**
 * In-process workload, run as a child of bench/run.ts: library calls (store.collections.*)
 * and the raw-driver baselines doing the same SQL, each as a closed loop with 1 and 32
 * outstanding promises. Sends `{type:'result', payload}` over IPC.
 */
import { Sqlite } from '../src/db/sqlite-driver.js';
import pg from 'pg';
import { systemContext } from '../src/core/context.js';
import { createStore } from '../src/store.js';
import { BENCH, queryFilter } from './lib/config.js';
import type { Fixture } from './lib/fixture.js';
import { closedLoop, summarize, type Sample, type Summary } from './lib/stats.js';

export interface InprocResult {
  readonly name: string;
  readonly kind: 'library' | 'raw';
  readonly concurrency: number;
  readonly summary: Summary;
}

type Op = (i: number) => Promise<unknown>;

const fixture = JSON.parse(process.env.BENCH_FIXTURE ?? 'null') as Omit<Fixture, 'drop'> | null;
if (!fixture) throw new Error('BENCH_FIXTURE is required');
const { ids, tenantId } = fixture;
const pick = () => ids[Math.floor(Math.random() * ids.length)] as string;
const half = Math.max(1, Math.floor(fixture.ids.length / 2));

const store = await createStore({ databaseUrl: fixture.url, migrateOnStart: false });
const ctx = systemContext(tenantId);
const run = `${process.pid.toString(36)}-${Date.now().toString(36)}`;

const ops: Array<{ name: string; kind: 'library' | 'raw'; op: Op }> = [
  { name: 'get by id', kind: 'library', op: () => store.collections.get(ctx, 'items', pick()) },
  { name: 'create', kind: 'library', op: (i) => store.collections.create(ctx, 'bench_new', { status: 'open', n: i, title: `new ${i}` }) },
  { name: 'query (no index)', kind: 'library', op: () => store.collections.list(ctx, 'items', { filter: queryFilter(Math.floor(Math.random() * half)), limit: 20 }) },
  { name: 'query (index on status)', kind: 'library', op: () => store.collections.list(ctx, 'items_idx', { filter: queryFilter(Math.floor(Math.random() * half)), limit: 20 }) },
];

const closers: Array<() => unknown> = [() => store.close()];
// The loop's index restarts with every measurement; ids must not.
let inserted = 0;
const insertRow = (i: number) => {
  const now = new Date().toISOString();
  return [tenantId, 'bench_raw', `raw-${run}-${inserted++}`, 1, JSON.stringify({ status: 'open', n: i, title: `raw ${i}` }), now, now] as const;
};
const insertSql = (p: (n: number) => string) =>
  `insert into records (tenant_id, collection, id, version, data, created_at, updated_at) values (${[1, 2, 3, 4, 5, 6, 7].map(p).join(', ')})`;

if (fixture.backend === 'sqlite' && fixture.sqliteFile) {
  // The store's pragmas (src/db/database.ts), so a raw insert pays the same fsync.
  const db = new Sqlite(fixture.sqliteFile);
  db.pragma('busy_timeout = 5000');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = full');
  const select = db.prepare<[string, string, string], { data: string }>('select * from records where tenant_id = ? and collection = ? and id = ?');
  const insert = db.prepare(insertSql(() => '?'));
  ops.push(
    { name: 'raw pk select (better-sqlite3)', kind: 'raw', op: async () => JSON.parse(select.get(tenantId, 'items', pick())?.data ?? 'null') },
    { name: 'raw insert (better-sqlite3)', kind: 'raw', op: async (i) => insert.run(...insertRow(i)) },
  );
  closers.push(() => void db.close());
} else {
  // Session-level tenant as a startup option: each raw select is then exactly one round trip.
  const pool = new pg.Pool({ connectionString: fixture.url, max: 10, options: `-c app.tenant_id=${tenantId}` });
  const selectSql = 'select * from records where tenant_id = $1 and collection = $2 and id = $3';
  ops.push(
    { name: 'raw pk select (pg pool)', kind: 'raw', op: () => pool.query(selectSql, [tenantId, 'items', pick()]) },
    { name: 'raw insert (pg pool)', kind: 'raw', op: (i) => pool.query(insertSql((n) => `$${n}`), [...insertRow(i)]) },
    {
      // What inTenant(readOnly) does around the select: 3 round trips instead of 1.
      name: 'raw pk select in tx (pg: BEGIN+set_config, SELECT, COMMIT)',
      kind: 'raw',
      op: async () => {
        const client = await pool.connect();
        try {
          await client.query(`begin read only; select set_config('app.tenant_id', '${tenantId}', true), set_config('statement_timeout', '30000', true)`);
          await client.query(selectSql, [tenantId, 'items', pick()]);
          await client.query('commit');
        } finally {
          client.release();
        }
      },
    },
  );
  closers.push(() => pool.end());
}

const results: InprocResult[] = [];
for (const { name, kind, op } of ops) {
  for (const concurrency of BENCH.inprocConcurrency) {
    await closedLoop(op, concurrency, BENCH.warmupS * 500);
    const runs: Sample[] = [];
    for (let r = 0; r < BENCH.runs; r++) runs.push(await closedLoop(op, concurrency, BENCH.inprocDurationS * 1000));
    const summary = summarize(runs);
    results.push({ name, kind, concurrency, summary });
    process.stderr.write(`  [${fixture.backend}] in-process ${name} c=${concurrency}: ${summary.opsPerSec.toFixed(0)} ops/s p50 ${summary.p50.toFixed(3)} ms p99 ${summary.p99.toFixed(3)} ms errors ${summary.errors}\n`);
  }
}
for (const close of closers) await close();
process.send?.({ type: 'result', payload: results });
