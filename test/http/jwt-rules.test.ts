/**
 * Time rules for externally issued JWTs, with an HS256 secret and with a JWKS served here:
 * `exp` is required by default, `exp`/`nbf`/`iat` are checked against the clock with a
 * bounded skew, and a token may not live longer than the configured maximum. Every refusal
 * is a 401 problem+json that says which rule refused it and names no secret.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JwtConfig } from '../../src/config/config.js';
import { createJwtVerifier } from '../../src/modules/tenancy/jwt.js';
import { forEachBackend } from '../helpers/index.js';
import { bearer, createTenant, expectProblem, openSse, useHttp, type HttpTenant } from './http-kit.js';

const HS_SECRET = 'jwt-rules-hs256-secret-of-at-least-32-chars';
const ISSUER = 'https://issuer.example.test/';
const AUDIENCE = 'agentstore-jwt-rules';
const CLAIMS = { tenantClaim: 'tenant_id', userClaim: 'sub', roleClaim: 'agentstore_role', defaultRole: 'member' } as const;

const rsa = await generateKeyPair('RS256');
const publicJwk: JWK = { ...(await exportJWK(rsa.publicKey)), kid: 'rules-1', alg: 'RS256', use: 'sig' };
const jwksServer = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ keys: [publicJwk] }));
});
await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
const JWKS_URL = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;
// A port that was free a moment ago: nothing answers there.
const closed = http.createServer();
await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
const DEAD_JWKS_URL = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/jwks.json`;
await new Promise((resolve) => closed.close(resolve));
afterAll(async () => {
  jwksServer.closeAllConnections();
  await new Promise((resolve) => jwksServer.close(resolve));
});

const now = () => Math.floor(Date.now() / 1000);
const HOUR = 3600;

/** Claims of a token; `undefined` leaves a time claim out. */
interface Times {
  readonly exp?: number | undefined;
  readonly iat?: number | undefined;
  readonly nbf?: number | undefined;
}

type Signer = (claims: Record<string, unknown>, times: Times) => Promise<string>;

const hsSigner: Signer = (claims, times) => build(claims, times).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(HS_SECRET));
const rsSigner: Signer = (claims, times) => build(claims, times).setProtectedHeader({ alg: 'RS256', kid: 'rules-1' }).sign(rsa.privateKey);

function build(claims: Record<string, unknown>, times: Times): SignJWT {
  // Times are set as claims, not through the builder, so that any of them can be left out.
  const payload: Record<string, unknown> = { iss: ISSUER, aud: AUDIENCE, ...claims };
  for (const key of ['exp', 'iat', 'nbf'] as const) if (times[key] !== undefined) payload[key] = times[key];
  return new SignJWT(payload);
}

const VARIANTS: [string, Pick<JwtConfig, 'secret' | 'jwksUrl'>, Signer][] = [
  ['HS256 secret', { secret: HS_SECRET }, hsSigner],
  ['JWKS', { jwksUrl: JWKS_URL }, rsSigner],
];

