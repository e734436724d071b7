import { beforeAll, describe, expect, it } from 'vitest';
import type { TenantContext } from '../../src/core/context.js';
import type { User } from '../../src/modules/tenancy/types.js';
import { forEachBackend, openTestStore, useTestStore, createTestDatabase } from '../helpers/backends.js';
import { asRole, expectError, newTenant, snapshotCounts } from '../helpers/fixtures.js';

// Argon2id costs ~150 ms per hash or verify: each block creates few users and logs in rarely.
const PASSWORD = 'correct horse battery';
const USER_KEYS = ['createdAt', 'email', 'id', 'role', 'updatedAt', 'version'];

forEachBackend('tenancy: users, auth, api keys', (backend) => {
  const t = useTestStore(backend, { store: { auth: { loginMaxPerAccount: 3, loginMaxPerAddress: 1000, loginWindowSeconds: 60 } } });
  let ctx: TenantContext;
  let owner: User;
  let admin: User;
  let member: User;

  beforeAll(async () => {
    ctx = (await newTenant(t.store)).ctx;
    owner = await t.store.users.create(ctx, { email: '  Owner@Example.COM ', password: PASSWORD, role: 'owner' });
    admin = await t.store.users.create(ctx, { email: 'admin@example.com', password: PASSWORD, role: 'admin' });
    member = await t.store.users.create(ctx, { email: 'member@example.com', password: PASSWORD, role: 'member' });
  });

  describe('users', () => {
    it('creates users with normalised emails and never returns password hashes', async () => {
      expect(owner).toMatchObject({ email: 'owner@example.com', role: 'owner', version: 1 });
      expect(Object.keys(owner).sort()).toEqual(USER_KEYS);
      expect(await t.store.users.get(ctx, member.id)).toEqual(member);
      const all = await t.store.users.list(ctx, { limit: 2 });
      expect(all.items).toHaveLength(2);
      const rest = await t.store.users.list(ctx, { limit: 2, cursor: all.nextCursor as string });
      expect([...all.items, ...rest.items].map((u) => u.id).sort()).toEqual([owner.id, admin.id, member.id].sort());
      expect(rest.nextCursor).toBeNull();
      expect(JSON.stringify([...all.items, ...rest.items])).not.toMatch(/argon2|password/i);
    });

    it('rejects duplicates and invalid input before hashing', async () => {
      await expectError(t.store.users.create(ctx, { email: 'MEMBER@example.com', password: PASSWORD, role: 'member' }), 'agentstore.conflict');
      await expectError(t.store.users.create(ctx, { email: 'not-an-email', password: PASSWORD, role: 'member' }), 'agentstore.validation', { field: '/email' });
      await expectError(t.store.users.create(ctx, { email: 'x@y.z', password: 'short', role: 'member' }), 'agentstore.validation', { field: '/password' });
      await expectError(t.store.users.create(ctx, { email: 'x@y.z', password: PASSWORD, role: 'root' as never }), 'agentstore.validation', { field: '/role' });
      await expectError(t.store.users.get(ctx, 'not-a-uuid'), 'agentstore.not_found');
      await expectError(t.store.users.get(ctx, '00000000-0000-7000-8000-000000000000'), 'agentstore.not_found');
    });

    it('enforces role rules: nobody grants or manages more than they hold', async () => {
      const asAdmin = asRole(ctx, 'admin');
      await expectError(t.store.users.create(asAdmin, { email: 'boss@example.com', password: PASSWORD, role: 'owner' }), 'agentstore.forbidden');
      await expectError(t.store.users.update(asAdmin, member.id, { role: 'owner' }), 'agentstore.forbidden');
      await expectError(t.store.users.update(asAdmin, owner.id, { role: 'member' }), 'agentstore.forbidden');
      await expectError(t.store.users.delete(asAdmin, owner.id), 'agentstore.forbidden');
      for (const role of ['member', 'viewer'] as const) {
        const weak = asRole(ctx, role);
        await expectError(t.store.users.list(weak), 'agentstore.forbidden');
        await expectError(t.store.users.get(weak, member.id), 'agentstore.forbidden');
        await expectError(t.store.users.create(weak, { email: 'v@example.com', password: PASSWORD, role: 'viewer' }), 'agentstore.forbidden');
        await expectError(t.store.users.update(weak, member.id, { role: 'viewer' }), 'agentstore.forbidden');
        await expectError(t.store.users.delete(weak, member.id), 'agentstore.forbidden');
      }
      expect(await t.store.users.get(ctx, owner.id)).toEqual(owner);
    });

    it('updates a role (version bump, one audit entry) and deletes a user', async () => {
      const temp = await t.store.users.create(asRole(ctx, 'admin'), { email: 'temp@example.com', password: PASSWORD, role: 'viewer' });
      const before = await snapshotCounts(t.store, ctx.tenantId);
      const updated = await t.store.users.update(asRole(ctx, 'admin'), temp.id, { role: 'member' });
      expect(updated).toMatchObject({ id: temp.id, role: 'member', version: 2 });
      const after = await snapshotCounts(t.store, ctx.tenantId);
      expect([after.audit - before.audit, after.changes - before.changes]).toEqual([1, 1]);
      await t.store.users.delete(asRole(ctx, 'admin'), temp.id);
      await expectError(t.store.users.get(ctx, temp.id), 'agentstore.not_found');
      await expectError(t.store.users.delete(ctx, temp.id), 'agentstore.not_found');
    });
  });

  describe('login, authenticate, me, logout', () => {
    it('a login returns a session token that authenticate() resolves until logout', async () => {
      const session = await t.store.auth.login({ tenantId: ctx.tenantId, email: 'Member@Example.com', password: PASSWORD }, '10.0.0.1');
      expect(session).toMatchObject({ tenantId: ctx.tenantId, user: member });
      expect(Date.parse(session.expiresAt)).toBeGreaterThan(Date.now());
      const principal = await t.store.auth.authenticate(session.token);
      expect(principal).toMatchObject({ kind: 'tenant', ctx: { tenantId: ctx.tenantId, role: 'member', actor: { type: 'user', id: member.id } } });
      if (principal?.kind !== 'tenant') throw new Error('expected a tenant principal');
      expect(await t.store.auth.me(principal.ctx)).toMatchObject({ tenantId: ctx.tenantId, role: 'member', user: member });
      await expectError(t.store.auth.logout(principal.ctx, undefined), 'agentstore.validation');
      await t.store.auth.logout(principal.ctx, principal.sessionId);
      expect(await t.store.auth.authenticate(session.token)).toBeUndefined();
    });

    it('a wrong password and an unknown email fail alike', async () => {
      const wrong = await expectError(t.store.auth.login({ tenantId: ctx.tenantId, email: admin.email, password: 'wrong password' }, '10.0.0.2'), 'agentstore.unauthenticated');
      const unknown = await expectError(t.store.auth.login({ tenantId: ctx.tenantId, email: 'ghost@example.com', password: PASSWORD }, '10.0.0.2'), 'agentstore.unauthenticated');
      expect(unknown.message).toBe(wrong.message);
      const other = await newTenant(t.store);
      await expectError(t.store.auth.login({ tenantId: other.tenant.id, email: admin.email, password: PASSWORD }, '10.0.0.2'), 'agentstore.unauthenticated');
      await expectError(t.store.auth.login({ tenantId: 'nope', email: admin.email, password: PASSWORD }, '10.0.0.2'), 'agentstore.validation', { field: '/tenantId' });
    });

    it('rate-limits an account after N failures, even with the right password; other accounts are unaffected', async () => {
      const victim = await t.store.users.create(ctx, { email: 'victim@example.com', password: PASSWORD, role: 'viewer' });
      for (let i = 0; i < 3; i++) {
        await expectError(t.store.auth.login({ tenantId: ctx.tenantId, email: victim.email, password: `guess-${i}-xx` }, `10.1.0.${i}`), 'agentstore.unauthenticated');
      }
      const limited = await expectError(t.store.auth.login({ tenantId: ctx.tenantId, email: victim.email, password: PASSWORD }, '10.1.1.1'), 'agentstore.rate_limited');
      expect(limited.context.retryAfter).toBeGreaterThan(0);
      expect(limited.context.retryAfter).toBeLessThanOrEqual(60);
      expect(limited.status).toBe(429);
      const session = await t.store.auth.login({ tenantId: ctx.tenantId, email: admin.email, password: PASSWORD }, '10.1.1.1');
      expect(session.user.id).toBe(admin.id);
    });

    it('a password change or deletion ends the user’s sessions at once', async () => {
      const user = await t.store.users.create(ctx, { email: 'rotating@example.com', password: PASSWORD, role: 'member' });
      const session = await t.store.auth.login({ tenantId: ctx.tenantId, email: user.email, password: PASSWORD }, '10.2.0.1');
      expect(await t.store.auth.authenticate(session.token)).toBeDefined(); // now cached
      await t.store.users.update(ctx, user.id, { password: 'another long password' });
      expect(await t.store.auth.authenticate(session.token)).toBeUndefined();
    });

    it('a role change takes effect on existing sessions at once', async () => {
      const user = await t.store.users.create(ctx, { email: 'demoted@example.com', password: PASSWORD, role: 'admin' });
      const session = await t.store.auth.login({ tenantId: ctx.tenantId, email: user.email, password: PASSWORD }, '10.2.0.2');
      expect(await t.store.auth.authenticate(session.token)).toMatchObject({ ctx: { role: 'admin' } });
      await t.store.users.update(ctx, user.id, { role: 'viewer' });
      expect(await t.store.auth.authenticate(session.token)).toMatchObject({ ctx: { role: 'viewer' } });
      await t.store.users.delete(ctx, user.id);
      expect(await t.store.auth.authenticate(session.token)).toBeUndefined();
    });
  });

  describe('api keys', () => {
    it('shows the key once; lists and gets never show it', async () => {
      const created = await t.store.apiKeys.create(ctx, { name: 'ci bot', role: 'member' });
      expect(created.key).toMatch(/^ask_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/);
      expect(created).toMatchObject({ name: 'ci bot', role: 'member', revokedAt: null });
      expect(created.key.startsWith(created.prefix.split('…')[0] as string)).toBe(true);
      const listed = await t.store.apiKeys.list(ctx);
      const got = await t.store.apiKeys.get(ctx, created.id);
      for (const shown of [JSON.stringify(listed), JSON.stringify(got)]) {
        expect(shown).not.toContain(created.key);
        expect(shown).not.toContain(created.key.slice(-20));
      }
      expect(got).not.toHaveProperty('key');
      expect(listed.items.find((k) => k.id === created.id)).toEqual(got);
    });

    it('authenticates until revoked, and stops at once after revoke', async () => {
      const created = await t.store.apiKeys.create(ctx, { name: 'worker', role: 'viewer' });
      expect(await t.store.auth.authenticate(created.key)).toEqual({
        kind: 'tenant',
        ctx: { tenantId: ctx.tenantId, role: 'viewer', actor: { type: 'api_key', id: created.id } },
      });
      const revoked = await t.store.apiKeys.revoke(ctx, created.id);
      expect(revoked.revokedAt).toEqual(expect.any(String));
      expect(await t.store.auth.authenticate(created.key)).toBeUndefined();
      expect((await t.store.apiKeys.revoke(ctx, created.id)).revokedAt).toBe(revoked.revokedAt);
      await expectError(t.store.apiKeys.get(ctx, '00000000-0000-7000-8000-000000000000'), 'agentstore.not_found');
      await expectError(t.store.apiKeys.revoke(ctx, 'nope'), 'agentstore.not_found');
    });

    it('rejects tampered and foreign tokens', async () => {
      const created = await t.store.apiKeys.create(ctx, { name: 'real', role: 'member' });
      const tampered = created.key.slice(0, -1) + (created.key.endsWith('A') ? 'B' : 'A');
      for (const token of [tampered, 'nope', '', 'ask_', `${created.key}x`, created.key.replace(/^ask_/, 'ass_')]) {
        expect(await t.store.auth.authenticate(token)).toBeUndefined();
      }
    });

    it('role rules: admins cannot mint owner keys, members cannot manage keys', async () => {
      await expectError(t.store.apiKeys.create(asRole(ctx, 'admin'), { name: 'x', role: 'owner' }), 'agentstore.forbidden');
      expect((await t.store.apiKeys.create(asRole(ctx, 'admin'), { name: 'x', role: 'admin' })).role).toBe('admin');
      const key = await t.store.apiKeys.create(ctx, { name: 'y', role: 'viewer' });
      for (const role of ['member', 'viewer'] as const) {
        await expectError(t.store.apiKeys.create(asRole(ctx, role), { name: 'x', role: 'viewer' }), 'agentstore.forbidden');
        await expectError(t.store.apiKeys.list(asRole(ctx, role)), 'agentstore.forbidden');
        await expectError(t.store.apiKeys.revoke(asRole(ctx, role), key.id), 'agentstore.forbidden');
      }
      await expectError(t.store.apiKeys.create(ctx, { name: '', role: 'viewer' }), 'agentstore.validation', { field: '/name' });
      await expectError(t.store.apiKeys.create(ctx, { name: 'z', role: 'god' as never }), 'agentstore.validation', { field: '/role' });
    });
  });
});

