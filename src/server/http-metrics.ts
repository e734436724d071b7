/**
 * The per-request HTTP metrics: requests by method, route and status, and their latency
 * histogram, counted in plain numbers and rendered in the Prometheus text format when
 * scraped.
 *
 * prom-client hashes a label set on every update, bound children included: two hashes per
 * request for a counter and a histogram. Here each route's hook holds its own series, found
 * by status code; a request's update is a map lookup and two additions.
 */

/** Upper bounds of the latency buckets, in seconds. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

const REQUESTS = 'agentstore_http_requests_total';
const DURATION = 'agentstore_http_request_duration_seconds';

interface Series {
  /** Rendered labels, e.g. `method="GET",route="/health",status_code="200"`. */
  readonly labels: string;
  /** Observations per bucket (not cumulative); the last slot is above the highest bound. */
  readonly buckets: Float64Array;
  count: number;
  sum: number;
}

/** Records one route's requests (one method, one route pattern). */
export interface RouteMetrics {
  observe(statusCode: number, seconds: number): void;
}

/** Label values escaped as the text format requires: backslash, double quote, newline. */
function labelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

function formatNumber(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}

export class HttpMetrics {
  private readonly series: Series[] = [];

  /** The series of one method and route pattern (never a raw URL: ids would explode the cardinality). */
  forRoute(method: string, route: string): RouteMetrics {
    const byStatus = new Map<number, Series>();
    const prefix = `method="${labelValue(method)}",route="${labelValue(route)}",status_code="`;
    const seriesFor = (statusCode: number): Series => {
      let s = byStatus.get(statusCode);
      if (!s) {
        s = { labels: `${prefix}${statusCode}"`, buckets: new Float64Array(LATENCY_BUCKETS.length + 1), count: 0, sum: 0 };
        byStatus.set(statusCode, s);
        this.series.push(s);
      }
      return s;
    };
    return {
      observe(statusCode, seconds) {
        const s = seriesFor(statusCode);
        let i = 0;
        while (i < LATENCY_BUCKETS.length && seconds > (LATENCY_BUCKETS[i] as number)) i++;
        s.buckets[i] = (s.buckets[i] as number) + 1;
        s.count++;
        s.sum += seconds;
      },
    };
  }

  /** Both metrics in the Prometheus text exposition format (version 0.0.4). */
  render(): string {
    const out: string[] = [
      `# HELP ${REQUESTS} HTTP requests by method, route and status`,
      `# TYPE ${REQUESTS} counter`,
      ...this.series.map((s) => `${REQUESTS}{${s.labels}} ${s.count}`),
      `# HELP ${DURATION} HTTP request latency by method, route and status`,
      `# TYPE ${DURATION} histogram`,
    ];
    for (const s of this.series) {
      let cumulative = 0;
      LATENCY_BUCKETS.forEach((le, i) => {
        cumulative += s.buckets[i] as number;
        out.push(`${DURATION}_bucket{le="${le}",${s.labels}} ${cumulative}`);
      });
      out.push(`${DURATION}_bucket{le="+Inf",${s.labels}} ${s.count}`);
      out.push(`${DURATION}_sum{${s.labels}} ${formatNumber(s.sum)}`);
      out.push(`${DURATION}_count{${s.labels}} ${s.count}`);
    }
    return `${out.join('\n')}\n`;
  }
}