forEachBackend('jwt rules', (backend) => {
  for (const [variant, keys, sign] of VARIANTS) {
    describe(`${variant}, the defaults (exp required, 30 s skew, 24 h lifetime)`, () => {
      const h = useHttp(backend, { store: { auth: { jwt: { ...keys, issuer: ISSUER, audience: AUDIENCE, ...CLAIMS } } } });
      let T: HttpTenant;
      beforeAll(async () => {
        T = await createTenant(h.app, `jwt-rules-${randomBytes(4).toString('hex')}`);
      });
      const me = (token: string) => h.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(token) });
      const token = (times: Times, claims: Record<string, unknown> = {}) => sign({ sub: 'u-1', tenant_id: T.id, ...claims }, times);

      it('accepts tokens within the rules, the skew included', async () => {
        const t = now();
        const accepted: Record<string, Times> = {
          usual: { iat: t, exp: t + HOUR },
          noIat: { exp: t + HOUR },
          justExpiredWithinSkew: { iat: t - HOUR, exp: t - 10 },
          issuedJustAheadWithinSkew: { iat: t + 10, exp: t + HOUR },
          notBeforeJustAheadWithinSkew: { iat: t, nbf: t + 10, exp: t + HOUR },
          notBeforePassed: { iat: t - 60, nbf: t - 60, exp: t + HOUR },
          fullDay: { iat: t, exp: t + 24 * HOUR },
        };
        for (const [why, times] of Object.entries(accepted)) {
          const res = await me(await token(times));
          expect(res.statusCode, `${why}: ${res.body}`).toBe(200);
          expect(res.json<{ tenantId: string }>().tenantId).toBe(T.id);
        }
      });

      it('refuses, with the reason, a token without exp, expired, not yet valid, issued in the future or living too long', async () => {
        const t = now();
        const refused: Record<string, [Times, RegExp]> = {
          noExp: [{ iat: t }, /no expiry \(exp claim\)/],
          noExpNoIat: [{}, /no expiry \(exp claim\)/],
          expired: [{ iat: t - HOUR, exp: t - 120 }, /has expired \(exp\)/],
          notYetValid: [{ iat: t, nbf: t + 120, exp: t + HOUR }, /not valid yet \(nbf\)/],
          issuedInTheFuture: [{ iat: t + 120, exp: t + HOUR }, /issued in the future \(iat\)/],
          farFutureIat: [{ iat: t + 10 * 365 * 24 * HOUR, exp: t + 10 * 365 * 24 * HOUR + 60 }, /issued in the future \(iat\)/],
          tooLong: [{ iat: t, exp: t + 25 * HOUR }, /lives longer than the 86400 s/],
          tooLongWithoutIat: [{ exp: t + 25 * HOUR }, /lives longer than the 86400 s/],
          centuryToken: [{ iat: t, exp: t + 100 * 365 * 24 * HOUR }, /lives longer/],
        };
        for (const [why, [times, reason]] of Object.entries(refused)) {
          const jwt = await token(times);
          const res = await me(jwt);
          const problem = expectProblem(res, 401, { code: 'agentstore.unauthenticated' });
          expect(problem.detail, why).toMatch(reason);
          expect(res.body, why).not.toContain(HS_SECRET);
          expect(res.body, why).not.toContain(jwt);
        }
      });

      it('names the failed check for issuer, audience, signature, claim types and the tenant, never the expected values', async () => {
        const t = now();
        const times = { iat: t, exp: t + HOUR };
        const wrongKey = await new SignJWT({ sub: 'u', tenant_id: T.id, ...times })
          .setIssuer(ISSUER)
          .setAudience(AUDIENCE)
          .setProtectedHeader(keys.secret ? { alg: 'HS256' } : { alg: 'RS256', kid: 'rules-1' })
          .sign(keys.secret ? new TextEncoder().encode(`${HS_SECRET}-other`) : (await generateKeyPair('RS256')).privateKey);
        const cases: Record<string, [string, RegExp]> = {
          issuer: [await sign({ sub: 'u', tenant_id: T.id, iss: 'https://other.example/' }, times), /issuer \(iss\)/],
          noIssuer: [await sign({ sub: 'u', tenant_id: T.id, iss: undefined }, times), /no issuer \(iss claim\)/],
          audience: [await sign({ sub: 'u', tenant_id: T.id, aud: 'someone-else' }, times), /audience \(aud\)/],
          signature: [wrongKey, /signature does not verify/],
          expNotANumber: [await sign({ sub: 'u', tenant_id: T.id }, { iat: t, exp: 'soon' as unknown as number }), /invalid exp claim/],
          noTenant: [await sign({ sub: 'u' }, times), /no tenant \(claim tenant_id\)/],
          unknownTenant: [await sign({ sub: 'u', tenant_id: '00000000-0000-7000-8000-000000000000' }, times), /no tenant of this server/],
          noUser: [await sign({ tenant_id: T.id }, times), /no user .*\(claim sub\)/],
          malformed: [`${(await token(times)).split('.').slice(0, 2).join('.')}.!!!`, /malformed|signature/],
        };
        for (const [why, [jwt, reason]] of Object.entries(cases)) {
          const res = await me(jwt);
          const problem = expectProblem(res, 401, { code: 'agentstore.unauthenticated' });
          expect(problem.detail, why).toMatch(reason);
          for (const secretish of [HS_SECRET, ISSUER, AUDIENCE, JWKS_URL]) expect(res.body, why).not.toContain(secretish);
        }
      });
    });
  }

  describe('configured: exp optional, no skew, 1 h lifetime', () => {
    const h = useHttp(backend, {
      store: { auth: { jwt: { secret: HS_SECRET, issuer: ISSUER, audience: AUDIENCE, ...CLAIMS, requireExp: false, clockSkewSeconds: 0, maxLifetimeSeconds: HOUR } } },
    });
    let T: HttpTenant;
    beforeAll(async () => {
      T = await createTenant(h.app, `jwt-cfg-${randomBytes(4).toString('hex')}`);
    });
    const me = async (times: Times) => h.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(await hsSigner({ sub: 'u', tenant_id: T.id }, times)) });

    it('without exp, iat bounds the age; with neither, the token is refused; the skew is 0', async () => {
      const t = now();
      expect((await me({ iat: t - 60 })).statusCode).toBe(200);
      expect((await me({ iat: t, exp: t + HOUR })).statusCode).toBe(200);
      expect(expectProblem(await me({ iat: t - 2 * HOUR }), 401).detail).toMatch(/older than the 3600 s .* without exp/);
      expect(expectProblem(await me({}), 401).detail).toMatch(/neither an expiry \(exp\) nor an issue time \(iat\)/);
      expect(expectProblem(await me({ iat: t, exp: t + 2 * HOUR }), 401).detail).toMatch(/lives longer than the 3600 s/);
      expect(expectProblem(await me({ iat: t + 5, exp: t + 600 }), 401).detail).toMatch(/issued in the future/);
      expect(expectProblem(await me({ iat: t - 600, exp: t - 2 }), 401).detail).toMatch(/expired/);
    });
  });

  describe('an event stream opened with a JWT', () => {
    const h = useHttp(backend, {
      app: { server: { eventsHeartbeatMs: 500 } },
      store: { auth: { jwt: { secret: HS_SECRET, issuer: ISSUER, audience: AUDIENCE, ...CLAIMS, clockSkewSeconds: 0 } } },
    });

    it('ends within a heartbeat once the token expires; the reconnect gets 401 saying so', async () => {
      const T = await createTenant(h.app, `jwt-sse-${randomBytes(4).toString('hex')}`);
      await h.app.listen({ port: 0, host: '127.0.0.1' });
      const { port } = h.app.server.address() as AddressInfo;
      const t = now();
      const jwt = await hsSigner({ sub: 'streamer', tenant_id: T.id }, { iat: t, exp: t + 2 });
      const sse = await openSse(`http://127.0.0.1:${port}/v1/events`, bearer(jwt));
      try {
        expect(sse.status).toBe(200);
        await sse.ended(5000);
        expect(Date.now() / 1000).toBeGreaterThanOrEqual(t + 2);
        const again = await openSse(`http://127.0.0.1:${port}/v1/events`, bearer(jwt));
        expect(again.status).toBe(401);
        again.close();
        expect(expectProblem(await h.app.inject({ method: 'GET', url: '/v1/events', headers: bearer(jwt) }), 401).detail).toMatch(/has expired \(exp\)/);
      } finally {
        sse.close();
      }
    });
  });

  describe('a JWKS URL that does not answer', () => {
    const h = useHttp(backend, { store: { auth: { jwt: { jwksUrl: DEAD_JWKS_URL, issuer: ISSUER, audience: AUDIENCE, ...CLAIMS } } } });

    it('is a 503 with Retry-After (the token may be fine), not a 401', async () => {
      const t = now();
      const res = await h.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(await rsSigner({ sub: 'u', tenant_id: '00000000-0000-7000-8000-000000000000' }, { iat: t, exp: t + 60 })) });
      const problem = expectProblem(res, 503, { code: 'agentstore.unavailable' });
      expect(problem.detail).toMatch(/JWKS/);
      expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(res.body).not.toContain(DEAD_JWKS_URL);
    });
  });
});

