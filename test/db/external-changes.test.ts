/**
 * Two stores on one database, as two processes would open it (each has its own writer and
 * reader connections; test/e2e/multiprocess.test.ts does it with real processes). On a
 * SQLite file, a commit by one reaches the other's change listeners and auth cache within
 * the poll of `PRAGMA data_version`; on PostgreSQL nothing of this runs (issue 15 covers
 * several instances there) and each store works as before.
 */
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../../src/core/context.js';
import type { Session } from '../../src/modules/tenancy/types.js';
import type { ChangeWakeup } from '../../src/ports/event-bus.js';
import type { Store } from '../../src/store.js';
import { forEachBackend, openTestStore, type TestStore } from '../helpers/backends.js';
import { expectError, newTenant } from '../helpers/fixtures.js';

// The bound is 100 ms; an in-process test on a loaded 2-core machine gets margin.
const BOUND_MS = 1_000;

/** Resolves with the first wake-up of `tenantId` on `store` at or past `seq`, and how long it took. */
function nextWake(store: Store, tenantId: string, seq: number, timeoutMs = 3_000): Promise<{ wakeup: ChangeWakeup; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no wake-up of ${tenantId} at ${seq} within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = store.changes.onWake(tenantId, (wakeup) => {
      if (wakeup.seq < seq) return;
      clearTimeout(timer);
      off();
      resolve({ wakeup, ms: performance.now() - started });
    });
  });
}

