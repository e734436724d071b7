/**
 * Bulk loads: rows/s of `POST /v1/collections/{c}/records:bulk` (NDJSON streamed over HTTP to
 * the agentstore server in a child process) against raw multi-row INSERT loops on the same
 * driver and database, in the same run, interleaved, several runs, median:
 *
 *   raw        500-row INSERTs of the same records into `records` (better-sqlite3 with the
 *              store's pragmas, one transaction per statement; pg as the runtime role under
 *              RLS, one autocommit statement per round trip): the target's baseline.
 *   raw+log    the same, plus the audit and change rows the store's unit of work writes for
 *              each record, in the same transaction: the SQL a bulk load cannot avoid while
 *              every record reaches the audit log and the change feed.
 *   bulk       the route, creating new records (500 lines per unit of work).
 *   resend     the route with the lines of an earlier run again: every line `unchanged`.
 *
 *   node --import tsx bench/bulk-load.ts             # BENCH_BACKENDS=sqlite,postgres BENCH_RUNS=3
 *   BULK_LINES=20000 node --import tsx bench/bulk-load.ts
 *
 * Prints a markdown table and writes the runs to .bench-results/bulk-load-<stamp>.json.
 *
 * PostgreSQL uses the test harness's roles on a throw-away database (bench/lib/fixture.ts).
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { Sqlite } from '../src/db/sqlite-driver.js';
import { uuidv7 } from '../src/core/ids.js';
import { BENCH } from './lib/config.js';
import { BENCH_DIR, startServer } from './lib/child.js';
import { createFixture, recordData, type BackendName, type Fixture } from './lib/fixture.js';
import { median } from './lib/stats.js';

const CHUNK = 500;
const LINES: Record<BackendName, number> = {
  sqlite: Number(process.env.BULK_LINES ?? (BENCH.quick ? 2000 : 20_000)),
  postgres: Number(process.env.BULK_LINES ?? (BENCH.quick ? 1000 : 10_000)),
};

const line = (prefix: string, i: number) => `${JSON.stringify({ id: `${prefix}${i}`, data: recordData(i) })}\n`;

/** Streams `lines` NDJSON lines to the route, reading the results as they come; rows/s from the first byte to the summary. */
function bulk(port: number, key: string, prefix: string, lines: number, expect: 'created' | 'unchanged'): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const req = http.request(
      { host: '127.0.0.1', port, method: 'POST', path: '/v1/collections/bench_new/records:bulk', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/x-ndjson' } },
      (res) => {
        let tail = '';
        res.setEncoding('utf8');
        res.on('data', (text: string) => (tail = (tail + text).slice(-4096)));
        res.on('end', () => {
          const seconds = (performance.now() - start) / 1000;
          const summary = (JSON.parse(tail.trim().split('\n').at(-1) ?? '{}') as { summary?: Record<string, number> }).summary;
          if (res.statusCode !== 200 || summary?.[expect] !== lines) reject(new Error(`bulk load: ${res.statusCode} ${tail.slice(-500)}`));
          else resolve(lines / seconds);
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    let i = 0;
    const write = () => {
      while (i < lines) if (!req.write(line(prefix, i++))) return void req.once('drain', write);
      req.end();
    };
    write();
  });
}

interface Raw {
  /** rows/s of the records alone, or with the unit's audit and change rows (`log`). */
  run(prefix: string, lines: number, log: boolean): Promise<number>;
  close(): Promise<void>;
}

/** The rows a unit of work writes beside each record (src/db/unit-of-work.ts), in the same shape. */
function logRows(tenantId: string, id: string, i: number, now: string) {
  const record = `{"id":${JSON.stringify(id)},"version":1,"createdAt":"${now}","updatedAt":"${now}","data":${JSON.stringify(recordData(i))}}`;
  return {
    audit: [tenantId, uuidv7(), now, 'api_key', 'bench', 'record.create', 'record', id, 'bench_raw', null, null],
    change: [tenantId, now, 'record', id, 'bench_raw', 'create', 1, record],
  };
}

/** One chunk's parameters: the records, and with `log` the unit's audit and change rows. */
interface ChunkRows {
  readonly n: number;
  readonly records: unknown[];
  readonly audit: unknown[];
  readonly changes: unknown[];
}

/**
 * The raw loop itself, for either driver: `write` sends one chunk. Building the parameters is
 * timed too, as the route has to build its own.
 */
function rawLoop(fx: Fixture, write: (rows: ChunkRows, log: boolean) => Promise<void> | void): Raw['run'] {
  let seq = 1_000_000_000;
  return async (prefix, lines, log) => {
    const start = performance.now();
    for (let first = 0; first < lines; first += CHUNK) {
      const n = Math.min(CHUNK, lines - first);
      const now = new Date().toISOString();
      const rows: ChunkRows = { n, records: [], audit: [], changes: [] };
      for (let i = first; i < first + n; i++) {
        const id = `${prefix}${i}`;
        rows.records.push(fx.tenantId, 'bench_raw', id, 1, JSON.stringify(recordData(i)), now, now);
        if (log) {
          const logged = logRows(fx.tenantId, id, i, now);
          rows.audit.push(...logged.audit);
          rows.changes.push(...logged.change, seq++);
        }
      }
      await write(rows, log);
    }
    return lines / ((performance.now() - start) / 1000);
  };
}

const values = (rows: number, width: number, dollar: boolean, offset = 0) =>
  Array.from({ length: rows }, (_, r) => `(${Array.from({ length: width }, (_, c) => (dollar ? `$${offset + r * width + c + 1}` : '?')).join(', ')})`).join(', ');
const RECORD_COLS = 'tenant_id, collection, id, version, data, created_at, updated_at';
const AUDIT_COLS = 'tenant_id, id, at, actor_type, actor_id, action, resource_type, resource_id, collection, request_id, details';
const CHANGE_COLS = 'tenant_id, at, resource_type, resource_id, collection, action, version, data';

function rawSqlite(fx: Fixture): Raw {
  // The store's pragmas (src/db/database.ts).
  const db = new Sqlite(fx.sqliteFile as string);
  db.pragma('busy_timeout = 5000');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = full');
  db.pragma('foreign_keys = ON');
  const statements = new Map<string, BetterSqlite3.Statement<unknown[]>>();
  const prepare = (text: string) => {
    let s = statements.get(text);
    if (!s) statements.set(text, (s = db.prepare<unknown[]>(text)));
    return s;
  };
  return {
    run: rawLoop(fx, ({ n, records, audit, changes }, log) => {
      db.exec('begin immediate');
      prepare(`insert into records (${RECORD_COLS}) values ${values(n, 7, false)}`).run(records);
      if (log) {
        prepare(`insert into audit_log (${AUDIT_COLS}) values ${values(n, 11, false)}`).run(audit);
        prepare(`insert into changes (${CHANGE_COLS}, tenant_seq) values ${values(n, 9, false)}`).run(changes);
      }
      db.exec('commit');
    }),
    async close() {
      db.close();
    },
  };
}

async function rawPostgres(fx: Fixture): Promise<Raw> {
  const client = new pg.Client({ connectionString: fx.url });
  await client.connect();
  // Row-level security checks the tenant of every row; set once for the session.
  await client.query(`select set_config('app.tenant_id', $1, false)`, [fx.tenantId]);
  return {
    run: rawLoop(fx, async ({ n, records, audit, changes }, log) => {
      const insert = `insert into records (${RECORD_COLS}) values ${values(n, 7, true)}`;
      if (!log) {
        await client.query(insert, records);
        return;
      }
      // One statement as the store sends it, so that the round trips match too.
      const text = `with a as (insert into audit_log (${AUDIT_COLS}) values ${values(n, 11, true, 7 * n)}),
        c as (insert into changes (${CHANGE_COLS}, tenant_seq) values ${values(n, 9, true, 18 * n)})
        ${insert}`;
      await client.query('begin');
      await client.query(text, [...records, ...audit, ...changes]);
      await client.query('commit');
    }),
    async close() {
      await client.end();
    },
  };
}

const rows: string[] = [];
const results: Record<string, unknown> = {};
for (const backend of BENCH.backends) {
  const fx = await createFixture(backend, 0);
  const server = await startServer('app', { BENCH_DATABASE_URL: fx.url });
  const raw = backend === 'sqlite' ? rawSqlite(fx) : await rawPostgres(fx);
  const lines = LINES[backend];
  const samples = { raw: [] as number[], rawLog: [] as number[], bulk: [] as number[], resend: [] as number[] };
  try {
    // Warm-up: JIT, statement caches, the collection's pages.
    await raw.run('warm-raw-', CHUNK * 2, true);
    await bulk(server.port, fx.apiKey, 'warm-', CHUNK * 2, 'created');
    for (let run = 0; run < BENCH.runs; run++) {
      // Alternated, so that the machine's load drifts over all of them alike.
      samples.raw.push(await raw.run(`raw${run}-`, lines, false));
      samples.bulk.push(await bulk(server.port, fx.apiKey, `b${run}-`, lines, 'created'));
      samples.rawLog.push(await raw.run(`log${run}-`, lines, true));
      samples.resend.push(await bulk(server.port, fx.apiKey, `b${run}-`, lines, 'unchanged'));
    }
  } finally {
    await raw.close();
    await server.stop();
    await fx.drop();
  }
  const m = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)])) as Record<keyof typeof samples, number>;
  // Paired: each run's bulk against the raw loop right before it.
  const paired = median(samples.bulk.map((b, i) => b / (samples.raw[i] as number)));
  const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
  rows.push(
    `| ${backend} | ${lines} | ${m.raw.toFixed(0)} | ${m.rawLog.toFixed(0)} | ${m.bulk.toFixed(0)} | ${pct(m.bulk / m.raw)} (paired ${pct(paired)}) | ${pct(m.bulk / m.rawLog)} | ${m.resend.toFixed(0)} |`,
  );
  results[backend] = { lines, runs: samples, medians: m, bulkOverRaw: m.bulk / m.raw, bulkOverRawPaired: paired, bulkOverRawLog: m.bulk / m.rawLog };
}
process.stdout.write(
  `| backend | lines per run | raw rows/s | raw+log rows/s | bulk rows/s | bulk / raw (target >= 60%) | bulk / raw+log | resend (unchanged) lines/s |\n|---|---|---|---|---|---|---|---|\n${rows.join('\n')}\n`,
);
const dir = path.resolve(BENCH_DIR, '..', '.bench-results');
fs.mkdirSync(dir, { recursive: true });
const file = path.join(dir, `bulk-load-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
fs.writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), runs: BENCH.runs, results }, null, 2));
process.stdout.write(`wrote ${path.relative(process.cwd(), file)}\n`);
