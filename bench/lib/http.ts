/** One autocannon measurement against a server child, as a Sample. */
import fs from 'node:fs';
import autocannon, { type Request } from 'autocannon';
import { Latencies, percentile, type Sample } from './stats.js';

export interface HttpLoad {
  readonly port: number;
  readonly connections: number;
  readonly durationS: number;
  /** Open loop: total requests per second across all connections (autocannon overallRate). */
  readonly overallRate?: number;
  /**
   * Open loop only: seconds run before `durationS` whose requests are left out of the rate
   * and the latency figures (but not the error counts), as wrk2 leaves out its calibration
   * period. It covers the 1000 connections' set-up: libuv accepts one connection per
   * event-loop iteration, so a storm of connects is a start-up transient, not the steady
   * state the open-loop target is about. The whole run's p99 is kept as `p99WithSetup`.
   */
  readonly settleS?: number;
  readonly request: Request;
  readonly headers?: Record<string, string>;
  /** The server's process id, to measure its CPU time per request (Linux). */
  readonly serverPid?: number;
}

/** utime + stime of a process in µs (Linux /proc; undefined elsewhere). */
export function processCpuUs(pid: number): number | undefined {
  try {
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? (ticks * 1e6) / CLOCK_TICKS_PER_S : undefined;
  } catch {
    return undefined;
  }
}
// sysconf(_SC_CLK_TCK) is 100 on every Linux Node supports.
const CLOCK_TICKS_PER_S = 100;

/**
 * Resolves true once `pid` spends at most 5% of a core over 200 ms (one 10 ms clock tick of
 * /proc's accounting), false after `limitMs`.
 */
export async function untilIdle(pid: number, limitMs = 5000): Promise<boolean> {
  const deadline = Date.now() + limitMs;
  let before = processCpuUs(pid);
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    const now = processCpuUs(pid);
    if (before === undefined || now === undefined) return true;
    if (now - before <= 10_000) return true;
    before = now;
  }
  return false;
}

/**
 * The accept queue of the socket listening on `port` (Linux /proc/net/tcp: for a LISTEN
 * socket, rx_queue is the number of established connections not yet accepted). libuv
 * (>= 1.45, Node >= 20) accepts one connection per event-loop iteration, so a saturated
 * server with long iterations leaves connections waiting here for seconds.
 */
