/**
 * Starts a private pgbouncer in transaction mode in front of the test PostgreSQL, the way
 * Supabase's and Neon's poolers sit in front of theirs: no session state survives a
 * transaction and named prepared statements would break. Used by the vitest globalSetup.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { APP_PASSWORD, APP_ROLE, OWNER_PASSWORD, OWNER_ROLE, PG_ADMIN_URL } from './pg-admin.js';

export interface RunningPgbouncer {
  readonly port: number;
  readonly dir: string;
  stop(): Promise<void>;
}

/** The pgbouncer binary, or undefined when it is not installed. */
export function findPgbouncer(): string | undefined {
  for (const candidate of [process.env.AGENTSTORE_TEST_PGBOUNCER_BIN, '/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer']) {
    if (candidate && fs.existsSync(candidate)) return candidate;
  }
  try {
    return execFileSync('which', ['pgbouncer'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

async function freePort(preferred: number): Promise<number> {
  const tryListen = (port: number) =>
    new Promise<number | undefined>((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(undefined));
      server.listen(port, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => resolve(typeof address === 'object' && address ? address.port : undefined));
      });
    });
  return (await tryListen(preferred)) ?? (await tryListen(0)) ?? Promise.reject(new Error('no free port'));
}

async function waitForPort(port: number, child: ChildProcess, logFile: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  const log = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').slice(-2000) : '(no log)';
  throw new Error(`pgbouncer did not start on port ${port} (exit code ${String(child.exitCode)}):\n${log}`);
}

/** `{ uid, gid }` of the postgres OS user: pgbouncer refuses to run as root. */
function postgresUser(): { uid: number; gid: number } | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : undefined;
  } catch {
    return undefined;
  }
}

export async function startPgbouncer(binary: string, preferredPort = 6439): Promise<RunningPgbouncer> {
  const upstream = new URL(PG_ADMIN_URL);
  const adminUser = decodeURIComponent(upstream.username || 'postgres');
  const adminPassword = decodeURIComponent(upstream.password);
  const port = await freePort(preferredPort);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentstore-pgbouncer-'));
  fs.chmodSync(dir, 0o755);
  const logFile = path.join(dir, 'pgbouncer.log');
  // auth_type=trust: any listed user is let in; the password given here is what pgbouncer
  // itself presents to PostgreSQL, so the harness also works where the server wants one.
  fs.writeFileSync(
    path.join(dir, 'userlist.txt'),
    `"${adminUser}" "${adminPassword.replaceAll('"', '""')}"\n"${APP_ROLE}" "${APP_PASSWORD}"\n"${OWNER_ROLE}" "${OWNER_PASSWORD}"\n`,
    { mode: 0o644 },
  );
  fs.writeFileSync(
    path.join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=${upstream.hostname} port=${upstream.port || '5432'}`,
      '',
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      // No unix socket: it would collide with a system pgbouncer or another run.
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${path.join(dir, 'userlist.txt')}`,
      `admin_users = ${adminUser}`,
      'pool_mode = transaction',
      'max_client_conn = 500',
      'default_pool_size = 20',
      // pg sends extra_float_digits; `options` carries nothing we need.
      'ignore_startup_parameters = extra_float_digits,options',
      // Test databases come and go: do not keep their server connections for long.
      'server_idle_timeout = 15',
      `logfile = ${logFile}`,
      `pidfile = ${path.join(dir, 'pgbouncer.pid')}`,
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  const args = [path.join(dir, 'pgbouncer.ini')];
  if (process.getuid?.() === 0) {
    const user = postgresUser();
    if (!user) throw new Error('running as root, but there is no "postgres" OS user for pgbouncer to switch to');
    fs.chownSync(dir, user.uid, user.gid);
    args.unshift('-u', 'postgres');
  }
  const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  try {
    await waitForPort(port, child, logFile);
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`${(error as Error).message}\n${stderr}`);
  }
  return {
    port,
    dir,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGINT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
