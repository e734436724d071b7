import { createRemoteJWKSet, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { JwtConfig } from '../../config/config.js';
import { ROLES, type Role } from '../../core/context.js';

export interface JwtIdentity {
  readonly tenantId: string;
  readonly userId: string;
  readonly role: Role;
}

export type JwtVerifier = (token: string) => Promise<JwtIdentity | undefined>;

function claimAt(payload: JWTPayload, dotted: string): unknown {
  let value: unknown = payload;
  for (const part of dotted.split('.')) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/**
 * Verifies externally issued tokens (Supabase Auth, Auth0, Clerk ...): signature by HS256
 * secret or JWKS, expiry, and issuer/audience when configured. Returns undefined for any
 * token that does not verify or lacks the tenant and user claims.
 */
export function createJwtVerifier(config: JwtConfig): JwtVerifier {
  const secret = config.secret ? new TextEncoder().encode(config.secret) : undefined;
  const jwks: JWTVerifyGetKey | undefined = config.jwksUrl ? createRemoteJWKSet(new URL(config.jwksUrl)) : undefined;
  const options = {
    ...(config.issuer ? { issuer: config.issuer } : {}),
    ...(config.audience ? { audience: config.audience } : {}),
    algorithms: secret ? ['HS256'] : ['RS256', 'ES256', 'PS256', 'EdDSA', 'ES384', 'RS384', 'RS512'],
  };
  return async (token) => {
    let payload: JWTPayload;
    try {
      payload = secret ? (await jwtVerify(token, secret, options)).payload : (await jwtVerify(token, jwks as JWTVerifyGetKey, options)).payload;
    } catch {
      return undefined;
    }
    const tenantId = claimAt(payload, config.tenantClaim);
    const userId = claimAt(payload, config.userClaim);
    if (typeof tenantId !== 'string' || typeof userId !== 'string' || userId.length === 0 || userId.length > 256) return undefined;
    const claimedRole = claimAt(payload, config.roleClaim);
    const role = typeof claimedRole === 'string' && ROLES.includes(claimedRole as Role) ? (claimedRole as Role) : config.defaultRole;
    return { tenantId, userId, role };
  };
}
