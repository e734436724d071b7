import { beforeAll, describe, expect, it } from 'vitest';
import { ROLES, roleAtLeast, systemContext, type Role, type TenantContext } from '../../src/core/context.js';
import { isAgentstoreError } from '../../src/core/errors.js';
import type { Store } from '../../src/store.js';
import { forEachBackend, useTestStore } from '../helpers/backends.js';
import { asRole, newTenant, snapshotCounts } from '../helpers/fixtures.js';

type Op = (store: Store, ctx: TenantContext, owner: TenantContext, n: number) => Promise<unknown>;

let seq = 0;
const fresh = () => `r${++seq}`;

/** operation × the least role allowed to run it (PocketBase-style scenario table). */
const MATRIX: [string, Role, Op][] = [
  ['collections.get', 'viewer', (s, c) => s.collections.get(c, 'docs', 'fixed')],
  ['collections.list', 'viewer', (s, c) => s.collections.list(c, 'docs')],
  ['collections.getCollection', 'viewer', (s, c) => s.collections.getCollection(c, 'docs')],
  ['collections.listCollections', 'viewer', (s, c) => s.collections.listCollections(c)],
  ['counters.get', 'viewer', (s, c) => s.counters.get(c, 'fixed')],
  ['counters.list', 'viewer', (s, c) => s.counters.list(c)],
  ['changes.read', 'viewer', (s, c) => s.changes.read(c, { after: 0 })],
  ['changes.head', 'viewer', (s, c) => s.changes.head(c)],
  ['collections.create', 'member', (s, c) => s.collections.create(c, 'docs', { x: 1 })],
  ['collections.patch', 'member', async (s, c, o) => s.collections.patch(c, 'docs', (await s.collections.create(o, 'docs', { id: fresh() })).record.id, { x: 2 })],
  ['collections.replace', 'member', async (s, c, o) => s.collections.replace(c, 'docs', (await s.collections.create(o, 'docs', { id: fresh() })).record.id, { x: 3 })],
  ['collections.delete', 'member', async (s, c, o) => s.collections.delete(c, 'docs', (await s.collections.create(o, 'docs', { id: fresh() })).record.id)],
  ['counters.increment', 'member', (s, c) => s.counters.increment(c, 'fixed')],
  ['counters.reset', 'member', (s, c) => s.counters.reset(c, 'other', 3)],
  ['collections.define', 'admin', (s, c) => s.collections.define(c, fresh(), { schema: { type: 'object' } })],
  ['collections.deleteCollection', 'admin', async (s, c, o) => s.collections.deleteCollection(c, (await s.collections.define(o, fresh(), {})).name)],
  ['users.list', 'admin', (s, c) => s.users.list(c)],
  ['users.get', 'admin', (s, c) => s.users.get(c, '00000000-0000-7000-8000-000000000001')],
  ['users.create', 'admin', (s, c, _o, n) => s.users.create(c, { email: `u${n}-${c.role}@example.com`, password: 'long enough password', role: 'viewer' })],
  ['apiKeys.list', 'admin', (s, c) => s.apiKeys.list(c)],
  ['apiKeys.create', 'admin', (s, c) => s.apiKeys.create(c, { name: 'k', role: 'viewer' })],
  ['apiKeys.revoke', 'admin', async (s, c, o) => s.apiKeys.revoke(c, (await s.apiKeys.create(o, { name: 'r', role: 'viewer' })).id)],
  ['audit.list', 'admin', (s, c) => s.audit.list(c)],
  ['auth.me', 'viewer', (s, c) => s.auth.me(c)],
];

forEachBackend('roles', (backend) => {
  const t = useTestStore(backend);
  let owner: TenantContext;

  beforeAll(async () => {
    owner = (await newTenant(t.store)).ctx;
    await t.store.collections.create(owner, 'docs', { id: 'fixed' });
    await t.store.counters.increment(owner, 'fixed');
  });

  describe.each(ROLES.map((role) => [role] as const))('as %s', (role) => {
    it.each(MATRIX.map(([name, least, op], n) => [name, least, op, n] as const))('%s (needs %s)', async (_name, least, op, n) => {
      const ctx = asRole(owner, role);
      const before = await snapshotCounts(t.store, owner.tenantId);
      let error: unknown;
      try {
        await op(t.store, ctx, systemContext(owner.tenantId), n);
      } catch (e) {
        error = e;
      }
      const outcome = error === undefined ? 'ok' : isAgentstoreError(error) ? error.code : `unexpected ${String(error)}`;
      if (roleAtLeast(role, least)) {
        // Allowed: it may still fail for another reason (for example not_found), never forbidden.
        expect(outcome).not.toBe('agentstore.forbidden');
        expect(outcome === 'ok' || outcome.startsWith('agentstore.'), outcome).toBe(true);
      } else {
        expect(isAgentstoreError(error, 'agentstore.forbidden'), String(error)).toBe(true);
        expect((error as { status: number }).status).toBe(403);
        // Setup writes by the owner aside, a refused call changes nothing.
        const after = await snapshotCounts(t.store, owner.tenantId);
        const setupWrites = ['collections.patch', 'collections.replace', 'collections.delete', 'collections.deleteCollection', 'apiKeys.revoke'].includes(_name) ? 1 : 0;
        expect(after.audit - before.audit).toBe(setupWrites);
      }
    });
  });
});