forEachBackend('tenancy: service key', (backend) => {
  it('is generated on first start only, and survives a restart', async () => {
    const database = await createTestDatabase(backend);
    try {
      const first = await openTestStore(backend, { database, store: { bootstrapServiceKey: true } });
      const key = first.store.generatedServiceKey;
      await first.close();
      expect(key).toMatch(/^assk_/);
      const second = await openTestStore(backend, { database, store: { bootstrapServiceKey: true } });
      try {
        expect(second.store.generatedServiceKey).toBeUndefined();
        expect(await second.store.auth.authenticate(key as string)).toEqual({ kind: 'service' });
        expect(await second.store.auth.authenticate(`${key as string}x`)).toBeUndefined();
        expect(await second.store.auth.authenticate('assk_guess')).toBeUndefined();
      } finally {
        await second.close();
      }
    } finally {
      await database.drop();
    }
  });

  it('can be configured instead, and then no key is generated', async () => {
    const configured = 'configured-service-key-0123456789';
    const opened = await openTestStore(backend, { store: { auth: { serviceKey: configured }, bootstrapServiceKey: true } });
    try {
      expect(opened.store.generatedServiceKey).toBeUndefined();
      expect(await opened.store.auth.authenticate(configured)).toEqual({ kind: 'service' });
      expect(await opened.store.auth.authenticate('configured-service-key-0123456780')).toBeUndefined();
    } finally {
      await opened.close();
    }
  });
});

