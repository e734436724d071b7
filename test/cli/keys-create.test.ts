/**
 * `agentstore keys create` without `--role` makes the least useful key, a member key, as
 * the API and the library do; a role above member is asked for by name.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, forEachBackend, type TestDatabase } from '../helpers/index.js';
import { killChildren, runCli, type CliResult, type Env } from '../e2e/process.js';

function json<T>(result: CliResult): T {
  expect(result.code, `exit code; stderr: ${result.stderr}`).toBe(0);
  return JSON.parse(result.stdout) as T;
}

forEachBackend(
  'cli keys create',
  (backend) => {
    let dataDir = '';
    let database: TestDatabase | undefined;
    let env: Env = {};
    const cli = (...args: string[]) => runCli(args, env);

    beforeAll(async () => {
      dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentstore-cli-keys-'));
      env = { AGENTSTORE_DATA_DIR: dataDir };
      if (backend.dialect === 'postgres') {
        database = await createTestDatabase(backend);
        env = { ...env, DATABASE_URL: database.url };
        expect((await cli('migrate', 'up')).code).toBe(0);
      }
    });
    afterEach(killChildren);
    afterAll(async () => {
      await killChildren();
      await database?.drop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    });

    it('without --role the key is a member key; --role admin is honoured; --help shows the default', async () => {
      const tenant = json<{ id: string }>(await cli('tenants', 'create', 'keys-default'));
      expect(json<{ role: string }>(await cli('keys', 'create', '--tenant', tenant.id, '--name', 'plain')).role).toBe('member');
      expect(json<{ role: string }>(await cli('keys', 'create', '--tenant', tenant.id, '--name', 'ops', '--role', 'admin')).role).toBe('admin');
      const help = await cli('keys', 'create', '--help');
      expect(help.stdout).toMatch(/--role <role>[\s\S]*\(default: "member"\)/);
    }, 30_000);
  },
  { only: ['sqlite', 'postgres'] },
);
