/**
 * Agent secrets: the API keys an agent's tools use, stored AES-256-GCM encrypted
 * (src/core/secret-box.ts) and bound to their row by the AAD. The value goes in through
 * `setSecret` and comes out only through `revealSecret` (admins, audited); the audit log and
 * the change feed say which secret was set, revealed or deleted, by name only.
 */
import { AgentstoreError } from '../../core/errors.js';
import { requireRole, type TenantContext } from '../../core/context.js';
import { afterKey, pageSize, toPage, type Page } from '../../core/cursor.js';
import { ENCRYPTION_KEY_VARIABLE, open, seal, secretAad, type EncryptionKeys } from '../../core/secret-box.js';
import { unstorableText } from '../../core/text.js';
import type { Database } from '../../db/database.js';
import { toIso } from '../../db/dialect.js';
import type { AgentSecretsTable } from '../../db/schema.js';
import type { UnitOfWork, UnitOfWorkRunner } from '../../db/unit-of-work.js';
import type { AgentSecretInfo, RevealedSecret } from './types.js';
import { MAX_SECRETS_PER_AGENT, MAX_SECRET_BYTES, validateAgentId, validateSecretName } from './validation.js';

export interface AgentSecrets {
  /** Stores (or replaces) a secret's value, encrypted under the current key; admins only. */
  setSecret(ctx: TenantContext, agentId: string, name: string, value: string): Promise<{ secret: AgentSecretInfo; created: boolean }>;
  /** Names and timestamps, never values. */
  listSecrets(ctx: TenantContext, agentId: string, options?: { limit?: number; cursor?: string }): Promise<Page<AgentSecretInfo>>;
  deleteSecret(ctx: TenantContext, agentId: string, name: string): Promise<void>;
  /** The value, to admins only; every reveal is audited. */
  revealSecret(ctx: TenantContext, agentId: string, name: string): Promise<RevealedSecret>;
}

const toInfo = (row: Pick<AgentSecretsTable, 'name' | 'key_id' | 'created_at' | 'updated_at'>): AgentSecretInfo => ({
  name: row.name,
  keyId: row.key_id,
  createdAt: toIso(row.created_at),
  updatedAt: toIso(row.updated_at),
});

const resourceId = (agentId: string, name: string) => `${agentId}/${name}`;

