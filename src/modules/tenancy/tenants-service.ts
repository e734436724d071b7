import { AgentstoreError } from '../../core/errors.js';
import type { TenantContext } from '../../core/context.js';
import { afterKey, pageSize, toPage, type Page } from '../../core/cursor.js';
import { isUuid, randomSecret, uuidv7 } from '../../core/ids.js';
import type { Database } from '../../db/database.js';
import { nowIso, toIso } from '../../db/dialect.js';
import type { TenantsTable } from '../../db/schema.js';
import type { UnitOfWorkRunner } from '../../db/unit-of-work.js';
import { constantTimeEqual, hashToken } from './tokens.js';
import type { Tenant } from './types.js';

export interface TenantsService {
  create(input: { name: string }): Promise<Tenant>;
  get(id: string): Promise<Tenant>;
  list(options?: { limit?: number; cursor?: string }): Promise<Page<Tenant>>;
  /** Throws not_found unless the tenant exists. */
  assertExists(id: string): Promise<void>;
  /**
   * Makes sure a service key exists. Returns the new plaintext key when one was generated
   * (to be printed once), undefined when one was configured or already stored.
   */
  ensureServiceKey(configured?: string): Promise<string | undefined>;
  verifyServiceKey(token: string): Promise<boolean>;
}

export function toTenant(row: TenantsTable): Tenant {
  return { id: row.id, name: row.name, version: Number(row.version), createdAt: toIso(row.created_at), updatedAt: toIso(row.updated_at) };
}

export function validateName(name: unknown, field = '/name'): string {
  if (typeof name !== 'string' || name.trim().length === 0 || name.length > 200) {
    throw AgentstoreError.invalidField(field, 'must be a non-empty string of at most 200 characters');
  }
  return name.trim();
}

export function createTenantsService(deps: { db: Database; uow: UnitOfWorkRunner }): TenantsService {
  const { db, uow } = deps;
  let configuredHash: string | undefined;

  return {
    async create(input) {
      const name = validateName(input.name);
      const id = uuidv7();
      const ctx: TenantContext = { tenantId: id, actor: { type: 'service', id: 'service-key' }, role: 'owner' };
      return uow.write(ctx, async (w) => {
        const row: TenantsTable = { id, name, version: 1, created_at: w.now, updated_at: w.now };
        await w.trx.insertInto('tenants').values(row).execute();
        const tenant = toTenant(row);
        await w.record({ action: 'create', resourceType: 'tenant', resourceId: id, version: 1, data: tenant });
        return tenant;
      });
    },

    async get(id) {
      if (!isUuid(id)) throw AgentstoreError.notFound('tenant');
      const row = await db.inSystem((trx) => trx.selectFrom('tenants').selectAll().where('id', '=', id).executeTakeFirst(), { readOnly: true });
      if (!row) throw AgentstoreError.notFound('tenant');
      return toTenant(row);
    },

    async assertExists(id) {
      await this.get(id);
    },

    async list(options = {}) {
      const limit = pageSize(options.limit);
      const after = afterKey('tenants', options.cursor);
      const rows = await db.inSystem(
        (trx) => {
          let q = trx.selectFrom('tenants').selectAll().orderBy('id').limit(limit + 1);
          if (after !== undefined) q = q.where('id', '>', after);
          return q.execute();
        },
        { readOnly: true },
      );
      return toPage(rows, limit, toTenant, (item) => [item.id], 'tenants');
    },

    async ensureServiceKey(configured) {
      if (configured) {
        configuredHash = hashToken(configured);
        return undefined;
      }
      const key = `assk_${randomSecret(32)}`;
      // A fixed id: of two instances starting together on an empty database, one insert
      // wins and only that instance prints the key.
      const inserted = await db.inSystem(async (trx) => {
        const existing = await trx.selectFrom('service_keys').select('id').executeTakeFirst();
        if (existing) return false;
        const result = await trx
          .insertInto('service_keys')
          .values({ id: 'default', key_hash: hashToken(key), created_at: nowIso() })
          .onConflict((oc) => oc.column('id').doNothing())
          .executeTakeFirst();
        return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
      });
      return inserted ? key : undefined;
    },

    async verifyServiceKey(token) {
      const hash = hashToken(token);
      if (configuredHash) return constantTimeEqual(hash, configuredHash);
      const row = await db.inSystem((trx) => trx.selectFrom('service_keys').select('key_hash').where('key_hash', '=', hash).executeTakeFirst(), {
        readOnly: true,
      });
      return row !== undefined;
    },
  };
}
