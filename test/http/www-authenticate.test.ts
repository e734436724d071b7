/**
 * Every 401 carries a `WWW-Authenticate` challenge (RFC 9110 §11.6.1): the Bearer scheme,
 * with `error="invalid_token"` when a credential was sent and refused (RFC 6750 §3), and
 * with no error code when the request sent none, used another scheme, or failed to log in.
 * Other statuses carry no challenge. (`expectProblem` checks the header's form on every 401
 * of the HTTP suites; this suite pins which form each case gets.)
 */
import { randomBytes } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { beforeAll, expect, it } from 'vitest';
import { forEachBackend } from '../helpers/index.js';
import { SERVICE_KEY, bearer, createKey, createTenant, expectProblem, useHttp, type HttpTenant } from './http-kit.js';

const PLAIN = 'Bearer realm="agentstore"';
const INVALID = 'Bearer realm="agentstore", error="invalid_token"';

forEachBackend('http WWW-Authenticate on 401', (backend) => {
  const h = useHttp(backend);
  let T: HttpTenant;
  const get = (url: string, headers: Record<string, string> = {}) => h.app.inject({ method: 'GET', url, headers });
  const challenge = (res: LightMyRequestResponse): unknown => {
    expectProblem(res, 401, { code: 'agentstore.unauthenticated' });
    return res.headers['www-authenticate'];
  };

  beforeAll(async () => {
    T = await createTenant(h.app, `www-auth-${randomBytes(4).toString('hex')}`, 'owner');
  });

  it('no credential, another scheme or a malformed Authorization header: the Bearer challenge without an error code', async () => {
    expect(challenge(await get('/v1/counters'))).toBe(PLAIN);
    expect(challenge(await get('/v1/tenants'))).toBe(PLAIN);
    expect(challenge(await get('/v1/counters', { authorization: 'Basic dXNlcjpwYXNz' }))).toBe(PLAIN);
    expect(challenge(await get('/v1/counters', { authorization: 'Bearer' }))).toBe(PLAIN);
    expect(challenge(await get('/v1/counters', { authorization: 'Bearer two tokens' }))).toBe(PLAIN);
  });

  it('a credential sent and refused: error="invalid_token", on tenant, service and event-stream routes', async () => {
    expect(challenge(await get('/v1/counters', bearer(`ask_${randomBytes(24).toString('hex')}`)))).toBe(INVALID);
    expect(challenge(await get('/v1/counters', { 'x-api-key': 'not-a-key-of-this-server' }))).toBe(INVALID);
    expect(challenge(await get('/v1/tenants', bearer(`${SERVICE_KEY}x`)))).toBe(INVALID);
    expect(challenge(await get('/v1/events', bearer('no-such-token')))).toBe(INVALID);

    const key = await createKey(h.app, T, 'member');
    expect((await get('/v1/counters', bearer(key.key))).statusCode).toBe(200);
    const revoked = await h.app.inject({ method: 'DELETE', url: `/v1/api-keys/${key.id}`, headers: bearer(T.key) });
    expect(revoked.statusCode, revoked.body).toBe(200);
    expect(challenge(await get('/v1/counters', bearer(key.key)))).toBe(INVALID);
  });

  it('a failed login (the credential is the body, not a token) has no error code, even with a token in the request', async () => {
    const payload = { tenantId: T.id, email: 'nobody@example.com', password: 'not the password' };
    expect(challenge(await h.app.inject({ method: 'POST', url: '/v1/auth/login', payload }))).toBe(PLAIN);
    expect(challenge(await h.app.inject({ method: 'POST', url: '/v1/auth/login', payload, headers: bearer('stale-token') }))).toBe(PLAIN);
  });

  it('other statuses carry no challenge: 403 for a role too low, 200, 404', async () => {
    const viewer = await createKey(h.app, T, 'viewer');
    const forbidden = await h.app.inject({ method: 'POST', url: '/v1/counters/www/increment', headers: bearer(viewer.key) });
    expectProblem(forbidden, 403, { code: 'agentstore.forbidden' });
    expect(forbidden.headers['www-authenticate']).toBeUndefined();
    expect((await get('/v1/counters', bearer(T.key))).headers['www-authenticate']).toBeUndefined();
    const missing = await get('/v1/counters/none-such', bearer(T.key));
    expectProblem(missing, 404);
  });
});
