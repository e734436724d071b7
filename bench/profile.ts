/**
 * CPU profile of the HTTP get-by-id path (BENCH_PROFILE=query: the filtered query instead;
 * BENCH_PROFILE=create: record creates):
 *   node --import tsx bench/profile.ts            (BENCH_BACKENDS, BENCH_DURATION apply)
 * Starts the app server child with --cpu-prof, drives GET /v1/collections/items/records/:id
 * at 100 connections, and prints where the server's CPU went: self time by area
 * (our src/ files, each dependency, Node internals, GC, idle) and the top functions by
 * self and by inclusive time. The .cpuprofile files stay in .bench-results/profiles/.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BENCH_DIR, startServer } from './lib/child.js';
import { BENCH, queryFilter } from './lib/config.js';
import { createFixture } from './lib/fixture.js';
import { measureHttp } from './lib/http.js';

interface CpuNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: CpuNode[];
  samples: number[];
  timeDeltas: number[];
}

const root = path.resolve(BENCH_DIR, '..');

function area(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const file = url.replace(/^file:\/\//, '');
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
  if (nm?.[1]) return nm[1];
  if (file.startsWith(root)) return path.relative(root, file);
  return file.startsWith('node:') ? 'node:internal' : file;
}

function where(node: CpuNode): string {
  const f = node.callFrame;
  const file = f.url ? area(f.url, f.functionName) : '';
  return `${f.functionName || '(anonymous)'} ${file}${f.url ? `:${f.lineNumber + 1}` : ''}`;
}

export function summarizeProfile(profile: CpuProfile, top = 25): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const idle = [...self.entries()].filter(([id]) => byId.get(id)?.callFrame.functionName === '(idle)').reduce((a, [, t]) => a + t, 0);
  const busy = total - idle;

  const areaSelf = new Map<string, number>();
  const fnSelf = new Map<string, number>();
  const fnIncl = new Map<string, number>();
  for (const [id, t] of self) {
    const node = byId.get(id);
    if (!node) continue;
    const a = area(node.callFrame.url, node.callFrame.functionName);
    areaSelf.set(a, (areaSelf.get(a) ?? 0) + t);
    fnSelf.set(where(node), (fnSelf.get(where(node)) ?? 0) + t);
    // Inclusive: charge t once to every distinct function on the stack.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur);
      if (!n) break;
      const key = where(n);
      if (seen.has(key)) continue;
      seen.add(key);
      fnIncl.set(key, (fnIncl.get(key) ?? 0) + t);
    }
  }
  const share = (t: number) => `${((100 * t) / busy).toFixed(1)}%`;
  const rows = (m: Map<string, number>, filter: (k: string) => boolean = () => true) =>
    [...m.entries()].filter(([k]) => filter(k) && !k.startsWith('(idle)') && !k.startsWith('(root)') && !k.startsWith('(program)')).sort((a, b) => b[1] - a[1]).slice(0, top);
  const out = [
    `busy ${(busy / 1e6).toFixed(2)} s of ${(total / 1e6).toFixed(2)} s sampled (${((100 * busy) / total).toFixed(0)}% CPU); shares below are of busy time`,
    '',
    'self time by area:',
    ...rows(areaSelf).map(([k, t]) => `  ${share(t).padStart(6)}  ${k}`),
    '',
    'top functions by self time:',
    ...rows(fnSelf).map(([k, t]) => `  ${share(t).padStart(6)}  ${k}`),
    '',
    'our code (src/) by inclusive time:',
    ...rows(fnIncl, (k) => k.includes(' src/')).map(([k, t]) => `  ${share(t).padStart(6)}  ${k}`),
    '',
  ];
  return out.join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.join(BENCH_DIR, 'profile.ts')) {
  const dir = path.resolve(root, '.bench-results', 'profiles');
  // BENCH_PROFILE=query or =create profiles that workload of the records benchmark instead.
  const workload = process.env.BENCH_PROFILE === 'query' || process.env.BENCH_PROFILE === 'create' ? process.env.BENCH_PROFILE : 'get';
  fs.mkdirSync(dir, { recursive: true });
  for (const backend of BENCH.backends) {
    const fx = await createFixture(backend, Math.min(BENCH.records, 10_000));
    try {
      const before = new Set(fs.readdirSync(dir));
      const server = await startServer('app', { BENCH_DATABASE_URL: fx.url }, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
      const ids = fx.ids;
      let created = 0;
      const load = {
        port: server.port,
        connections: 100,
        headers: { authorization: `Bearer ${fx.apiKey}` },
        request: workload === 'create' ? {
          method: 'POST',
          path: '/v1/collections/bench_new/records',
          headers: { 'content-type': 'application/json' },
          setupRequest: (r: object) => ({ ...r, body: JSON.stringify({ status: 'open', n: created, title: `http ${created++}` }) }),
        } : {
          method: 'GET',
          setupRequest: (r: object) => ({
            ...r,
            path:
              workload === 'query'
                ? `/v1/collections/items/records?limit=20&filter=${encodeURIComponent(queryFilter(Math.floor(Math.random() * (ids.length / 2))))}`
                : `/v1/collections/items/records/${ids[Math.floor(Math.random() * ids.length)]}`,
          }),
        },
      };
      await measureHttp({ ...load, durationS: BENCH.warmupS });
      const sample = await measureHttp({ ...load, durationS: BENCH.durationS });
      await server.stop();
      // --cpu-prof writes one profile per thread, and tsx's module loader is a thread of its
      // own: the main thread's profile is the biggest one.
      const file = fs
        .readdirSync(dir)
        .filter((f) => !before.has(f))
        .sort((a, b) => fs.statSync(path.join(dir, b)).size - fs.statSync(path.join(dir, a)).size)[0];
      if (!file) throw new Error('no profile written');
      process.stdout.write(`\n## ${backend}: ${workload === 'query' ? 'filtered query' : workload === 'create' ? 'create' : 'GET by id'}, 100 connections, ${sample.opsPerSec.toFixed(0)} req/s (profiling on), p99 ${sample.p99} ms\n`);
      process.stdout.write(`profile: ${path.relative(root, path.join(dir, file))}\n`);
      process.stdout.write(summarizeProfile(JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as CpuProfile));
    } finally {
      await fx.drop();
    }
  }
}
