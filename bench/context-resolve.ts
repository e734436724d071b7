/**
 * Context resolution: the latency of a 4-level resolve (global -> project -> branch -> task,
 * every level with a document of ~1.5 KiB), in-process (`store.context.resolve`) and over
 * HTTP (`GET /v1/tasks/{id}/context/resolved`, the server in a child process), with a read
 * of one task by id measured alike in the same run as the reference for one keyed read.
 *
 *   node --import tsx bench/context-resolve.ts        # BENCH_BACKENDS=sqlite,postgres BENCH_RUNS=3
 *
 * p50 at concurrency 1 is the latency a caller sees (over HTTP measured by a keep-alive
 * client loop here, since autocannon reports whole milliseconds); at 32 (in-process) and
 * 100 connections (HTTP, autocannon) the rate. Prints a markdown table; writes the runs to .bench-results/context-resolve-<stamp>.json.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { systemContext } from '../src/core/context.js';
import { createStore } from '../src/store.js';
import { BENCH } from './lib/config.js';
import { BENCH_DIR, startServer } from './lib/child.js';
import { createFixture, type BackendName } from './lib/fixture.js';
import { measureHttp } from './lib/http.js';
import { closedLoop, summarize, type Sample, type Summary } from './lib/stats.js';

/** A context document of ~1.5 KiB with nested objects and arrays, as agent platforms keep. */
function document(level: string): Record<string, unknown> {
  return {
    [`${level}Notes`]: `notes of the ${level} `.repeat(20),
    model: { provider: 'openai', name: `model-${level}`, temperature: 0.2 },
    tools: [`${level}-search`, `${level}-code`, `${level}-browse`],
    limits: { [`${level}Tokens`]: 8000, calls: 20 },
    conventions: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`${level}_rule_${i}`, `rule ${i} of the ${level}`])),
  };
}

interface Row {
  readonly backend: BackendName;
  readonly name: string;
  readonly where: 'in-process' | 'http';
  readonly concurrency: number;
  readonly summary: Summary;
}

const rows: Row[] = [];
const warmupMs = BENCH.warmupS * 1000;

for (const backend of BENCH.backends) {
  const fx = await createFixture(backend, 0);
  const store = await createStore({ databaseUrl: fx.url, migrateOnStart: false });
  try {
    const ctx = systemContext(fx.tenantId);
    const project = (await store.projects.create(ctx, { name: 'bench' })).project;
    const branch = (await store.branches.create(ctx, project.id, { name: 'main' })).branch;
    const task = (await store.tasks.create(ctx, branch.id, { title: 'bench task' })).task;
    await store.context.put(ctx, { level: 'global' }, document('global'));
    await store.context.put(ctx, { level: 'project', id: project.id }, document('project'));
    await store.context.put(ctx, { level: 'branch', id: branch.id }, document('branch'));
    await store.context.put(ctx, { level: 'task', id: task.id }, document('task'));
    const resolved = await store.context.resolve(ctx, { level: 'task', id: task.id });
    if (resolved.sources.taskNotes !== 'task' || resolved.sources.globalNotes !== 'global') throw new Error('the resolve does not merge the four levels');

    const inproc = { resolve: () => store.context.resolve(ctx, { level: 'task', id: task.id }), 'get task': () => store.tasks.get(ctx, task.id) };
    for (const [name, op] of Object.entries(inproc)) {
      await closedLoop(op, 8, warmupMs);
      for (const concurrency of BENCH.inprocConcurrency) {
        const runs: Sample[] = [];
        for (let r = 0; r < BENCH.runs; r++) runs.push(await closedLoop(op, concurrency, BENCH.inprocDurationS * 1000));
        rows.push({ backend, name, where: 'in-process', concurrency, summary: summarize(runs) });
      }
    }

    const server = await startServer('app', { BENCH_DATABASE_URL: fx.url });
    try {
      const headers = { authorization: `Bearer ${fx.apiKey}` };
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const get = (url: string) =>
        new Promise<void>((resolve, reject) => {
          const req = http.get({ host: '127.0.0.1', port: server.port, path: url, headers, agent }, (res) => {
            res.resume();
            res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${url}: ${res.statusCode}`))));
          });
          req.on('error', reject);
        });
      const routes = { resolve: `/v1/tasks/${task.id}/context/resolved`, 'get task': `/v1/tasks/${task.id}` };
      for (const [name, url] of Object.entries(routes)) {
        await measureHttp({ port: server.port, connections: 10, durationS: BENCH.warmupS, request: { method: 'GET', path: url }, headers });
        const single: Sample[] = [];
        for (let r = 0; r < BENCH.runs; r++) single.push(await closedLoop(() => get(url), 1, BENCH.durationS * 1000));
        rows.push({ backend, name, where: 'http', concurrency: 1, summary: summarize(single) });
        const loaded: Sample[] = [];
        for (let r = 0; r < BENCH.runs; r++) loaded.push(await measureHttp({ port: server.port, connections: 100, durationS: BENCH.durationS, request: { method: 'GET', path: url }, headers, serverPid: server.child.pid as number }));
        rows.push({ backend, name, where: 'http', concurrency: 100, summary: summarize(loaded) });
      }
      agent.destroy();
    } finally {
      await server.stop();
    }
  } finally {
    await store.close();
    await fx.drop();
  }
}

const lines = ['| backend | where | operation | concurrency | ops/s | p50 ms | p99 ms | errors |', '|---|---|---|---:|---:|---:|---:|---:|'];
for (const r of rows) {
  const s = r.summary;
  lines.push(`| ${r.backend} | ${r.where} | ${r.name} | ${r.concurrency} | ${Math.round(s.opsPerSec)} | ${s.p50.toFixed(3)} | ${s.p99.toFixed(3)} | ${s.errors + s.non2xx} |`);
}
process.stdout.write(`${lines.join('\n')}\n`);
const dir = path.join(BENCH_DIR, '..', '.bench-results');
fs.mkdirSync(dir, { recursive: true });
const file = path.join(dir, `context-resolve-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
fs.writeFileSync(file, JSON.stringify({ at: new Date().toISOString(), settings: BENCH, rows }, null, 2));
process.stdout.write(`wrote ${file}\n`);
