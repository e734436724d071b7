/**
 * Idle RSS only, without the load of `npm run bench`: `node --import tsx bench/idle-rss.ts`.
 *
 * For each backend (BENCH_BACKENDS, SQLite first) it seeds the same fixture as the full run
 * (BENCH_RECORDS), then BENCH_RUNS times starts that phase's servers as the full run does
 * (bench/lib/child.ts, startPhaseServers: the bare-Fastify baselines with the backend's raw
 * driver route, and the app, with the same V8 flags), reads each one's idle RSS (after
 * BENCH_IDLE_SETTLE_MS, before any request) and stops them. Prints one row per server: the
 * median over the runs, each run's value, and the median's ratio to the baselines of the
 * same phase. BENCH_IDLE_GC=1 gives the children --expose-gc, so that a global.gc() runs
 * before the reading (the full run does not: a server started with `npm start` has no forced
 * collection either).
 */
import { memoryName, SERVER_NODE_FLAGS, startPhaseServers } from './lib/child.js';
import { BENCH } from './lib/config.js';
import { createFixture, type Fixture } from './lib/fixture.js';
import { median } from './lib/stats.js';
import { serverName } from './report.js';

const log = (line: string) => process.stderr.write(`${line}\n`);
const gc = process.env.BENCH_IDLE_GC === '1';
const nodeArgs = gc ? ['--expose-gc'] : [];
const mib = (bytes: number) => bytes / 2 ** 20;

/** Idle RSS readings by server name (as in the results' `memory`), one per run. */
const readings = new Map<string, number[]>();
const fixtures: Fixture[] = [];
try {
  for (const backend of BENCH.backends) {
    log(`${backend}: seeding ${BENCH.records} records x 2 collections ...`);
    const fx = await createFixture(backend, BENCH.records);
    fixtures.push(fx);
    for (let run = 0; run < BENCH.runs; run++) {
      const servers = await startPhaseServers(fx, nodeArgs);
      try {
        for (const [target, server] of servers) {
          const name = memoryName(target, backend);
          readings.set(name, [...(readings.get(name) ?? []), server.idleRss]);
          log(`  run ${run + 1}/${BENCH.runs} ${name}: ${mib(server.idleRss).toFixed(1)} MiB${server.idleGc ? ' (after gc)' : ''}`);
        }
      } finally {
        for (const server of servers.values()) await server.stop();
      }
    }
    await fx.drop();
    fixtures.pop();
  }
} finally {
  for (const fx of fixtures) await fx.drop().catch((error: unknown) => log(`could not drop the ${fx.backend} fixture: ${String(error)}`));
}

const medians = new Map([...readings].map(([name, values]) => [name, median(values)]));
const out = [
  `Idle RSS, ${BENCH.runs} run(s) per server, read ${BENCH.idleSettleMs} ms after listening, ${gc ? 'after a global.gc()' : 'without a forced GC'}; server flags \`${[...SERVER_NODE_FLAGS, ...nodeArgs].join(' ')}\`; Node ${process.version}.`,
  '',
  '| server | idle RSS (median) | runs | vs bare Fastify of the phase |',
  '|---|---:|---|---:|',
];
for (const [name, values] of readings) {
  const bare = name.startsWith('baseline:') ? undefined : medians.get(`baseline:${name}`);
  const value = medians.get(name) as number;
  out.push(`| ${serverName(name)} | ${mib(value).toFixed(1)} MiB | ${values.map((v) => mib(v).toFixed(1)).join(' / ')} | ${bare ? `${(value / bare).toFixed(2)}x` : ''} |`);
}
process.stdout.write(`${out.join('\n')}\n`);
