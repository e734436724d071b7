/**
 * Starting the real server process: what it logs (one line per backend, secrets redacted),
 * the generated service key (printed once, never in a JSON log line), configuration errors
 * (exit non-zero with one line naming the variable), and the PostgreSQL schema check
 * (refuse to start on an unmigrated database until `agentstore migrate up`).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createMigratedTestDatabase, createTestDatabase, forEachBackend, type TestDatabase } from '../helpers/index.js';
import { api } from './api.js';
import { killChildren, runCli, ServerStartError, startServer, waitForExit, type ServerProcess } from './process.js';
import { sqliteDriverVersion } from '../../src/db/sqlite-driver.js';

let tmp = '';
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'agentstore-e2e-startup-'));
});
afterEach(killChildren);
afterAll(async () => {
  await killChildren();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const freshDir = () => fs.mkdtempSync(path.join(tmp, 'data-'));

/** The `backend` log lines (the startup summary), by their first word. */
function backendLines(server: ServerProcess): string[] {
  return server.logLines().flatMap((l) => (typeof l.backend === 'string' ? [l.backend] : []));
}

async function stop(server: ServerProcess): Promise<void> {
  server.kill('SIGTERM');
  expect(await waitForExit(server, 5000)).toEqual({ code: 0, signal: null });
}

const GENERATED_KEY = /AGENTSTORE_SERVICE_KEY=(\S+)/g;

describe('startup [sqlite, embedded default]', () => {
  it('prints a generated service key once, outside the JSON log, and not on the next start', async () => {
    const dataDir = freshDir();
    const first = await startServer({ AGENTSTORE_DATA_DIR: dataDir });
    expect((await fetch(`${first.url}/ready`)).status).toBe(200);
    await stop(first);

    const printed = [...first.stdout().matchAll(GENERATED_KEY)].map((m) => m[1]!);
    expect(printed, first.stdout()).toHaveLength(1);
    const key = printed[0]!;
    expect(key.length).toBeGreaterThanOrEqual(24);
    for (const line of first.stdout().split('\n').filter((l) => l.startsWith('{'))) expect(line).not.toContain(key);
    expect(first.stderr()).not.toContain(key);

    const lines = backendLines(first);
    expect(lines.filter((l) => l.startsWith('database: sqlite ')), lines.join('\n')).toEqual([`database: sqlite ${path.join(dataDir, 'agentstore.db')} (WAL, synchronous=full, better-sqlite3 ${sqliteDriverVersion})`]);
    expect(lines.filter((l) => l.startsWith('migrations:'))).toHaveLength(1);
    expect(lines.filter((l) => l.startsWith('event bus:'))).toHaveLength(1);
    // File storage: the local directory under the data dir, made by the server's start.
    expect(lines.filter((l) => l.startsWith('storage:'))).toEqual([`storage: local ${path.join(dataDir, 'files')} (uploads up to 100 MB)`]);
    expect(fs.existsSync(path.join(dataDir, 'files', '.tmp'))).toBe(true);
    // No encryption key configured: said once, and agent secrets are refused (docs/operations.md).
    expect(lines.filter((l) => l.startsWith('secrets:'))).toEqual(['secrets: no encryption key (AGENTSTORE_ENCRYPTION_KEY unset): agent secret writes and reveals are refused']);

    const second = await startServer({ AGENTSTORE_DATA_DIR: dataDir });
    try {
      expect(second.stdout()).not.toMatch(GENERATED_KEY);
      expect(second.stdout()).not.toContain(key);
      // The key printed the first time is the one stored.
      expect((await api(second.url, key).request('GET', '/v1/tenants')).status).toBe(200);
      expect((await api(second.url, `${key}x`).request('GET', '/v1/tenants')).status).toBe(401);
      expect(backendLines(second)).toHaveLength(5);
    } finally {
      await stop(second);
    }
    expect(second.stdout()).not.toContain(key);
  });

  it('never prints a configured service key or JWT secret', async () => {
    const serviceKey = `assk_configured_${randomUUID()}`;
    const jwtSecret = `jwt-secret-${randomUUID()}-${randomUUID()}`;
    const server = await startServer({ AGENTSTORE_DATA_DIR: freshDir(), AGENTSTORE_SERVICE_KEY: serviceKey, AGENTSTORE_JWT_SECRET: jwtSecret });
    expect((await api(server.url, serviceKey).request('GET', '/v1/tenants')).status).toBe(200);
    await stop(server);
    const output = server.stdout() + server.stderr();
    expect(output).not.toMatch(GENERATED_KEY);
    expect(output).not.toContain(serviceKey);
    expect(output).not.toContain(jwtSecret);
    expect(backendLines(server).filter((l) => l.startsWith('jwt:'))).toEqual(['jwt: HS256 secret ***, tenant claim tenant_id, exp required, clock skew 30 s, max lifetime 86400 s']);
  });

  const invalid: { env: Record<string, string>; variable: string; secret?: string }[] = [
    { env: { PORT: 'abc' }, variable: 'PORT' },
    { env: { DATABASE_URL: 'mysql://root:hunter2@127.0.0.1/x' }, variable: 'DATABASE_URL', secret: 'hunter2' },
    { env: { AGENTSTORE_PG_POOL_MAX: '0' }, variable: 'AGENTSTORE_PG_POOL_MAX' },
    { env: { AGENTSTORE_JWT_SECRET: 'too-short-secret' }, variable: 'AGENTSTORE_JWT_SECRET', secret: 'too-short-secret' },
    { env: { AGENTSTORE_SERVICE_KEY: 'short' }, variable: 'AGENTSTORE_SERVICE_KEY' },
    { env: { AGENTSTORE_MIGRATE_ON_START: 'maybe' }, variable: 'AGENTSTORE_MIGRATE_ON_START' },
    { env: { AGENTSTORE_LOOP_BUDGET_MS: '-1' }, variable: 'AGENTSTORE_LOOP_BUDGET_MS' },
  ];
  for (const { env, variable, secret } of invalid) {
    it(`exits non-zero with one line naming ${variable} when it is invalid (${JSON.stringify(env)})`, async () => {
      const dataDir = freshDir();
      const result = await runCli(['serve'], { AGENTSTORE_DATA_DIR: dataDir, ...env }, 15_000);
      expect(result.code, result.stdout + result.stderr).toBe(1);
      expect(result.stdout, 'nothing started').toBe('');
      expect(result.stderr).toMatch(new RegExp(`^agentstore: ${variable}: [^\\n]+\\n$`));
      expect(result.stderr, 'no stack trace').not.toMatch(/\n\s+at /);
      if (secret) expect(result.stderr).not.toContain(secret);
      expect(fs.readdirSync(dataDir), 'no database created').toEqual([]);
    });
  }
});

