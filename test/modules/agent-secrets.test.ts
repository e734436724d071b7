/**
 * Agent secrets on every backend: AES-256-GCM under the configured key, bound to their row,
 * never readable but by an admin's audited reveal, and re-encrypted by rotation.
 */
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { forEachBackend, openTestStore, useTestStore, type TestDatabase } from '../helpers/backends.js';
import { TEST_ENCRYPTION_KEY, TEST_ENCRYPTION_KEY_2, asRole, expectError, newTenant } from '../helpers/fixtures.js';
import type { TenantContext } from '../../src/core/context.js';
import type { Store } from '../../src/store.js';

/** Every column of every row of the tenant tables that could carry a value, as text. */
async function rawText(store: Store, ctx: TenantContext, tables: readonly string[]): Promise<string> {
  return store.internals.db.inTenant(
    ctx.tenantId,
    async (trx) => {
      let out = '';
      for (const table of tables) {
        const { rows } = await sql<Record<string, unknown>>`select * from ${sql.table(table)} where tenant_id = ${ctx.tenantId}`.execute(trx);
        out += JSON.stringify(rows);
      }
      return out;
    },
    { readOnly: true },
  );
}

forEachBackend('agent secrets', (backend) => {
  const t = useTestStore(backend, { store: { encryptionKey: TEST_ENCRYPTION_KEY } });

  it('set, list (names only), reveal (admins, audited), replace and delete', async () => {
    const { ctx } = await newTenant(t.store);
    const { agent } = await t.store.agents.create(ctx, { name: 's' });
    const set = await t.store.agents.setSecret(ctx, agent.id, 'OPENAI_API_KEY', 'sk-first');
    expect(set).toMatchObject({ created: true, secret: { name: 'OPENAI_API_KEY', keyId: 'test-1' } });
    expect((await t.store.agents.listSecrets(ctx, agent.id)).items.map((s) => s.name)).toEqual(['OPENAI_API_KEY']);
    expect(await t.store.agents.revealSecret(ctx, agent.id, 'OPENAI_API_KEY')).toMatchObject({ name: 'OPENAI_API_KEY', value: 'sk-first' });
    const again = await t.store.agents.setSecret(ctx, agent.id, 'OPENAI_API_KEY', 'sk-second ✓');
    expect(again.created).toBe(false);
    expect(again.secret.createdAt).toBe(set.secret.createdAt);
    expect((await t.store.agents.revealSecret(ctx, agent.id, 'OPENAI_API_KEY')).value).toBe('sk-second ✓');
    const audit = await t.store.audit.list(ctx, { resourceId: `${agent.id}/OPENAI_API_KEY` });
    expect(audit.items.map((a) => a.action).sort()).toEqual(['agent_secret.reveal', 'agent_secret.reveal', 'agent_secret.set', 'agent_secret.set']);
    await t.store.agents.deleteSecret(ctx, agent.id, 'OPENAI_API_KEY');
    await expectError(t.store.agents.revealSecret(ctx, agent.id, 'OPENAI_API_KEY'), 'agentstore.not_found');
    await expectError(t.store.agents.deleteSecret(ctx, agent.id, 'OPENAI_API_KEY'), 'agentstore.not_found');
    await expectError(t.store.agents.setSecret(ctx, '0190a0a0-0000-7000-8000-000000000001', 'X', 'v'), 'agentstore.not_found');
  });

  it('roles: only admins set, delete and reveal; viewers list names', async () => {
    const { ctx } = await newTenant(t.store);
    const { agent } = await t.store.agents.create(ctx, { name: 'r' });
    await t.store.agents.setSecret(asRole(ctx, 'admin'), agent.id, 'K', 'v');
    for (const role of ['member', 'viewer'] as const) {
      const as = asRole(ctx, role);
      await expectError(t.store.agents.setSecret(as, agent.id, 'K', 'x'), 'agentstore.forbidden');
      await expectError(t.store.agents.revealSecret(as, agent.id, 'K'), 'agentstore.forbidden');
      await expectError(t.store.agents.deleteSecret(as, agent.id, 'K'), 'agentstore.forbidden');
      expect((await t.store.agents.listSecrets(as, agent.id)).items).toHaveLength(1);
    }
  });

  it("the change feed carries agents to every role, secrets' events to admins only", async () => {
    const { ctx } = await newTenant(t.store);
    const { agent } = await t.store.agents.create(ctx, { name: 'feed' });
    await t.store.agents.setSecret(ctx, agent.id, 'K', 'v');
    for (const role of ['viewer', 'member'] as const) {
      expect((await t.store.changes.read(asRole(ctx, role), { after: 0 })).map((c) => c.resourceType), role).toEqual(['agent']);
    }
    expect((await t.store.changes.read(asRole(ctx, 'admin'), { after: 0 })).map((c) => c.resourceType)).toEqual(['tenant', 'agent', 'agent_secret']);
  });

  it('bad names and values are refused naming the field, and write nothing', async () => {
    const { ctx } = await newTenant(t.store);
    const { agent } = await t.store.agents.create(ctx, { name: 'b' });
    for (const name of ['', 'a b', '.x', 'x'.repeat(129), "k'; drop table agent_secrets; --"]) await expectError(t.store.agents.setSecret(ctx, agent.id, name, 'v'), 'agentstore.validation', { field: 'name' });
    for (const value of ['', 'x'.repeat(16 * 1024 + 1), 'a\u0000b', 5 as unknown as string]) await expectError(t.store.agents.setSecret(ctx, agent.id, 'K', value), 'agentstore.validation', { field: '/value' });
    await expectError(t.store.agents.setSecret(ctx, 'nope', 'K', 'v'), 'agentstore.validation', { field: 'id' });
    expect((await t.store.agents.listSecrets(ctx, agent.id)).items).toEqual([]);
  });

  it('the value never appears in reads, lists, the audit log, the change feed, or any stored row', async () => {
    const { ctx } = await newTenant(t.store);
    const value = `sk-live-${Math.random().toString(36).slice(2)}-never-shown`;
    const { agent } = await t.store.agents.create(ctx, { name: 'leak' });
    await t.store.agents.setSecret(ctx, agent.id, 'STRIPE_KEY', value);
    await t.store.agents.revealSecret(ctx, agent.id, 'STRIPE_KEY');
    await t.store.agents.patch(ctx, agent.id, { description: 'after' });
    const seen = JSON.stringify([
      await t.store.agents.get(ctx, agent.id),
      await t.store.agents.getJson(ctx, agent.id),
      await t.store.agents.list(ctx),
      await t.store.agents.listVersions(ctx, agent.id),
      await t.store.agents.listSecrets(ctx, agent.id),
      await t.store.audit.list(ctx, { limit: 500 }),
      await t.store.changes.read(ctx, { after: 0 }),
    ]);
    expect(seen).toContain('STRIPE_KEY');
    expect(seen).not.toContain(value);
    // The raw rows, ciphertext included: no table holds the value or its base64.
    const raw = await rawText(t.store, ctx, ['audit_log', 'changes', 'agents', 'agent_versions', 'agent_secrets', 'idempotency_keys']);
    expect(raw).toContain('STRIPE_KEY');
    for (const form of [value, Buffer.from(value).toString('base64'), Buffer.from(value).toString('hex')]) expect(raw).not.toContain(form);
    // The change event and the audit entry say "set" with the name.
    const changes = await t.store.changes.read(ctx, { after: 0, resourceTypes: ['agent_secret'] });
    expect(changes.map((c) => [c.action, c.resourceId, c.data])).toEqual([
      ['set', `${agent.id}/STRIPE_KEY`, expect.objectContaining({ agentId: agent.id, name: 'STRIPE_KEY' })],
      ['reveal', `${agent.id}/STRIPE_KEY`, { agentId: agent.id, name: 'STRIPE_KEY' }],
    ]);
  });

  it('a ciphertext copied to another row (another secret, agent or tenant) fails to decrypt', async () => {
    const { ctx } = await newTenant(t.store);
    const { ctx: other } = await newTenant(t.store);
    const { agent } = await t.store.agents.create(ctx, { name: 'aad' });
    const { agent: agent2 } = await t.store.agents.create(ctx, { name: 'aad2' });
    const { agent: foreign } = await t.store.agents.create(other, { name: 'foreign' });
    await t.store.agents.setSecret(ctx, agent.id, 'A', 'value-a');
    for (const [target, agentId] of [[ctx, agent.id], [ctx, agent2.id], [other, foreign.id]] as const) await t.store.agents.setSecret(target, agentId, 'B', 'placeholder');
    const source = await t.store.internals.db.inTenant(ctx.tenantId, (trx) => trx.selectFrom('agent_secrets').selectAll().where('tenant_id', '=', ctx.tenantId).where('agent_id', '=', agent.id).where('name', '=', 'A').executeTakeFirstOrThrow());
    for (const [target, agentId] of [[ctx, agent.id], [ctx, agent2.id], [other, foreign.id]] as const) {
      await t.store.internals.db.inTenant(target.tenantId, (trx) =>
        trx.updateTable('agent_secrets').set({ key_id: source.key_id, nonce: source.nonce, ciphertext: source.ciphertext, auth_tag: source.auth_tag }).where('tenant_id', '=', target.tenantId).where('agent_id', '=', agentId).where('name', '=', 'B').execute(),
      );
      await expectError(t.store.agents.revealSecret(target, agentId, 'B'), 'agentstore.internal', { message: /failed authentication/ });
    }
    expect((await t.store.agents.revealSecret(ctx, agent.id, 'A')).value).toBe('value-a');
  });

  it('deleting the agent deletes its secrets in the same unit', async () => {
    const { ctx } = await newTenant(t.store);
    const { agent } = await t.store.agents.create(ctx, { name: 'gone' });
    await t.store.agents.setSecret(ctx, agent.id, 'A', '1');
    await t.store.agents.setSecret(ctx, agent.id, 'B', '2');
    await t.store.agents.delete(ctx, agent.id);
    expect(await rawText(t.store, ctx, ['agent_secrets'])).toBe('[]');
    const audit = await t.store.audit.list(ctx, { resourceId: agent.id, action: 'agent.delete' });
    expect(audit.items[0]?.details).toEqual({ versions: 1, secrets: 2 });
  });

  it('at most 64 secrets per agent', async () => {
    const { ctx } = await newTenant(t.store);
    const { agent } = await t.store.agents.create(ctx, { name: 'many' });
    for (let i = 0; i < 64; i++) await t.store.agents.setSecret(ctx, agent.id, `S${i}`, 'v');
    await expectError(t.store.agents.setSecret(ctx, agent.id, 'S64', 'v'), 'agentstore.conflict');
    // Replacing one of the 64 is not a 65th.
    await t.store.agents.setSecret(ctx, agent.id, 'S0', 'w');
  });
});

