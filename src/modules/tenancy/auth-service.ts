import { LRUCache } from 'lru-cache';
import type { StoreConfig } from '../../config/config.js';
import { AgentstoreError, isAgentstoreError } from '../../core/errors.js';
import type { Role, TenantContext } from '../../core/context.js';
import { isUuid, uuidv7 } from '../../core/ids.js';
import type { Database } from '../../db/database.js';
import type { CredentialChange } from '../../db/external-changes.js';
import { toIso } from '../../db/dialect.js';
import type { UnitOfWorkRunner } from '../../db/unit-of-work.js';
import type { RateLimiter } from '../../ports/rate-limiter.js';
import { createJwtVerifier, type JwtVerifier } from './jwt.js';
import { dummyPasswordHash, verifyPassword } from './passwords.js';
import type { TenantsService } from './tenants-service.js';
import { hashToken, issueToken, parseToken } from './tokens.js';
import type { Session, User } from './types.js';
import { normalizeEmail, toUser } from './users-service.js';

export type Principal =
  | { readonly kind: 'service' }
  | { readonly kind: 'tenant'; readonly ctx: TenantContext; readonly sessionId?: string };

export interface Identity {
  readonly tenantId: string;
  readonly role: Role;
  readonly actor: TenantContext['actor'];
  readonly user: User | null;
}

export interface AuthService {
  /**
   * Resolves a bearer token, or throws: `agentstore.unauthenticated` saying why it is
   * refused (unknown, revoked, expired, or which JWT check failed), `agentstore.unavailable`
   * when what decides cannot answer (the database, a JWKS URL).
   */
  verify(token: string): Promise<Principal>;
  /** As `verify`, but undefined where `verify` refuses the token. */
  authenticate(token: string): Promise<Principal | undefined>;
  /**
   * The principal of an API key or session token this process resolved within the cache
   * TTL, synchronously, or undefined: the per-request fast path before `authenticate`.
   */
  cached(token: string): Principal | undefined;
  login(input: { tenantId: string; email: string; password: string }, clientAddress: string): Promise<Session>;
  logout(ctx: TenantContext, sessionId: string | undefined): Promise<void>;
  me(ctx: TenantContext): Promise<Identity>;
  /** Drops a cached credential at once (revocation in this process). */
  forget(tokenHash: string): void;
  /**
   * Drops the cached credentials these changes may have revoked or altered: an API key or a
   * session by id, every session of a user. For changes another process made to the same
   * SQLite store, read from the change log (src/db/external-changes.ts), which knows ids,
   * not token hashes.
   */
  invalidate(changes: readonly CredentialChange[]): void;
  /**
   * A number that moves with every `forget` and `invalidate`: an event stream checks its
   * credential again when it moved since its last check.
   */
  revocationEpoch(): number;
}

// Credentials are looked up on every request; caching the answer for a few seconds keeps
// the hot path off the database. Revocation here is immediate (forget); by another process
// on the same SQLite file, within the external-change poll (invalidate, ~25-100 ms); on
// other PostgreSQL instances, within this TTL.
const AUTH_CACHE_TTL_MS = 5_000;

