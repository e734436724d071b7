/**
 * `agentstore secrets rotate` as the package bin, on SQLite and PostgreSQL (as the runtime
 * role): secrets written under the old key are re-encrypted under the new one while a store
 * configured with both keeps reading them; a second run does nothing; without a key, or
 * with a key missing, it fails naming the variable.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { TenantContext } from '../../src/core/context.js';
import { createMigratedTestDatabase, forEachBackend, openTestStore, type TestDatabase } from '../helpers/index.js';
import { TEST_ENCRYPTION_KEY, TEST_ENCRYPTION_KEY_2, newTenant } from '../helpers/fixtures.js';
import { killChildren, runCli, type CliResult } from '../e2e/process.js';

interface Report {
  tenants: number;
  reencrypted: number;
  alreadyCurrent: number;
  changedConcurrently: number;
  undecryptable: Record<string, number>;
}

const report = (result: CliResult): Report => {
  expect(result.code, `exit code; stderr: ${result.stderr}`).toBe(0);
  return JSON.parse(result.stdout) as Report;
};

forEachBackend('cli secrets rotate', (backend) => {
  let database: TestDatabase;
  const secrets: { ctx: TenantContext; agentId: string; name: string; value: string }[] = [];
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentstore-cli-rotate-'));
  const cli = (keys: Record<string, string>, ...args: string[]) => runCli(['secrets', 'rotate', ...args], { AGENTSTORE_DATA_DIR: dataDir, DATABASE_URL: database.url, ...keys });

  beforeAll(async () => {
    database = await createMigratedTestDatabase(backend);
    const old = await openTestStore(backend, { database, runtimeOnly: true, store: { encryptionKey: TEST_ENCRYPTION_KEY, migrateOnStart: false } });
    try {
      for (let n = 0; n < 2; n++) {
        const { ctx } = await newTenant(old.store, `rotate-cli-${n}`);
        const { agent } = await old.store.agents.create(ctx, { name: `agent-${n}` });
        for (let i = 0; i < 12; i++) {
          const value = `secret-${n}-${i}`;
          await old.store.agents.setSecret(ctx, agent.id, `S${i}`, value);
          secrets.push({ ctx, agentId: agent.id, name: `S${i}`, value });
        }
      }
    } finally {
      await old.close();
    }
  });
  afterEach(killChildren);
  afterAll(async () => {
    await killChildren();
    await database?.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('without AGENTSTORE_ENCRYPTION_KEY it fails naming it, and changes nothing', async () => {
    const result = await cli({});
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/AGENTSTORE_ENCRYPTION_KEY/);
    // A malformed batch size is refused by the argument parser.
    const bad = await cli({ AGENTSTORE_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY_2 }, '--batch-size', '0');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/batch-size/);
  });

  it('with only the new key, the old secrets are reported undecryptable, left alone, and it exits 1 naming AGENTSTORE_ENCRYPTION_KEYS_OLD', async () => {
    const result = await cli({ AGENTSTORE_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY_2 });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/AGENTSTORE_ENCRYPTION_KEYS_OLD/);
    expect((JSON.parse(result.stdout) as Report).undecryptable).toEqual({ 'test-1': 24 });
    expect(result.stdout + result.stderr).not.toContain(TEST_ENCRYPTION_KEY.split(':')[1]);
  });

  it('re-encrypts every secret under the new key in batches while a store with both keys reads them; again, nothing to do', async () => {
    const keys = { AGENTSTORE_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY_2, AGENTSTORE_ENCRYPTION_KEYS_OLD: TEST_ENCRYPTION_KEY };
    // A server would run with both keys during the rotation: it reads every secret throughout.
    const live = await openTestStore(backend, { database, runtimeOnly: true, store: { encryptionKey: TEST_ENCRYPTION_KEY_2, encryptionKeysOld: TEST_ENCRYPTION_KEY, migrateOnStart: false } });
    try {
      let reading = true;
      let reads = 0;
      const reader = (async () => {
        while (reading) {
          const s = secrets[reads % secrets.length]!;
          expect((await live.store.agents.revealSecret(s.ctx, s.agentId, s.name)).value).toBe(s.value);
          reads++;
          // A request now and then, as a server's; the loop must also let the child's output in.
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })();
      const first = report(await cli(keys, '--batch-size', '5'));
      reading = false;
      await reader;
      expect(reads).toBeGreaterThan(0);
      expect(first).toMatchObject({ reencrypted: 24, changedConcurrently: 0, undecryptable: {} });
      expect(first.tenants).toBeGreaterThanOrEqual(2);
      expect(report(await cli(keys))).toMatchObject({ reencrypted: 0, alreadyCurrent: 24, undecryptable: {} });
    } finally {
      await live.close();
    }
    // The new key alone reads every secret now.
    const after = await openTestStore(backend, { database, runtimeOnly: true, store: { encryptionKey: TEST_ENCRYPTION_KEY_2, migrateOnStart: false } });
    try {
      for (const s of secrets) expect((await after.store.agents.revealSecret(s.ctx, s.agentId, s.name)).value).toBe(s.value);
      const listed = await after.store.agents.listSecrets(secrets[0]!.ctx, secrets[0]!.agentId, { limit: 100 });
      expect(new Set(listed.items.map((i) => i.keyId))).toEqual(new Set(['test-2']));
    } finally {
      await after.close();
    }
  });
});
