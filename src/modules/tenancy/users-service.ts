import { AgentstoreError } from '../../core/errors.js';
import { ROLES, requireRole, type Role, type TenantContext } from '../../core/context.js';
import { afterKey, pageSize, toPage, type Page } from '../../core/cursor.js';
import { isUuid, uuidv7 } from '../../core/ids.js';
import { toIso } from '../../db/dialect.js';
import { isUniqueViolation } from '../../db/errors.js';
import type { UsersTable } from '../../db/schema.js';
import type { Executor } from '../../db/database.js';
import type { UnitOfWorkRunner } from '../../db/unit-of-work.js';
import { hashPassword, validatePassword } from './passwords.js';
import { assertCanGrant, assertCanManage } from './role-rules.js';
import type { User } from './types.js';

export interface CreateUserInput {
  readonly email: string;
  readonly password: string;
  readonly role: Role;
}

export interface UpdateUserInput {
  readonly role?: Role;
  readonly password?: string;
}

export interface UsersService {
  create(ctx: TenantContext, input: CreateUserInput): Promise<User>;
  get(ctx: TenantContext, id: string): Promise<User>;
  list(ctx: TenantContext, options?: { limit?: number; cursor?: string }): Promise<Page<User>>;
  update(ctx: TenantContext, id: string, input: UpdateUserInput): Promise<User>;
  delete(ctx: TenantContext, id: string): Promise<void>;
}

export function toUser(row: UsersTable): User {
  return {
    id: row.id,
    email: row.email,
    role: row.role as Role,
    version: Number(row.version),
    createdAt: toIso(row.created_at),
    updatedAt: toIso(row.updated_at),
  };
}

export function normalizeEmail(email: unknown, field = '/email'): string {
  if (typeof email !== 'string' || email.length > 320 || !/^[^\s@\p{Cc}]+@[^\s@\p{Cc}]+$/u.test(email.trim())) {
    throw AgentstoreError.invalidField(field, 'must be an email address');
  }
  return email.trim().toLowerCase();
}

export function validateRole(role: unknown, field = '/role'): Role {
  if (typeof role !== 'string' || !ROLES.includes(role as Role)) {
    throw AgentstoreError.invalidField(field, `must be one of ${ROLES.join(', ')}`);
  }
  return role as Role;
}

export function createUsersService(deps: {
  uow: UnitOfWorkRunner;
  /** Called after commit with the token hashes of sessions whose role or validity changed, so cached credentials are dropped. */
  onSessionsChanged?: (tokenHashes: readonly string[]) => void;
}): UsersService {
  const { uow } = deps;
  const sessionHashes = async (trx: Executor, ctx: TenantContext, userId: string): Promise<string[]> =>
    (await trx.selectFrom('sessions').select('token_hash').where('tenant_id', '=', ctx.tenantId).where('user_id', '=', userId).execute()).map((r) => r.token_hash);

  const load = async (ctx: TenantContext, id: string, trx: Executor) => {
    if (!isUuid(id)) return undefined;
    return trx.selectFrom('users').selectAll().where('tenant_id', '=', ctx.tenantId).where('id', '=', id).executeTakeFirst();
  };

  return {
    async create(ctx, input) {
      requireRole(ctx, 'admin');
      const email = normalizeEmail(input.email);
      const role = validateRole(input.role);
      const password = validatePassword(input.password);
      assertCanGrant(ctx, role);
      const passwordHash = await hashPassword(password);
      try {
        return await uow.write(ctx, async (w) => {
          const row: UsersTable = {
            tenant_id: ctx.tenantId,
            id: uuidv7(),
            email,
            password_hash: passwordHash,
            role,
            version: 1,
            created_at: w.now,
            updated_at: w.now,
          };
          await w.trx.insertInto('users').values(row).execute();
          const user = toUser(row);
          await w.record({ action: 'create', resourceType: 'user', resourceId: user.id, version: 1, data: user });
          return user;
        });
      } catch (error) {
        if (isUniqueViolation(error)) throw AgentstoreError.conflict('a user with this email already exists');
        throw error;
      }
    },

    async get(ctx, id) {
      requireRole(ctx, 'admin');
      const row = await uow.read(ctx, (trx) => load(ctx, id, trx));
      if (!row) throw AgentstoreError.notFound('user');
      return toUser(row);
    },

    async list(ctx, options = {}) {
      requireRole(ctx, 'admin');
      const limit = pageSize(options.limit);
      const after = afterKey('users', options.cursor);
      const rows = await uow.read(ctx, (trx) => {
        let q = trx.selectFrom('users').selectAll().where('tenant_id', '=', ctx.tenantId).orderBy('id').limit(limit + 1);
        if (after !== undefined) q = q.where('id', '>', after);
        return q.execute();
      });
      return toPage(rows, limit, toUser, (item) => [item.id], 'users');
    },

    async update(ctx, id, input) {
      requireRole(ctx, 'admin');
      const role = input.role === undefined ? undefined : validateRole(input.role);
      if (role) assertCanGrant(ctx, role);
      const passwordHash = input.password === undefined ? undefined : await hashPassword(validatePassword(input.password));
      const { user, hashes } = await uow.write(ctx, async (w) => {
        const row = await load(ctx, id, w.trx);
        if (!row) throw AgentstoreError.notFound('user');
        assertCanManage(ctx, row.role as Role, 'a user');
        const next: UsersTable = {
          ...row,
          role: role ?? row.role,
          password_hash: passwordHash ?? row.password_hash,
          version: Number(row.version) + 1,
          updated_at: w.now,
        };
        await w.trx
          .updateTable('users')
          .set({ role: next.role, password_hash: next.password_hash, version: next.version, updated_at: next.updated_at })
          .where('tenant_id', '=', ctx.tenantId)
          .where('id', '=', row.id)
          .execute();
        if (passwordHash) {
          // A new password ends every session opened with the old one.
          await w.trx.updateTable('sessions').set({ revoked_at: w.now }).where('tenant_id', '=', ctx.tenantId).where('user_id', '=', row.id).where('revoked_at', 'is', null).execute();
        }
        const user = toUser(next);
        await w.record({
          action: 'update',
          resourceType: 'user',
          resourceId: user.id,
          version: user.version,
          data: user,
          details: { fields: [...(role ? ['role'] : []), ...(passwordHash ? ['password'] : [])] },
        });
        return { user, hashes: await sessionHashes(w.trx, ctx, row.id) };
      });
      // Cached sessions carry the old role, or were just revoked by a password change.
      deps.onSessionsChanged?.(hashes);
      return user;
    },

    async delete(ctx, id) {
      requireRole(ctx, 'admin');
      const hashes = await uow.write(ctx, async (w) => {
        const row = await load(ctx, id, w.trx);
        if (!row) throw AgentstoreError.notFound('user');
        assertCanManage(ctx, row.role as Role, 'a user');
        const hashes = await sessionHashes(w.trx, ctx, row.id);
        await w.trx.deleteFrom('users').where('tenant_id', '=', ctx.tenantId).where('id', '=', row.id).execute();
        await w.record({ action: 'delete', resourceType: 'user', resourceId: row.id, data: null });
        return hashes;
      });
      deps.onSessionsChanged?.(hashes);
    },
  };
}
