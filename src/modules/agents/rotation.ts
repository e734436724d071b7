/**
 * `agentstore secrets rotate`: every agent secret re-encrypted under the current key, tenant
 * by tenant (on PostgreSQL a secret is visible only inside its tenant's context), in
 * transactions of at most `batchSize` secrets, so writers wait for one short batch at most.
 *
 * Without downtime: servers run with the new key as AGENTSTORE_ENCRYPTION_KEY and the old one
 * in AGENTSTORE_ENCRYPTION_KEYS_OLD, so they read secrets under either while this runs.
 * Idempotent and resumable: it selects only secrets under another key, so a second run, or a
 * run after an interrupted one, re-encrypts what is left and nothing twice. Each update is
 * conditional on the row being as it was read (key and nonce): a secret a concurrent PUT
 * replaced keeps that write's value.
 *
 * Not a unit of work: no secret's value, name or timestamps change, so there is nothing for
 * the change feed, and the audit log records what tenants do. The counts are the command's output.
 */
import { AgentstoreError } from '../../core/errors.js';
import { ENCRYPTION_KEY_VARIABLE, keyById, open, seal, secretAad, type EncryptionKeys } from '../../core/secret-box.js';
import type { Database } from '../../db/database.js';
import type { RotationReport } from './types.js';

export interface RotationOptions {
  /** Secrets per transaction (default 100, at most 1,000). */
  readonly batchSize?: number;
  /** Called after each batch, with the running counts (the CLI prints progress with it). */
  readonly onBatch?: (report: RotationReport) => void;
}

export async function rotateSecrets(db: Database, keys: EncryptionKeys | undefined, options: RotationOptions = {}): Promise<RotationReport> {
  if (!keys) throw AgentstoreError.notConfigured(ENCRYPTION_KEY_VARIABLE, 'rotation re-encrypts under the current key, and none is configured');
  const batchSize = options.batchSize ?? 100;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 1000) throw AgentstoreError.invalidField('batchSize', 'must be an integer from 1 to 1000');
  const current = keys.current.id;
  let tenants = 0;
  let reencrypted = 0;
  let alreadyCurrent = 0;
  let changedConcurrently = 0;
  const undecryptable: Record<string, number> = {};
  const report = (): RotationReport => ({ tenants, reencrypted, alreadyCurrent, changedConcurrently, undecryptable: { ...undecryptable } });

  let afterTenant = '';
  for (;;) {
    const page = await db.inSystem((trx) => trx.selectFrom('tenants').select('id').where('id', '>', afterTenant).orderBy('id').limit(500).execute(), { readOnly: true });
    if (page.length === 0) break;
    for (const { id: tenantId } of page) {
      tenants++;
      // Keyset over the primary key: secrets under a missing key are passed over, not read again.
      let after: readonly [string, string] = ['', ''];
      for (;;) {
        const done = await db.inTenant(tenantId, async (trx) => {
          const rows = await trx
            .selectFrom('agent_secrets')
            .selectAll()
            .where('tenant_id', '=', tenantId)
            .where('key_id', '<>', current)
            .where((eb) => eb.or([eb('agent_id', '>', after[0]), eb.and([eb('agent_id', '=', after[0]), eb('name', '>', after[1])])]))
            .orderBy('agent_id')
            .orderBy('name')
            .limit(batchSize)
            .execute();
          for (const row of rows) {
            after = [row.agent_id, row.name];
            if (!keyById(keys, row.key_id)) {
              undecryptable[row.key_id] = (undecryptable[row.key_id] ?? 0) + 1;
              continue;
            }
            const aad = secretAad(tenantId, row.agent_id, row.name);
            const sealed = seal(keys, aad, open(keys, aad, { keyId: row.key_id, nonce: row.nonce, ciphertext: row.ciphertext, tag: row.auth_tag }));
            const updated = await trx
              .updateTable('agent_secrets')
              .set({ key_id: sealed.keyId, nonce: sealed.nonce, ciphertext: sealed.ciphertext, auth_tag: sealed.tag })
              .where('tenant_id', '=', tenantId)
              .where('agent_id', '=', row.agent_id)
              .where('name', '=', row.name)
              .where('key_id', '=', row.key_id)
              .where('nonce', '=', row.nonce)
              .executeTakeFirst();
            if (Number(updated.numUpdatedRows) === 1) reencrypted++;
            else changedConcurrently++;
          }
          return rows.length < batchSize;
        });
        options.onBatch?.(report());
        if (done) break;
      }
      const { n } = await db.inTenant(
        tenantId,
        (trx) =>
          trx
            .selectFrom('agent_secrets')
            .select((eb) => eb.fn.countAll<number | string>().as('n'))
            .where('tenant_id', '=', tenantId)
            .where('key_id', '=', current)
            .executeTakeFirstOrThrow(),
        { readOnly: true },
      );
      alreadyCurrent += Number(n);
    }
    afterTenant = page.at(-1)?.id ?? afterTenant;
    if (page.length < 500) break;
  }
  // Those this run re-encrypted are counted apart.
  alreadyCurrent -= reencrypted;
  return report();
}
