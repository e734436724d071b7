/**
 * Where the machine's cores go during GET by id on PostgreSQL: the CPU of the server, of every
 * PostgreSQL process and of this process (autocannon) per request, and the machine's idle
 * share, for bare Fastify, the raw pg route and agentstore, alternated in short runs.
 *   node --import tsx bench/cores.ts      (CORES_ROUNDS=3, CORES_SECONDS=5, CORES_CONNS=100)
 * Linux only (/proc), with PostgreSQL's processes visible (not in another PID namespace).
 * Requests per transaction come from pg_stat_database (a coalesced batch is one transaction):
 * approximate, see below.
 */
import fs from 'node:fs';
import pg from 'pg';
import { startServer } from './lib/child.js';
import { createFixture, recordId } from './lib/fixture.js';
import { measureHttp, processCpuUs, untilIdle } from './lib/http.js';

const conns = Number(process.env.CORES_CONNS ?? 100);
const seconds = Number(process.env.CORES_SECONDS ?? 5);
const rounds = Number(process.env.CORES_ROUNDS ?? 3);

const postgresPids = (): number[] =>
  fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres';
    } catch {
      return false;
    }
  });
// Backends come and go (pools open connections as load starts and close idle ones; autovacuum):
// one that started during a run counts from 0; one that ended is counted in the postmaster's
// cutime + cstime (its reaped children's CPU). The rest of the machine (everything but the
// server and this process) is the check on that figure.
const postgresCpuUs = (pids: readonly number[]): Map<number, number> => {
  const cpu = new Map<number, number>();
  for (const pid of pids) {
    const us = processCpuUs(pid);
    if (us !== undefined) cpu.set(pid, us);
  }
  return cpu;
};
// In µs, from the clock ticks (1/100 s) of /proc/stat's first line, summed over the cores.
const machine = (): { idle: number; total: number } => {
  const ticks = (fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1, 9).map(Number);
  return { idle: ((ticks[3] ?? 0) + (ticks[4] ?? 0)) * 1e4, total: ticks.reduce((a, b) => a + b, 0) * 1e4 };
};

/** utime + stime of the live PostgreSQL processes, and cutime + cstime of the postmaster, in µs. */
function postgresCpu(): { live: Map<number, number>; reaped: number } {
  const pids = postgresPids();
  if (pids.length === 0) throw new Error('no postgres processes visible in /proc: run this on the database machine, outside a PID namespace');
  let reaped = 0;
  for (const pid of pids) {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // The postmaster: the one postgres process whose parent is not a postgres process.
    if (!pids.includes(Number(fields[1]))) reaped += (Number(fields[13]) + Number(fields[14])) * 1e4;
  }
  return { live: postgresCpuUs(pids), reaped };
}

const fx = await createFixture('postgres', 10000);
const baseline = await startServer('baseline', { BENCH_PG_URL: fx.url, BENCH_PG_TENANT: fx.tenantId });
const app = await startServer('app', { BENCH_DATABASE_URL: fx.url });
const stats = new pg.Client({ connectionString: fx.url });
await stats.connect();
const transactions = async (): Promise<number> =>
  Number((await stats.query<{ x: string }>('select xact_commit + xact_rollback as x from pg_stat_database where datname = current_database()')).rows[0]?.x);
let n = 0;
const routes = {
  bare: { server: baseline, request: { method: 'GET', path: '/bare' } },
  'raw pg': { server: baseline, request: { method: 'GET', setupRequest: (r: object) => ({ ...r, path: `/raw-pg/${recordId(n++ % 10000)}` }) } },
  agentstore: { server: app, request: { method: 'GET', setupRequest: (r: object) => ({ ...r, path: `/v1/collections/items/records/${recordId(n++ % 10000)}` }) } },
};
console.log('| round | route | req/s | server µs/req | PostgreSQL µs/req | autocannon µs/req | rest of the machine µs/req | idle | req/transaction |\n|---|---|---|---|---|---|---|---|---|');
for (let round = 0; round < rounds; round++) {
  for (const [name, { server, request }] of Object.entries(routes)) {
    const pid = server.child.pid as number;
    const pgBefore = postgresCpu();
    const [serverBefore, mineBefore, machineBefore, xactBefore] = [processCpuUs(pid) ?? 0, process.cpuUsage(), machine(), await transactions()];
    const sample = await measureHttp({ port: server.port, connections: conns, durationS: seconds, request, headers: { authorization: `Bearer ${fx.apiKey}` } });
    const [serverAfter, mineAfter, machineAfter] = [processCpuUs(pid) ?? 0, process.cpuUsage(), machine()];
    const pgAfter = postgresCpu();
    // A backend publishes its counts to pg_stat_database at most once a second, and what is
    // pending when it goes idle only after up to 10 s (PostgreSQL 15): after a short wait the
    // count misses up to ~1 s of each backend's transactions, which show up in a later window.
    // The raw pg route (exactly one request per transaction) reads 1.0-1.1: take it as +-10%.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const xacts = (await transactions()) - xactBefore;
    const per = (us: number) => (us / sample.total).toFixed(1);
    let pgUs = pgAfter.reaped - pgBefore.reaped;
    for (const [p, after] of pgAfter.live) pgUs += after - (pgBefore.live.get(p) ?? 0);
    // One that ended is in `reaped` with its whole life's CPU: take off what it had before.
    for (const [p, before] of pgBefore.live) if (!pgAfter.live.has(p)) pgUs -= before;
    const mine = mineAfter.user - mineBefore.user + mineAfter.system - mineBefore.system;
    const total = machineAfter.total - machineBefore.total;
    const idle = (100 * (machineAfter.idle - machineBefore.idle)) / Math.max(1, total);
    const rest = total - (machineAfter.idle - machineBefore.idle) - (serverAfter - serverBefore) - mine;
    console.log(`| ${round} | ${name} | ${Math.round(sample.opsPerSec)} | ${per(serverAfter - serverBefore)} | ${per(pgUs)} | ${per(mine)} | ${per(rest)} | ${idle.toFixed(0)}% | ${name !== 'bare' && xacts > 0 ? (sample.total / xacts).toFixed(1) : '-'} |${sample.errors + sample.non2xx > 0 ? ` errors ${sample.errors + sample.non2xx}` : ''}`);
    await untilIdle(pid);
  }
}
await stats.end();
await baseline.stop();
await app.stop();
await fx.drop();
