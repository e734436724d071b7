/**
 * Authentication over HTTP: sessions (login/me/logout, hashed at rest), login rate limits
 * per account and per address, the service key, role enforcement, and externally issued
 * JWTs verified by an HS256 secret or a JWKS URL served here by node:http.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import { sql } from 'kysely';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forEachBackend } from '../helpers/index.js';
import { SERVICE_KEY, bearer, createKey, createTenant, expectProblem, useHttp, type HttpTenant } from './http-kit.js';

const password = 'correct horse battery staple';
const HS_SECRET = 'an-hs256-secret-of-at-least-32-characters!';
const ISSUER = 'https://auth.example.test/';
const AUDIENCE = 'agentstore-tests';

// A JWKS endpoint, as Auth0/Clerk/Supabase publish one; up before any store is configured.
const signingKeys = await generateKeyPair('RS256');
const strangerKeys = await generateKeyPair('RS256');
const publicJwk: JWK = { ...(await exportJWK(signingKeys.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
let jwksHits = 0;
const jwksServer = http.createServer((req, res) => {
  jwksHits++;
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ keys: [publicJwk] }));
});
await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
const JWKS_URL = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/.well-known/jwks.json`;
afterAll(async () => {
  jwksServer.closeAllConnections();
  await new Promise((resolve) => jwksServer.close(resolve));
});

const json = <X>(res: LightMyRequestResponse, status = 200): X => {
  expect(res.statusCode, res.body).toBe(status);
  return res.json<X>();
};

forEachBackend('http auth', (backend) => {
  describe('sessions, rate limits, service key and roles', () => {
    const h = useHttp(backend, { store: { auth: { loginMaxPerAccount: 3, loginMaxPerAddress: 6, loginWindowSeconds: 60 } } });
    let T: HttpTenant;
    let email: string;
    let userId: string;
    let address = 0;
    // Every test logs in from its own client address, so address limits do not leak between tests.
    const nextAddress = () => `198.51.100.${++address}`;
    const login = (body: Record<string, unknown>, remoteAddress: string) => h.app.inject({ method: 'POST', url: '/v1/auth/login', payload: body, remoteAddress });

    beforeAll(async () => {
      T = await createTenant(h.app, `auth-${randomBytes(4).toString('hex')}`, 'owner');
      email = `owner-${randomBytes(3).toString('hex')}@example.com`;
      const user = await h.app.inject({ method: 'POST', url: `/v1/tenants/${T.id}/users`, headers: bearer(SERVICE_KEY), payload: { email, password, role: 'member' } });
      userId = json<{ id: string }>(user, 201).id;
    });

    it('login -> me -> logout -> 401; the session token is stored only as its SHA-256', async () => {
      const from = nextAddress();
      const session = json<{ token: string; expiresAt: string; tenantId: string; user: { id: string; email: string } }>(
        await login({ tenantId: T.id, email: email.toUpperCase(), password }, from),
      );
      expect(session.tenantId).toBe(T.id);
      expect(session.user).toMatchObject({ id: userId, email });
      expect(Date.parse(session.expiresAt)).toBeGreaterThan(Date.now());
      const me = json<{ tenantId: string; role: string; actor: { type: string; id: string }; user: { email: string } }>(
        await h.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(session.token) }),
      );
      expect(me).toMatchObject({ tenantId: T.id, role: 'member', actor: { type: 'user', id: userId }, user: { email } });

      const stored = await h.store.internals.db.inTenant(
        T.id,
        async (trx) => (await sql<{ token_hash: string }>`select token_hash from sessions where tenant_id = ${T.id}`.execute(trx)).rows,
        { readOnly: true },
      );
      const hashes = stored.map((r) => r.token_hash);
      expect(hashes).toContain(createHash('sha256').update(session.token).digest('hex'));
      expect(JSON.stringify(stored)).not.toContain(session.token);

      // Logout takes no options: an unknown one is refused, and the session stays.
      expectProblem(await h.app.inject({ method: 'POST', url: '/v1/auth/logout', headers: bearer(session.token), payload: { all: true } }), 400, { field: /all/ });
      expect((await h.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(session.token) })).statusCode).toBe(200);
      expect((await h.app.inject({ method: 'POST', url: '/v1/auth/logout', headers: bearer(session.token), payload: {} })).statusCode).toBe(204);
      expectProblem(await h.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(session.token) }), 401, { code: 'agentstore.unauthenticated' });
      expectProblem(await h.app.inject({ method: 'POST', url: '/v1/auth/logout', headers: bearer(session.token) }), 401);
      // Logout needs a session, not an API key.
      expectProblem(await h.app.inject({ method: 'POST', url: '/v1/auth/logout', headers: bearer(T.key) }), 400, { field: 'authorization' });
    });

    it('wrong password, unknown email and unknown tenant are the same 401', async () => {
      const from = nextAddress();
      const a = expectProblem(await login({ tenantId: T.id, email, password: 'wrong password!' }, from), 401);
      const b = expectProblem(await login({ tenantId: T.id, email: 'nobody@example.com', password }, from), 401);
      const c = expectProblem(await login({ tenantId: randomUUID(), email, password }, from), 401);
      expect(new Set([a.detail, b.detail, c.detail]).size).toBe(1);
    });

    it('per account: after 3 failures the account is 429 with Retry-After, even with the right password', async () => {
      const victim = `victim-${randomBytes(3).toString('hex')}@example.com`;
      json(await h.app.inject({ method: 'POST', url: '/v1/users', headers: bearer(T.key), payload: { email: victim, password, role: 'viewer' } }), 201);
      // Failures from different addresses still count against the one account.
      for (let i = 0; i < 3; i++) expectProblem(await login({ tenantId: T.id, email: victim, password: 'not the password' }, nextAddress()), 401);
      for (const attempt of [{ password: 'not the password' }, { password }]) {
        const res = await login({ tenantId: T.id, email: victim, ...attempt }, nextAddress());
        expectProblem(res, 429, { code: 'agentstore.rate_limited' });
        const retryAfter = Number(res.headers['retry-after']);
        expect(retryAfter).toBeGreaterThanOrEqual(1);
        expect(retryAfter).toBeLessThanOrEqual(60);
      }
      // Another account is not affected.
      json(await login({ tenantId: T.id, email, password }, nextAddress()));
    });

    it('per address: the 7th attempt from one address is 429, whichever accounts it tries; other addresses still log in', async () => {
      const from = nextAddress();
      for (let i = 0; i < 6; i++) expectProblem(await login({ tenantId: T.id, email: `spray-${i}@example.com`, password }, from), 401);
      const blocked = await login({ tenantId: T.id, email, password }, from);
      expectProblem(blocked, 429, { code: 'agentstore.rate_limited' });
      expect(Number(blocked.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      json(await login({ tenantId: T.id, email, password }, nextAddress()));
    });

    it('service key: creates, lists and reads tenants and their first credentials; a wrong one is 401', async () => {
      const name = `svc-${randomBytes(4).toString('hex')}`;
      const tenant = json<{ id: string; name: string }>(await h.app.inject({ method: 'POST', url: '/v1/tenants', headers: bearer(SERVICE_KEY), payload: { name } }), 201);
      expect(json<{ name: string }>(await h.app.inject({ method: 'GET', url: `/v1/tenants/${tenant.id}`, headers: bearer(SERVICE_KEY) })).name).toBe(name);
      const listed: string[] = [];
      let cursor: string | null = null;
      do {
        const page: { items: { id: string }[]; nextCursor: string | null } = json(
          await h.app.inject({ method: 'GET', url: `/v1/tenants?limit=2${cursor ? `&cursor=${cursor}` : ''}`, headers: bearer(SERVICE_KEY) }),
        );
        listed.push(...page.items.map((t) => t.id));
        cursor = page.nextCursor;
      } while (cursor);
      expect(listed).toContain(tenant.id);
      expect(new Set(listed).size).toBe(listed.length);
      const key = json<{ key: string; role: string }>(
        await h.app.inject({ method: 'POST', url: `/v1/tenants/${tenant.id}/api-keys`, headers: bearer(SERVICE_KEY), payload: { name: 'first', role: 'owner' } }),
        201,
      );
      expect(json<{ tenantId: string; role: string }>(await h.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(key.key) }))).toMatchObject({ tenantId: tenant.id, role: 'owner' });
      expectProblem(await h.app.inject({ method: 'GET', url: `/v1/tenants/${randomUUID()}`, headers: bearer(SERVICE_KEY) }), 404);
      expectProblem(
        await h.app.inject({ method: 'POST', url: `/v1/tenants/${randomUUID()}/api-keys`, headers: bearer(SERVICE_KEY), payload: { name: 'x', role: 'owner' } }),
        404,
      );
      expectProblem(await h.app.inject({ method: 'GET', url: '/v1/tenants', headers: bearer(`${SERVICE_KEY}x`) }), 401);
      expectProblem(await h.app.inject({ method: 'GET', url: '/v1/tenants', headers: { 'x-api-key': SERVICE_KEY.slice(0, -1) } }), 401);
      json(await h.app.inject({ method: 'GET', url: '/v1/tenants', headers: { 'x-api-key': SERVICE_KEY } }));
    });

    it('roles: viewer 403 on writes, member 403 on key and user management, admin allowed', async () => {
      const viewer = await createKey(h.app, T, 'viewer');
      const member = await createKey(h.app, T, 'member');
      const admin = await createKey(h.app, T, 'admin');
      const as = (key: string, method: string, url: string, payload?: unknown) =>
        h.app.inject({ method: method as 'GET', url, headers: bearer(key), ...(payload === undefined ? {} : { payload: payload as string }) });
      json(await as(member.key, 'POST', '/v1/collections/roles/records', { id: 'r1' }), 201);
      expectProblem(await as(viewer.key, 'POST', '/v1/collections/roles/records', { a: 1 }), 403, { code: 'agentstore.forbidden' });
      expectProblem(await as(viewer.key, 'PATCH', '/v1/collections/roles/records/r1', { a: 1 }), 403);
      expectProblem(await as(viewer.key, 'DELETE', '/v1/collections/roles/records/r1'), 403);
      expectProblem(await as(viewer.key, 'POST', '/v1/counters/roles/increment'), 403);
      json(await as(viewer.key, 'GET', '/v1/collections/roles/records/r1'));
      expectProblem(await as(member.key, 'POST', '/v1/api-keys', { name: 'x', role: 'viewer' }), 403);
      expectProblem(await as(member.key, 'GET', '/v1/api-keys'), 403);
      expectProblem(await as(member.key, 'DELETE', `/v1/api-keys/${viewer.id}`), 403);
      expectProblem(await as(member.key, 'GET', '/v1/users'), 403);
      expectProblem(await as(member.key, 'PUT', '/v1/collections/roles', { indexes: ['a'] }), 403);
      // An admin cannot mint an owner.
      expectProblem(await as(admin.key, 'POST', '/v1/api-keys', { name: 'x', role: 'owner' }), 403);
      json(await as(admin.key, 'POST', '/v1/api-keys', { name: 'x', role: 'member' }), 201);
      json(await as(admin.key, 'GET', '/v1/users'));
      // Revocation is immediate.
      json(await as(admin.key, 'DELETE', `/v1/api-keys/${viewer.id}`));
      expectProblem(await as(viewer.key, 'GET', '/v1/collections/roles/records/r1'), 401);
    });
  });

  describe('JWT: HS256 secret', () => {
    const h = useHttp(backend, {
      store: { auth: { jwt: { secret: HS_SECRET, issuer: ISSUER, audience: AUDIENCE, tenantClaim: 'tenant_id', userClaim: 'sub', roleClaim: 'agentstore_role', defaultRole: 'viewer' } } },
    });
    let T: HttpTenant;
    beforeAll(async () => {
      T = await createTenant(h.app, `jwt-hs-${randomBytes(4).toString('hex')}`);
    });
    const secret = new TextEncoder().encode(HS_SECRET);
    const sign = (claims: Record<string, unknown>, opts: { issuer?: string; audience?: string; exp?: number | string; key?: Uint8Array } = {}) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuedAt()
        .setIssuer(opts.issuer ?? ISSUER)
        .setAudience(opts.audience ?? AUDIENCE)
        .setExpirationTime(opts.exp ?? '5m')
        .sign(opts.key ?? secret);
    const me = (token: string) => h.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(token) });

    it('a valid token is the tenant principal with its role claim, or the default role', async () => {
      const body = json<{ tenantId: string; role: string; actor: { type: string; id: string }; user: unknown }>(
        await me(await sign({ sub: 'user-123', tenant_id: T.id, agentstore_role: 'admin' })),
      );
      expect(body).toEqual({ tenantId: T.id, role: 'admin', actor: { type: 'jwt', id: 'user-123' }, user: null });
      const plain = json<{ role: string }>(await me(await sign({ sub: 'user-9', tenant_id: T.id })));
      expect(plain.role).toBe('viewer');
      const bogusRole = json<{ role: string }>(await me(await sign({ sub: 'user-9', tenant_id: T.id, agentstore_role: 'superuser' })));
      expect(bogusRole.role).toBe('viewer');
      // The role is enforced: a viewer token cannot write, an admin token can.
      const viewerToken = await sign({ sub: 'user-9', tenant_id: T.id });
      expectProblem(await h.app.inject({ method: 'POST', url: '/v1/collections/j/records', headers: bearer(viewerToken), payload: { a: 1 } }), 403);
      const adminToken = await sign({ sub: 'user-1', tenant_id: T.id, agentstore_role: 'admin' });
      const created = await h.app.inject({ method: 'POST', url: '/v1/collections/j/records', headers: bearer(adminToken), payload: { a: 1 } });
      expect(created.statusCode, created.body).toBe(201);
      const audit = json<{ items: { actor: { type: string; id: string } }[] }>(await h.app.inject({ method: 'GET', url: '/v1/audit?action=record.create', headers: bearer(adminToken) }));
      expect(audit.items[0]?.actor).toEqual({ type: 'jwt', id: 'user-1' });
    });

    it('wrong issuer, wrong audience, expired, bad signature, unknown or malformed tenant, missing sub: 401', async () => {
      const bad: Record<string, string> = {
        issuer: await sign({ sub: 'u', tenant_id: T.id }, { issuer: 'https://evil.example/' }),
        audience: await sign({ sub: 'u', tenant_id: T.id }, { audience: 'someone-else' }),
        expired: await sign({ sub: 'u', tenant_id: T.id }, { exp: Math.floor(Date.now() / 1000) - 120 }),
        signature: await sign({ sub: 'u', tenant_id: T.id }, { key: new TextEncoder().encode(`${HS_SECRET}-other`) }),
        unknownTenant: await sign({ sub: 'u', tenant_id: randomUUID() }),
        malformedTenant: await sign({ sub: 'u', tenant_id: "x'); DROP TABLE tenants;--" }),
        noTenant: await sign({ sub: 'u' }),
        noSub: await sign({ tenant_id: T.id }),
        none: `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'u', tenant_id: T.id, iss: ISSUER, aud: AUDIENCE })).toString('base64url')}.`,
      };
      const valid = await sign({ sub: 'u', tenant_id: T.id });
      const [head, payload] = valid.split('.');
      const forged = JSON.parse(Buffer.from(payload as string, 'base64url').toString()) as Record<string, unknown>;
      bad.tampered = `${head}.${Buffer.from(JSON.stringify({ ...forged, agentstore_role: 'owner' })).toString('base64url')}.${valid.split('.')[2]}`;
      for (const [why, token] of Object.entries(bad)) {
        const res = await me(token);
        expect(res.statusCode, `${why}: ${res.body}`).toBe(401);
        expectProblem(res, 401, { code: 'agentstore.unauthenticated' });
      }
    });
  });

  describe('JWT: JWKS URL and a nested (Supabase-style) tenant claim', () => {
    const h = useHttp(backend, {
      store: {
        auth: { jwt: { jwksUrl: JWKS_URL, issuer: ISSUER, audience: AUDIENCE, tenantClaim: 'app_metadata.tenant_id', userClaim: 'sub', roleClaim: 'app_metadata.role', defaultRole: 'member' } },
      },
    });
    let T: HttpTenant;
    beforeAll(async () => {
      T = await createTenant(h.app, `jwt-jwks-${randomBytes(4).toString('hex')}`);
    });
    const sign = (claims: Record<string, unknown>, opts: { key?: typeof signingKeys.privateKey; kid?: string; exp?: number | string; issuer?: string } = {}) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: opts.kid ?? 'k1' })
        .setIssuedAt()
        .setIssuer(opts.issuer ?? ISSUER)
        .setAudience(AUDIENCE)
        .setExpirationTime(opts.exp ?? '5m')
        .sign(opts.key ?? signingKeys.privateKey);
    const me = (token: string) => h.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(token) });

    it('verifies against the published key and reads the nested tenant and role claims', async () => {
      const before = jwksHits;
      const body = json<{ tenantId: string; role: string; actor: { id: string } }>(await me(await sign({ sub: 'sb-user', app_metadata: { tenant_id: T.id, role: 'admin' } })));
      expect(body).toMatchObject({ tenantId: T.id, role: 'admin', actor: { id: 'sb-user' } });
      expect(jwksHits, "the JWKS was fetched").toBeGreaterThan(before);
      expect(json<{ role: string }>(await me(await sign({ sub: 'sb-user', app_metadata: { tenant_id: T.id } }))).role).toBe('member');
      const created = await h.app.inject({
        method: 'POST',
        url: '/v1/collections/jw/records',
        headers: bearer(await sign({ sub: 'sb-user', app_metadata: { tenant_id: T.id } })),
        payload: { ok: true },
      });
      expect(created.statusCode, created.body).toBe(201);
    });

    it('a stranger key, an unknown kid, a flat tenant claim, an unknown tenant, wrong issuer or expiry: 401', async () => {
      const bad: Record<string, string> = {
        strangerKey: await sign({ sub: 'u', app_metadata: { tenant_id: T.id } }, { key: strangerKeys.privateKey }),
        unknownKid: await sign({ sub: 'u', app_metadata: { tenant_id: T.id } }, { key: strangerKeys.privateKey, kid: 'k2' }),
        flatClaim: await sign({ sub: 'u', tenant_id: T.id }),
        unknownTenant: await sign({ sub: 'u', app_metadata: { tenant_id: randomUUID() } }),
        issuer: await sign({ sub: 'u', app_metadata: { tenant_id: T.id } }, { issuer: 'https://evil.example/' }),
        expired: await sign({ sub: 'u', app_metadata: { tenant_id: T.id } }, { exp: Math.floor(Date.now() / 1000) - 120 }),
        hs256WithPublicKey: await new SignJWT({ sub: 'u', app_metadata: { tenant_id: T.id } })
          .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
          .setIssuer(ISSUER)
          .setAudience(AUDIENCE)
          .setExpirationTime('5m')
          .sign(new TextEncoder().encode(JSON.stringify(publicJwk))),
      };
      for (const [why, token] of Object.entries(bad)) {
        const res = await me(token);
        expect(res.statusCode, `${why}: ${res.body}`).toBe(401);
        expectProblem(res, 401, { code: 'agentstore.unauthenticated' });
      }
    });
  });
});
