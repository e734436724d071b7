/**
 * Per-layer timing of a get by id, in-process, one call at a time (no queueing):
 *   node --import tsx bench/layers.ts            (BENCH_BACKENDS applies)
 * Prints the mean microseconds of each layer alone, so the lead can see what the HTTP
 * get-by-id path pays on top of the SQL, and counts PostgreSQL round trips per call.
 */
import { Sqlite } from '../src/db/sqlite-driver.js';
import pg from 'pg';
import { sql } from 'kysely';
import { systemContext } from '../src/core/context.js';
import { createStore } from '../src/store.js';
import { BENCH } from './lib/config.js';
import { createFixture } from './lib/fixture.js';
import { median } from './lib/stats.js';

const ITER = BENCH.quick ? 500 : 5000;

const ROUNDS = BENCH.quick ? 1 : 3;
let layers: Array<{ label: string; fn: (i: number) => unknown }> = [];
const time = (label: string, fn: (i: number) => unknown) => void layers.push({ label, fn });

async function once(fn: (i: number) => unknown): Promise<number> {
  for (let i = 0; i < 500; i++) await fn(i);
  const t0 = performance.now();
  for (let i = 0; i < ITER; i++) await fn(i);
  return ((performance.now() - t0) * 1000) / ITER;
}

/**
 * Sequential round trips on a 2-core machine are at the mercy of wake-up latency, so each
 * layer is timed ROUNDS times, interleaved with the others, and the median is printed.
 */
async function runLayers(): Promise<Map<string, number>> {
  const samples = new Map<string, number[]>(layers.map((l) => [l.label, []]));
  for (let r = 0; r < ROUNDS; r++) for (const l of layers) samples.get(l.label)?.push(await once(l.fn));
  const out = new Map<string, number>();
  for (const l of layers) {
    const us = median(samples.get(l.label) ?? []);
    out.set(l.label, us);
    process.stdout.write(`  ${us.toFixed(1).padStart(8)} us  ${l.label}\n`);
  }
  layers = [];
  return out;
}

// Counts every query a pg client sends (Kysely's and ours): round trips per call.
let pgQueries = 0;
const originalQuery = pg.Client.prototype.query;
pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
  pgQueries++;
  return (originalQuery as (...a: unknown[]) => unknown).apply(this, args);
} as typeof pg.Client.prototype.query;

for (const backend of BENCH.backends) {
  const fx = await createFixture(backend, 2000);
  const store = await createStore({ databaseUrl: fx.url, migrateOnStart: false });
  try {
    const ctx = systemContext(fx.tenantId);
    const db = store.internals.db;
    let closeNative: (() => unknown) | undefined;
    const pick = (i: number) => fx.ids[i % fx.ids.length] as string;
    process.stdout.write(`\n## ${backend} (mean of ${ITER} sequential calls, median of ${ROUNDS} interleaved rounds)\n`);
    time('auth.authenticate(api key), cache hit (sha256 + LRU)', () => store.auth.authenticate(fx.apiKey));
    time('Kysely: build + compile the pk select', (i) =>
      db.kysely.selectFrom('records').selectAll().where('tenant_id', '=', fx.tenantId).where('collection', '=', 'items').where('id', '=', pick(i)).compile(),
    );
    time('db.inTenant(readOnly) around nothing', () => db.inTenant(fx.tenantId, async () => undefined, { readOnly: true }));
    time('db.inTenant(readOnly) + Kysely pk select', (i) =>
      db.inTenant(fx.tenantId, (trx) => trx.selectFrom('records').selectAll().where('tenant_id', '=', fx.tenantId).where('collection', '=', 'items').where('id', '=', pick(i)).executeTakeFirst(), { readOnly: true }),
    );
    // On PostgreSQL RLS hides every row outside a tenant transaction, so there it is `select 1`.
    time(backend === 'sqlite' ? 'Kysely pk select, no transaction (db.kysely)' : 'Kysely `select 1` through the pool (db.kysely)', (i) =>
      backend === 'sqlite'
        ? db.kysely.selectFrom('records').selectAll().where('tenant_id', '=', fx.tenantId).where('collection', '=', 'items').where('id', '=', pick(i)).executeTakeFirst()
        : sql`select 1`.execute(db.kysely),
    );
    if (backend === 'sqlite' && fx.sqliteFile) {
      const native = new Sqlite(fx.sqliteFile, { readonly: true });
      const text = db.kysely.selectFrom('records').selectAll().where('tenant_id', '=', fx.tenantId).where('collection', '=', 'items').where('id', '=', 'x').compile().sql;
      const stmt = native.prepare(text);
      // Kysely's SqliteDriver calls prepare() for every query: there is no statement cache.
      time('better-sqlite3 prepare() of that select (paid per query via Kysely)', () => native.prepare(text));
      time('better-sqlite3 prepared .get() of that select', (i) => stmt.get(fx.tenantId, 'items', pick(i)));
      closeNative = () => native.close();
    }
    time('store.collections.get (the whole library call)', (i) => store.collections.get(ctx, 'items', pick(i)));
    let client: pg.Client | undefined;
    if (backend === 'postgres') {
      pgQueries = 0;
      for (let i = 0; i < 100; i++) await store.collections.get(ctx, 'items', pick(i));
      process.stdout.write(`  ${(pgQueries / 100).toFixed(2)} pg queries (round trips) per collections.get\n`);
      const c = new pg.Client({ connectionString: fx.url });
      client = c;
      await c.connect();
      // Session-level tenant for the one-round-trip variant; the tx variants set it locally.
      await c.query("select set_config('app.tenant_id', $1, false)", [fx.tenantId]);
      const selectSql = 'select * from records where tenant_id = $1 and collection = $2 and id = $3';
      time('raw pg: BEGIN READ ONLY + set_config (one simple-protocol query)', async () => {
        await c.query(`begin read only; select set_config('app.tenant_id', '${fx.tenantId}', true), set_config('statement_timeout', '30000', true)`);
        await c.query('commit');
      });
      time('raw pg: the same tx + pk select (3 round trips)', async (i) => {
        await c.query(`begin read only; select set_config('app.tenant_id', '${fx.tenantId}', true), set_config('statement_timeout', '30000', true)`);
        await c.query(selectSql, [fx.tenantId, 'items', pick(i)]);
        await c.query('commit');
      });
      time('raw pg: pk select alone, tenant set per session (1 round trip)', (i) => c.query(selectSql, [fx.tenantId, 'items', pick(i)]));
      time('raw pg: select 1', () => c.query('select 1'));
    }
    await runLayers();
    await client?.end();
    closeNative?.();
  } finally {
    await store.close();
    await fx.drop();
  }
}