describe('jwt verifier configuration from the library', () => {
  const base: JwtConfig = { secret: HS_SECRET, ...CLAIMS };
  it('refuses a skew or a lifetime out of range, or a tenant or role claim the user writes, naming the setting', () => {
    for (const [config, name] of [
      [{ ...base, clockSkewSeconds: -1 }, 'auth.jwt.clockSkewSeconds'],
      [{ ...base, clockSkewSeconds: 1.5 }, 'auth.jwt.clockSkewSeconds'],
      [{ ...base, clockSkewSeconds: 601 }, 'auth.jwt.clockSkewSeconds'],
      [{ ...base, maxLifetimeSeconds: 0 }, 'auth.jwt.maxLifetimeSeconds'],
      [{ ...base, maxLifetimeSeconds: Number.POSITIVE_INFINITY }, 'auth.jwt.maxLifetimeSeconds'],
      [{ ...base, tenantClaim: 'user_metadata.tenant_id' }, 'auth.jwt.tenantClaim'],
      [{ ...base, roleClaim: 'user_metadata.agentstore_role' }, 'auth.jwt.roleClaim'],
    ] as const) {
      expect(() => createJwtVerifier(config), JSON.stringify(config)).toThrow(expect.objectContaining({ code: 'agentstore.config', context: { variable: name } }));
    }
    expect(() => createJwtVerifier(base)).not.toThrow();
  });
});
