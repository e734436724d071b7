/**
 * Agents get-by-id against records get-by-id over HTTP, on one app server, alternated in
 * short autocannon runs (the order swaps every round, as bench/ab.ts does): medians of req/s
 * and of server CPU per request, and of their per-round ratios. The full benchmark measures
 * the same pair (`<backend>:agent-get:<conns>` right after `<backend>:get:<conns>`), but in
 * three long runs in a fixed order, which this shared machine's drift makes noisy.
 *   node --import tsx bench/agents-get.ts      (AB_BACKEND=postgres, AB_ROUNDS, AB_SECONDS, AB_CONNS)
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createFixture } from './lib/fixture.js';
import { measureHttp, untilIdle } from './lib/http.js';
import { median } from './lib/stats.js';

const rounds = Number(process.env.AB_ROUNDS ?? 10);
const seconds = Number(process.env.AB_SECONDS ?? 3);
const conns = Number(process.env.AB_CONNS ?? 100);
const backend = process.env.AB_BACKEND === 'postgres' ? 'postgres' : 'sqlite';
const fx = await createFixture(backend, 10_000);
const server = await new Promise<{ child: ChildProcess; port: number }>((resolve) => {
  const child = fork(path.join(import.meta.dirname, 'server.ts'), ['app'], { execArgv: ['--import', 'tsx'], env: { ...process.env, BENCH_DATABASE_URL: fx.url }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  child.on('message', (m: { type: string; port: number }) => m.type === 'ready' && resolve({ child, port: m.port }));
});
const pick = (ids: readonly string[]) => ids[Math.floor(Math.random() * ids.length)] as string;
const requests = {
  records: { method: 'GET', setupRequest: (r: object) => ({ ...r, path: `/v1/collections/items/records/${pick(fx.ids)}` }) },
  agents: { method: 'GET', setupRequest: (r: object) => ({ ...r, path: `/v1/agents/${pick(fx.agentIds)}` }) },
} as const;
type Name = keyof typeof requests;
const out: Record<Name, { rps: number[]; cpu: number[]; p99: number[] }> = { records: { rps: [], cpu: [], p99: [] }, agents: { rps: [], cpu: [], p99: [] } };
for (let r = -1; r < rounds; r++) {
  for (const name of (r % 2 === 0 ? ['records', 'agents'] : ['agents', 'records']) as Name[]) {
    const sample = await measureHttp({ port: server.port, serverPid: server.child.pid!, connections: conns, durationS: r < 0 ? 1 : seconds, request: requests[name], headers: { authorization: `Bearer ${fx.apiKey}` } });
    await untilIdle(server.child.pid!);
    if (r < 0) continue;
    if (sample.errors + sample.non2xx > 0) console.log(name, 'errors', sample.errors, sample.non2xx);
    out[name].rps.push(sample.opsPerSec);
    out[name].cpu.push(sample.serverCpuUsPerReq ?? Number.NaN);
    out[name].p99.push(sample.p99);
  }
}
const ratio = (a: number[], b: number[]) => median(a.map((x, i) => x / (b[i] as number)));
console.log(`${backend}, ${conns} connections, ${rounds} rounds of ${seconds} s`);
for (const name of ['records', 'agents'] as const) {
  console.log(`${name.padEnd(8)} ${median(out[name].rps).toFixed(0).padStart(6)} req/s  ${median(out[name].cpu).toFixed(1)} µs CPU/req  p99 ${median(out[name].p99).toFixed(0)} ms`);
}
console.log(`agents/records req/s ${(ratio(out.agents.rps, out.records.rps) * 100).toFixed(1)}% (per round: ${out.agents.rps.map((x, i) => ((x / (out.records.rps[i] as number)) * 100).toFixed(0)).join(' ')})   CPU/req ${ratio(out.agents.cpu, out.records.cpu).toFixed(3)}x`);
server.child.kill();
await fx.drop();
process.exit(0);
