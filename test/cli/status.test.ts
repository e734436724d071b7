/**
 * `agentstore status` only reads: on an empty data dir it creates no database file or
 * directory, on a database that is behind it applies nothing and leaves the file as it was,
 * and what it prints about migrations agrees with the schema line.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { MIGRATIONS } from '../../src/db/migrations/index.js';
import { createTestDatabase, forEachBackend, type TestDatabase } from '../helpers/index.js';
import { killChildren, runCli, type CliResult, type Env } from '../e2e/process.js';

const LATEST = Math.max(...MIGRATIONS.map((m) => m.version));

function ok(result: CliResult): string {
  expect(result.code, `exit code; stderr: ${result.stderr}`).toBe(0);
  expect(result.stderr).toBe('');
  return result.stdout;
}

/** Every file under `dir` with a hash of its bytes (the WAL's side files excluded: they come and go with connections). */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of fs.readdirSync(dir)) {
    if (name.endsWith('-shm') || name.endsWith('-wal')) continue;
    out[name] = createHash('sha256').update(fs.readFileSync(path.join(dir, name))).digest('hex');
  }
  return out;
}

forEachBackend(
  'cli status reads only',
  (backend) => {
    let root = '';
    let database: TestDatabase | undefined;
    beforeAll(async () => {
      root = fs.mkdtempSync(path.join(os.tmpdir(), 'agentstore-status-'));
      if (backend.dialect === 'postgres') database = await createTestDatabase(backend);
    });
    afterEach(killChildren);
    afterAll(async () => {
      await killChildren();
      await database?.drop();
      fs.rmSync(root, { recursive: true, force: true });
    });
    const envFor = (dataDir: string): Env => ({ AGENTSTORE_DATA_DIR: dataDir, ...(database ? { DATABASE_URL: database.url } : {}) });

    if (backend.dialect === 'sqlite') {
      it('on an empty data dir: says there is no database yet, creates neither file nor directory', async () => {
        const dataDir = path.join(root, 'never-created');
        const out = ok(await runCli(['status'], envFor(dataDir)));
        expect(out).toContain(`database: sqlite ${path.join(dataDir, 'agentstore.db')} (does not exist yet)`);
        expect(out).toMatch(/^schema: none yet \(`agentstore serve` applies them at start, or run `agentstore migrate up`\)$/m);
        // It reports what the server would do, never that something was applied.
        expect(out).not.toMatch(/applied at start/);
        expect(out).toMatch(/^migrations: pending ones are applied when the server starts$/m);
        expect(fs.existsSync(dataDir)).toBe(false);
      });

      it('on a database that is behind: applies nothing, leaves the file byte for byte, and says what will', async () => {
        const dataDir = path.join(root, 'behind');
        ok(await runCli(['migrate', 'up', '--to', '1'], envFor(dataDir)));
        const before = snapshot(dataDir);
        const out = ok(await runCli(['status'], envFor(dataDir)));
        expect(out).toMatch(new RegExp(`^schema: version 1 of ${LATEST} \\(NOT up to date: \`agentstore serve\` applies them at start, or run \`agentstore migrate up\`\\)$`, 'm'));
        expect(snapshot(dataDir)).toEqual(before);
        expect(ok(await runCli(['migrate', 'status'], envFor(dataDir)))).toMatch(new RegExp(`^schema version 1 of ${LATEST} `));
      });
    } else {
      it('on an empty database: creates no table, and tells to run migrate up (the server would refuse to start)', async () => {
        const out = ok(await runCli(['status'], envFor(path.join(root, 'pg'))));
        expect(out).toMatch(/^migrations: the server refuses to start while any is pending$/m);
        expect(out).toMatch(new RegExp(`^schema: version 0 of ${LATEST} \\(NOT up to date: run \`agentstore migrate up\`\\)$`, 'm'));
        const client = new pg.Client({ connectionString: database!.directUrl });
        await client.connect();
        try {
          const { rows } = await client.query<{ n: number }>("select count(*)::int as n from information_schema.tables where table_schema = current_schema()");
          expect(rows[0]?.n).toBe(0);
        } finally {
          await client.end();
        }
      });
    }
  },
);
