/** The per-request metrics' text format, independent of any backend. */
import { describe, expect, it } from 'vitest';
import { HttpMetrics, LATENCY_BUCKETS } from '../../src/server/http-metrics.js';

describe('HttpMetrics', () => {
  it('renders counts, cumulative buckets, +Inf, sum and count per method, route and status', () => {
    const m = new HttpMetrics();
    const r = m.forRoute('GET', '/v1/things/:id');
    for (const s of [0.0005, 0.001, 0.003, 0.2, 20]) r.observe(200, s);
    r.observe(404, 0.002);
    const text = m.render();
    const labels = 'method="GET",route="/v1/things/:id",status_code="200"';
    expect(text).toContain(`agentstore_http_requests_total{${labels}} 5\n`);
    expect(text).toContain(`agentstore_http_requests_total{method="GET",route="/v1/things/:id",status_code="404"} 1\n`);
    const bucket = (le: string) => Number(new RegExp(`_bucket\\{le="${le.replace('+', '\\+')}",${labels}\\} (\\d+)`).exec(text)?.[1]);
    // A value on a bound falls in that bucket (le is "less than or equal").
    expect(bucket('0.001')).toBe(2);
    expect(bucket('0.005')).toBe(3);
    expect(bucket('0.25')).toBe(4);
    expect(bucket('10')).toBe(4);
    expect(bucket('+Inf')).toBe(5);
    expect(text).toContain(`agentstore_http_request_duration_seconds_count{${labels}} 5\n`);
    expect(Number(new RegExp(`_sum\\{${labels}\\} (\\S+)`).exec(text)?.[1])).toBeCloseTo(20.2045, 6);
    expect(text.match(/_bucket\{/g)).toHaveLength(2 * (LATENCY_BUCKETS.length + 1));
    expect(text.match(/^# TYPE /gm)).toHaveLength(2);
  });

  it('escapes label values', () => {
    const m = new HttpMetrics();
    m.forRoute('GET', 'a"b\\c\nd').observe(200, 0.01);
    expect(m.render()).toContain('route="a\\"b\\\\c\\nd"');
  });

  it('renders both families with no series before any request', () => {
    expect(new HttpMetrics().render()).toBe(
      '# HELP agentstore_http_requests_total HTTP requests by method, route and status\n# TYPE agentstore_http_requests_total counter\n' +
        '# HELP agentstore_http_request_duration_seconds HTTP request latency by method, route and status\n# TYPE agentstore_http_request_duration_seconds histogram\n',
    );
  });
});
