import { AgentstoreError } from './errors.js';

export type Role = 'owner' | 'admin' | 'member' | 'viewer';
export const ROLES: readonly Role[] = ['owner', 'admin', 'member', 'viewer'];

const rank: Readonly<Record<Role, number>> = { viewer: 0, member: 1, admin: 2, owner: 3 };

export type ActorType = 'user' | 'api_key' | 'jwt' | 'service' | 'system';

export interface Actor {
  readonly type: ActorType;
  readonly id: string;
}

/**
 * Who is acting, for which tenant, with which role. Every tenant-scoped service method
 * takes one: there is no query path without it.
 */
export interface TenantContext {
  readonly tenantId: string;
  readonly actor: Actor;
  readonly role: Role;
  /** Carried into audit entries so a log line and an audit row can be joined. */
  readonly requestId?: string;
}

export function hasRole(ctx: TenantContext, needed: Role): boolean {
  return rank[ctx.role] >= rank[needed];
}

export function requireRole(ctx: TenantContext, needed: Role): void {
  if (!hasRole(ctx, needed)) {
    throw AgentstoreError.forbidden(`this action needs the ${needed} role or higher`);
  }
}

export function roleAtLeast(role: Role, other: Role): boolean {
  return rank[role] >= rank[other];
}

/** A context for trusted in-process callers of the library: full rights in one tenant. */
export function systemContext(tenantId: string, requestId?: string): TenantContext {
  return { tenantId, actor: { type: 'system', id: 'library' }, role: 'owner', ...(requestId ? { requestId } : {}) };
}
