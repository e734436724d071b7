/** One autocannon measurement against a server child, as a Sample. */
import fs from 'node:fs';
import autocannon, { type Request } from 'autocannon';
import type { Sample } from './stats.js';

export interface HttpLoad {
  readonly port: number;
  readonly connections: number;
  readonly durationS: number;
  /** Open loop: total requests per second across all connections (autocannon overallRate). */
  readonly overallRate?: number;
  readonly request: Request;
  readonly headers?: Record<string, string>;
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
  const errorKinds: Record<string, number> = {};
  const instance = autocannon({
    url: `http://127.0.0.1:${load.port}`,
    connections: load.connections,
    duration: load.durationS,
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
  const result = await instance;
  return {
    opsPerSec: result.requests.total / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    // autocannon counts timeouts among errors as well; both are failures here.
    errors: result.errors,
    non2xx: result.non2xx,
    total: result.requests.total,
    ...(Object.keys(errorKinds).length > 0 ? { errorKinds } : {}),
    listenOverflows: listenOverflows() - overflowsBefore,
  };
}
