/**
 * Graceful shutdown of the real server process: SIGTERM while writes are in flight and an
 * SSE stream is open. In-flight requests complete with 2xx (and are stored), new
 * connections are refused once close has begun, the event stream is ended, and the
 * process exits 0 within 5 s.
 *
 * "In flight" is made certain rather than hoped for: each write is sent with
 * `Expect: 100-continue` and its body is held back until after the SIGTERM. The server
 * answering 100 Continue proves it accepted the request before close began.
 */
import http from 'node:http';
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import { expect, it } from 'vitest';
import { forEachBackend } from '../helpers/index.js';
import { api, listAll, newTenantWithKey } from './api.js';
import { startServer, waitForExit } from './process.js';
import { useServerEnv } from './server-env.js';

const SERVICE_KEY = `assk_e2e_shutdown_${randomUUID()}`;
const HELD_WRITES = 16;

interface HeldWrite {
  /** Sends the rest of the body; resolves with the status and body of the answer. */
  finish(): Promise<{ status: number; body: string }>;
}

/** A POST whose headers the server has accepted (100 Continue) but whose body is not yet sent. */
function holdWrite(port: number, key: string, pathname: string, payload: unknown): Promise<HeldWrite> {
  const body = JSON.stringify(payload);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: pathname,
      agent: false,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), expect: '100-continue' },
    });
    const answered = new Promise<{ status: number; body: string }>((done, fail) => {
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => done({ status: res.statusCode ?? 0, body: text }));
        res.on('error', fail);
      });
      req.on('error', fail);
    });
    answered.catch(reject);
    req.on('continue', () =>
      resolve({
        finish: () => {
          req.end(body);
          return answered;
        },
      }),
    );
    req.flushHeaders();
  });
}

interface OpenStream {
  /** Everything received so far. */
  text(): string;
  /** Resolves when the server ends the response. */
  readonly ended: Promise<void>;
  destroy(): void;
}

function openEventStream(port: number, key: string): Promise<OpenStream> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/v1/events', agent: false, headers: { authorization: `Bearer ${key}`, accept: 'text/event-stream' } });
    req.on('error', reject);
    req.on('response', (res) => {
      if (res.statusCode !== 200) return reject(new Error(`GET /v1/events -> ${res.statusCode}`));
      let text = '';
      const ended = new Promise<void>((done, fail) => {
        res.on('end', done);
        res.on('error', fail);
        res.on('aborted', () => fail(new Error('the event stream was aborted, not ended')));
      });
      res.setEncoding('utf8').on('data', (d: string) => {
        text += d;
        if (text.includes('retry:')) resolve({ text: () => text, ended, destroy: () => req.destroy() });
      });
    });
  });
}

function tryConnect(port: number): Promise<'connected' | string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

forEachBackend(
  'shutdown: SIGTERM with requests in flight',
  (backend) => {
    const serverEnv = useServerEnv(backend, 'shutdown', SERVICE_KEY);

    it('finishes in-flight writes, ends the event stream, refuses new connections and exits 0 within 5 s', async () => {
      const server = await startServer(serverEnv.env);
      const { key } = await newTenantWithKey(server.url, SERVICE_KEY);
      const client = api(server.url, key);
      await client.ok('POST', '/v1/collections/held/records', { id: 'before', n: -1 });

      const stream = await openEventStream(server.port, key);
      const held = await Promise.all(Array.from({ length: HELD_WRITES }, (_, n) => holdWrite(server.port, key, '/v1/collections/held/records', { id: `held-${n}`, n })));
      // A burst of ordinary writes too, answered before the signal: the server is busy, not idle.
      await Promise.all(Array.from({ length: 8 }, (_, n) => client.ok('POST', `/v1/counters/busy-${n}/increment`, {})));

      const signalledAt = Date.now();
      server.kill('SIGTERM');
      await server.waitForLine(/"msg":"shutting down"/, 2000);

      // The listening socket closes as soon as close begins; held connections stay open.
      let refused = '';
      for (let i = 0; i < 20 && refused !== 'ECONNREFUSED'; i++) {
        refused = await tryConnect(server.port);
        if (refused !== 'ECONNREFUSED') await new Promise((r) => setTimeout(r, 25));
      }
      expect(refused, 'a new connection after close began').toBe('ECONNREFUSED');

      await stream.ended;
      expect(server.hasExited, 'the process waits for the held writes').toBe(false);

      const answers = await Promise.all(held.map((h) => h.finish()));
      for (const [n, answer] of answers.entries()) {
        expect(answer.status, `held write ${n}: ${answer.body}`).toBe(201);
        expect(JSON.parse(answer.body)).toMatchObject({ id: `held-${n}`, version: 1, data: { id: `held-${n}`, n } });
      }

      const exit = await waitForExit(server, 5000 - (Date.now() - signalledAt));
      expect(exit).toEqual({ code: 0, signal: null });
      expect(Date.now() - signalledAt).toBeLessThan(5000);
      expect(server.stderr()).toBe('');

      // What was acknowledged during the shutdown is stored.
      const again = await startServer(serverEnv.env);
      const records = await listAll<{ id: string }>(api(again.url, key), '/v1/collections/held/records');
      expect(records.map((r) => r.id).sort()).toEqual(['before', ...Array.from({ length: HELD_WRITES }, (_, n) => `held-${n}`)].sort());
      again.kill('SIGTERM');
      expect((await waitForExit(again, 5000)).code).toBe(0);
    }, 60_000);
  },
  { only: ['sqlite', 'postgres'] },
);
