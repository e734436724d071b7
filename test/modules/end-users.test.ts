/**
 * Erasing an end user (issue 11 part 4), on every backend: the registry covers every table
 * that holds end users' data; the collections' eraser deletes, in batches, the records of
 * collections that declare an `endUserField`, each with a delete change and no audit entry of
 * its own; the erasure leaves one audit entry with the counts and no personal data; it is
 * idempotent, admin only, and confined to its tenant.
 */
import { sql } from 'kysely';
import { expect, it } from 'vitest';
import type { TenantContext } from '../../src/core/context.js';
import { END_USER_TABLES } from '../../src/db/schema.js';
import { ERASE_BATCH } from '../../src/modules/collections/end-user-eraser.js';
import { erasureSubject } from '../../src/modules/end-users/service.js';
import type { Store } from '../../src/store.js';
import { forEachBackend, useTestStore } from '../helpers/backends.js';
import { asRole, expectError, newTenant, snapshotCounts } from '../helpers/fixtures.js';

async function load(store: Store, ctx: TenantContext, collection: string, lines: Array<{ id: string; data: Record<string, unknown> }>) {
  for await (const r of store.collections.bulk(ctx, collection, lines)) if (r.status === 'failed') throw r.error;
}

async function recordIds(store: Store, ctx: TenantContext, collection: string): Promise<string[]> {
  const ids: string[] = [];
  for (let cursor: string | undefined; ; ) {
    const page = await store.collections.list(ctx, collection, { limit: 500, sort: 'id', ...(cursor ? { cursor } : {}) });
    ids.push(...page.items.map((r) => r.id));
    if (!page.nextCursor) return ids;
    cursor = page.nextCursor;
  }
}

