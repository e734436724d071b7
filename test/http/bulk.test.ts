/**
 * `POST /v1/collections/{c}/records:bulk`: NDJSON in, NDJSON out, one result per line in
 * order and a summary, per-line failures as problems, the per-line size and per-call line
 * limits, and memory flat in the size of the input (a 200,000-line body streamed from a
 * generator over a real socket, results read while it is still being sent).
 */
import http from 'node:http';
import vm from 'node:vm';
import v8 from 'node:v8';
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { forEachBackend } from '../helpers/index.js';
import { bearer, createKey, createTenant, expectProblem, listen, useHttp, type HttpTenant } from './http-kit.js';

interface ResultLine {
  line?: number;
  id?: string;
  status?: string;
  version?: number;
  error?: { status: number; code: string; detail: string; errors?: { field: string; message: string }[] };
  summary?: Record<string, number>;
}

const ndjson = (lines: readonly unknown[]) => `${lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n')}\n`;
const parse = (body: string): ResultLine[] => body.trim().split('\n').map((l) => JSON.parse(l) as ResultLine);

forEachBackend('http bulk loads', (backend) => {
  const h = useHttp(backend, { app: { server: { bulkMaxLineBytes: 256, bulkMaxLines: 50 } } });
  let T: HttpTenant;
  beforeAll(async () => {
    T = await createTenant(h.app, `bulk-${randomBytes(4).toString('hex')}`);
  });
  const post = (collection: string, payload: string, headers: Record<string, string> = {}, query = '') =>
    h.app.inject({ method: 'POST', url: `/v1/collections/${collection}/records:bulk${query}`, headers: { ...bearer(T.key), 'content-type': 'application/x-ndjson', ...headers }, payload });

  it('answers one result per line, in order, then a summary; the same lines again are unchanged', async () => {
    const lines = [{ id: 'a', data: { n: 1 } }, { data: { id: 'b', n: 2 } }, { id: 'a', data: { n: 3 }, mode: 'upsert' }, { id: 'c', data: { n: 4 } }];
    const res = await post('loads', ndjson(lines));
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/);
    expect(parse(res.body)).toEqual([
      { line: 1, id: 'a', status: 'created', version: 1 },
      { line: 2, id: 'b', status: 'created', version: 1 },
      { line: 3, id: 'a', status: 'updated', version: 2 },
      { line: 4, id: 'c', status: 'created', version: 1 },
      { summary: { lines: 4, created: 3, updated: 1, unchanged: 0, failed: 0 } },
    ]);
    const got = await h.app.inject({ method: 'GET', url: '/v1/collections/loads/records/a', headers: bearer(T.key) });
    expect(got.json()).toMatchObject({ version: 2, data: { n: 3 } });
    const again = parse((await post('loads', ndjson(lines.slice(2)))).body);
    expect(again.map((r) => r.status ?? 'summary')).toEqual(['unchanged', 'unchanged', 'summary']);
    // ?mode=upsert is the default of lines that name none; \r\n ends a line too.
    const upsert = parse((await post('loads', '{"id":"c","data":{"n":5}}\r\n{"id":"d","data":{}}\r\n', {}, '?mode=upsert')).body);
    expect(upsert.map((r) => r.status ?? 'summary')).toEqual(['updated', 'created', 'summary']);
  });

  it('fails bad lines alone, each with a problem naming the field as a pointer into the line', async () => {
    const lines = ['not json', '', '[1]', { data: { n: 1 }, zz: 1 }, { id: "x'); DROP TABLE records;--", data: {} }, { id: 'ok', data: { n: 1 } }, { id: 'ok', data: { n: 2 } }, { data: 5 }, `{"data":{"p":"${'x'.repeat(300)}"}}`, { id: 'after', data: {} }];
    const results = parse((await post('bad', ndjson(lines))).body);
    const view = results.map((r) => (r.summary ? 'summary' : r.status === 'failed' ? `${r.error?.status} ${r.error?.errors?.[0]?.field ?? ''}` : r.status));
    expect(view).toEqual(['400 body', '400 body', '400 body', '400 /zz', '400 /id', 'created', '409 ', '400 /data', '413 body', 'created', 'summary']);
    for (const r of results.filter((x) => x.status === 'failed')) {
      expect(r.error).toMatchObject({ code: expect.stringMatching(/^agentstore\./), detail: expect.any(String) });
      expect(r.line).toBeGreaterThan(0);
    }
    expect(results.at(-1)?.summary).toEqual({ lines: 10, created: 2, updated: 0, unchanged: 0, failed: 8 });
  });

  it('reads at most the configured lines: the next one fails with 413 and the load ends', async () => {
    const lines = Array.from({ length: 70 }, (_, i) => ({ id: `l${i}`, data: { i } }));
    const results = parse((await post('limited', ndjson(lines))).body);
    expect(results).toHaveLength(52);
    expect(results[50]).toMatchObject({ line: 51, status: 'failed', error: { status: 413, code: 'agentstore.payload_too_large' } });
    expect(results[51]?.summary).toEqual({ lines: 51, created: 50, updated: 0, unchanged: 0, failed: 1 });
    const list = await h.app.inject({ method: 'GET', url: '/v1/collections/limited/records?limit=500', headers: bearer(T.key) });
    expect(list.json<{ items: unknown[] }>().items).toHaveLength(50);
  });

  it('refuses the call before any line: content type, body, collection, mode, role', async () => {
    expectProblem(await post('c', '{"data":{}}\n', { 'content-type': 'application/json' }), 415);
    expectProblem(await post('c', '{"data":{}}\n', { 'content-type': 'text/plain' }), 415);
    expectProblem(await h.app.inject({ method: 'POST', url: '/v1/collections/c/records:bulk', headers: bearer(T.key) }), 400, { field: 'body' });
    expectProblem(await post('bad%20name', ndjson([{ data: {} }])), 400, { field: 'collection' });
    expectProblem(await post('c', ndjson([{ data: {} }]), {}, '?mode=merge'), 400, { field: 'mode' });
    expectProblem(await post('c', ndjson([{ data: {} }]), {}, '?zz=1'), 400, { field: 'zz' });
    const viewer = await createKey(h.app, T, 'viewer');
    expectProblem(await post('c', ndjson([{ data: {} }]), bearer(viewer.key)), 403, { code: 'agentstore.forbidden' });
    const list = await h.app.inject({ method: 'GET', url: '/v1/collections', headers: bearer(T.key) });
    expect(JSON.stringify(list.json())).not.toContain('"name":"c"');
  });
});

