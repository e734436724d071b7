/**
 * The event stream's write helper on a real socket: a write the client is not reading waits,
 * the wait ends when the client goes away, and a write after that does not wait at all (a
 * destroyed response emits neither 'drain' nor another 'close', so a wait would never end).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { write } from '../../src/modules/changes/sse-write.js';

let server: http.Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  server = undefined;
});

/** An open event stream on a real socket, its client paused (reading nothing). */
async function pausedStream(): Promise<{ response: http.ServerResponse; request: http.ClientRequest }> {
  let response!: http.ServerResponse;
  const opened = new Promise<void>((resolve) => {
    server = http.createServer((_req, res) => {
      response = res;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': open\n\n');
      resolve();
    });
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const request = http.get(`http://127.0.0.1:${(server?.address() as AddressInfo).port}/`);
  request.on('error', () => undefined);
  const res = await new Promise<http.IncomingMessage>((resolve) => request.once('response', resolve));
  res.on('error', () => undefined);
  res.pause();
  await opened;
  return { response, request };
}

it('waits while the client does not read, stops waiting when it leaves, and never waits on a destroyed response', async () => {
  const { response, request } = await pausedStream();

  // More than the kernel takes at once: the rest stays buffered in the process.
  const pending = write(response, `data: ${'x'.repeat(8 * 1024 * 1024)}\n\n`);
  expect(pending).toBeInstanceOf(Promise);
  let settled = false;
  void pending?.then(() => (settled = true));
  await new Promise((resolve) => setTimeout(resolve, 50));
  expect(settled).toBe(false);

  request.destroy();
  await pending;
  expect(response.destroyed).toBe(true);
  expect(write(response, 'data: after\n\n')).toBeUndefined();
});

it('cuts off a client that reads nothing for stallMs: the response is destroyed and the wait ends', async () => {
  const { response, request } = await pausedStream();

  const started = performance.now();
  const pending = write(response, `data: ${'x'.repeat(8 * 1024 * 1024)}\n\n`, 200);
  expect(pending).toBeInstanceOf(Promise);
  await pending;
  expect(performance.now() - started).toBeGreaterThanOrEqual(150);
  expect(response.destroyed).toBe(true);
  request.destroy();
});