forEachBackend('end users: erasure', (backend) => {
  const t = useTestStore(backend, { store: { expirySweepIntervalMs: 0 } });

  it('every table with an end-user column (end_user_id), and every table END_USER_TABLES names, has a registered eraser', async () => {
    const db = t.store.internals.db;
    const withColumn =
      db.dialect === 'sqlite'
        ? (await sql<{ name: string }>`select m.name from sqlite_master m join pragma_table_info(m.name) p where m.type = 'table' and p.name = 'end_user_id'`.execute(db.kysely)).rows
        : (await sql<{ name: string }>`select table_name as name from information_schema.columns where table_schema = current_schema() and column_name = 'end_user_id'`.execute(db.kysely)).rows;
    const declared = new Set<string>(END_USER_TABLES);
    for (const { name } of withColumn) expect(declared, `${name} has an end_user_id column: add it to END_USER_TABLES and register its eraser`).toContain(name);
    const covered = new Set(t.store.endUsers.erasers().flatMap((e) => e.tables));
    for (const table of declared) expect(covered, `no registered eraser covers ${table}`).toContain(table);
    // Records hold end users' data through a collection's declared field, not a column.
    expect(declared).toContain('records');
  });

  it("deletes the end user's records of collections that declare endUserField, in batches, with a delete change each and one audit entry", async () => {
    const { ctx } = await newTenant(t.store);
    await t.store.collections.define(ctx, 'chats', { indexes: ['owner.id'], endUserField: 'owner.id' });
    await t.store.collections.define(ctx, 'notes', { indexes: ['userId'], endUserField: 'userId' });
    const mine = ERASE_BATCH * 2 + 7;
    await load(t.store, ctx, 'chats', Array.from({ length: mine }, (_, i) => ({ id: `c${i}`, data: { owner: { id: 'u-1' }, i } })));
    await load(t.store, ctx, 'chats', [
      { id: 'other', data: { owner: { id: 'u-2' } } },
      { id: 'number', data: { owner: { id: 1 } } },
      { id: 'nested', data: { owner: { name: 'u-1' } } },
    ]);
    await load(t.store, ctx, 'notes', [{ id: 'n1', data: { userId: 'u-1', text: 'secret' } }, { id: 'n2', data: { userId: 'u-2' } }]);
    // A collection that declares no end-user field keeps its records whatever they hold.
    await t.store.collections.create(ctx, 'plain', { id: 'p1', userId: 'u-1' });
    const head = await t.store.changes.head(ctx);
    const before = await snapshotCounts(t.store, ctx.tenantId);

    const result = await t.store.endUsers.erase(ctx, 'u-1');
    expect(result).toEqual({ subject: erasureSubject(ctx.tenantId, 'u-1'), counts: { records: mine + 1, conversations: 0, memoryBlocks: 0 }, total: mine + 1 });
    expect(await recordIds(t.store, ctx, 'chats')).toEqual(['nested', 'number', 'other']);
    expect(await recordIds(t.store, ctx, 'notes')).toEqual(['n2']);
    expect(await recordIds(t.store, ctx, 'plain')).toEqual(['p1']);
    const changes = await t.store.changes.read(ctx, { after: head, limit: 1000 });
    const more = await t.store.changes.read(ctx, { after: changes.at(-1)?.seq ?? head, limit: 1000 });
    const all = [...changes, ...more];
    expect(all.filter((c) => c.resourceType === 'record' && c.action === 'delete')).toHaveLength(mine + 1);
    // One audit entry: the counts, the end user as a hash, nothing of the data or the id.
    const after = await snapshotCounts(t.store, ctx.tenantId);
    expect(after.audit - before.audit).toBe(1);
    const audit = (await t.store.audit.list(ctx, { action: 'end_user.erase' })).items;
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ resourceType: 'end_user', resourceId: result.subject, details: { counts: { records: mine + 1, conversations: 0, memoryBlocks: 0 }, total: mine + 1 } });
    expect(JSON.stringify(audit)).not.toMatch(/u-1|secret/);

    // Idempotent: nothing left, counts of zero, one more audit entry.
    expect(await t.store.endUsers.erase(ctx, 'u-1')).toEqual({ subject: result.subject, counts: { records: 0, conversations: 0, memoryBlocks: 0 }, total: 0 });
    expect((await snapshotCounts(t.store, ctx.tenantId)).records).toBe(after.records);
  });

  it('a write during a large erasure goes in between its batches instead of waiting for the whole erasure', async () => {
    const { ctx } = await newTenant(t.store);
    await t.store.collections.define(ctx, 'log', { indexes: ['user'], endUserField: 'user' });
    const N = ERASE_BATCH * 4;
    await load(t.store, ctx, 'log', Array.from({ length: N }, (_, i) => ({ id: `l${i}`, data: { user: 'heavy', i, pad: 'x'.repeat(200) } })));
    const head = await t.store.changes.head(ctx);
    const erasure = t.store.endUsers.erase(ctx, 'heavy');
    // Once the first batch has committed, a write of the same tenant.
    while ((await t.store.changes.head(ctx)) === head) await new Promise<void>((resolve) => setImmediate(resolve));
    await t.store.collections.create(ctx, 'log', { id: 'during', user: 'someone' });
    expect((await erasure).total).toBe(N);
    const changes = [];
    for (let after = head; ; ) {
      const page = await t.store.changes.read(ctx, { after, resourceTypes: ['record'], limit: 1000 });
      changes.push(...page);
      if (page.length < 1000) break;
      after = page[page.length - 1]?.seq as number;
    }
    const position = changes.findIndex((c) => c.resourceId === 'during');
    // Structural: erasure deletes came after the write, so it did not wait for the erasure.
    expect(position).toBeGreaterThanOrEqual(ERASE_BATCH);
    expect(changes.slice(position + 1).filter((c) => c.action === 'delete').length).toBeGreaterThanOrEqual(ERASE_BATCH);
    expect((await t.store.collections.get(ctx, 'log', 'during')).data).toMatchObject({ user: 'someone' });
  });

  it("is confined to the tenant: another tenant's erasure of the same id leaves these records", async () => {
    const a = await newTenant(t.store);
    const b = await newTenant(t.store);
    for (const { ctx } of [a, b]) {
      await t.store.collections.define(ctx, 'profiles', { indexes: ['uid'], endUserField: 'uid' });
      await t.store.collections.create(ctx, 'profiles', { id: 'p', uid: 'same-user' });
    }
    expect((await t.store.endUsers.erase(b.ctx, 'same-user')).total).toBe(1);
    expect((await t.store.collections.get(a.ctx, 'profiles', 'p')).data).toEqual({ id: 'p', uid: 'same-user' });
    await expectError(t.store.collections.get(b.ctx, 'profiles', 'p'), 'agentstore.not_found');
  });

  it('is for admins; the id is checked; endUserField must be a declared index and stays one', async () => {
    const { ctx } = await newTenant(t.store);
    await expectError(t.store.endUsers.erase(asRole(ctx, 'member'), 'u'), 'agentstore.forbidden');
    for (const id of ['', 'x'.repeat(257), 'a\u0000b']) await expectError(t.store.endUsers.erase(ctx, id), 'agentstore.validation', { field: 'endUserId' });
    await expectError(t.store.collections.define(ctx, 'c', { endUserField: 'userId' }), 'agentstore.validation', { field: '/endUserField' });
    await expectError(t.store.collections.define(ctx, 'c', { indexes: ['userId'], endUserField: 'createdAt' }), 'agentstore.validation', { field: '/endUserField' });
    await expectError(t.store.collections.define(ctx, 'c', { indexes: ['userId'], endUserField: 'a b' }), 'agentstore.validation', { field: '/endUserField' });
    const defined = await t.store.collections.define(ctx, 'c', { indexes: ['userId'], endUserField: 'userId' });
    expect(defined.endUserField).toBe('userId');
    // Redefining the indexes without it would leave erasure without its index.
    await expectError(t.store.collections.define(ctx, 'c', { indexes: ['other'] }), 'agentstore.validation', { field: '/indexes' });
    expect((await t.store.collections.define(ctx, 'c', { schema: null })).endUserField).toBe('userId');
    expect((await t.store.collections.define(ctx, 'c', { endUserField: null, indexes: [] })).endUserField).toBeNull();
    expect((await t.store.collections.getCollection(ctx, 'c')).endUserField).toBeNull();
    // Nothing about an end user was written by the refusals.
    expect((await t.store.audit.list(ctx, { action: 'end_user.erase' })).items).toEqual([]);
  });
});

