/**
 * `agentstore keys create` without `--role` makes the least useful key, a member key, as
 * the API and the library do; a role above member is asked for by name.
 *
 * The default is the service's, tested on every backend over HTTP and through the library
 * (test/http/key-rules.test.ts); the CLI only passes it on, so the embedded SQLite default
 * shows it here, with few child processes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killChildren, runCli, type CliResult, type Env } from '../e2e/process.js';

function json<T>(result: CliResult): T {
  expect(result.code, `exit code; stderr: ${result.stderr}`).toBe(0);
  return JSON.parse(result.stdout) as T;
}

describe('cli keys create', () => {
  let env: Env = {};
  const cli = (...args: string[]) => runCli(args, env);

  beforeAll(() => {
    env = { AGENTSTORE_DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'agentstore-cli-keys-')) };
  });
  afterEach(killChildren);
  afterAll(async () => {
    await killChildren();
    if (env.AGENTSTORE_DATA_DIR) fs.rmSync(env.AGENTSTORE_DATA_DIR, { recursive: true, force: true });
  });

  it('without --role the key is a member key; --role admin is honoured; --help shows the default', async () => {
    const tenant = json<{ id: string }>(await cli('tenants', 'create', 'keys-default'));
    // Side by side: each is a process whose start-up is most of its cost.
    const [plain, ops, help] = await Promise.all([
      cli('keys', 'create', '--tenant', tenant.id, '--name', 'plain'),
      cli('keys', 'create', '--tenant', tenant.id, '--name', 'ops', '--role', 'admin'),
      cli('keys', 'create', '--help'),
    ]);
    expect(json<{ role: string }>(plain).role).toBe('member');
    expect(json<{ role: string }>(ops).role).toBe('admin');
    expect(help.stdout).toMatch(/--role <role>[\s\S]*\(default: "member"\)/);
  });
});
