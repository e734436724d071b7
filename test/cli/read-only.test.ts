/**
 * The read-only commands besides `status` (test/cli/status.test.ts): `migrate status`,
 * `migrate plan`, `tenants list` and `keys list` on an empty data dir answer as on an empty
 * database and create neither the SQLite file nor the directory; on a database that is
 * behind, the lists migrate nothing and say to run `migrate up`.
 *
 * SQLite only: opening a file that does not exist is what creates it; a PostgreSQL database
 * exists before any command runs (status.test.ts checks that status creates no table there).
 * Commands run side by side where they are independent: each is a Node process whose start-up
 * is most of its cost (docs/operations.md, "CLI start-up").
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATIONS } from '../../src/db/migrations/index.js';
import { killChildren, runCli, type CliResult } from '../e2e/process.js';

const LATEST = Math.max(...MIGRATIONS.map((m) => m.version));
const NO_TENANT = '00000000-0000-7000-8000-000000000000';

function ok(result: CliResult): string {
  expect(result.code, `exit code; stderr: ${result.stderr}`).toBe(0);
  expect(result.stderr).toBe('');
  return result.stdout;
}

const hash = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe('cli read-only commands on SQLite', () => {
  let root = '';
  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'agentstore-read-only-'));
  });
  afterEach(killChildren);
  afterAll(async () => {
    await killChildren();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('on an empty data dir: answer as an empty database, say the file does not exist yet, create nothing', async () => {
    const dataDir = path.join(root, 'never-created');
    const file = path.join(dataDir, 'agentstore.db');
    const env = { AGENTSTORE_DATA_DIR: dataDir };
    const [status, plan, tenants, keys] = await Promise.all([
      runCli(['migrate', 'status'], env),
      runCli(['migrate', 'plan'], env),
      runCli(['tenants', 'list'], env),
      runCli(['keys', 'list', '--tenant', NO_TENANT], env),
    ]);

    const statusOut = ok(status);
    expect(statusOut).toMatch(new RegExp(`^schema version 0 of ${LATEST} \\(NOT up to date\\)\\n`));
    const rows = statusOut.split('\n').filter((line) => /^\s+\d{4} /.test(line));
    expect(rows).toHaveLength(MIGRATIONS.length);
    for (const row of rows) expect(row).toMatch(/ pending$/);
    expect(statusOut).toContain(`database: sqlite ${file} does not exist yet (created by \`agentstore migrate up\` or the server's start)\n`);

    const planOut = ok(plan);
    expect(planOut).toMatch(/^-- the database file does not exist yet: `migrate up` creates it, then runs:\n-- 0001 /);
    for (const m of MIGRATIONS) expect(planOut).toContain(`-- ${String(m.version).padStart(4, '0')} ${m.name}\n`);

    expect(JSON.parse(ok(tenants))).toEqual({ items: [], nextCursor: null });
    expect(JSON.parse(ok(keys))).toEqual({ items: [], nextCursor: null });
    expect(fs.existsSync(dataDir), 'the data dir').toBe(false);
  });

  it('on a database that is behind: the lists migrate nothing, leave the file as it was, and say to run migrate up', async () => {
    const dataDir = path.join(root, 'behind');
    const file = path.join(dataDir, 'agentstore.db');
    const env = { AGENTSTORE_DATA_DIR: dataDir };
    ok(await runCli(['migrate', 'up', '--to', '1'], env));
    const before = hash(file);
    const results = await Promise.all([runCli(['tenants', 'list'], env), runCli(['keys', 'list', '--tenant', NO_TENANT], env), runCli(['migrate', 'status'], env)]);
    for (const result of results.slice(0, 2)) {
      expect(result.code, result.stdout).toBe(1);
      expect(result.stderr).toBe(`agentstore: the database schema is at version 1 of ${LATEST}, and this command only reads: run \`agentstore migrate up\` first\n`);
    }
    // An existing file is read as it is, with no "does not exist" line.
    const status = ok(results[2]!);
    expect(status).toMatch(new RegExp(`^schema version 1 of ${LATEST} `));
    expect(status).not.toMatch(/does not exist/);
    expect(hash(file)).toBe(before);
  });
});
