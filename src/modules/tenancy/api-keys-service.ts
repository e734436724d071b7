import { AgentstoreError } from '../../core/errors.js';
import { requireRole, type Role, type TenantContext } from '../../core/context.js';
import { afterKey, pageSize, toPage, type Page } from '../../core/cursor.js';
import { isUuid, uuidv7 } from '../../core/ids.js';
import { toIso, toNullableIso } from '../../db/dialect.js';
import type { ApiKeysTable } from '../../db/schema.js';
import type { Executor } from '../../db/database.js';
import type { UnitOfWorkRunner } from '../../db/unit-of-work.js';
import { validateName } from './tenants-service.js';
import { assertCanGrant, assertCanManage, DEFAULT_API_KEY_ROLE } from './role-rules.js';
import { displayPrefix, hashToken, issueToken } from './tokens.js';
import type { ApiKey, CreatedApiKey } from './types.js';
import { validateRole } from './users-service.js';

export interface ApiKeysService {
  /** `role` defaults to {@link DEFAULT_API_KEY_ROLE}; nobody creates a key above their own role. */
  create(ctx: TenantContext, input: { name: string; role?: Role }): Promise<CreatedApiKey>;
  list(ctx: TenantContext, options?: { limit?: number; cursor?: string }): Promise<Page<ApiKey>>;
  get(ctx: TenantContext, id: string): Promise<ApiKey>;
  /** Revoking a key that holds a role above the caller's (an owner's key, for an admin) is forbidden. */
  revoke(ctx: TenantContext, id: string): Promise<ApiKey>;
}

export function toApiKey(row: ApiKeysTable): ApiKey {
  return {
    id: row.id,
    name: row.name,
    role: row.role as Role,
    prefix: row.prefix,
    createdAt: toIso(row.created_at),
    revokedAt: toNullableIso(row.revoked_at),
  };
}

export function createApiKeysService(deps: { uow: UnitOfWorkRunner; onRevoke?: (keyHash: string) => void }): ApiKeysService {
  const { uow } = deps;
  const load = (ctx: TenantContext, id: string, trx: Executor) =>
    isUuid(id)
      ? trx.selectFrom('api_keys').selectAll().where('tenant_id', '=', ctx.tenantId).where('id', '=', id).executeTakeFirst()
      : Promise.resolve(undefined);

  return {
    async create(ctx, input) {
      requireRole(ctx, 'admin');
      const name = validateName(input.name);
      const role = input.role === undefined ? DEFAULT_API_KEY_ROLE : validateRole(input.role);
      assertCanGrant(ctx, role);
      const key = issueToken('api_key', ctx.tenantId);
      return uow.write(ctx, async (w) => {
        const row: ApiKeysTable = {
          tenant_id: ctx.tenantId,
          id: uuidv7(),
          name,
          role,
          key_hash: hashToken(key),
          prefix: displayPrefix(key),
          created_at: w.now,
          revoked_at: null,
        };
        await w.trx.insertInto('api_keys').values(row).execute();
        const apiKey = toApiKey(row);
        await w.record({ action: 'create', resourceType: 'api_key', resourceId: apiKey.id, data: apiKey });
        return { ...apiKey, key };
      });
    },

    async list(ctx, options = {}) {
      requireRole(ctx, 'admin');
      const limit = pageSize(options.limit);
      const after = afterKey('api_keys', options.cursor);
      const rows = await uow.read(ctx, (trx) => {
        let q = trx.selectFrom('api_keys').selectAll().where('tenant_id', '=', ctx.tenantId).orderBy('id').limit(limit + 1);
        if (after !== undefined) q = q.where('id', '>', after);
        return q.execute();
      });
      return toPage(rows, limit, toApiKey, (item) => [item.id], 'api_keys');
    },

    async get(ctx, id) {
      requireRole(ctx, 'admin');
      const row = await uow.read(ctx, (trx) => load(ctx, id, trx));
      if (!row) throw AgentstoreError.notFound('api key');
      return toApiKey(row);
    },

    async revoke(ctx, id) {
      requireRole(ctx, 'admin');
      const result = await uow.write(ctx, async (w) => {
        const row = await load(ctx, id, w.trx);
        if (!row) throw AgentstoreError.notFound('api key');
        assertCanManage(ctx, row.role as Role, 'an API key');
        const revoked: ApiKeysTable = { ...row, revoked_at: row.revoked_at ?? w.now };
        if (!row.revoked_at) {
          await w.trx.updateTable('api_keys').set({ revoked_at: w.now }).where('tenant_id', '=', ctx.tenantId).where('id', '=', row.id).execute();
        }
        const apiKey = toApiKey(revoked);
        await w.record({ action: 'revoke', resourceType: 'api_key', resourceId: row.id, data: apiKey });
        return { apiKey, keyHash: row.key_hash };
      });
      deps.onRevoke?.(result.keyHash);
      return result.apiKey;
    },
  };
}