export function acceptQueue(port: number): number | undefined {
  try {
    const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
    // Only the head: the kernel lists listening sockets first and produces only what is
    // read. The whole file at 1000 connections is ~300 KB and took ~7 ms to read, which
    // froze the load generator (this runs in its process) 7% of the time.
    const fd = fs.openSync('/proc/net/tcp', 'r');
    const head = Buffer.alloc(32 * 1024);
    let length: number;
    try {
      length = fs.readSync(fd, head, 0, head.length, 0);
    } finally {
      fs.closeSync(fd);
    }
    for (const line of head.subarray(0, length).toString('utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === '0A' && f[1]?.endsWith(`:${hexPort}`)) return parseInt(f[4]?.split(':')[1] ?? '0', 16);
    }
    return undefined;
  } catch {
    return undefined;
  }
}

/**
 * TcpExt ListenOverflows (Linux, machine-wide): connections dropped because the server's
 * accept queue (Node's default backlog is 511) was full. At 1000 connections these SYNs are
 * retried after 1 s, 3 s, 7 s ..., which shows up as multi-second p99 and timeouts.
 */
export function listenOverflows(): number {
  try {
    const lines = fs.readFileSync('/proc/net/netstat', 'utf8').split('\n').filter((l) => l.startsWith('TcpExt:'));
    const keys = lines[0]?.split(/\s+/) ?? [];
    const values = lines[1]?.split(/\s+/) ?? [];
    return Number(values[keys.indexOf('ListenOverflows')] ?? 0);
  } catch {
    return 0;
  }
}

export async function measureHttp(load: HttpLoad): Promise<Sample> {
  const overflowsBefore = listenOverflows();
  const cpuBefore = load.serverPid === undefined ? undefined : processCpuUs(load.serverPid);
  let maxAcceptQueue: number | undefined;
  const sampler = setInterval(() => {
    const q = acceptQueue(load.port);
    if (q !== undefined) maxAcceptQueue = Math.max(maxAcceptQueue ?? 0, q);
  }, 100);
  const errorKinds: Record<string, number> = {};
  const settleMs = load.overallRate ? (load.settleS ?? 0) * 1000 : 0;
  const startedAt = performance.now();
  const instance = autocannon({
    url: `http://127.0.0.1:${load.port}`,
    connections: load.connections,
    duration: load.durationS + settleMs / 1000,
    timeout: 10,
    ...(load.overallRate ? { overallRate: load.overallRate } : {}),
    ...(load.headers ? { headers: load.headers } : {}),
    requests: [load.request],
  });
  // Which errors: a timeout, a reset, a refused connection point at different culprits.
  instance.on('reqError', (error: NodeJS.ErrnoException) => {
    const kind = error.code ?? (/timed out/.test(error.message) ? 'timeout' : error.name);
    errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
  });
  // Our own record of every 2xx response time (autocannon's histogram takes non-2xx ones
  // too, unless told otherwise): the open loop's figures are computed from it, see
  // openLoopLatency.
  const whole = new Latencies();
  const steady = new Latencies();
  const steadyFrom = startedAt + settleMs;
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTimeMs: number) => {
    if (statusCode < 200 || statusCode >= 300) return;
    whole.push(responseTimeMs);
    if (performance.now() - responseTimeMs >= steadyFrom) steady.push(responseTimeMs);
  });
  let result: Awaited<typeof instance>;
  try {
    result = await instance;
  } finally {
    clearInterval(sampler);
  }
  // A fixed end (not the last response): a stall at the end must lower the rate, not shrink
  // the window it is divided by.
  const steadyTo = performance.now();
  const cpuAfter = load.serverPid === undefined ? undefined : processCpuUs(load.serverPid);
  // Each connection is due to send one request every `intervalMs`: autocannon spreads the
  // overall rate evenly over the connections, and uses no more connections than the rate.
  const intervalMs = load.overallRate ? (1000 * Math.min(load.connections, load.overallRate)) / load.overallRate : 0;
  const open = load.overallRate
    ? {
        opsPerSec: settleMs > 0 ? steady.length / Math.max(1e-3, (steadyTo - steadyFrom) / 1000) : result.requests.total / result.duration,
        ...openLoopLatency(steady.sorted(), intervalMs),
        p99WithSetup: openLoopLatency(whole.sorted(), intervalMs).p99,
        p99Autocannon: result.latency.p99,
      }
    : undefined;
  return {
    opsPerSec: result.requests.total / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    ...open,
    // autocannon counts timeouts among errors as well; both are failures here.
    errors: result.errors,
    non2xx: result.non2xx,
    total: result.requests.total,
    ...(Object.keys(errorKinds).length > 0 ? { errorKinds } : {}),
    listenOverflows: listenOverflows() - overflowsBefore,
    ...(cpuBefore !== undefined && cpuAfter !== undefined && result.requests.total > 0 ? { serverCpuUsPerReq: (cpuAfter - cpuBefore) / result.requests.total } : {}),
    ...(maxAcceptQueue !== undefined ? { maxAcceptQueue } : {}),
  };
}

/**
 * The open loop's percentiles, corrected for coordinated omission with the right interval.
 *
 * A connection that waits on a slow response does not send the requests it was due to send
 * meanwhile, so the slow moments are under-sampled. The standard correction (HdrHistogram's
 * recordValueWithExpectedInterval, wrk2) adds, for a response of L ms on a connection that
 * is due to send one request every I ms, the samples L - I, L - 2I, ... down to I.
 *
 * autocannon 8.0.0 applies that correction by default but passes `Math.ceil(1 / rate)` as I,
 * with `rate` in requests per second per connection: I is 1 ms for any rate of at least one
 * request per second, where it should be 1000 / rate ms (~43 ms at 23,000 req/s over 1000
 * connections). Every response of L ms is then counted about L times (L, L-1, ..., 1), so
 * its p99 is the p99 of a latency-weighted distribution, dominated by the few slowest
 * responses: in the first run of 2626667's full run the bare Fastify route's responses had a
 * p99 of 34 ms after the set-up and 73 ms with it (corrected here), and autocannon reported
 * 268 ms. Both its figure (`p99Autocannon`) and the uncorrected one (`p99Measured`) are kept.
 *
 * autocannon does not space a connection's requests evenly (it sends a per-second quota as
 * fast as answers come), so the added samples are an approximation; when most responses take
 * longer than I they can even lower the p99 below the measured one. The p99 reported is
 * therefore the larger of the corrected and the measured one.
 */
export function openLoopLatency(sorted: Float64Array, intervalMs: number): Pick<Sample, 'p50' | 'p99' | 'p99Measured'> {
  if (!(intervalMs > 0)) throw new Error(`the expected interval must be positive, got ${intervalMs}`);
  const corrected = new Latencies();
  for (const ms of sorted) {
    corrected.push(ms);
    for (let missing = ms - intervalMs; missing >= intervalMs; missing -= intervalMs) corrected.push(missing);
  }
  const all = corrected.sorted();
  const p99Measured = percentile(sorted, 99);
  return { p50: Math.max(percentile(all, 50), percentile(sorted, 50)), p99: Math.max(percentile(all, 99), p99Measured), p99Measured };
}