forEachBackend(
  'http bulk loads: memory',
  (backend) => {
    const h = useHttp(backend);
    let T: HttpTenant;
    beforeAll(async () => {
      T = await createTenant(h.app, `bulk-mem-${randomBytes(4).toString('hex')}`);
    });

    it(
      'streams 200,000 lines with the heap flat, answering while the body is still being sent',
      async () => {
        v8.setFlagsFromString('--expose-gc');
        const gc = vm.runInNewContext('gc') as () => void;
        const base = await listen(h.app);
        const LINES = 200_000;
        const pad = 'p'.repeat(120);
        let written = 0;
        let resultsBeforeEnd = 0;
        let results = 0;
        const heap: number[] = [];
        const rssStart = process.memoryUsage().rss;
        let rssPeak = rssStart;
        const sample = () => {
          gc();
          // Buffers are outside the JS heap: a body kept as Buffers shows in `external`.
          const { heapUsed, external } = process.memoryUsage();
          heap.push(heapUsed + external);
          rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
        };
        sample();
        const tail = await new Promise<string>((resolve, reject) => {
          const req = http.request(`${base}/v1/collections/big/records:bulk`, { method: 'POST', headers: { ...bearer(T.key), 'content-type': 'application/x-ndjson' } }, (res) => {
            let last = '';
            res.setEncoding('utf8');
            res.on('data', (text: string) => {
              for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) results++;
              if (written < LINES) resultsBeforeEnd = results;
              last = (last + text).slice(-2000);
            });
            res.on('end', () => resolve(last));
            res.on('error', reject);
          });
          req.on('error', reject);
          const write = () => {
            while (written < LINES) {
              const ok = req.write(`{"id":"r${written}","data":{"n":${written},"pad":"${pad}","tags":["a","b"]}}\n`);
              written++;
              if (written % 20_000 === 0) sample();
              if (!ok) return void req.once('drain', write);
            }
            req.end();
          };
          write();
        });
        sample();
        const summary = (JSON.parse(tail.trim().split('\n').at(-1) as string) as ResultLine).summary;
        expect(summary).toEqual({ lines: LINES, created: LINES, updated: 0, unchanged: 0, failed: 0 });
        expect(results).toBe(LINES + 1);
        // Results came back while the body was still being sent: nothing waited for its end.
        expect(resultsBeforeEnd).toBeGreaterThan(LINES / 2);
        // ~34 MB of input: buffered (as text or Buffers), or its parsed lines kept, memory would
        // grow by more than the input. Flat, it stays within a chunk or two and the runtime's
        // own noise (measured here: 3 MiB of heap, 31 MiB of RSS).
        const growth = Math.max(...heap) - (heap[0] as number);
        expect(growth, `heap + external after GC (MiB): ${heap.map((b) => (b / 2 ** 20).toFixed(0)).join(' ')}`).toBeLessThan(24 * 2 ** 20);
        expect(rssPeak - rssStart, 'RSS growth').toBeLessThan(128 * 2 ** 20);
      },
      300_000,
    );
  },
  { only: ['sqlite'] },
);