export function createAuthService(deps: {
  db: Database;
  uow: UnitOfWorkRunner;
  tenants: TenantsService;
  rateLimiter: RateLimiter;
  config: StoreConfig['auth'];
}): AuthService {
  const { uow, tenants, rateLimiter, config } = deps;
  // Keyed by the token itself, so a hit costs neither parsing nor hashing it; `forget`
  // names the hash (what revocation knows), hence the second map.
  const tokenByHash = new Map<string, string>();
  const cache = new LRUCache<string, { principal: Principal; until: number; hash: string }>({
    max: 50_000,
    dispose: (entry) => {
      tokenByHash.delete(entry.hash);
    },
  });
  // Bumped by every revocation: a lookup that started before one may have read the row as
  // it was, and must not cache that answer after the revocation's `forget` ran.
  let revocations = 0;
  const remember = (token: string, hash: string, principal: Principal, until: number, seen: number): void => {
    if (seen !== revocations) return;
    cache.set(token, { principal, until, hash });
    tokenByHash.set(hash, token);
  };
  const jwt: JwtVerifier | undefined = config.jwt ? createJwtVerifier(config.jwt) : undefined;
  const tenantKnown = new LRUCache<string, true>({ max: 10_000, ttl: 60_000 });

  const cached = (token: string): Principal | undefined => {
    const hit = cache.get(token);
    if (!hit) return undefined;
    if (hit.until > Date.now()) return hit.principal;
    cache.delete(token);
    return undefined;
  };

  const bySecret = async (token: string): Promise<Principal | undefined> => {
    const hit = cached(token);
    if (hit) return hit;
    const parsed = parseToken(token);
    if (!parsed) return undefined;
    const hash = hashToken(token);
    const seen = revocations;
    const now = new Date().toISOString();
    const probe: TenantContext = { tenantId: parsed.tenantId, actor: { type: 'system', id: 'auth' }, role: 'viewer' };
    if (parsed.kind === 'api_key') {
      const row = await uow.read(probe, (trx) =>
        trx.selectFrom('api_keys').select(['id', 'role']).where('tenant_id', '=', parsed.tenantId).where('key_hash', '=', hash).where('revoked_at', 'is', null).executeTakeFirst(),
      );
      if (!row) return undefined;
      const principal: Principal = { kind: 'tenant', ctx: { tenantId: parsed.tenantId, actor: { type: 'api_key', id: row.id }, role: row.role as Role } };
      remember(token, hash, principal, Date.now() + AUTH_CACHE_TTL_MS, seen);
      return principal;
    }
    const row = await uow.read(probe, (trx) =>
      trx
        .selectFrom('sessions')
        .innerJoin('users', (j) => j.onRef('users.tenant_id', '=', 'sessions.tenant_id').onRef('users.id', '=', 'sessions.user_id'))
        .select(['sessions.id as session_id', 'sessions.expires_at', 'users.id as user_id', 'users.role'])
        .where('sessions.tenant_id', '=', parsed.tenantId)
        .where('sessions.token_hash', '=', hash)
        .where('sessions.revoked_at', 'is', null)
        .executeTakeFirst(),
    );
    if (!row) return undefined;
    const expiresAt = new Date(toIso(row.expires_at)).getTime();
    if (expiresAt <= Date.parse(now)) return undefined;
    const principal: Principal = {
      kind: 'tenant',
      ctx: { tenantId: parsed.tenantId, actor: { type: 'user', id: row.user_id }, role: row.role as Role },
      sessionId: row.session_id,
    };
    remember(token, hash, principal, Math.min(expiresAt, Date.now() + AUTH_CACHE_TTL_MS), seen);
    return principal;
  };

  const forget = (hash: string): void => {
    revocations += 1;
    const token = tokenByHash.get(hash);
    if (token !== undefined) cache.delete(token);
  };

  const invalidate = (changes: readonly CredentialChange[]): void => {
    if (changes.length === 0) return;
    revocations += 1;
    const changed = new Set(changes.map((c) => `${c.tenantId} ${c.resourceType} ${c.resourceId}`));
    const has = (tenantId: string, type: CredentialChange['resourceType'], id: string | undefined) => id !== undefined && changed.has(`${tenantId} ${type} ${id}`);
    // One pass over the cache (at most 50,000 entries, a few ms) per batch of changes, which
    // are rare: an index by id would cost every cached lookup to save this.
    const drop: string[] = [];
    for (const [token, { principal }] of cache.entries()) {
      if (principal.kind !== 'tenant') continue;
      const { tenantId, actor } = principal.ctx;
      if (
        (actor.type === 'api_key' && has(tenantId, 'api_key', actor.id)) ||
        has(tenantId, 'session', principal.sessionId) ||
        (actor.type === 'user' && has(tenantId, 'user', actor.id))
      ) {
        drop.push(token);
      }
    }
    for (const token of drop) cache.delete(token);
  };

  const byJwt = async (verifier: JwtVerifier, token: string): Promise<Principal> => {
    const identity = await verifier(token);
    if (!isUuid(identity.tenantId)) throw AgentstoreError.unauthenticated('the token names no tenant of this server (its tenant claim is not a tenant id)');
    if (!tenantKnown.has(identity.tenantId)) {
      try {
        await tenants.assertExists(identity.tenantId);
      } catch (error) {
        if (isAgentstoreError(error, 'agentstore.not_found')) throw AgentstoreError.unauthenticated('the token names no tenant of this server');
        throw error;
      }
      tenantKnown.set(identity.tenantId, true);
    }
    return { kind: 'tenant', ctx: { tenantId: identity.tenantId, actor: { type: 'jwt', id: identity.userId }, role: identity.role } };
  };

  const verify = async (token: string): Promise<Principal> => {
    let principal: Principal | undefined;
    if (token.startsWith('assk_') || (config.serviceKey !== undefined && !token.includes('.') && !parseToken(token))) {
      principal = (await tenants.verifyServiceKey(token)) ? { kind: 'service' } : undefined;
    } else if (jwt && token.split('.').length === 3) {
      return byJwt(jwt, token);
    } else {
      principal = await bySecret(token);
    }
    // Secrets are only looked up, so there is one reason to give, and no hint which part was wrong.
    if (!principal) throw AgentstoreError.unauthenticated('the token is unknown, revoked or expired');
    return principal;
  };

  return {
    cached,
    verify,

    async authenticate(token) {
      try {
        return await verify(token);
      } catch (error) {
        if (isAgentstoreError(error, 'agentstore.unauthenticated')) return undefined;
        throw error;
      }
    },

    async login(input, clientAddress) {
      const tenantId = input.tenantId;
      if (typeof tenantId !== 'string' || !isUuid(tenantId)) throw AgentstoreError.invalidField('/tenantId', 'must be a UUID');
      const email = normalizeEmail(input.email);
      if (typeof input.password !== 'string' || input.password.length === 0 || input.password.length > 256) {
        throw AgentstoreError.invalidField('/password', 'must be a non-empty string of at most 256 characters');
      }
      const accountKey = `login:account:${tenantId}:${email}`;
      const addressKey = `login:address:${clientAddress}`;
      const window = config.loginWindowSeconds;
      for (const [key, limit] of [[addressKey, config.loginMaxPerAddress], [accountKey, config.loginMaxPerAccount]] as const) {
        const verdict = await rateLimiter.check(key, limit, window);
        if (!verdict.allowed) throw AgentstoreError.rateLimited(verdict.retryAfter);
      }
      await rateLimiter.hit(addressKey, window);
      const probe: TenantContext = { tenantId, actor: { type: 'system', id: 'auth' }, role: 'viewer' };
      const user = await uow
        .read(probe, (trx) => trx.selectFrom('users').selectAll().where('tenant_id', '=', tenantId).where('email', '=', email).executeTakeFirst());
      const ok = user ? await verifyPassword(user.password_hash, input.password) : await verifyPassword(await dummyPasswordHash(), `x${input.password}`);
      if (!user || !ok) {
        await rateLimiter.hit(accountKey, window);
        throw AgentstoreError.unauthenticated('invalid email or password');
      }
      await rateLimiter.reset(accountKey);
      const token = issueToken('session', tenantId);
      const ctx: TenantContext = { tenantId, actor: { type: 'user', id: user.id }, role: user.role as Role };
      return uow.write(ctx, async (w) => {
        const expiresAt = new Date(Date.parse(w.now) + config.sessionTtlSeconds * 1000).toISOString();
        const id = uuidv7();
        await w.trx
          .insertInto('sessions')
          .values({ tenant_id: tenantId, id, user_id: user.id, token_hash: hashToken(token), created_at: w.now, expires_at: expiresAt, revoked_at: null })
          .execute();
        await w.record({ action: 'create', resourceType: 'session', resourceId: id, data: { id, userId: user.id, expiresAt }, details: { address: clientAddress } });
        return { token, expiresAt, user: toUser(user), tenantId };
      });
    },

    async logout(ctx, sessionId) {
      if (!sessionId) throw AgentstoreError.invalidField('authorization', 'logout ends a session: authenticate with a session token');
      const hash = await uow.write(ctx, async (w) => {
        const row = await w.trx.selectFrom('sessions').select(['token_hash']).where('tenant_id', '=', ctx.tenantId).where('id', '=', sessionId).executeTakeFirst();
        if (!row) throw AgentstoreError.notFound('session');
        await w.trx.updateTable('sessions').set({ revoked_at: w.now }).where('tenant_id', '=', ctx.tenantId).where('id', '=', sessionId).execute();
        await w.record({ action: 'revoke', resourceType: 'session', resourceId: sessionId, data: null });
        return row.token_hash;
      });
      forget(hash);
    },

    async me(ctx) {
      let user: User | null = null;
      if (ctx.actor.type === 'user') {
        const row = await uow.read(ctx, (trx) =>
          trx.selectFrom('users').selectAll().where('tenant_id', '=', ctx.tenantId).where('id', '=', ctx.actor.id).executeTakeFirst(),
        );
        if (!row) throw AgentstoreError.unauthenticated();
        user = toUser(row);
      }
      return { tenantId: ctx.tenantId, role: ctx.role, actor: ctx.actor, user };
    },

    forget,
    invalidate,
    revocationEpoch: () => revocations,
  };
}