forEachBackend('agent secrets without a key, and rotation', (backend) => {
  const t = useTestStore(backend);

  it('without AGENTSTORE_ENCRYPTION_KEY: writes and reveals are refused naming it; everything else works', async () => {
    const { ctx } = await newTenant(t.store);
    const { agent } = await t.store.agents.create(ctx, { name: 'no key' });
    const error = await expectError(t.store.agents.setSecret(ctx, agent.id, 'K', 'v'), 'agentstore.not_configured', { message: /AGENTSTORE_ENCRYPTION_KEY/ });
    expect(error.status).toBe(503);
    await expectError(t.store.agents.revealSecret(ctx, agent.id, 'K'), 'agentstore.not_configured');
    expect((await t.store.agents.listSecrets(ctx, agent.id)).items).toEqual([]);
    expect((await t.store.agents.patch(ctx, agent.id, { model: 'm' })).version).toBe(2);
    await expectError(t.store.agents.rotateSecrets(), 'agentstore.not_configured', { message: /AGENTSTORE_ENCRYPTION_KEY/ });
  });

  it('rotation re-encrypts every secret of every tenant under the new key, in batches; the old key decrypts meanwhile; idempotent', async () => {
    const database: TestDatabase = t.database;
    // The old store writes under key 1.
    const before = await openTestStore(backend, { database, store: { encryptionKey: TEST_ENCRYPTION_KEY } });
    const values = new Map<string, string>();
    const tenants: TenantContext[] = [];
    try {
      for (let n = 0; n < 3; n++) {
        const { ctx } = await newTenant(before.store);
        tenants.push(ctx);
        const { agent } = await before.store.agents.create(ctx, { name: `rot-${n}` });
        for (let i = 0; i < 7; i++) {
          const value = `value-${n}-${i}`;
          await before.store.agents.setSecret(ctx, agent.id, `S${i}`, value);
          values.set(`${ctx.tenantId}/${agent.id}/S${i}`, value);
        }
      }
    } finally {
      await before.close();
    }
    // The new store: key 2 current, key 1 old. It reads the old secrets before rotating.
    const after = await openTestStore(backend, { database, store: { encryptionKey: TEST_ENCRYPTION_KEY_2, encryptionKeysOld: TEST_ENCRYPTION_KEY } });
    try {
      const reveal = async () => {
        for (const [path, value] of values) {
          const [tenantId, agentId, name] = path.split('/') as [string, string, string];
          const ctx = tenants.find((c) => c.tenantId === tenantId) as TenantContext;
          expect((await after.store.agents.revealSecret(ctx, agentId, name)).value).toBe(value);
        }
      };
      await reveal();
      // Interrupted after its first batch (a crash, a deploy): what it committed stays done.
      await expect(
        after.store.agents.rotateSecrets({
          batchSize: 5,
          onBatch: (r) => {
            if (r.reencrypted > 0) throw new Error('interrupted');
          },
        }),
      ).rejects.toThrow('interrupted');
      await reveal();
      const batches: number[] = [];
      const report = await after.store.agents.rotateSecrets({ batchSize: 5, onBatch: (r) => batches.push(r.reencrypted) });
      // The rest: 21 secrets, 5 of them done before the interruption.
      expect(report.reencrypted).toBe(16);
      expect(report.undecryptable).toEqual({});
      expect(report.tenants).toBeGreaterThanOrEqual(3);
      // 7 secrets per tenant in batches of 5: two batches for each tenant but the first (one left).
      expect(batches.length).toBeGreaterThanOrEqual(5);
      for (const ctx of tenants) {
        const agents = await after.store.agents.list(ctx);
        for (const agent of agents.items) expect((await after.store.agents.listSecrets(ctx, agent.id)).items.every((s) => s.keyId === 'test-2')).toBe(true);
      }
      await reveal();
      // Again: nothing to do.
      const again = await after.store.agents.rotateSecrets({ batchSize: 5 });
      expect(again).toMatchObject({ reencrypted: 0, changedConcurrently: 0 });
      expect(again.alreadyCurrent).toBeGreaterThanOrEqual(21);
    } finally {
      await after.close();
    }
    // Key 2 alone now reads everything.
    const only = await openTestStore(backend, { database, store: { encryptionKey: TEST_ENCRYPTION_KEY_2 } });
    try {
      const [path, value] = [...values][0] as [string, string];
      const [tenantId, agentId, name] = path.split('/') as [string, string, string];
      expect((await only.store.agents.revealSecret(tenants.find((c) => c.tenantId === tenantId) as TenantContext, agentId, name)).value).toBe(value);
    } finally {
      await only.close();
    }
  });

  it('a secret under a key that is not configured is reported, left alone, and its reveal names the variable', async () => {
    const database = t.database;
    const writer = await openTestStore(backend, { database, store: { encryptionKey: TEST_ENCRYPTION_KEY } });
    let ctx: TenantContext;
    let agentId: string;
    try {
      ({ ctx } = await newTenant(writer.store));
      agentId = (await writer.store.agents.create(ctx, { name: 'lost' })).agent.id;
      await writer.store.agents.setSecret(ctx, agentId, 'K', 'v');
    } finally {
      await writer.close();
    }
    const other = await openTestStore(backend, { database, store: { encryptionKey: TEST_ENCRYPTION_KEY_2 } });
    try {
      await expectError(other.store.agents.revealSecret(ctx, agentId, 'K'), 'agentstore.not_configured', { message: /AGENTSTORE_ENCRYPTION_KEYS_OLD/ });
      const report = await other.store.agents.rotateSecrets();
      expect(report.undecryptable['test-1']).toBeGreaterThanOrEqual(1);
    } finally {
      await other.close();
    }
  });
});