forEachBackend('tenancy: sessions and limits', (backend) => {
  const t = useTestStore(backend, { store: { auth: { sessionTtlSeconds: 1, loginMaxPerAccount: 100, loginMaxPerAddress: 3, loginWindowSeconds: 30 } } });

  it('a session stops authenticating when it expires', async () => {
    const { ctx } = await newTenant(t.store);
    await t.store.users.create(ctx, { email: 'short@example.com', password: PASSWORD, role: 'member' });
    const session = await t.store.auth.login({ tenantId: ctx.tenantId, email: 'short@example.com', password: PASSWORD }, '10.3.0.1');
    expect(Date.parse(session.expiresAt) - Date.now()).toBeLessThanOrEqual(1000);
    expect(await t.store.auth.authenticate(session.token)).toBeDefined();
    await new Promise((r) => setTimeout(r, Date.parse(session.expiresAt) - Date.now() + 50));
    expect(await t.store.auth.authenticate(session.token)).toBeUndefined();
  });

  it('limits attempts per client address, whatever the account', async () => {
    const { ctx } = await newTenant(t.store);
    for (let i = 0; i < 3; i++) {
      await expectError(t.store.auth.login({ tenantId: ctx.tenantId, email: `nobody${i}@example.com`, password: PASSWORD }, '10.4.0.1'), 'agentstore.unauthenticated');
    }
    const limited = await expectError(t.store.auth.login({ tenantId: ctx.tenantId, email: 'nobody9@example.com', password: PASSWORD }, '10.4.0.1'), 'agentstore.rate_limited');
    expect(limited.context.retryAfter).toBeGreaterThan(0);
    expect(limited.context.retryAfter).toBeLessThanOrEqual(30);
    await expectError(t.store.auth.login({ tenantId: ctx.tenantId, email: 'nobody9@example.com', password: PASSWORD }, '10.4.0.2'), 'agentstore.unauthenticated');
  });

  it('after a password change the old password fails and the new one works', async () => {
    const { ctx } = await newTenant(t.store);
    const user = await t.store.users.create(ctx, { email: 'rotate@example.com', password: PASSWORD, role: 'viewer' });
    const updated = await t.store.users.update(ctx, user.id, { password: 'the new long password' });
    expect(updated.version).toBe(2);
    await expectError(t.store.auth.login({ tenantId: ctx.tenantId, email: user.email, password: PASSWORD }, '10.5.0.1'), 'agentstore.unauthenticated');
    const session = await t.store.auth.login({ tenantId: ctx.tenantId, email: user.email, password: 'the new long password' }, '10.5.0.2');
    expect(session.user.id).toBe(user.id);
  });

  it('me() for an api key has no user', async () => {
    const { ctx } = await newTenant(t.store);
    const key = await t.store.apiKeys.create(ctx, { name: 'svc', role: 'member' });
    const principal = await t.store.auth.authenticate(key.key);
    if (principal?.kind !== 'tenant') throw new Error('expected a tenant principal');
    expect(await t.store.auth.me(principal.ctx)).toEqual({ tenantId: ctx.tenantId, role: 'member', actor: { type: 'api_key', id: key.id }, user: null });
  });
});
