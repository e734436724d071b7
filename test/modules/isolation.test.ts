import { beforeAll, expect, it } from 'vitest';
import { systemContext, type TenantContext } from '../../src/core/context.js';
import type { CreatedApiKey, User } from '../../src/modules/tenancy/types.js';
import { forEachBackend, useTestStore } from '../helpers/backends.js';
import { expectError, newTenant } from '../helpers/fixtures.js';

/**
 * Library-level tenant isolation: tenant B's context never sees tenant A's data and gets
 * not_found for A's ids, whatever the method. (On PostgreSQL the services' own filters are
 * backed by row-level security, tested directly in test/tenancy/rls.test.ts.)
 */
forEachBackend('tenancy: isolation between tenants', (backend) => {
  const t = useTestStore(backend);
  let a: TenantContext;
  let b: TenantContext;
  let aUser: User;
  let aKey: CreatedApiKey;
  let aRecordId: string;

  beforeAll(async () => {
    a = (await newTenant(t.store, 'tenant A')).ctx;
    b = (await newTenant(t.store, 'tenant B')).ctx;
    aRecordId = (await t.store.collections.create(a, 'shared', { owner: 'A', secret: 'a-secret' })).record.id;
    await t.store.collections.create(a, 'shared', { id: 'a1', owner: 'A' });
    await t.store.collections.define(a, 'only-a', { schema: { type: 'object' } });
    await t.store.counters.increment(a, 'hits', 41);
    await t.store.counters.increment(a, 'only-a-counter');
    aUser = await t.store.users.create(a, { email: 'alice@a.example', password: 'password of alice', role: 'admin' });
    aKey = await t.store.apiKeys.create(a, { name: 'a key', role: 'member' });
    await t.store.collections.create(b, 'shared', { id: 'b1', owner: 'B' });
    await t.store.counters.increment(b, 'hits', 1);
  });

  it('records and collections', async () => {
    for (const id of [aRecordId, 'a1']) {
      await expectError(t.store.collections.get(b, 'shared', id), 'agentstore.not_found');
      await expectError(t.store.collections.getJson(b, 'shared', id), 'agentstore.not_found');
      await expectError(t.store.collections.patch(b, 'shared', id, { owner: 'B' }), 'agentstore.not_found');
      await expectError(t.store.collections.replace(b, 'shared', id, { owner: 'B' }), 'agentstore.not_found');
      await expectError(t.store.collections.delete(b, 'shared', id), 'agentstore.not_found');
    }
    expect((await t.store.collections.list(b, 'shared', { limit: 500 })).items.map((r) => r.id)).toEqual(['b1']);
    expect((await t.store.collections.list(b, 'shared', { filter: { owner: 'A' } })).items).toEqual([]);
    expect((await t.store.collections.list(b, 'only-a')).items).toEqual([]);
    expect((await t.store.collections.listCollections(b)).items.map((c) => c.name)).toEqual(['shared']);
    await expectError(t.store.collections.getCollection(b, 'only-a'), 'agentstore.not_found');
    await expectError(t.store.collections.deleteCollection(b, 'only-a'), 'agentstore.not_found');
    // The same id in B is B's own record; A's is untouched.
    await t.store.collections.create(b, 'shared', { id: 'a1', owner: 'B' });
    expect((await t.store.collections.get(a, 'shared', 'a1')).data).toEqual({ id: 'a1', owner: 'A' });
    expect((await t.store.collections.get(a, 'shared', aRecordId)).version).toBe(1);
  });

  it('counters', async () => {
    await expectError(t.store.counters.get(b, 'only-a-counter'), 'agentstore.not_found');
    expect((await t.store.counters.list(b)).items.map((c) => [c.name, c.value])).toEqual([['hits', 1]]);
    await t.store.counters.increment(b, 'hits', 100);
    expect((await t.store.counters.get(a, 'hits')).value).toBe(41);
  });

  it('users and api keys', async () => {
    await expectError(t.store.users.get(b, aUser.id), 'agentstore.not_found');
    await expectError(t.store.users.update(b, aUser.id, { role: 'viewer' }), 'agentstore.not_found');
    await expectError(t.store.users.delete(b, aUser.id), 'agentstore.not_found');
    expect((await t.store.users.list(b)).items).toEqual([]);
    await expectError(t.store.auth.login({ tenantId: b.tenantId, email: aUser.email, password: 'password of alice' }, '10.9.0.1'), 'agentstore.unauthenticated');
    await expectError(t.store.apiKeys.get(b, aKey.id), 'agentstore.not_found');
    await expectError(t.store.apiKeys.revoke(b, aKey.id), 'agentstore.not_found');
    expect((await t.store.apiKeys.list(b)).items).toEqual([]);
    expect(await t.store.auth.authenticate(aKey.key)).toMatchObject({ ctx: { tenantId: a.tenantId } });
    // A's secret presented under B's tenant prefix resolves to nothing.
    const forged = aKey.key.replace(a.tenantId.replaceAll('-', ''), b.tenantId.replaceAll('-', ''));
    expect(forged).not.toBe(aKey.key);
    expect(await t.store.auth.authenticate(forged)).toBeUndefined();
    expect((await t.store.users.get(a, aUser.id)).role).toBe('admin');
    expect((await t.store.apiKeys.get(a, aKey.id)).revokedAt).toBeNull();
  });

  it('audit and change log', async () => {
    const aAudit = (await t.store.audit.list(a, { limit: 500 })).items;
    const bAudit = (await t.store.audit.list(b, { limit: 500 })).items;
    expect(aAudit.length).toBeGreaterThan(5);
    const aIds = new Set(aAudit.map((e) => e.id));
    expect(bAudit.filter((e) => aIds.has(e.id))).toEqual([]);
    expect(bAudit.map((e) => e.resourceId)).not.toContain(aRecordId);
    expect((await t.store.audit.list(b, { resourceId: aUser.id })).items).toEqual([]);
    const aChanges = await t.store.changes.read(a, { after: 0 });
    const bChanges = await t.store.changes.read(b, { after: 0 });
    // Positions are per tenant (both count 1, 2, 3 …): what tells them apart is the content.
    expect(bChanges.map((e) => e.resourceId)).not.toContain(aRecordId);
    expect(bChanges.map((e) => e.resourceId)).not.toContain(aUser.id);
    for (const changes of [aChanges, bChanges]) expect(changes.map((e) => e.seq)).toEqual(changes.map((_, i) => i + 1));
    expect(JSON.stringify(bChanges)).not.toContain('a-secret');
    expect(JSON.stringify(bAudit)).not.toContain('a-secret');
    expect(await t.store.changes.head(b)).toBe(bChanges.at(-1)?.seq);
  });

  it('tenants: get, list with pagination, name validation', async () => {
    const created = await t.store.tenants.create({ name: '  padded name  ' });
    expect(created).toMatchObject({ name: 'padded name', version: 1 });
    expect(await t.store.tenants.get(created.id)).toEqual(created);
    await expectError(t.store.tenants.get('00000000-0000-7000-8000-00000000beef'), 'agentstore.not_found');
    await expectError(t.store.tenants.get('not-a-uuid'), 'agentstore.not_found');
    for (const name of ['', '   ', 'x'.repeat(201)]) await expectError(t.store.tenants.create({ name }), 'agentstore.validation', { field: '/name' });
    const ids: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await t.store.tenants.list({ limit: 2, ...(cursor ? { cursor } : {}) });
      ids.push(...page.items.map((x) => x.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(ids).toEqual([...ids].sort());
    expect(ids).toEqual(expect.arrayContaining([a.tenantId, b.tenantId, created.id]));
  });

  it('a context for a tenant that does not exist sees nothing and cannot write', async () => {
    const ghost = systemContext('00000000-0000-7000-8000-00000000dead');
    expect((await t.store.collections.list(ghost, 'shared')).items).toEqual([]);
    await expectError(t.store.collections.get(ghost, 'shared', 'a1'), 'agentstore.not_found');
    await expectError(t.store.collections.create(ghost, 'shared', { x: 1 }), 'agentstore.not_found');
    await expectError(t.store.counters.increment(ghost, 'hits'), 'agentstore.not_found');
    await expectError(t.store.collections.list(systemContext('not-a-uuid'), 'shared'), 'agentstore.validation', { field: 'tenantId' });
  });
});
