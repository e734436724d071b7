import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BackendName, Fixture } from './fixture.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const BENCH_DIR = path.resolve(here, '..');

/** A server child's memory: idle (after start-up settled, before any request), at the end of the run, and the peak. */
export interface ServerMemory {
  readonly idleRss: number;
  readonly rss: number;
  readonly peakRss: number;
}

export interface ServerChild {
  readonly child: ChildProcess;
  readonly port: number;
  /** RSS after start-up settled, before any request (bench/server.ts). */
  readonly idleRss: number;
  /** Whether a global.gc() ran before the idle reading (only with --expose-gc in nodeArgs). */
  readonly idleGc: boolean;
  /** Stops the server; resolves with its idle RSS, its RSS just before closing, and its peak RSS. */
  stop(): Promise<ServerMemory>;
}

/** Forks a bench script under tsx with an IPC channel. */
export function forkScript(script: string, args: string[], env: Record<string, string>, nodeArgs: string[] = []): ChildProcess {
  return fork(path.join(BENCH_DIR, script), args, {
    execArgv: ['--import', 'tsx', ...nodeArgs],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

function nextMessage<T>(child: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: { type?: string }) => {
      if (message?.type !== type) return;
      cleanup();
      resolve(message as T);
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`child exited with ${code} before sending "${type}"`));
    };
    const cleanup = () => {
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

/**
 * The V8 flags of `npm start` (package.json), given to every server child alike, the
 * baselines included, so that the comparison is of the code and not of the runtime settings.
 * A 64 MiB semi-space cut the app's CPU per request at 1000 connections by ~25% (many live
 * requests make each young-generation collection copy more); at 100 two A/Bs disagreed
 * (+10% and +1% CPU), and the peak RSS grew by ~90-110 MiB in full runs (docs/benchmarks.md,
 * "Where the time goes", 9).
 */
export const SERVER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=64'];

export async function startServer(mode: 'app' | 'baseline', env: Record<string, string>, nodeArgs: string[] = []): Promise<ServerChild> {
  const child = forkScript('server.ts', [mode], env, [...SERVER_NODE_FLAGS, ...nodeArgs]);
  const { port, idleRss, idleGc } = await nextMessage<{ port: number; idleRss: number; idleGc: boolean }>(child, 'ready');
  return {
    child,
    port,
    idleRss,
    idleGc,
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      const stopped = nextMessage<{ rss: number; peakRss: number }>(child, 'stopped');
      child.send({ type: 'stop' });
      const { rss, peakRss } = await stopped;
      await exited;
      return { idleRss, rss, peakRss };
    },
  };
}

/**
 * The two server children of a backend's phase: the bare-Fastify baselines (with that
 * backend's raw driver route over the fixture) and the app over the fixture, keyed by the
 * scenarios' target (`baseline`, or the backend). bench/run.ts and bench/idle-rss.ts start
 * them the same way through here.
 */
export async function startPhaseServers(fx: Fixture, nodeArgs: string[] = []): Promise<Map<'baseline' | BackendName, ServerChild>> {
  const servers = new Map<'baseline' | BackendName, ServerChild>();
  try {
    if (fx.backend === 'sqlite' && !fx.sqliteFile) throw new Error('the SQLite fixture has no file for the raw better-sqlite3 route');
    const baselineEnv: Record<string, string> = fx.backend === 'sqlite'
      ? { BENCH_SQLITE_FILE: fx.sqliteFile as string, BENCH_SQLITE_TENANT: fx.tenantId }
      : { BENCH_PG_URL: fx.url, BENCH_PG_TENANT: fx.tenantId };
    servers.set('baseline', await startServer('baseline', baselineEnv, nodeArgs));
    servers.set(fx.backend, await startServer('app', { BENCH_DATABASE_URL: fx.url }, nodeArgs));
    return servers;
  } catch (error) {
    for (const server of servers.values()) await server.stop().catch(() => undefined);
    throw error;
  }
}

/** The name of a phase server in the results' `memory`: `baseline:<backend>` for the baselines, the backend for the app. */
export function memoryName(target: 'baseline' | BackendName, backend: BackendName): string {
  return target === 'baseline' ? `baseline:${backend}` : target;
}

/** Runs a bench script to completion and returns the payload of its `{type:'result'}` message. */
export async function runScript<T>(script: string, env: Record<string, string>): Promise<T> {
  const child = forkScript(script, [], env);
  const result = nextMessage<{ payload: T }>(child, 'result');
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const { payload } = await result;
  const code = await exited;
  if (code !== 0) throw new Error(`${script} exited with ${code}`);
  return payload;
}