forEachBackend('end users: conversations and memory blocks', (backend) => {
  const t = useTestStore(backend, { store: { expirySweepIntervalMs: 0 } });

  it("erases the end user's conversations with their messages, and their memory blocks, only theirs", async () => {
    const { ctx } = await newTenant(t.store);
    const mine = (await t.store.conversations.create(ctx, { endUserId: 'u-9', title: 'mine' })).conversation;
    await t.store.conversations.append(ctx, mine.id, { role: 'user', content: 'my secret plan' });
    await t.store.conversations.append(ctx, mine.id, { role: 'assistant', content: 'noted' });
    const second = (await t.store.conversations.create(ctx, { endUserId: 'u-9' })).conversation;
    const theirs = (await t.store.conversations.create(ctx, { endUserId: 'u-10' })).conversation;
    await t.store.conversations.append(ctx, theirs.id, { role: 'user', content: 'their plan' });
    await t.store.memoryBlocks.put(ctx, 'persona', { endUserId: 'u-9' }, { value: 'likes tea' });
    await t.store.memoryBlocks.put(ctx, 'persona', { endUserId: 'u-9', agentId: 'a1' }, { value: 'likes coffee' });
    await t.store.memoryBlocks.put(ctx, 'persona', { endUserId: 'u-10' }, { value: 'other' });
    await t.store.memoryBlocks.put(ctx, 'persona', {}, { value: 'global' });
    const before = await snapshotCounts(t.store, ctx.tenantId);

    const result = await t.store.endUsers.erase(ctx, 'u-9');
    expect(result.counts).toEqual({ records: 0, conversations: 2, memoryBlocks: 2 });
    for (const id of [mine.id, second.id]) await expectError(t.store.conversations.get(ctx, id), 'agentstore.not_found');
    expect((await t.store.conversations.get(ctx, theirs.id)).id).toBe(theirs.id);
    const left = (await t.store.memoryBlocks.list(ctx)).items.map((b) => b.value).sort();
    expect(left).toEqual(['global', 'other']);
    expect((await t.store.conversations.search(ctx, { q: 'plan' })).items.map((h) => h.conversationId)).toEqual([theirs.id]);
    expect((await snapshotCounts(t.store, ctx.tenantId)).audit - before.audit).toBe(1);
    expect(await t.store.endUsers.erase(ctx, 'u-9')).toMatchObject({ total: 0 });
  });
});
