/**
 * Child processes for the out-of-process suites: the real server (`agentstore serve`) and
 * one-shot CLI commands, both run through the package bin (`node bin/agentstore.js`), and
 * node scripts of the tests' own (`spawnNode`).
 *
 * - The environment is built from scratch (PATH, HOME + what the test passes), so a
 *   developer's DATABASE_URL or AGENTSTORE_SERVICE_KEY never leaks into a test.
 * - The server listens on PORT=0; its address is read from the pino line
 *   "Server listening at http://...".
 * - Every child is tracked: `killChildren()` (call it in afterEach/afterAll) SIGKILLs
 *   whatever is still running, and a process 'exit' handler does the same as a last resort.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(ROOT, 'bin/agentstore.js');

export type Env = Record<string, string | undefined>;

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** SIGKILLs every child still running and waits for them to go. */
export async function killChildren(): Promise<void> {
  await Promise.all(
    [...children].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
  children.clear();
}

function childEnv(env: Env): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, TZ: 'UTC' };
  for (const [key, value] of Object.entries(env)) if (value !== undefined) base[key] = value;
  return base;
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

function track(child: ChildProcess): Promise<Exit> {
  children.add(child);
  return new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
}

export interface CliResult extends Exit {
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `agentstore <args>` to completion. `onStdout` sees each chunk as it arrives (when a
 * command printed, not when its process ended).
 */
export function runCli(args: readonly string[], env: Env, timeoutMs = 30_000, onStdout?: (chunk: string) => void): Promise<CliResult> {
  return runCommand(process.execPath, [BIN, ...args], { cwd: ROOT, env: childEnv(env), timeoutMs, ...(onStdout ? { onStdout } : {}) });
}

/** Runs any command to completion with exactly `env`; SIGKILLed after `timeoutMs`. */
export async function runCommand(
  command: string,
  args: readonly string[],
  options: { readonly cwd: string; readonly env: NodeJS.ProcessEnv; readonly timeoutMs: number; readonly onStdout?: (chunk: string) => void },
): Promise<CliResult> {
  const { timeoutMs, onStdout } = options;
  const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    onStdout?.(d);
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  children.add(child);
  try {
    // 'close' (not 'exit'): it comes after the pipes are drained. 'error': it did not start.
    const exit = await new Promise<Exit>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, signal) => resolve({ code, signal }));
    });
    return { ...exit, stdout, stderr };
  } finally {
    children.delete(child);
    clearTimeout(timer);
  }
}

/**
 * Starts `node <args>` (a script of the test's) with the same scratch environment, all
 * three stdio streams piped, tracked like every child (`killChildren`).
 */
export function spawnNode(args: readonly string[], env: Env): ChildProcess {
  const child = spawn(process.execPath, [...args], { cwd: ROOT, env: childEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
  void track(child);
  return child;
}

export interface ServerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** http://127.0.0.1:<port> once started. */
  readonly url: string;
  readonly port: number;
  /** Everything written so far. */
  stdout(): string;
  stderr(): string;
  /** stdout lines that parse as JSON (pino), in order. */
  logLines(): Record<string, unknown>[];
  /** Resolves with the first stdout line matching `pattern`, now or later. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  readonly exited: Promise<Exit>;
  /** Whether the process has exited (by any means). */
  readonly hasExited: boolean;
  kill(signal: NodeJS.Signals): void;
}

export class ServerStartError extends Error {
  constructor(
    message: string,
    readonly exit: Exit | undefined,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(`${message}\n--- stdout ---\n${stdout.slice(-4000)}\n--- stderr ---\n${stderr.slice(-4000)}`);
  }
}

/**
 * Starts `agentstore serve` with `env` (PORT=0, HOST=127.0.0.1 unless given) and resolves
 * when it listens. Rejects with the output when the process exits first or takes too long.
 * `bin` and `cwd` run another copy of the package (an installed one) instead of the checkout's.
 */
export async function startServer(env: Env, options: { timeoutMs?: number; bin?: string; cwd?: string } = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, [options.bin ?? BIN, 'serve'], {
    cwd: options.cwd ?? ROOT,
    env: childEnv({ PORT: '0', HOST: '127.0.0.1', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let exit: Exit | undefined;
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  let pending = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      for (const w of [...waiters]) {
        if (w.pattern.test(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = track(child).then((e) => (exit = e));

  const waitForLine = (pattern: RegExp, timeoutMs = 10_000): Promise<string> => {
    const already = stdout.split('\n').find((line) => pattern.test(line));
    if (already !== undefined) return Promise.resolve(already);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(waiter), 1);
        reject(new ServerStartError(`no stdout line matching ${pattern} within ${timeoutMs} ms`, exit, stdout, stderr));
      }, timeoutMs);
      const waiter = {
        pattern,
        resolve: (line: string) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      waiters.push(waiter);
    });
  };

  const listening = waitForLine(/"msg":"Server listening at http:\/\/127\.0\.0\.1:\d+"/, options.timeoutMs ?? 15_000);
  const line = await Promise.race([
    listening,
    exited.then((e) => {
      throw new ServerStartError(`the server exited before listening (code ${e.code}, signal ${e.signal})`, e, stdout, stderr);
    }),
  ]);
  const url = /Server listening at (http:\/\/127\.0\.0\.1:(\d+))/.exec(line)!;
  return {
    child,
    pid: child.pid!,
    url: url[1]!,
    port: Number(url[2]),
    stdout: () => stdout,
    stderr: () => stderr,
    logLines: () =>
      stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    waitForLine,
    exited,
    get hasExited() {
      return exit !== undefined;
    },
    kill: (signal) => void child.kill(signal),
  };
}

/** Resolves with the exit, or rejects after `timeoutMs`. */
export async function waitForExit(server: ServerProcess, timeoutMs: number): Promise<Exit> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      server.exited,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`pid ${server.pid} did not exit within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
