/**
 * The server process's policy for errors nothing caught (src/cli/process-policy.ts): an
 * unhandled rejection is logged and the server keeps serving; an uncaught exception is
 * logged and the process exits 1. Provoked in the real process by a preloaded module, on a
 * signal, once the server listens. A library user's process gets no handlers from us.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openTestStore } from '../helpers/index.js';
import { killChildren, startServer, waitForExit } from './process.js';

const PRELOAD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/fail-on-signal.mjs');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'agentstore-e2e-policy-'));
afterEach(killChildren);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const start = (failure: 'rejection' | 'exception') =>
  startServer({ AGENTSTORE_DATA_DIR: fs.mkdtempSync(path.join(tmp, 'data-')), NODE_OPTIONS: `--import ${PRELOAD}`, AGENTSTORE_TEST_FAILURE: failure });

describe('process policy [sqlite]', () => {
  it('an unhandled rejection is logged and the server keeps serving', async () => {
    const server = await start('rejection');
    server.kill('SIGUSR2');
    const line = await server.waitForLine(/unhandled promise rejection/, 5000);
    const logged = JSON.parse(line) as { level: number; err?: { message?: string } };
    expect(logged.level).toBe(50);
    expect(logged.err?.message).toBe('provoked rejection');
    server.kill('SIGUSR2');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(server.hasExited).toBe(false);
    expect((await fetch(`${server.url}/ready`)).status).toBe(200);
    server.kill('SIGTERM');
    expect(await waitForExit(server, 5000)).toEqual({ code: 0, signal: null });
  });

  it('an uncaught exception is logged as fatal and the process exits 1', async () => {
    const server = await start('exception');
    server.kill('SIGUSR2');
    expect(await waitForExit(server, 5000)).toEqual({ code: 1, signal: null });
    const fatal = server.logLines().find((l) => l.level === 60);
    expect(fatal, server.stdout()).toMatchObject({ err: { message: 'provoked exception' } });
  });

  it('a library store installs no process-wide handlers', async () => {
    const before = [process.listenerCount('unhandledRejection'), process.listenerCount('uncaughtException')];
    const test = await openTestStore({ name: 'sqlite', dialect: 'sqlite' });
    try {
      expect([process.listenerCount('unhandledRejection'), process.listenerCount('uncaughtException')]).toEqual(before);
    } finally {
      await test.close();
    }
  });
});
