/**
 * Requests Node's HTTP parser refuses before Fastify (request head over 16 KiB, malformed
 * request line or header) are answered with problem+json like every other error and counted
 * in /metrics. Over a real socket: `inject` skips the parser. The parser does not depend on
 * the backend, so one backend runs it.
 */
import net from 'node:net';
import type { FastifyInstance } from 'fastify';
import { beforeAll, describe, expect, it } from 'vitest';
import { forEachBackend } from '../helpers/index.js';
import { useHttp } from './http-kit.js';

interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** Sends raw bytes and reads until the server closes the connection. */
function exchange(port: number, chunks: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within 5 s; got ${JSON.stringify(received.slice(0, 300))}`));
    }, 5000);
    socket.setEncoding('utf8');
    socket.on('data', (data: string) => {
      received += data;
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
    socket.on('connect', () => {
      for (const chunk of chunks) socket.write(chunk);
    });
  });
}

/** The responses in a connection's bytes (each with Content-Length). */
function parseResponses(raw: string): RawResponse[] {
  const out: RawResponse[] = [];
  let rest = raw;
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const [statusLine, ...lines] = rest.slice(0, end).split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers['content-length'] ?? 0);
    const body = rest.slice(end + 4, end + 4 + length);
    out.push({ status: Number(statusLine?.split(' ')[1]), headers, body });
    rest = rest.slice(end + 4 + length);
  }
  return out;
}

async function listen(app: FastifyInstance): Promise<number> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  return address.port;
}

function expectProblemResponse(res: RawResponse | undefined, status: number, code: string): void {
  expect(res, 'a response').toBeDefined();
  const r = res as RawResponse;
  expect(r.status, r.body).toBe(status);
  expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = JSON.parse(r.body) as Record<string, unknown>;
  expect(body).toMatchObject({ status, code, type: `urn:agentstore:problem:${code.replace('agentstore.', '')}` });
  expect(typeof body.title).toBe('string');
  expect(typeof body.detail).toBe('string');
  expect(body.requestId).toBe(r.headers['x-request-id']);
  expect(body.instance).toBe(`urn:agentstore:request:${String(body.requestId)}`);
}

forEachBackend(
  'http requests refused by the parser',
  (backend) => {
    const h = useHttp(backend);
    let port: number;
    beforeAll(async () => {
      port = await listen(h.app);
    });

    const refusedCount = async (status: number): Promise<number> => {
      const res = await h.app.inject({ method: 'GET', url: '/metrics' });
      const line = res.body.split('\n').find((l) => l.startsWith(`agentstore_http_parser_refused_total{status_code="${status}"}`));
      return line ? Number(line.split(' ').at(-1)) : 0;
    };

    describe('answers in problem+json and counts', () => {
      it('headers over 16 KiB: 431', async () => {
        const before = await refusedCount(431);
        const raw = await exchange(port, [`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`]);
        expectProblemResponse(parseResponses(raw)[0], 431, 'agentstore.payload_too_large');
        expect(await refusedCount(431)).toBe(before + 1);
      });

      it('a URL over 16 KiB: 431 (the request line counts against the same limit)', async () => {
        const before = await refusedCount(431);
        const raw = await exchange(port, [`GET /v1/counters/${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`]);
        expectProblemResponse(parseResponses(raw)[0], 431, 'agentstore.payload_too_large');
        expect(await refusedCount(431)).toBe(before + 1);
      });

      it.each([
        ['a request line that is not HTTP', 'GARBAGE\r\n\r\n'],
        ['a header without a colon', 'GET /health HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n'],
        ['a control character in a header value', 'GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\u0001b\r\n\r\n'],
        ['two Content-Length headers that disagree', 'POST /v1/tenants HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab'],
      ])('%s: 400', async (_what, request) => {
        const before = await refusedCount(400);
        const raw = await exchange(port, [request]);
        expectProblemResponse(parseResponses(raw)[0], 400, 'agentstore.validation');
        expect(await refusedCount(400)).toBe(before + 1);
      });

      it('a malformed body after its response began gets no second response written into the first', async () => {
        // The auth hook answers 401 before the body is read; the bad chunk then fails the parser.
        const raw = await exchange(port, ['POST /v1/tenants HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n']);
        const responses = parseResponses(raw);
        expect(responses.map((r) => r.status)).toEqual([401]);
        expect(responses[0]?.headers['content-type']).toMatch(/^application\/problem\+json/);
      });

      it('after a complete response on a keep-alive connection, the next malformed request still gets its own problem+json', async () => {
        const raw = await new Promise<string>((resolve, reject) => {
          const socket = net.connect(port, '127.0.0.1');
          let received = '';
          const timer = setTimeout(() => reject(new Error(`timeout; got ${received.slice(0, 300)}`)), 5000);
          socket.setEncoding('utf8');
          socket.on('error', () => undefined);
          socket.on('data', (data: string) => {
            const first = received.length === 0;
            received += data;
            if (first) socket.write('NOT HTTP AT ALL\r\n\r\n');
          });
          socket.on('close', () => {
            clearTimeout(timer);
            resolve(received);
          });
          socket.on('connect', () => socket.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n'));
        });
        const [ok, refused] = parseResponses(raw);
        expect(ok?.status).toBe(200);
        expect(JSON.parse(ok?.body ?? '{}')).toEqual({ status: 'ok' });
        expectProblemResponse(refused, 400, 'agentstore.validation');
      });
    });
  },
  { only: ['sqlite'] },
);
