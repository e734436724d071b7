import type { JWTPayload, JWTVerifyGetKey } from 'jose';
import { JWT_TIMING_DEFAULTS, isUserEditableClaim, type JwtConfig } from '../../config/config.js';
import { ROLES, type Role } from '../../core/context.js';
import { AgentstoreError } from '../../core/errors.js';

export interface JwtIdentity {
  readonly tenantId: string;
  readonly userId: string;
  readonly role: Role;
}

/** Resolves a token to its identity, or throws: unauthenticated (with the reason) or unavailable (the JWKS). */
export type JwtVerifier = (token: string) => Promise<JwtIdentity>;

function claimAt(payload: JWTPayload, dotted: string): unknown {
  let value: unknown = payload;
  for (const part of dotted.split('.')) {
    // Own properties only: a claim path such as `constructor` must not reach Object.prototype.
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

const refuse = (why: string): AgentstoreError => AgentstoreError.unauthenticated(`the token ${why}`);

/** jose's failure -> why the token is refused, in words that name no secret and no expected value. */
function explain(error: unknown, remoteKeys: boolean): AgentstoreError {
  const { code, claim, reason } = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; claim?: unknown; reason?: unknown };
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return refuse('has expired (exp)');
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (claim === 'exp' && reason === 'missing') return refuse('has no expiry (exp claim), which this server requires (AGENTSTORE_JWT_REQUIRE_EXP)');
      if (claim === 'nbf' && reason === 'check_failed') return refuse('is not valid yet (nbf)');
      if (claim === 'iss') return refuse(reason === 'missing' ? 'has no issuer (iss claim)' : 'is from an issuer (iss) this server does not accept');
      if (claim === 'aud') return refuse(reason === 'missing' ? 'has no audience (aud claim)' : 'is for an audience (aud) this server is not');
      return refuse(typeof claim === 'string' && /^[a-z]{2,8}$/.test(claim) ? `has an invalid ${claim} claim` : 'has an invalid claim');
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return AgentstoreError.unauthenticated("the token's signature does not verify");
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return refuse('is signed with an algorithm (alg) this server does not accept');
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return refuse('is signed by no single key of the JWKS (kid)');
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
    case 'ERR_JOSE_NOT_SUPPORTED':
    case 'ERR_JWK_INVALID':
      return refuse('is malformed');
    default:
      // Anything else comes from fetching the key set (refused connection, timeout, not 200,
      // not a JWKS): the token may be fine, so the client should retry, not log in again.
      if (remoteKeys) return AgentstoreError.unavailable('the JWT signing keys (JWKS) could not be fetched', error, 5);
      return refuse('is malformed');
  }
}

/**
 * Verifies externally issued tokens (Supabase Auth, Auth0, Clerk ...): signature by HS256
 * secret or JWKS, issuer/audience when configured, and time: `exp` (required unless
 * configured off), `nbf`, an `iat` no later than now, and a lifetime (`exp - iat`, or
 * `exp - now` without `iat`) of at most the configured maximum, each within the clock skew.
 * A token without `exp` (allowed only when configured) is bounded by its `iat` instead;
 * one with neither is refused, as nothing bounds it.
 */
export function createJwtVerifier(config: JwtConfig): JwtVerifier {
  const requireExp = config.requireExp ?? JWT_TIMING_DEFAULTS.requireExp;
  const skew = config.clockSkewSeconds ?? JWT_TIMING_DEFAULTS.clockSkewSeconds;
  const maxLifetime = config.maxLifetimeSeconds ?? JWT_TIMING_DEFAULTS.maxLifetimeSeconds;
  // A library caller's configuration is not read by loadConfig: check the same bounds here.
  if (!Number.isInteger(skew) || skew < 0 || skew > 600) throw AgentstoreError.config('auth.jwt.clockSkewSeconds', 'must be an integer from 0 to 600');
  if (!Number.isInteger(maxLifetime) || maxLifetime < 60 || maxLifetime > 31_536_000) {
    throw AgentstoreError.config('auth.jwt.maxLifetimeSeconds', 'must be an integer from 60 to 31536000');
  }
  for (const [setting, path] of [['auth.jwt.tenantClaim', config.tenantClaim], ['auth.jwt.roleClaim', config.roleClaim]] as const) {
    if (isUserEditableClaim(path)) throw AgentstoreError.config(setting, `${path} is written by the token's own user: use app_metadata.…`);
  }
  const secret = config.secret ? new TextEncoder().encode(config.secret) : undefined;
  const jwksUrl = config.jwksUrl ? new URL(config.jwksUrl) : undefined;
  // jose loads here, only where JWTs are configured, not at every start of every process
  // (~0.08 s of CPU). Started at once, so that the first token does not wait for it; a
  // failure to load fails each verification (as a 500), not the start.
  const jose = import('jose').then((lib) => ({ jwtVerify: lib.jwtVerify, jwks: jwksUrl ? lib.createRemoteJWKSet(jwksUrl) : undefined }));
  jose.catch(() => undefined);
  const options = {
    ...(config.issuer ? { issuer: config.issuer } : {}),
    ...(config.audience ? { audience: config.audience } : {}),
    algorithms: secret ? ['HS256'] : ['RS256', 'ES256', 'PS256', 'EdDSA', 'ES384', 'RS384', 'RS512'],
    // jose checks exp and nbf with this tolerance, and that exp is present when required.
    clockTolerance: skew,
    requiredClaims: requireExp ? ['exp'] : [],
  };
  return async (token) => {
    const { jwtVerify, jwks } = await jose;
    let payload: JWTPayload;
    try {
      payload = secret ? (await jwtVerify(token, secret, options)).payload : (await jwtVerify(token, jwks as JWTVerifyGetKey, options)).payload;
    } catch (error) {
      throw explain(error, jwks !== undefined);
    }
    // jose has checked that exp, nbf and iat are numbers where present.
    const now = Math.floor(Date.now() / 1000);
    const { exp, iat } = payload;
    if (iat !== undefined && iat > now + skew) throw refuse('was issued in the future (iat): check the clocks of the issuer and this server');
    if (exp !== undefined) {
      const lifetime = iat !== undefined ? exp - iat : exp - now - skew;
      if (lifetime > maxLifetime) throw refuse(`lives longer than the ${maxLifetime} s this server accepts (exp${iat !== undefined ? ' - iat' : ''}, AGENTSTORE_JWT_MAX_LIFETIME_SECONDS)`);
    } else if (iat === undefined) {
      throw refuse('has neither an expiry (exp) nor an issue time (iat), so nothing bounds its life');
    } else if (now - iat - skew > maxLifetime) {
      throw refuse(`is older than the ${maxLifetime} s this server accepts for a token without exp (iat)`);
    }

    const tenantId = claimAt(payload, config.tenantClaim);
    if (typeof tenantId !== 'string' || tenantId.length === 0) throw refuse(`has no tenant (claim ${config.tenantClaim})`);
    const userId = claimAt(payload, config.userClaim);
    if (typeof userId !== 'string' || userId.length === 0 || userId.length > 256) throw refuse(`has no user of 1 to 256 characters (claim ${config.userClaim})`);
    const claimedRole = claimAt(payload, config.roleClaim);
    const role = typeof claimedRole === 'string' && ROLES.includes(claimedRole as Role) ? (claimedRole as Role) : config.defaultRole;
    return { tenantId, userId, role };
  };
}
