/**
 * Who may create, revoke and change which credentials. One rule for users and API keys:
 * nobody grants a role above their own, and nobody revokes, changes or deletes a credential
 * holding a role above their own (an admin cannot take an owner's key away). A key created
 * without a role is a member key, over HTTP, through the service key and in the library.
 */
import { randomBytes } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { describe, expect, it } from 'vitest';
import { systemContext } from '../../src/core/context.js';
import { asRole, expectError, forEachBackend } from '../helpers/index.js';
import { SERVICE_KEY, bearer, countEverything, createKey, createTenant, expectProblem, useHttp, type HttpTenant } from './http-kit.js';

const password = 'correct horse battery staple';

const json = <X>(res: LightMyRequestResponse, status = 200): X => {
  expect(res.statusCode, res.body).toBe(status);
  return res.json<X>();
};

forEachBackend('key rules', (backend) => {
  const h = useHttp(backend);
  let address = 0;
  const as = (token: string, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object) =>
    h.app.inject({ method, url, headers: bearer(token), ...(payload === undefined ? {} : { payload }) });

  /** A tenant with an owner key, an admin key, and an owner, an admin and a member user; the admin user logged in. */
  async function setup() {
    const T: HttpTenant = await createTenant(h.app, `keys-${randomBytes(4).toString('hex')}`, 'owner');
    const admin = await createKey(h.app, T, 'admin');
    const member = await createKey(h.app, T, 'member');
    const user = async (role: string) => {
      const email = `${role}-${randomBytes(3).toString('hex')}@example.com`;
      const created = json<{ id: string }>(await as(SERVICE_KEY, 'POST', `/v1/tenants/${T.id}/users`, { email, password, role }), 201);
      return { id: created.id, email };
    };
    const [ownerUser, adminUser, memberUser] = [await user('owner'), await user('admin'), await user('member')];
    const login = await h.app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { tenantId: T.id, email: adminUser.email, password },
      remoteAddress: `203.0.113.${++address}`,
    });
    const adminSession = json<{ token: string }>(login).token;
    return { T, ownerKey: { id: T.keyId, key: T.key }, admin, member, ownerUser, adminUser, memberUser, adminSession };
  }

  describe('an owner key is as safe from an admin as an owner user', () => {
    it('an admin key and an admin session get 403 revoking an owner key, which keeps working; nothing is written', async () => {
      const s = await setup();
      for (const [who, token] of [['admin key', s.admin.key], ['admin session', s.adminSession]] as const) {
        const before = await countEverything(h.store, [s.T.id]);
        const res = await as(token, 'DELETE', `/v1/api-keys/${s.ownerKey.id}`);
        const problem = expectProblem(res, 403, { code: 'agentstore.forbidden' });
        expect(problem.detail, who).toMatch(/owner/);
        // The rule the users already had: the same admin cannot delete the owner user.
        expectProblem(await as(token, 'DELETE', `/v1/users/${s.ownerUser.id}`), 403, { code: 'agentstore.forbidden' });
        expect(await countEverything(h.store, [s.T.id]), who).toEqual(before);
        expect(json<{ revokedAt: string | null }>(await as(s.ownerKey.key, 'GET', `/v1/api-keys/${s.ownerKey.id}`)).revokedAt, who).toBeNull();
        expect(json<{ role: string }>(await as(s.ownerKey.key, 'GET', '/v1/auth/me')).role, who).toBe('owner');
      }
    });

    it('an admin still revokes admin and member keys; an owner revokes an owner key', async () => {
      const s = await setup();
      const otherAdmin = await createKey(h.app, { ...s.T, key: s.ownerKey.key }, 'admin');
      expect(json<{ revokedAt: string | null }>(await as(s.admin.key, 'DELETE', `/v1/api-keys/${s.member.id}`)).revokedAt).toEqual(expect.any(String));
      expect(json<{ revokedAt: string | null }>(await as(s.admin.key, 'DELETE', `/v1/api-keys/${otherAdmin.id}`)).revokedAt).toEqual(expect.any(String));
      const secondOwner = await createKey(h.app, { ...s.T, key: s.ownerKey.key }, 'owner');
      expect(json<{ revokedAt: string | null }>(await as(s.ownerKey.key, 'DELETE', `/v1/api-keys/${secondOwner.id}`)).revokedAt).toEqual(expect.any(String));
      expectProblem(await as(secondOwner.key, 'GET', '/v1/auth/me'), 401);
    });

    it('the library applies the same rule: an admin context is refused, an owner or system context revokes', async () => {
      const s = await setup();
      const ownerKey2 = await createKey(h.app, { ...s.T, key: s.ownerKey.key }, 'owner');
      await expectError(h.store.apiKeys.revoke(asRole(s.T.id, 'admin'), s.ownerKey.id), 'agentstore.forbidden', { message: /owner/ });
      await expectError(h.store.apiKeys.revoke(asRole(s.T.id, 'admin'), ownerKey2.id), 'agentstore.forbidden');
      expect((await h.store.apiKeys.get(systemContext(s.T.id), s.ownerKey.id)).revokedAt).toBeNull();
      expect((await h.store.apiKeys.revoke(asRole(s.T.id, 'owner'), ownerKey2.id)).revokedAt).toEqual(expect.any(String));
      const ownerKey3 = await h.store.apiKeys.create(systemContext(s.T.id), { name: 'third', role: 'owner' });
      expect((await h.store.apiKeys.revoke(systemContext(s.T.id), ownerKey3.id)).revokedAt).toEqual(expect.any(String));
      // The not-found answer comes first, as for users: a refusal says nothing about a key that is not there.
      await expectError(h.store.apiKeys.revoke(asRole(s.T.id, 'admin'), '00000000-0000-7000-8000-000000000000'), 'agentstore.not_found');
    });
  });

  describe('a key created without a role is a member key', () => {
    it('POST /v1/api-keys, the service route and the library default to member', async () => {
      const s = await setup();
      const viaAdmin = json<{ role: string; key: string }>(await as(s.admin.key, 'POST', '/v1/api-keys', { name: 'no role' }), 201);
      expect(viaAdmin.role).toBe('member');
      expect(json<{ role: string }>(await as(viaAdmin.key, 'GET', '/v1/auth/me')).role).toBe('member');
      // A member key cannot manage keys: the default gives no administration.
      expectProblem(await as(viaAdmin.key, 'GET', '/v1/api-keys'), 403);
      const viaService = json<{ role: string }>(await as(SERVICE_KEY, 'POST', `/v1/tenants/${s.T.id}/api-keys`, { name: 'no role' }), 201);
      expect(viaService.role).toBe('member');
      expect((await h.store.apiKeys.create(systemContext(s.T.id), { name: 'library' })).role).toBe('member');
      // A role given is still checked.
      expectProblem(await as(s.admin.key, 'POST', '/v1/api-keys', { name: 'x', role: 'superuser' }), 400, { field: /role/ });
      const invalid = await expectError(h.store.apiKeys.create(systemContext(s.T.id), { name: 'x', role: null as never }), 'agentstore.validation');
      expect(invalid.context.errors?.map((e) => e.field)).toEqual([expect.stringMatching(/role$/)]);
    });

    it('the OpenAPI document shows the default', async () => {
      const doc = json<{ paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties?: Record<string, { default?: unknown }>; required?: string[] } }> } }>> }>(
        await h.app.inject({ method: 'GET', url: '/openapi.json' }),
      );
      for (const path of ['/v1/api-keys', '/v1/tenants/{tenantId}/api-keys']) {
        const schema = doc.paths[path]?.post?.requestBody?.content['application/json']?.schema;
        expect(schema?.properties?.role?.default, path).toBe('member');
        expect(schema?.required ?? [], path).not.toContain('role');
      }
    });
  });

  describe('no way up: every grant or change above the caller is 403 and writes nothing', () => {
    it('as an admin, a member and a viewer key', async () => {
      const s = await setup();
      const viewer = await createKey(h.app, { ...s.T, key: s.ownerKey.key }, 'viewer');
      const newUser = (role: string) => ({ email: `n-${randomBytes(3).toString('hex')}@example.com`, password, role });
      const refused: [string, string, 'POST' | 'PATCH' | 'DELETE', string, object?][] = [
        ['admin', s.admin.key, 'POST', '/v1/api-keys', { name: 'x', role: 'owner' }],
        ['admin', s.admin.key, 'POST', '/v1/users', newUser('owner')],
        ['admin', s.admin.key, 'PATCH', `/v1/users/${s.memberUser.id}`, { role: 'owner' }],
        ['admin', s.admin.key, 'PATCH', `/v1/users/${s.ownerUser.id}`, { role: 'admin' }],
        ['admin', s.admin.key, 'PATCH', `/v1/users/${s.ownerUser.id}`, { password: 'a new password that is long' }],
        ['admin', s.admin.key, 'DELETE', `/v1/users/${s.ownerUser.id}`],
        ['admin', s.admin.key, 'DELETE', `/v1/api-keys/${s.ownerKey.id}`],
        // An admin user's own session is held to the same rule as an admin key.
        ['admin session', s.adminSession, 'PATCH', `/v1/users/${s.adminUser.id}`, { role: 'owner' }],
        ['admin session', s.adminSession, 'POST', '/v1/api-keys', { name: 'x', role: 'owner' }],
        ['member', s.member.key, 'POST', '/v1/api-keys', { name: 'x', role: 'viewer' }],
        ['member', s.member.key, 'POST', '/v1/api-keys', { name: 'x' }],
        ['member', s.member.key, 'POST', '/v1/users', newUser('viewer')],
        ['member', s.member.key, 'PATCH', `/v1/users/${s.memberUser.id}`, { role: 'admin' }],
        ['member', s.member.key, 'DELETE', `/v1/api-keys/${viewer.id}`],
        ['viewer', viewer.key, 'POST', '/v1/api-keys', { name: 'x', role: 'viewer' }],
        ['viewer', viewer.key, 'DELETE', `/v1/api-keys/${viewer.id}`],
      ];
      const before = await countEverything(h.store, [s.T.id]);
      for (const [who, token, method, url, payload] of refused) {
        const res = await as(token, method, url, payload);
        expect(res.statusCode, `${who} ${method} ${url} ${JSON.stringify(payload)}: ${res.body}`).toBe(403);
        expectProblem(res, 403, { code: 'agentstore.forbidden' });
      }
      expect(await countEverything(h.store, [s.T.id])).toEqual(before);
      const owner = await h.store.users.get(systemContext(s.T.id), s.ownerUser.id);
      expect(owner).toMatchObject({ role: 'owner', version: 1 });
    });
  });
});
