/** Benchmark settings from the environment; BENCH_QUICK=1 shrinks everything for a smoke run. */

function num(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got "${raw}"`);
  return value;
}

const quick = process.env.BENCH_QUICK === '1' || process.env.BENCH_QUICK === 'true';

export const BENCH = {
  quick,
  /** Seconds per HTTP measurement. */
  durationS: num('BENCH_DURATION', quick ? 1 : 10),
  /**
   * Seconds per in-process measurement. Shorter than HTTP: a library call takes tens of
   * microseconds, so 2 s is already 10^3-10^5 samples, and it keeps the full run under 15 min.
   */
  inprocDurationS: num('BENCH_INPROC_DURATION', quick ? 0.3 : 2),
  warmupS: num('BENCH_WARMUP', quick ? 0.3 : 2),
  /** Open loop: seconds of each run, before the measured BENCH_DURATION, left out as the connections' set-up (bench/lib/http.ts, settleS). */
  openSettleS: num('BENCH_OPEN_SETTLE', quick ? 0.3 : 2),
  runs: Math.trunc(num('BENCH_RUNS', quick ? 1 : 3)),
  records: Math.trunc(num('BENCH_RECORDS', quick ? 1000 : 10_000)),
  backends: (process.env.BENCH_BACKENDS ?? 'sqlite,postgres').split(',').map((s) => s.trim()).filter(Boolean) as Array<'sqlite' | 'postgres'>,
  connections: [100, 1000] as const,
  inprocConcurrency: [1, 32] as const,
  /** Only the HTTP scenarios whose id matches (e.g. `bare|raw-sqlite|sqlite:get`); for iterating on one path. */
  scenarios: process.env.BENCH_SCENARIOS ? new RegExp(process.env.BENCH_SCENARIOS) : undefined,
  /** BENCH_INPROC=0 skips the in-process phase. */
  inproc: process.env.BENCH_INPROC !== '0',
  /**
   * Idle RSS: ms a server child waits after it listens, before any request, for start-up work
   * to settle (bench/server.ts), before it reads its RSS and reports that it is ready.
   */
  idleSettleMs: Math.trunc(num('BENCH_IDLE_SETTLE_MS', quick ? 500 : 2000)),
};

/** The filter of the query workload; `{gte: X}` with X drawn from [0, records/2). */
export function queryFilter(x: number): string {
  return JSON.stringify({ status: 'open', n: { gte: x } });
}
