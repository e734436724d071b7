/**
 * The `agentstore` command line, run as the package bin (`node bin/agentstore.js`) with
 * the configuration in the environment, on the embedded SQLite default (a temp data dir)
 * and on a harness PostgreSQL database: migrations, status, tenants and API keys, and a
 * key revoked by the CLI being refused by a running server.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, forEachBackend, type TestDatabase } from '../helpers/index.js';
import { MIGRATIONS } from '../../src/db/migrations/index.js';
import { api, eventually } from '../e2e/api.js';
import { killChildren, runCli, startServer, waitForExit, type CliResult, type Env } from '../e2e/process.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function json<T = any>(result: CliResult): T {
  expect(result.code, `exit code; stderr: ${result.stderr}`).toBe(0);
  return JSON.parse(result.stdout) as T;
}

function ok(result: CliResult): string {
  expect(result.code, `exit code; stderr: ${result.stderr}`).toBe(0);
  expect(result.stderr).toBe('');
  return result.stdout;
}

forEachBackend(
  'cli',
  (backend) => {
    let dataDir = '';
    let database: TestDatabase | undefined;
    let env: Env = {};
    const cli = (...args: string[]) => runCli(args, env);
    /** The number of migrations this code knows, read from the first `migrate status`. */
    let latest = 0;

    beforeAll(async () => {
      dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentstore-cli-'));
      env = { AGENTSTORE_DATA_DIR: dataDir };
      if (backend.dialect === 'postgres') {
        database = await createTestDatabase(backend);
        // The CLI migrates as the owner role; everything else runs as the runtime role.
        env = { ...env, DATABASE_URL: database.url, AGENTSTORE_MIGRATE_DATABASE_URL: database.ownerUrl };
      }
    });
    afterEach(killChildren);
    afterAll(async () => {
      await killChildren();
      await database?.drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    });

    // The tests below run in order on one database: empty -> version 1 -> latest -> data.

    it('migrate status lists every migration as pending on an empty database', async () => {
      const out = ok(await cli('migrate', 'status'));
      const head = /^schema version 0 of (\d+) \(NOT up to date\)\n/.exec(out);
      expect(head, out).not.toBeNull();
      latest = Number(head![1]);
      expect(latest).toBeGreaterThanOrEqual(2);
      // (On SQLite a last line says that the file does not exist yet: test/cli/read-only.test.ts.)
      const rows = out.split('\n').filter((line) => /^\s+\d{4} /.test(line));
      // Versions may have gaps (a migration of another branch not merged yet): the code's list.
      expect(rows).toHaveLength(MIGRATIONS.length);
      rows.forEach((row, i) => expect(row).toMatch(new RegExp(`^\\s+${String(MIGRATIONS[i]?.version).padStart(4, '0')} \\S+\\s+pending$`)));
    });

    it('migrate plan prints the CREATE TABLE SQL and changes nothing', async () => {
      const out = ok(await cli('migrate', 'plan'));
      expect(out).toMatch(/^-- 0001 /m);
      for (const table of ['tenants', 'api_keys', 'audit_log', 'changes', 'records', 'counters']) expect(out).toMatch(new RegExp(`CREATE TABLE ${table} \\(`));
      expect(ok(await cli('migrate', 'status'))).toMatch(/^schema version 0 of /);
    });

    it('migrate up --to 1 applies the first migration only', async () => {
      expect(ok(await cli('migrate', 'up', '--to', '1'))).toBe('applied 1\n');
      const status = ok(await cli('migrate', 'status'));
      expect(status).toMatch(new RegExp(`^schema version 1 of ${latest} \\(NOT up to date\\)`));
      expect(status).toMatch(/^\s+0001 \S+\s+applied\s+\d{4}-\d\d-\d\dT/m);
      expect(status).toMatch(/^\s+0002 \S+\s+pending$/m);
      expect(ok(await cli('migrate', 'plan'))).not.toMatch(/^-- 0001 /m);
    });

    it('migrate up applies the rest, and the second time has nothing to apply', async () => {
      const rest = MIGRATIONS.slice(1).map((m) => m.version).join(', ');
      expect(ok(await cli('migrate', 'up'))).toBe(`applied ${rest}\n`);
      expect(ok(await cli('migrate', 'up'))).toBe('nothing to apply\n');
      expect(ok(await cli('migrate', 'plan'))).toBe('-- nothing to apply\n');
      expect(ok(await cli('migrate', 'status'))).toMatch(new RegExp(`^schema version ${latest} of ${latest} \\(up to date\\)`));
    });

    it('status shows the backends, the schema version and row counts', async () => {
      const out = ok(await cli('status'));
      if (backend.dialect === 'sqlite') expect(out).toContain(`database: sqlite ${path.join(dataDir, 'agentstore.db')} (WAL`);
      else expect(out).toMatch(/^database: postgres postgres:\/\/agentstore_app:\*\*\*@/m);
      expect(out).toMatch(/^migrations: /m);
      expect(out).toContain(`schema: version ${latest} of ${latest}\n`);
      for (const table of ['tenants', 'api_keys', 'records', 'audit_log']) expect(out).toMatch(new RegExp(`^\\s+${table}\\s+0$`, 'm'));
    });

    // Two tests, not one: each CLI command is a process whose start-up costs 0.5-0.8 s of CPU,
    // several times that in wall time on a loaded 2-core machine (docs/operations.md, "CLI
    // start-up"), and one test holding all of them came within seconds of the 30 s timeout.
    it('tenants and keys: create prints the key once, list never prints secrets, status counts them', async () => {
      const tenant = json<{ id: string; name: string }>(await cli('tenants', 'create', 'acme cli'));
      expect(tenant).toMatchObject({ id: expect.stringMatching(UUID), name: 'acme cli' });
      expect(json<{ items: { id: string }[] }>(await cli('tenants', 'list')).items.map((t) => t.id)).toContain(tenant.id);

      const created = json<{ id: string; key: string; role: string; name: string }>(await cli('keys', 'create', '--tenant', tenant.id, '--name', 'ci', '--role', 'member'));
      expect(created).toMatchObject({ id: expect.stringMatching(UUID), name: 'ci', role: 'member', key: expect.any(String) });
      expect(created.key.length).toBeGreaterThanOrEqual(32);

      const [listed, status] = await Promise.all([cli('keys', 'list', '--tenant', tenant.id), cli('status')]);
      const keys = json<{ items: Record<string, unknown>[] }>(listed).items;
      expect(keys.map((k) => k.id)).toEqual([created.id]);
      expect(keys[0]).not.toHaveProperty('key');
      expect(listed.stdout).not.toContain(created.key);
      // Not even the part after the visible prefix.
      expect(listed.stdout).not.toContain(created.key.slice(-24));

      const counts = ok(status);
      expect(counts, 'status counts every tenant’s rows').toMatch(/^\s+tenants\s+1$/m);
      expect(counts).toMatch(/^\s+api_keys\s+1$/m);
    });

    it('a key the CLI revokes gets 401 from a running server (SQLite: within ~100 ms; PostgreSQL: within the credential cache’s 5 s)', async () => {
      // The server's start, the longest of this test's processes, overlaps the commands before it is needed.
      const starting = startServer(env);
      starting.catch(() => undefined);
      const tenant = json<{ id: string }>(await cli('tenants', 'create', 'acme revoke'));
      const created = json<{ id: string; key: string }>(await cli('keys', 'create', '--tenant', tenant.id, '--name', 'to-revoke'));
      const server = await starting;
      const client = api(server.url, created.key);
      // Used once before the revocation, so the server has it in its credential cache.
      expect((await client.request('GET', '/v1/counters')).status).toBe(200);

      const revoked = json<{ id: string; revokedAt: string | null }>(await cli('keys', 'revoke', created.id, '--tenant', tenant.id));
      expect(revoked).toMatchObject({ id: created.id, revokedAt: expect.any(String) });
      // Another process revoked it: on SQLite the server drops it from its credential cache
      // within ~100 ms (test/e2e/multiprocess.test.ts measures it), on PostgreSQL the cache
      // lets it live at most 5 s.
      const refusedAt = Date.now();
      expect(await eventually(async () => (await client.request('GET', '/v1/counters')).status === 401, 7000, 200), 'the revoked key is refused').toBe(true);
      expect(Date.now() - refusedAt).toBeLessThan(7000);
      expect((await client.request('POST', '/v1/counters/x/increment', {})).status).toBe(401);
      expect(json<{ items: { revokedAt: string | null }[] }>(await cli('keys', 'list', '--tenant', tenant.id)).items[0]?.revokedAt).toEqual(expect.any(String));

      server.kill('SIGTERM');
      expect((await waitForExit(server, 5000)).code).toBe(0);
    });

    it('bad arguments exit non-zero with a message', async () => {
      const tenant = json<{ id: string }>(await cli('tenants', 'create', 'bad-args'));
      // Refused by the database layer, so on each backend.
      const cases: [string[], RegExp][] = [
        [['tenants', 'list', '--limit', 'abc'], /limit/],
        [['keys', 'create', '--tenant', tenant.id, '--name', 'x', '--role', 'superuser'], /role: must be one of owner, admin, member, viewer/],
        [['keys', 'create', '--tenant', '00000000-0000-7000-8000-000000000000', '--name', 'x'], /tenant not found/],
        [['keys', 'revoke', '00000000-0000-7000-8000-000000000000', '--tenant', tenant.id], /api key not found/],
      ];
      // Refused while parsing the arguments, before any database: once is enough.
      if (backend.name === 'sqlite') {
        cases.push(
          [['nope'], /unknown command 'nope'/],
          [['tenants', 'create'], /missing required argument 'name'/],
          [['keys', 'create', '--name', 'x'], /required option '--tenant <id>' not specified/],
          [['migrate', 'up', '--to', 'abc'], /--to/],
          [['migrate', 'up', '--to', '-1'], /--to/],
          [['migrate', 'up', '--to', String(latest + 1)], /--to/],
        );
      }
      const results = await Promise.all(cases.map(([args]) => cli(...args)));
      for (const [i, [args, message]] of cases.entries()) {
        const result = results[i]!;
        expect(result.code, `agentstore ${args.join(' ')}: ${result.stdout}${result.stderr}`).toBe(1);
        expect(result.stderr, `agentstore ${args.join(' ')}`).toMatch(message);
        expect(result.stderr, 'no stack trace').not.toMatch(/\n\s+at /);
      }
    });
  },
  { only: ['sqlite', 'postgres'] },
);