describe('encryption key configuration', () => {
  it('is validated at start, naming the variable and never echoing the key', async () => {
    const { loadConfig } = await import('../../src/config/env.js');
    const secretish = 'c2hvcnQ=';
    for (const [env, variable] of [
      [{ AGENTSTORE_ENCRYPTION_KEY: secretish }, 'AGENTSTORE_ENCRYPTION_KEY'],
      [{ AGENTSTORE_ENCRYPTION_KEY: `bad id!:${Buffer.alloc(32).toString('base64')}` }, 'AGENTSTORE_ENCRYPTION_KEY'],
      [{ AGENTSTORE_ENCRYPTION_KEY: 'not base64 at all but long enough to be 32 bytes?' }, 'AGENTSTORE_ENCRYPTION_KEY'],
      [{ AGENTSTORE_ENCRYPTION_KEYS_OLD: TEST_ENCRYPTION_KEY }, 'AGENTSTORE_ENCRYPTION_KEY'],
      [{ AGENTSTORE_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY, AGENTSTORE_ENCRYPTION_KEYS_OLD: `${TEST_ENCRYPTION_KEY},${secretish}` }, 'AGENTSTORE_ENCRYPTION_KEYS_OLD'],
      [{ AGENTSTORE_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY, AGENTSTORE_ENCRYPTION_KEYS_OLD: `test-1:${Buffer.alloc(32, 9).toString('base64')}` }, 'AGENTSTORE_ENCRYPTION_KEYS_OLD'],
    ] as const) {
      const error = await expectError(async () => loadConfig(env), 'agentstore.config');
      expect(error.message).toContain(variable);
      expect(error.message).not.toContain(secretish);
      expect(error.message).not.toContain(Buffer.alloc(32, 1).toString('base64'));
    }
    const keys = loadConfig({ AGENTSTORE_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY_2, AGENTSTORE_ENCRYPTION_KEYS_OLD: ` ${TEST_ENCRYPTION_KEY} , ` }).store.encryption;
    expect(keys?.current.id).toBe('test-2');
    expect(keys?.old.map((k) => k.id)).toEqual(['test-1']);
    // A bare key gets an id derived from it; URL-safe base64 is accepted too.
    const bare = loadConfig({ AGENTSTORE_ENCRYPTION_KEY: Buffer.alloc(32, 250).toString('base64url') }).store.encryption;
    expect(bare?.current.id).toMatch(/^k[0-9a-f]{10}$/);
    const { describeBackends } = await import('../../src/config/env.js');
    const lines = describeBackends(loadConfig({ AGENTSTORE_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY }).store).join('\n');
    expect(lines).toContain('current key "test-1"');
    expect(lines).not.toContain(Buffer.alloc(32, 1).toString('base64'));
  });
});
