import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { TenantContext } from '../../src/core/context.js';
import type { AuditEntry, AuditQuery } from '../../src/modules/audit/service.js';
import type { Store } from '../../src/store.js';
import { forEachBackend, useTestStore } from '../helpers/backends.js';
import { asRole, expectError, newTenant, snapshotCounts } from '../helpers/fixtures.js';
import { OWNER_PASSWORD, OWNER_ROLE } from '../helpers/pg-admin.js';

async function allAudit(store: Store, ctx: TenantContext, query: AuditQuery = {}, limit = 3): Promise<AuditEntry[]> {
  const out: AuditEntry[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.audit.list(ctx, { ...query, limit, ...(cursor ? { cursor } : {}) });
    out.push(...page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return out;
}

forEachBackend('unit of work: audit and change log', (backend) => {
  const t = useTestStore(backend);

  describe('every mutation writes exactly one audit entry and one change', () => {
    it('records, collections and counters', async () => {
      const { ctx } = await newTenant(t.store);
      await t.store.collections.define(ctx, 'notes', {});
      const c = t.store.collections;
      const steps: [string, () => Promise<unknown>][] = [
        ['record.create', () => c.create(ctx, 'notes', { id: 'n1', a: 1 })],
        ['record.update', () => c.patch(ctx, 'notes', 'n1', { b: 2 })],
        ['record.update', () => c.replace(ctx, 'notes', 'n1', { c: 3 })],
        ['record.delete', () => c.delete(ctx, 'notes', 'n1')],
        ['collection.update', () => c.define(ctx, 'notes', { indexes: ['a'] })],
        ['counter.increment', () => t.store.counters.increment(ctx, 'k', 2)],
        ['counter.reset', () => t.store.counters.reset(ctx, 'k')],
        ['collection.delete', () => c.deleteCollection(ctx, 'notes')],
      ];
      for (const [type, step] of steps) {
        const before = await snapshotCounts(t.store, ctx.tenantId);
        const head = await t.store.changes.head(ctx);
        await step();
        const after = await snapshotCounts(t.store, ctx.tenantId);
        expect({ type, audit: after.audit - before.audit, changes: after.changes - before.changes }).toEqual({ type, audit: 1, changes: 1 });
        const [change] = await t.store.changes.read(ctx, { after: head });
        expect(change?.type).toBe(type);
        const [audit] = (await t.store.audit.list(ctx, { limit: 1 })).items;
        expect(audit?.action).toBe(type);
      }
    });

    it('the first write to a new collection also records the collection', async () => {
      const { ctx } = await newTenant(t.store);
      const head = await t.store.changes.head(ctx);
      await t.store.collections.create(ctx, 'brand-new', { id: 'x' });
      const changes = await t.store.changes.read(ctx, { after: head });
      expect(changes.map((e) => [e.type, e.resourceId])).toEqual([
        ['collection.create', 'brand-new'],
        ['record.create', 'x'],
      ]);
    });
  });

  describe('a failed mutation leaves no record, no audit, no change', () => {
    it.each([
      ['schema violation', async (ctx: TenantContext, s: Store) => s.collections.create(ctx, 'strict', { wrong: 1 }), 'agentstore.validation'],
      ['idempotency key reused', async (ctx: TenantContext, s: Store) => s.collections.create(ctx, 'plain', { other: 1 }, { idempotencyKey: 'key-1' }), 'agentstore.conflict'],
      ['duplicate id', async (ctx: TenantContext, s: Store) => s.collections.create(ctx, 'plain', { id: 'taken' }), 'agentstore.conflict'],
      ['stale ifMatch', async (ctx: TenantContext, s: Store) => s.collections.patch(ctx, 'plain', 'taken', { x: 1 }, { ifMatch: 7 }), 'agentstore.precondition_failed'],
      ['missing record', async (ctx: TenantContext, s: Store) => s.collections.delete(ctx, 'plain', 'nope'), 'agentstore.not_found'],
      ['forbidden role', async (ctx: TenantContext, s: Store) => s.collections.create(asRole(ctx, 'viewer'), 'plain', {}), 'agentstore.forbidden'],
      ['counter overflow', async (ctx: TenantContext, s: Store) => s.counters.increment(ctx, 'max', 1), 'agentstore.validation'],
    ] as const)('%s', async (_name, action, code) => {
      const { ctx } = await newTenant(t.store);
      await t.store.collections.define(ctx, 'strict', { schema: { type: 'object', required: ['right'] } });
      await t.store.collections.create(ctx, 'plain', { id: 'taken' }, { idempotencyKey: 'key-1' });
      await t.store.counters.reset(ctx, 'max', Number.MAX_SAFE_INTEGER);
      const before = await snapshotCounts(t.store, ctx.tenantId);
      const head = await t.store.changes.head(ctx);
      await expectError(action(ctx, t.store), code);
      expect(await snapshotCounts(t.store, ctx.tenantId)).toEqual(before);
      expect(await t.store.changes.read(ctx, { after: head })).toEqual([]);
      expect((await t.store.counters.get(ctx, 'max')).value).toBe(Number.MAX_SAFE_INTEGER);
    });
  });

  describe('changes.read', () => {
    it('below admin, only the changes of data: users, keys and sessions are an admin\'s to see', async () => {
      const { ctx } = await newTenant(t.store);
      const start = await t.store.changes.head(ctx);
      await t.store.collections.create(ctx, 'notes', { id: 'n1' });
      await t.store.users.create(ctx, { email: `viewer-feed-${start}@example.com`, password: 'long enough password', role: 'member' });
      await t.store.apiKeys.create(ctx, { name: 'feed', role: 'viewer' });
      await t.store.counters.increment(ctx, 'hits');
      const types = async (role: 'viewer' | 'member' | 'admin' | 'owner', resourceTypes?: string[]) =>
        (await t.store.changes.read(asRole(ctx, role), { after: start, ...(resourceTypes ? { resourceTypes } : {}) })).map((e) => e.resourceType);
      expect(await types('admin')).toEqual(['collection', 'record', 'user', 'api_key', 'counter']);
      expect(await types('owner')).toEqual(await types('admin'));
      for (const role of ['viewer', 'member'] as const) {
        expect(await types(role), role).toEqual(['collection', 'record', 'counter']);
        // Asking for them by name gives nothing either.
        expect(await types(role, ['user', 'api_key', 'session']), role).toEqual([]);
        expect(await types(role, ['user', 'counter']), role).toEqual(['counter']);
      }
      // The head too: a viewer's is the newest change it may see, not a hidden one after it.
      const counterSeq = (await t.store.changes.read(ctx, { after: start, resourceTypes: ['counter'] })).at(-1)?.seq;
      await t.store.apiKeys.create(ctx, { name: 'after', role: 'viewer' });
      expect(await t.store.changes.head(asRole(ctx, 'viewer'))).toBe(counterSeq);
      expect(await t.store.changes.head(asRole(ctx, 'admin'))).toBeGreaterThan(counterSeq ?? 0);
    });

    it('returns events in seq order, resumable and filterable', async () => {
      const { ctx } = await newTenant(t.store);
      const woken: number[] = [];
      const unsubscribe = t.store.changes.onWake(ctx.tenantId, (w) => woken.push(w.seq));
      const start = await t.store.changes.head(ctx);
      await t.store.collections.create(ctx, 'a', { id: 'a1' });
      await t.store.counters.increment(ctx, 'hits');
      await t.store.collections.create(ctx, 'b', { id: 'b1' });
      await t.store.collections.patch(ctx, 'a', 'a1', { v: 2 });
      await t.store.counters.increment(ctx, 'hits');
      unsubscribe();
      const all = await t.store.changes.read(ctx, { after: start });
      expect(all.map((e) => e.type)).toEqual([
        'collection.create',
        'record.create',
        'counter.increment',
        'collection.create',
        'record.create',
        'record.update',
        'counter.increment',
      ]);
      const seqs = all.map((e) => e.seq);
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
      expect(new Set(seqs).size).toBe(seqs.length);
      expect(await t.store.changes.head(ctx)).toBe(seqs.at(-1));
      expect(woken).toEqual([seqs[1], seqs[2], seqs[4], seqs[5], seqs[6]]);
      const update = all[5];
      expect(update).toMatchObject({ resourceType: 'record', action: 'update', resourceId: 'a1', collection: 'a', version: 2 });
      expect(update?.data).toMatchObject({ id: 'a1', version: 2, data: { v: 2 } });

      expect((await t.store.changes.read(ctx, { after: start, resourceTypes: ['counter'] })).map((e) => e.seq)).toEqual([seqs[2], seqs[6]]);
      expect((await t.store.changes.read(ctx, { after: start, resourceTypes: ['record', 'counter'] })).length).toBe(5);
      expect((await t.store.changes.read(ctx, { after: start, collection: 'a' })).map((e) => e.type)).toEqual([
        'collection.create',
        'record.create',
        'record.update',
      ]);
      expect((await t.store.changes.read(ctx, { after: start, collection: 'b', resourceTypes: ['record'] })).map((e) => e.resourceId)).toEqual(['b1']);
      // Resuming after a seq gives exactly the rest; limit cuts the batch.
      expect((await t.store.changes.read(ctx, { after: seqs[3] as number })).map((e) => e.seq)).toEqual(seqs.slice(4));
      expect((await t.store.changes.read(ctx, { after: start, limit: 2 })).map((e) => e.seq)).toEqual(seqs.slice(0, 2));
      await expectError(t.store.changes.read(ctx, { after: -1 }), 'agentstore.validation', { field: 'after' });
      await expectError(t.store.changes.read(ctx, { after: 1.5 }), 'agentstore.validation', { field: 'after' });
    });

    it('a reader polling during concurrent writes never misses an event (seq order = commit order)', async () => {
      const { ctx } = await newTenant(t.store);
      await t.store.collections.create(ctx, 'feed', { warm: true });
      const start = await t.store.changes.head(ctx);
      const seen: number[] = [];
      let done = false;
      const poll = async () => {
        let after = start;
        for (;;) {
          const finished = done; // read once more after the writers are done
          const batch = await t.store.changes.read(ctx, { after, limit: 1000 });
          for (const event of batch) seen.push(event.seq);
          after = batch.at(-1)?.seq ?? after;
          if (finished && batch.length === 0) return;
          await new Promise((r) => setTimeout(r, 1));
        }
      };
      const poller = poll();
      // Also read on every wake-up: right after one commit is when an earlier seq still in
      // flight would be skipped, if seq order and commit order could disagree.
      const wakeReads: Promise<unknown>[] = [];
      const unsubscribe = t.store.changes.onWake(ctx.tenantId, () => wakeReads.push(poll1()));
      let cursor = start;
      const fromWakes: number[] = [];
      const poll1 = async () => {
        const batch = await t.store.changes.read(ctx, { after: cursor, limit: 1000 });
        for (const event of batch) if (event.seq > cursor) fromWakes.push(event.seq);
        cursor = Math.max(cursor, batch.at(-1)?.seq ?? cursor);
      };
      await Promise.all(
        Array.from({ length: 60 }, (_, i) => (i % 3 === 0 ? t.store.counters.increment(ctx, 'feed-counter') : t.store.collections.create(ctx, 'feed', { i }))),
      );
      done = true;
      await poller;
      unsubscribe();
      await Promise.all(wakeReads);
      await poll1();
      const all = (await t.store.changes.read(ctx, { after: start, limit: 1000 })).map((e) => e.seq);
      expect(all).toHaveLength(60);
      expect(seen).toEqual(all);
      expect([...new Set(fromWakes)].sort((x, y) => x - y)).toEqual(all);
    });

    if (backend.dialect === 'postgres') {
      it('a write waits while an earlier change of the tenant is uncommitted (no position gaps across instances)', async () => {
        const { ctx } = await newTenant(t.store);
        const head = await t.store.changes.head(ctx);
        // As the owner: the sequence below is not granted to the runtime role.
        const ownerUrl = new URL(t.database.directUrl);
        ownerUrl.username = OWNER_ROLE;
        ownerUrl.password = OWNER_PASSWORD;
        const other = new pg.Client({ connectionString: ownerUrl.toString() });
        await other.connect();
        try {
          // What another agentstore instance's unit of work does last: bump the tenant's head
          // (which locks its row until COMMIT), insert its change at that position, commit.
          await other.query('begin');
          await other.query("select set_config('app.tenant_id', $1, true)", [ctx.tenantId]);
          const { rows } = await other.query<{ seq: string }>('update change_heads set seq = seq + 1 where tenant_id = $1 returning seq', [ctx.tenantId]);
          const probe = Number(rows[0]?.seq);
          expect(probe).toBe(head + 1);
          await other.query("insert into changes (tenant_id, tenant_seq, at, resource_type, resource_id, action) values ($1, $2, now(), 'probe', 'p1', 'create')", [ctx.tenantId, probe]);
          const write = t.store.counters.increment(ctx, 'after-probe');
          // Until the write is queued on the row lock: only then does "nothing visible" mean the
          // lock orders it, rather than that the write has not got that far yet.
          for (let waited = 0; ; waited += 20) {
            // pg_locks, not pg_stat_activity: the latter hides other roles' wait events from a
            // role without pg_read_all_stats, and the store runs as the runtime role. A row lock
            // is waited on as the holder's transaction id.
            const { rows: waiting } = await other.query<{ n: string }>(
              `select count(*) as n from pg_locks w where not w.granted and w.locktype = 'transactionid' and w.transactionid::text =
                 (select h.transactionid::text from pg_locks h where h.pid = pg_backend_pid() and h.locktype = 'transactionid' and h.granted limit 1)`,
            );
            if (Number(waiting[0]?.n) > 0) break;
            if (waited > 10_000) throw new Error('the write never waited on the tenant head');
            await new Promise((r) => setTimeout(r, 20));
          }
          // The later position must not become visible before the earlier one commits.
          expect(await t.store.changes.read(ctx, { after: head })).toEqual([]);
          await other.query('commit');
          await write;
          const events = await t.store.changes.read(ctx, { after: head });
          // Numbered after the committed probe: no duplicate, no gap.
          expect(events.map((e) => [e.type, e.seq])).toEqual([
            ['probe.create', head + 1],
            ['counter.increment', head + 2],
          ]);
        } finally {
          await other.end();
        }
      });
    }

    it('a deleted record produces an event with null data', async () => {
      const { ctx } = await newTenant(t.store);
      await t.store.collections.create(ctx, 'a', { id: 'gone' });
      const head = await t.store.changes.head(ctx);
      await t.store.collections.delete(ctx, 'a', 'gone');
      const [event] = await t.store.changes.read(ctx, { after: head });
      expect(event).toMatchObject({ type: 'record.delete', resourceId: 'gone', version: 1, data: null });
    });
  });

  describe('audit.list', () => {
    it('records actor, request id and resource; filters; pages newest first', async () => {
      const { ctx } = await newTenant(t.store);
      const alice: TenantContext = { tenantId: ctx.tenantId, role: 'member', actor: { type: 'user', id: 'alice' }, requestId: 'req-1' };
      const bot: TenantContext = { tenantId: ctx.tenantId, role: 'admin', actor: { type: 'api_key', id: 'bot' } };
      await t.store.collections.create(alice, 'notes', { id: 'n1' });
      await t.store.collections.patch(alice, 'notes', 'n1', { x: 1 });
      await t.store.counters.increment(bot, 'jobs');
      await t.store.collections.create(bot, 'notes', { id: 'n2' });
      await t.store.collections.delete(alice, 'notes', 'n2');

      const all = await allAudit(t.store, ctx, {}, 2);
      expect(all.length).toBe(7); // + tenant.create and collection.create
      const times = all.map((e) => e.at + e.id);
      expect(times).toEqual([...times].sort().reverse());
      expect(new Set(all.map((e) => e.id)).size).toBe(all.length);
      const patch = all.find((e) => e.action === 'record.update');
      expect(patch).toMatchObject({ actor: { type: 'user', id: 'alice' }, requestId: 'req-1', resourceType: 'record', resourceId: 'n1', collection: 'notes' });

      const ids = (entries: AuditEntry[]) => entries.map((e) => e.id);
      expect(ids(await allAudit(t.store, ctx, { actorId: 'alice' }))).toEqual(ids(all.filter((e) => e.actor.id === 'alice')));
      expect((await allAudit(t.store, ctx, { actorId: 'alice' })).length).toBe(4);
      expect(ids(await allAudit(t.store, ctx, { actorType: 'api_key' }))).toEqual(ids(all.filter((e) => e.actor.type === 'api_key')));
      expect(ids(await allAudit(t.store, ctx, { action: 'record.create' }))).toEqual(ids(all.filter((e) => e.action === 'record.create')));
      expect(ids(await allAudit(t.store, ctx, { resourceType: 'counter' }))).toEqual(ids(all.filter((e) => e.resourceType === 'counter')));
      expect(ids(await allAudit(t.store, ctx, { resourceType: 'record', resourceId: 'n2' }))).toEqual(
        ids(all.filter((e) => e.resourceType === 'record' && e.resourceId === 'n2')),
      );
      expect(await allAudit(t.store, ctx, { actorId: 'nobody' })).toEqual([]);

      const pivot = all[3] as AuditEntry;
      expect(ids(await allAudit(t.store, ctx, { from: pivot.at }))).toEqual(ids(all.filter((e) => e.at >= pivot.at)));
      expect(ids(await allAudit(t.store, ctx, { to: pivot.at }))).toEqual(ids(all.filter((e) => e.at < pivot.at)));
      expect(await allAudit(t.store, ctx, { from: pivot.at, to: pivot.at })).toEqual([]);
    });

    it('rejects bad timestamps, limits and cursors from another query', async () => {
      const { ctx } = await newTenant(t.store);
      for (let i = 0; i < 3; i++) await t.store.counters.increment(ctx, `c${i}`);
      await expectError(t.store.audit.list(ctx, { from: 'yesterday' }), 'agentstore.validation', { field: 'from' });
      await expectError(t.store.audit.list(ctx, { to: '2024-13-45' }), 'agentstore.validation', { field: 'to' });
      await expectError(t.store.audit.list(ctx, { limit: 1000 }), 'agentstore.validation', { field: 'limit' });
      const cursor = (await t.store.audit.list(ctx, { limit: 1 })).nextCursor as string;
      expect(cursor).toEqual(expect.any(String));
      await expectError(t.store.audit.list(ctx, { cursor, action: 'counter.increment' }), 'agentstore.validation', { field: 'cursor' });
      await expectError(t.store.audit.list(ctx, { cursor: 'bogus' }), 'agentstore.validation', { field: 'cursor' });
    });
  });
});