async function until(check: () => boolean, timeoutMs = BOUND_MS * 3): Promise<number> {
  const started = performance.now();
  while (!check()) {
    if (performance.now() - started > timeoutMs) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  return performance.now() - started;
}

forEachBackend('several stores on one database', (backend) => {
  let a: TestStore;
  let b: TestStore;
  beforeAll(async () => {
    a = await openTestStore(backend);
    b = await openTestStore(backend, { database: a.database });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  /** A user made by store a, logged in `count` times on store b, each session cached by b. */
  const userWithSessions = async (role: Role, count: number) => {
    const { ctx } = await newTenant(a.store);
    const email = `u${Date.now()}-${Math.random().toString(36).slice(2)}@example.com`;
    const password = 'correct horse battery staple';
    const user = await a.store.users.create(ctx, { email, password, role });
    const sessions: Session[] = [];
    for (let i = 0; i < count; i++) sessions.push(await b.store.auth.login({ tenantId: ctx.tenantId, email, password }, `127.0.0.${i + 1}`));
    return { ctx, user, sessions };
  };

  if (backend.dialect === 'postgres') {
    it('PostgreSQL: nothing follows other instances here; each store reads the other\'s writes', async () => {
      expect(a.store.internals.db.onExternalCommit).toBeUndefined();
      const { ctx } = await newTenant(a.store);
      await a.store.collections.create(ctx, 'notes', { id: 'n1' });
      expect((await b.store.collections.get(ctx, 'notes', 'n1')).id).toBe('n1');
      expect(b.store.internals.externalChanges.stats()).toMatchObject({ catchUps: 0, wakeups: 0 });
    });
    return;
  }

  it("a write by one store wakes the other's listeners with the tenant's position, readable at once", async () => {
    const { ctx } = await newTenant(a.store);
    const head = await b.store.changes.head(ctx);
    const woken = nextWake(b.store, ctx.tenantId, head + 1);
    await a.store.collections.create(ctx, 'notes', { id: 'n1', text: 'from a' });
    const { wakeup, ms } = await woken;
    expect(ms).toBeLessThan(BOUND_MS);
    // The collection's creation and the record's: the wake-up names the highest.
    expect(wakeup.seq).toBe(head + 2);
    const events = await b.store.changes.read(ctx, { after: head });
    expect(events.map((e) => e.type)).toEqual(['collection.create', 'record.create']);
    expect((await b.store.collections.get(ctx, 'notes', 'n1')).data).toEqual({ id: 'n1', text: 'from a' });
  });

  it("a store's own commits are woken once: never again by its follower", async () => {
    const { ctx } = await newTenant(b.store);
    const before = b.store.internals.externalChanges.stats();
    const head = await b.store.changes.head(ctx);
    const wakeups: number[] = [];
    const off = b.store.changes.onWake(ctx.tenantId, (w) => wakeups.push(w.seq));
    try {
      for (let i = 0; i < 5; i++) await b.store.counters.increment(ctx, 'own');
      // A write by the other store in the same interval makes b's follower read the log,
      // its own five increments included.
      const other = await newTenant(a.store);
      const seen = nextWake(b.store, other.ctx.tenantId, 1);
      await a.store.counters.increment(other.ctx, 'theirs');
      await seen;
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      off();
    }
    expect(wakeups).toEqual([1, 2, 3, 4, 5].map((n) => head + n));
    const after = b.store.internals.externalChanges.stats();
    expect(after.catchUps).toBeGreaterThan(before.catchUps);
    expect(after.ownSkipped).toBeGreaterThan(before.ownSkipped);
  });

  it("an API key revoked by one store stops working on the other at once, not after the cache's TTL", async () => {
    const { ctx } = await newTenant(a.store);
    const key = await a.store.apiKeys.create(ctx, { name: 'k', role: 'member' });
    // Cached by b: without the follower it would stay valid for the cache's 5 s.
    await b.store.auth.verify(key.key);
    expect(b.store.auth.cached(key.key)).toBeDefined();
    const epoch = b.store.auth.revocationEpoch();
    await a.store.apiKeys.revoke(ctx, key.id);
    const ms = await until(() => b.store.auth.cached(key.key) === undefined);
    expect(ms).toBeLessThan(BOUND_MS);
    expect(b.store.auth.revocationEpoch()).toBeGreaterThan(epoch);
    await expectError(b.store.auth.verify(key.key), 'agentstore.unauthenticated');
  });

  it('a session ended, or every session of a user whose password was reset, by one store ends on the other', async () => {
    const { ctx, user, sessions } = await userWithSessions('member', 2);
    const [first, second] = sessions as [Session, Session];
    const principal = await b.store.auth.verify(first.token);
    await b.store.auth.verify(second.token);
    if (principal.kind !== 'tenant') throw new Error('a session is a tenant principal');
    // Logout by the other store, as a script holding the token would.
    await a.store.auth.logout(principal.ctx, principal.sessionId);
    await until(() => b.store.auth.cached(first.token) === undefined);
    await expectError(b.store.auth.verify(first.token), 'agentstore.unauthenticated');
    expect(b.store.auth.cached(second.token)).toBeDefined();
    await a.store.users.update(ctx, user.id, { password: 'another long password' });
    await until(() => b.store.auth.cached(second.token) === undefined);
    await expectError(b.store.auth.verify(second.token), 'agentstore.unauthenticated');
  });

  it('a role lowered by one store is not served from the other\'s cache', async () => {
    const { ctx, user, sessions } = await userWithSessions('admin', 1);
    const session = sessions[0] as Session;
    expect(await b.store.auth.verify(session.token)).toMatchObject({ ctx: { role: 'admin' } });
    await a.store.users.update(ctx, user.id, { role: 'viewer' });
    await until(() => b.store.auth.cached(session.token) === undefined);
    expect(await b.store.auth.verify(session.token)).toMatchObject({ ctx: { role: 'viewer' } });
  });

  it('a burst larger than one read window reaches the other store in windows, each tenant woken at its head', async () => {
    const tenants = await Promise.all([newTenant(a.store), newTenant(a.store)]);
    // More changes than one window of the follower (4,096), in a few large group commits.
    const perTenant = 2_500;
    // Each tenant's first change is its creation.
    const woken = tenants.map(({ ctx }) => nextWake(b.store, ctx.tenantId, perTenant + 1, 20_000));
    await Promise.all(tenants.map(({ ctx }) => Promise.all(Array.from({ length: perTenant }, () => a.store.counters.increment(ctx, 'burst')))));
    const results = await Promise.all(woken);
    for (const { wakeup } of results) expect(wakeup.seq).toBe(perTenant + 1);
    expect((await b.store.counters.get(tenants[0]!.ctx, 'burst')).value).toBe(perTenant);
  });
});

describe('an in-memory SQLite store', () => {
  it('has no other connections to follow', async () => {
    const t = await openTestStore({ name: 'sqlite', dialect: 'sqlite' }, { sqlite: 'memory' });
    try {
      expect(t.store.internals.db.onExternalCommit).toBeUndefined();
      const { ctx } = await newTenant(t.store);
      await t.store.counters.increment(ctx, 'x');
      expect(t.store.internals.externalChanges.stats().catchUps).toBe(0);
    } finally {
      await t.close();
    }
  });
});