forEachBackend(
  'startup',
  (backend) => {
    const databases: TestDatabase[] = [];
    afterAll(async () => {
      await killChildren();
      await Promise.all(databases.map((d) => d.drop()));
    });

    /** The database's URL with another password: trust auth ignores it, and it must never be printed. */
    const withPassword = (database: TestDatabase, password: string): string => {
      const url = new URL(database.url);
      url.password = password;
      return url.toString();
    };

    it('logs the database with its password redacted, and /ready is 200', async () => {
      const database = await createMigratedTestDatabase(backend);
      databases.push(database);
      const serviceKey = `assk_configured_${randomUUID()}`;
      const server = await startServer({
        AGENTSTORE_DATA_DIR: freshDir(),
        DATABASE_URL: withPassword(database, 's3cret'),
        AGENTSTORE_MIGRATE_ON_START: 'false',
        AGENTSTORE_SERVICE_KEY: serviceKey,
      });
      const ready = await fetch(`${server.url}/ready`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ status: 'ready' });
      await stop(server);

      const lines = backendLines(server);
      const db = lines.filter((l) => l.startsWith('database:'));
      expect(db, lines.join('\n')).toHaveLength(1);
      expect(db[0]).toMatch(new RegExp(`^database: postgres postgres://agentstore_app:\\*\\*\\*@[^ ]+/${database.name} \\(pool max \\d+`));
      expect(lines.filter((l) => l.startsWith('migrations:'))).toEqual(['migrations: checked at start (run `agentstore migrate up` to apply)']);
      expect(lines.filter((l) => l.startsWith('event bus:'))).toHaveLength(1);
      const output = server.stdout() + server.stderr();
      expect(output).not.toContain('s3cret');
      expect(output).not.toContain(serviceKey);
      expect(output).not.toMatch(GENERATED_KEY);
    });

    it('refuses to start on an empty database until `agentstore migrate up`, then starts', async () => {
      const database = await createTestDatabase(backend);
      databases.push(database);
      const env = { AGENTSTORE_DATA_DIR: freshDir(), DATABASE_URL: withPassword(database, 's3cret') };

      const refused = await startServer(env).then(
        (server) => ({ server }),
        (error: unknown) => ({ error }),
      );
      expect('error' in refused, 'the server started on an unmigrated database').toBe(true);
      const error = (refused as { error: ServerStartError }).error;
      expect(error).toBeInstanceOf(ServerStartError);
      expect(error.exit?.code).toBe(1);
      expect(error.stderr).toMatch(/^agentstore: [^\n]*schema[^\n]*run `agentstore migrate up`[^\n]*\n$/);
      expect(error.stderr).not.toContain('s3cret');

      const migrated = await runCli(['migrate', 'up'], { ...env, AGENTSTORE_MIGRATE_DATABASE_URL: database.ownerUrl });
      expect(migrated.code, migrated.stderr).toBe(0);
      expect(migrated.stdout).toMatch(/^applied 1, 2/);

      const server = await startServer(env);
      expect((await fetch(`${server.url}/ready`)).status).toBe(200);
      // No key configured: the first start on this database generated one.
      expect([...server.stdout().matchAll(GENERATED_KEY)]).toHaveLength(1);
      await stop(server);
    });
  },
  { only: ['postgres'] },
);
