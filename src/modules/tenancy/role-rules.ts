import { roleAtLeast, type Role, type TenantContext } from '../../core/context.js';
import { AgentstoreError } from '../../core/errors.js';

/**
 * The role of a key created without one: it reads and writes records and counters, and
 * manages nothing. A key that can manage keys, users or collections is asked for by name.
 * (Here, with no dependencies, so that the CLI's argument parser can show it as the default.)
 */
export const DEFAULT_API_KEY_ROLE: Role = 'member';

/**
 * The one rule for credentials of every kind (users and API keys): nobody hands out a role
 * above their own, and nobody changes, revokes or deletes a credential that holds a role
 * above their own. So an admin can neither mint an owner nor take one away; only an owner
 * (or the service key, which acts as the owner) can.
 */
export function assertCanGrant(ctx: TenantContext, role: Role): void {
  if (!roleAtLeast(ctx.role, role)) throw AgentstoreError.forbidden(`granting the ${role} role needs that role`);
}

/** `what` names the credential in the refusal, e.g. "an API key". */
export function assertCanManage(ctx: TenantContext, held: Role, what: string): void {
  if (!roleAtLeast(ctx.role, held)) throw AgentstoreError.forbidden(`changing ${what} with the ${held} role needs that role`);
}
