/**
 * A/B of the app server from two source trees, GET by id on SQLite (AB_BACKEND=postgres: on
 * PostgreSQL, with the raw pg route as the raw baseline): tree A (AB_TREE_A, e.g. a
 * `git worktree` of the previous commit with node_modules linked) and this tree (B), plus the
 * bare-Fastify and raw better-sqlite3 baselines, alternated in short autocannon runs; medians of
 * req/s and of server CPU per request, and of their per-round ratios.
 *   git worktree add /tmp/wt-a HEAD~1 && ln -s $PWD/node_modules /tmp/wt-a/node_modules
 *   AB_TREE_A=/tmp/wt-a node --import tsx bench/ab.ts     (AB_ROUNDS, AB_SECONDS, AB_CONNS)
 * or this tree under two settings: AB_ENV_A='AGENTSTORE_LOOP_BUDGET_MS=0' node --import tsx bench/ab.ts
 * Two identical trees differ by up to ~6-10% on this shared machine: smaller effects are noise.
 * Use an even AB_ROUNDS: the order of the servers alternates per round.
 * The servers run with Node's defaults, not with `npm start`'s V8 flags, so that V8 flags can be
 * A/B'd too: AB_ENV_A='NODE_OPTIONS=--max-semi-space-size=64'.
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createFixture, recordId } from './lib/fixture.js';
import { measureHttp, untilIdle } from './lib/http.js';
import { median } from './lib/stats.js';

// AB_ENV_A='NAME=value,...': environment for server A only; with it alone, A and B are this
// tree under two settings (e.g. AB_ENV_A=AGENTSTORE_LOOP_BUDGET_MS=0).
// Split at the first '=' only: a value may hold one (NODE_OPTIONS=--max-semi-space-size=64).
const envA = Object.fromEntries((process.env.AB_ENV_A ?? '').split(',').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
const treeA = process.env.AB_TREE_A ?? (process.env.AB_ENV_A ? path.resolve(import.meta.dirname, '..') : undefined);
if (!treeA) throw new Error('set AB_TREE_A to the other source tree, or AB_ENV_A (see the comment at the top of bench/ab.ts)');
const trees = { A: treeA, B: path.resolve(import.meta.dirname, '..') };
const rounds = Number(process.env.AB_ROUNDS ?? 8);
const seconds = Number(process.env.AB_SECONDS ?? 3);
const conns = Number(process.env.AB_CONNS ?? 100);
const backend = process.env.AB_BACKEND === 'postgres' ? 'postgres' : 'sqlite';
const fx = await createFixture(backend, 10000);
const start = (tree: string, mode: string, env: Record<string, string>) =>
  new Promise<{ child: ChildProcess; port: number }>((resolve) => {
    const child = fork(path.join(tree, 'bench/server.ts'), [mode], { execArgv: ['--import', 'tsx'], env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.on('message', (m: { type: string; port: number }) => m.type === 'ready' && resolve({ child, port: m.port }));
  });
const servers = {
  A: await start(trees.A, 'app', { BENCH_DATABASE_URL: fx.url, ...envA }),
  B: await start(trees.B, 'app', { BENCH_DATABASE_URL: fx.url }),
  bare: await start(trees.B, 'baseline', backend === 'sqlite' ? { BENCH_SQLITE_FILE: fx.sqliteFile!, BENCH_SQLITE_TENANT: fx.tenantId } : { BENCH_PG_URL: fx.url, BENCH_PG_TENANT: fx.tenantId }),
};
const NAMES = ['A', 'B', 'raw', 'bare'] as const;
const serverOf = (name: (typeof NAMES)[number]) => (name === 'raw' ? servers.bare : servers[name]);
let n = 0;
const request = (name: string) =>
  name === 'bare' ? { method: 'GET', path: '/bare' } : name === 'raw' ? { method: 'GET', setupRequest: (r: object) => ({ ...r, path: `/raw-${backend === 'sqlite' ? 'sqlite' : 'pg'}/${recordId(n++ % 10000)}` }) } : { method: 'GET', setupRequest: (r: object) => ({ ...r, path: `/v1/collections/items/records/${recordId(n++ % 10000)}` }) };
const out: Record<string, { rps: number[]; cpu: number[]; p99: number[] }> = {};
// The slot order alternates per round: with a fixed order, whichever server ran second came
// out 2-13% ahead in 10-round A/Bs of one tree against itself with A and B swapped.
const ORDERS = [NAMES, ['B', 'A', 'bare', 'raw']] as const;
for (let r = -1; r < rounds; r++) {
  for (const name of ORDERS[Math.max(0, r) % 2] as readonly (typeof NAMES)[number][]) {
    const s = serverOf(name);
    const sample = await measureHttp({ port: s.port, serverPid: s.child.pid!, connections: conns, durationS: r < 0 ? 1 : seconds, request: request(name), headers: { authorization: `Bearer ${fx.apiKey}` } });
    // What the server had queued when autocannon stopped must not run into the next measurement.
    await untilIdle(s.child.pid!);
    if (r < 0) continue;
    if (sample.errors + sample.non2xx > 0) console.log(name, 'errors', sample.errors, sample.non2xx);
    (out[name] ??= { rps: [], cpu: [], p99: [] }).rps.push(sample.opsPerSec);
    out[name].p99.push(sample.p99);
    out[name].cpu.push(sample.serverCpuUsPerReq ?? NaN);
  }
}
const ratio = (a: number[], b: number[]) => median(a.map((x, i) => x / (b[i] as number)));
for (const name of NAMES) console.log(`${name.padEnd(5)} ${median(out[name]!.rps).toFixed(0).padStart(6)} req/s  ${median(out[name]!.cpu).toFixed(1)} µs CPU/req  p99 ${median(out[name]!.p99).toFixed(0)} ms`);
console.log(`A/bare req/s ${(ratio(out.A!.rps, out.bare!.rps) * 100).toFixed(1)}%   B/bare ${(ratio(out.B!.rps, out.bare!.rps) * 100).toFixed(1)}%   B/A cpu ${ratio(out.B!.cpu, out.A!.cpu).toFixed(3)}   B/raw cpu ${ratio(out.B!.cpu, out.raw!.cpu).toFixed(3)}   raw/bare req/s ${(ratio(out.raw!.rps, out.bare!.rps) * 100).toFixed(1)}%`);
console.log(`p99 / bare p99: A ${ratio(out.A!.p99, out.bare!.p99).toFixed(2)}x   B ${ratio(out.B!.p99, out.bare!.p99).toFixed(2)}x   raw ${ratio(out.raw!.p99, out.bare!.p99).toFixed(2)}x`);
const peakRss = (pid: number) => /VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
console.log(`peak RSS: A ${Math.round(Number(peakRss(servers.A.child.pid!)) / 1024)} MiB, B ${Math.round(Number(peakRss(servers.B.child.pid!)) / 1024)} MiB`);
for (const s of Object.values(servers)) s.child.kill();
await fx.drop();
process.exit(0);