export function createAgentSecrets(deps: { db: Database; uow: UnitOfWorkRunner; encryption?: EncryptionKeys | undefined }): AgentSecrets {
  const { uow } = deps;
  const keys = (): EncryptionKeys => {
    // Never a key made up on the spot: values encrypted under it would be lost at the next start.
    if (!deps.encryption) throw AgentstoreError.notConfigured(ENCRYPTION_KEY_VARIABLE, 'agent secrets need an encryption key, and none is configured');
    return deps.encryption;
  };
  const agentExists = async (w: Pick<UnitOfWork, 'trx' | 'ctx'>, agentId: string): Promise<void> => {
    const found = await w.trx.selectFrom('agents').select('id').where('tenant_id', '=', w.ctx.tenantId).where('id', '=', agentId).executeTakeFirst();
    if (!found) throw AgentstoreError.notFound('agent');
  };
  const loadSecret = (w: Pick<UnitOfWork, 'trx' | 'ctx'>, agentId: string, name: string) =>
    w.trx.selectFrom('agent_secrets').selectAll().where('tenant_id', '=', w.ctx.tenantId).where('agent_id', '=', agentId).where('name', '=', name).executeTakeFirst();

  return {
    async setSecret(ctx, agentId, name, value) {
      requireRole(ctx, 'admin');
      validateAgentId(agentId, 'id');
      validateSecretName(name);
      if (typeof value !== 'string' || value.length === 0) throw AgentstoreError.invalidField('/value', 'must be a non-empty string');
      if (Buffer.byteLength(value) > MAX_SECRET_BYTES) throw AgentstoreError.invalidField('/value', `must be at most ${MAX_SECRET_BYTES} bytes`);
      // The value never reaches the database as text, but a NUL would not survive a round trip everywhere either.
      const problem = unstorableText(value);
      if (problem) throw AgentstoreError.invalidField('/value', problem);
      const sealed = seal(keys(), secretAad(ctx.tenantId, agentId, name), value);
      return uow.write(ctx, async (w) => {
        await agentExists(w, agentId);
        const existing = await loadSecret(w, agentId, name);
        if (!existing) {
          const { n } = await w.trx
            .selectFrom('agent_secrets')
            .select((eb) => eb.fn.countAll<number | string>().as('n'))
            .where('tenant_id', '=', ctx.tenantId)
            .where('agent_id', '=', agentId)
            .executeTakeFirstOrThrow();
          if (Number(n) >= MAX_SECRETS_PER_AGENT) throw AgentstoreError.conflict(`an agent has at most ${MAX_SECRETS_PER_AGENT} secrets`);
        }
        const row = await w.trx
          .insertInto('agent_secrets')
          .values({ tenant_id: ctx.tenantId, agent_id: agentId, name, key_id: sealed.keyId, nonce: sealed.nonce, ciphertext: sealed.ciphertext, auth_tag: sealed.tag, created_at: w.now, updated_at: w.now })
          .onConflict((oc) => oc.columns(['tenant_id', 'agent_id', 'name']).doUpdateSet({ key_id: sealed.keyId, nonce: sealed.nonce, ciphertext: sealed.ciphertext, auth_tag: sealed.tag, updated_at: w.now }))
          .returning(['name', 'key_id', 'created_at', 'updated_at'])
          .executeTakeFirstOrThrow();
        const secret = toInfo(row);
        await w.record({ action: 'set', resourceType: 'agent_secret', resourceId: resourceId(agentId, name), data: { agentId, ...secret }, details: { agentId, name } });
        return { secret, created: !existing };
      });
    },

    async listSecrets(ctx, agentId, options = {}) {
      requireRole(ctx, 'viewer');
      validateAgentId(agentId, 'id');
      const limit = pageSize(options.limit);
      const scope = `agent-secrets:${agentId}`;
      const after = afterKey(scope, options.cursor);
      const rows = await uow.read(ctx, async (trx) => {
        await agentExists({ trx, ctx }, agentId);
        let q = trx
          .selectFrom('agent_secrets')
          .select(['name', 'key_id', 'created_at', 'updated_at'])
          .where('tenant_id', '=', ctx.tenantId)
          .where('agent_id', '=', agentId)
          .orderBy('name')
          .limit(limit + 1);
        if (after !== undefined) q = q.where('name', '>', after);
        return q.execute();
      });
      return toPage(rows, limit, toInfo, (item) => [item.name], scope);
    },

    async deleteSecret(ctx, agentId, name) {
      requireRole(ctx, 'admin');
      validateAgentId(agentId, 'id');
      validateSecretName(name);
      await uow.write(ctx, async (w) => {
        const removed = await w.trx.deleteFrom('agent_secrets').where('tenant_id', '=', ctx.tenantId).where('agent_id', '=', agentId).where('name', '=', name).executeTakeFirst();
        if (Number(removed.numDeletedRows) === 0) {
          await agentExists(w, agentId);
          throw AgentstoreError.notFound('agent secret');
        }
        await w.record({ action: 'delete', resourceType: 'agent_secret', resourceId: resourceId(agentId, name), data: null, details: { agentId, name } });
      });
    },

    async revealSecret(ctx, agentId, name) {
      requireRole(ctx, 'admin');
      validateAgentId(agentId, 'id');
      validateSecretName(name);
      const keyring = keys();
      // A write: the reveal's audit entry commits with it, or the value is not returned.
      return uow.write(ctx, async (w) => {
        const row = await loadSecret(w, agentId, name);
        if (!row) {
          await agentExists(w, agentId);
          throw AgentstoreError.notFound('agent secret');
        }
        const value = open(keyring, secretAad(ctx.tenantId, agentId, name), { keyId: row.key_id, nonce: row.nonce, ciphertext: row.ciphertext, tag: row.auth_tag });
        await w.record({ action: 'reveal', resourceType: 'agent_secret', resourceId: resourceId(agentId, name), data: { agentId, name }, details: { agentId, name } });
        return { name, value, updatedAt: toIso(row.updated_at) };
      });
    },
  };
}
