/** One autocannon measurement against a server child, as a Sample. */
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

export async function measureHttp(load: HttpLoad): Promise<Sample> {
  const result = await autocannon({
    url: `http://127.0.0.1:${load.port}`,
    connections: load.connections,
    duration: load.durationS,
    timeout: 10,
    ...(load.overallRate ? { overallRate: load.overallRate } : {}),
    ...(load.headers ? { headers: load.headers } : {}),
    requests: [load.request],
  });
  return {
    opsPerSec: result.requests.total / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    // autocannon counts timeouts among errors as well; both are failures here.
    errors: result.errors,
    non2xx: result.non2xx,
    total: result.requests.total,
  };
}
