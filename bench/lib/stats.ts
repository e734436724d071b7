/** Small numeric helpers shared by the runner, the in-process loop and the report. */

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Nearest-rank percentile of an already sorted array. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

/** One measurement, in the same shape for in-process loops and autocannon runs. */
export interface Sample {
  /** Completed operations (requests) per second. */
  readonly opsPerSec: number;
  /** Milliseconds. */
  readonly p50: number;
  readonly p99: number;
  /** Thrown errors (in-process), or socket errors + timeouts (HTTP). */
  readonly errors: number;
  /** HTTP responses outside 2xx; 0 in-process. */
  readonly non2xx: number;
  readonly total: number;
  /** HTTP only: error counts by code (ETIMEDOUT, ECONNRESET ...) when there were any. */
  readonly errorKinds?: Record<string, number>;
  /** HTTP only: accept-queue overflows on this machine during the measurement. */
  readonly listenOverflows?: number;
  /** HTTP only: the server child's CPU time (user + system) per completed request, in µs. */
  readonly serverCpuUsPerReq?: number;
  /** HTTP open loop only: the p99 of the response times as measured, without the coordinated-omission correction. */
  readonly p99Measured?: number;
  /** HTTP open loop only: the corrected p99 including the connections' set-up (see settleS in http.ts). */
  readonly p99WithSetup?: number;
  /** HTTP open loop only: autocannon's own p99, corrected with a 1 ms interval (see openLoopLatency in http.ts). */
  readonly p99Autocannon?: number;
  /** HTTP only: the longest accept queue seen on the server's listening socket (sampled every 100 ms). */
  readonly maxAcceptQueue?: number;
}

export interface Summary {
  readonly opsPerSec: number;
  readonly p50: number;
  readonly p99: number;
  /** Summed over the runs, not a median: any error fails the zero-error target. */
  readonly errors: number;
  readonly non2xx: number;
  /** Median over the runs; undefined when not measured. */
  readonly serverCpuUsPerReq?: number;
  readonly runs: readonly Sample[];
}

export function summarize(runs: readonly Sample[]): Summary {
  return {
    opsPerSec: median(runs.map((r) => r.opsPerSec)),
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    errors: runs.reduce((n, r) => n + r.errors, 0),
    non2xx: runs.reduce((n, r) => n + r.non2xx, 0),
    ...(runs.some((r) => r.serverCpuUsPerReq !== undefined) ? { serverCpuUsPerReq: median(runs.flatMap((r) => (r.serverCpuUsPerReq === undefined ? [] : [r.serverCpuUsPerReq]))) } : {}),
    runs,
  };
}

/** Growable latency buffer: millions of samples without a JS array of boxed numbers. */
export class Latencies {
  private data = new Float64Array(1 << 16);
  private n = 0;
  push(ms: number): void {
    if (this.n === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.n++] = ms;
  }
  get length(): number {
    return this.n;
  }
  sorted(): Float64Array {
    return this.data.slice(0, this.n).sort();
  }
}

/**
 * Closed loop: `concurrency` workers each await `op` back to back for `durationMs`.
 * With concurrency 32 there are always 32 promises outstanding, as 32 callers would have.
 */
export async function closedLoop(op: (i: number) => Promise<unknown>, concurrency: number, durationMs: number): Promise<Sample> {
  const lat = new Latencies();
  let errors = 0;
  let counter = 0;
  let firstError: unknown;
  const start = performance.now();
  const end = start + durationMs;
  const worker = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        await op(counter++);
        lat.push(performance.now() - t0);
      } catch (error) {
        errors++;
        firstError ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - start) / 1000;
  if (firstError) process.stderr.write(`first error: ${String((firstError as Error).stack ?? firstError)}\n`);
  const sorted = lat.sorted();
  return { opsPerSec: lat.length / elapsed, p50: percentile(sorted, 50), p99: percentile(sorted, 99), errors, non2xx: 0, total: lat.length + errors };
}
