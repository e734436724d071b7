import { describe, expect, it } from 'vitest';
import type { TenantContext } from '../../src/core/context.js';
import type { MessageInput } from '../../src/modules/conversations/types.js';
import { forEachBackend, useTestStore } from '../helpers/backends.js';
import { asRole, countRows, expectError, newTenant } from '../helpers/fixtures.js';

const user = (text: string, extra: Partial<MessageInput> = {}): MessageInput => ({ role: 'user', content: text, ...extra });

forEachBackend('conversations', (backend) => {
  const t = useTestStore(backend, { store: { maxMessageBytes: 4096 } });
  const svc = () => t.store.conversations;

  const conversation = async (ctx: TenantContext, input = {}) => (await svc().create(ctx, input)).conversation;

  describe('conversations', () => {
    it('creates, gets, patches with If-Match, lists newest first with filters, deletes', async () => {
      const { ctx } = await newTenant(t.store);
      const a = await conversation(ctx, { agentId: 'agent-1', endUserId: 'u1', title: 'first', metadata: { topic: 'x' } });
      expect(a).toMatchObject({ agentId: 'agent-1', endUserId: 'u1', title: 'first', status: 'active', metadata: { topic: 'x' }, lastSeq: 0, messageCount: 0, version: 1, parentId: null });
      const b = await conversation(ctx, { agentId: 'agent-2', endUserId: 'u1' });
      const c = await conversation(ctx, { agentId: 'agent-1', status: 'archived' });
      expect(await svc().get(ctx, a.id)).toEqual(a);
      const patched = await svc().update(ctx, a.id, { title: 'renamed' }, { ifMatch: 1 });
      expect(patched).toMatchObject({ title: 'renamed', version: 2 });
      await expectError(svc().update(ctx, a.id, { title: 'stale' }, { ifMatch: 1 }), 'agentstore.precondition_failed');
      const ids = async (q = {}) => (await svc().list(ctx, q)).items.map((x) => x.id);
      expect(await ids()).toEqual([c.id, b.id, a.id]);
      expect(await ids({ agentId: 'agent-1' })).toEqual([c.id, a.id]);
      expect(await ids({ endUserId: 'u1' })).toEqual([b.id, a.id]);
      expect(await ids({ status: 'archived' })).toEqual([c.id]);
      const first = await svc().list(ctx, { limit: 2 });
      expect(first.items.map((x) => x.id)).toEqual([c.id, b.id]);
      expect((await svc().list(ctx, { limit: 2, cursor: first.nextCursor as string })).items.map((x) => x.id)).toEqual([a.id]);
      await expectError(svc().list(ctx, { agentId: 'agent-1', cursor: first.nextCursor as string }), 'agentstore.validation', { field: 'cursor' });
      await svc().append(ctx, a.id, user('hello'));
      await svc().remove(ctx, a.id);
      await expectError(svc().get(ctx, a.id), 'agentstore.not_found');
      expect(await countRows(t.store, 'messages', ctx.tenantId)).toBe(0);
    });

    it('refuses bad input naming the field, and a viewer may read but not write', async () => {
      const { ctx } = await newTenant(t.store);
      await expectError(svc().create(ctx, { status: 'open' as never }), 'agentstore.validation', { field: '/status' });
      await expectError(svc().create(ctx, { agentId: '' }), 'agentstore.validation', { field: '/agentId' });
      await expectError(svc().create(ctx, { metadata: [] as never }), 'agentstore.validation', { field: '/metadata' });
      await expectError(svc().create(ctx, { zz: 1 } as never), 'agentstore.validation', { field: '/zz' });
      await expectError(svc().get(ctx, 'nope'), 'agentstore.validation', { field: 'id' });
      const viewer = asRole(ctx, 'viewer');
      await expectError(svc().create(viewer, {}), 'agentstore.forbidden');
      const c = await conversation(ctx);
      expect((await svc().get(viewer, c.id)).id).toBe(c.id);
      await expectError(svc().append(viewer, c.id, user('x')), 'agentstore.forbidden');
    });

    it('an Idempotency-Key makes a retried create return the first conversation', async () => {
      const { ctx } = await newTenant(t.store);
      const first = await svc().create(ctx, { title: 't' }, { idempotencyKey: 'k1' });
      const again = await svc().create(ctx, { title: 't' }, { idempotencyKey: 'k1' });
      expect(again).toEqual({ conversation: first.conversation, replayed: true });
      await expectError(svc().create(ctx, { title: 'other' }, { idempotencyKey: 'k1' }), 'agentstore.conflict');
      expect(await countRows(t.store, 'conversations', ctx.tenantId)).toBe(1);
    });
  });

  describe('messages', () => {
    it('appends with gap-free seqs, a batch atomically, and reads last, after and before in ascending seq', async () => {
      const { ctx } = await newTenant(t.store);
      const c = await conversation(ctx);
      const one = await svc().append(ctx, c.id, user('m1', { model: 'gpt-x', usage: { inputTokens: 3, outputTokens: 5 }, metadata: { a: 1 } }));
      expect(one).toMatchObject({ replayed: false, message: { seq: 1, role: 'user', content: 'm1', model: 'gpt-x', usage: { inputTokens: 3, outputTokens: 5 }, metadata: { a: 1 }, version: 1 } });
      const batch = await svc().appendMany(ctx, c.id, Array.from({ length: 9 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `m${i + 2}` }) as MessageInput));
      expect(batch.items.map((m) => m.seq)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(batch.replayed.every((r) => !r)).toBe(true);
      expect((await svc().get(ctx, c.id))).toMatchObject({ lastSeq: 10, messageCount: 10 });
      expect((await svc().last(ctx, c.id, 3)).map((m) => m.seq)).toEqual([8, 9, 10]);
      const after = await svc().after(ctx, c.id, 4, 3);
      expect(after.items.map((m) => m.seq)).toEqual([5, 6, 7]);
      expect((await svc().messages(ctx, c.id, { cursor: after.nextCursor as string, limit: 5 })).items.map((m) => m.seq)).toEqual([8, 9, 10]);
      const before = await svc().messages(ctx, c.id, { before: 6, limit: 2 });
      expect(before.items.map((m) => m.seq)).toEqual([4, 5]);
      const older = await svc().messages(ctx, c.id, { cursor: before.nextCursor as string, limit: 10 });
      expect(older.items.map((m) => m.seq)).toEqual([1, 2, 3]);
      expect(older.nextCursor).toBeNull();
      const lastPage = await svc().messages(ctx, c.id, { last: 4 });
      expect(lastPage.items.map((m) => m.content)).toEqual(['m7', 'm8', 'm9', 'm10']);
      expect((await svc().messages(ctx, c.id)).items).toHaveLength(10);
      await expectError(svc().messages(ctx, c.id, { last: 2, after: 1 }), 'agentstore.validation', { field: 'after' });
      await expectError(svc().messages(ctx, c.id, { last: 0 }), 'agentstore.validation', { field: 'last' });
      await expectError(svc().messages(ctx, c.id, { cursor: 'garbage!' }), 'agentstore.validation', { field: 'cursor' });
      await expectError(svc().messages(ctx, '0190a0a0-0000-7000-8000-000000000002'), 'agentstore.not_found');
      // A bad message anywhere in a batch writes none of it.
      await expectError(svc().appendMany(ctx, c.id, [user('ok'), { role: 'robot', content: 'x' } as never]), 'agentstore.validation', { field: '/messages/1/role' });
      expect((await svc().get(ctx, c.id)).lastSeq).toBe(10);
    });

    it('a client id makes an append idempotent: again, within one batch, and under concurrent retries', async () => {
      const { ctx } = await newTenant(t.store);
      const c = await conversation(ctx);
      const first = await svc().append(ctx, c.id, user('hi', { clientId: 'msg-1' }));
      const changes = await countRows(t.store, 'changes', ctx.tenantId);
      const again = await svc().append(ctx, c.id, user('hi (retry)', { clientId: 'msg-1' }));
      expect(again).toEqual({ message: first.message, replayed: true });
      expect(await countRows(t.store, 'changes', ctx.tenantId)).toBe(changes);
      const batch = await svc().appendMany(ctx, c.id, [user('a', { clientId: 'msg-1' }), user('b', { clientId: 'msg-2' }), user('b again', { clientId: 'msg-2' }), user('c')]);
      expect(batch.items.map((m) => m.seq)).toEqual([1, 2, 2, 3]);
      expect(batch.replayed).toEqual([true, false, true, false]);
      const racing = await Promise.all(Array.from({ length: 8 }, () => svc().append(ctx, c.id, user('same', { clientId: 'msg-3' }))));
      expect(new Set(racing.map((r) => r.message.seq))).toEqual(new Set([4]));
      expect(racing.filter((r) => !r.replayed)).toHaveLength(1);
      expect(await svc().get(ctx, c.id)).toMatchObject({ lastSeq: 4, messageCount: 4 });
    });

    it('N concurrent appenders on one conversation get seqs 1..N, no gaps, no duplicates', async () => {
      const { ctx } = await newTenant(t.store);
      const c = await conversation(ctx);
      const other = await conversation(ctx);
      const n = 60;
      const results = await Promise.all([
        ...Array.from({ length: n }, (_, i) => svc().append(ctx, c.id, user(`c${i}`))),
        ...Array.from({ length: 10 }, (_, i) => svc().append(ctx, other.id, user(`o${i}`))),
      ]);
      const seqs = results.slice(0, n).map((r) => r.message.seq).sort((x, y) => x - y);
      expect(seqs).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      const stored = await svc().messages(ctx, c.id, { limit: 500 });
      expect(stored.items.map((m) => m.seq)).toEqual(seqs);
      // Each stored message is the one its appender was told about.
      const byContent = new Map(results.slice(0, n).map((r) => [r.message.content, r.message.seq]));
      for (const m of stored.items) expect(byContent.get(m.content)).toBe(m.seq);
      expect((await svc().messages(ctx, other.id)).items.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    });

    it('validates UIMessage parts strictly, naming the field, and keeps unknown fields of known parts', async () => {
      const { ctx } = await newTenant(t.store);
      const c = await conversation(ctx);
      const parts = [
        { type: 'step-start' },
        { type: 'reasoning', text: 'thinking', state: 'done' },
        { type: 'text', text: 'The weather in Paris', providerMetadata: { openai: { id: 'x' } } },
        { type: 'tool-getWeather', toolCallId: 'call-1', state: 'output-available', input: { city: 'Paris' }, output: { c: 21 } },
        { type: 'tool-getWeather', toolCallId: 'call-2', state: 'approval-requested', input: { city: 'Rome' }, approval: { id: 'a1' } },
        { type: 'dynamic-tool', toolName: 'mcp.search', toolCallId: 'call-3', state: 'output-error', input: {}, errorText: 'boom' },
        { type: 'file', mediaType: 'image/png', url: 'https://files.example.com/1.png', filename: '1.png' },
        { type: 'source-url', sourceId: 's1', url: 'https://example.com' },
        { type: 'source-document', sourceId: 's2', mediaType: 'application/pdf', title: 'Doc' },
        { type: 'data-weather', id: 'w1', data: { temp: 21 } },
      ];
      const stored = await svc().append(ctx, c.id, { role: 'assistant', content: parts as never });
      expect((await svc().getMessage(ctx, c.id, stored.message.seq)).content).toEqual(parts);
      const bad: [unknown, string][] = [
        [5, '/content'],
        [[5], '/content/0'],
        [[{ text: 'x' }], '/content/0/type'],
        [[{ type: 'nonsense' }], '/content/0/type'],
        [[{ type: 'text' }], '/content/0/text'],
        [[{ type: 'text', text: 'x', state: 'half' }], '/content/0/state'],
        [[{ type: 'tool-x', state: 'input-available' }], '/content/0/toolCallId'],
        [[{ type: 'tool-', toolCallId: 'c', state: 'x' }], '/content/0/type'],
        [[{ type: 'dynamic-tool', toolCallId: 'c', state: 'x' }], '/content/0/toolName'],
        [[{ type: 'file', mediaType: 'image/png', url: 'data:image/png;base64,AAAA' }], '/content/0/url'],
        [[{ type: 'file', url: 'https://x' }], '/content/0/mediaType'],
        [[{ type: 'data-x' }], '/content/0/data'],
        [[{ type: 'text', text: 'a\u0000b' }], '/content/0/text'],
      ];
      for (const [content, field] of bad) await expectError(svc().append(ctx, c.id, { role: 'user', content: content as never }), 'agentstore.validation', { field });
      await expectError(svc().append(ctx, c.id, { role: 'user', content: 'x', usage: { inputTokens: -1 } }), 'agentstore.validation', { field: '/usage/inputTokens' });
      await expectError(svc().append(ctx, c.id, { role: 'user', content: 'x', clientId: 'has space' }), 'agentstore.validation', { field: '/clientId' });
      expect((await svc().get(ctx, c.id)).lastSeq).toBe(1);
    });

    it('a message or a batch over AGENTSTORE_MAX_MESSAGE_BYTES is 413 and writes nothing', async () => {
      const { ctx } = await newTenant(t.store);
      const c = await conversation(ctx);
      await expectError(svc().append(ctx, c.id, user('x'.repeat(5000))), 'agentstore.payload_too_large', { field: 'body' });
      await expectError(svc().appendMany(ctx, c.id, [user('ok'), user('x'.repeat(5000))]), 'agentstore.payload_too_large', { field: '/messages/1' });
      await expectError(svc().appendMany(ctx, c.id, Array.from({ length: 5 }, () => user('y'.repeat(3900)))), 'agentstore.payload_too_large', { field: '/messages' });
      await svc().append(ctx, c.id, user('small'));
      await expectError(svc().editMessage(ctx, c.id, 1, { content: 'z'.repeat(5000) }), 'agentstore.payload_too_large');
      expect(await svc().get(ctx, c.id)).toMatchObject({ lastSeq: 1, messageCount: 1 });
    });

    it('edits and deletes a message (audited, in the change feed, seq never reused)', async () => {
      const { ctx } = await newTenant(t.store);
      const c = await conversation(ctx);
      await svc().appendMany(ctx, c.id, [user('one'), user('two'), user('three')]);
      const edited = await svc().editMessage(ctx, c.id, 2, { content: 'TWO', metadata: { edited: true } }, { ifMatch: 1 });
      expect(edited).toMatchObject({ seq: 2, content: 'TWO', metadata: { edited: true }, version: 2 });
      await expectError(svc().editMessage(ctx, c.id, 2, { content: 'x' }, { ifMatch: 1 }), 'agentstore.precondition_failed');
      await expectError(svc().editMessage(ctx, c.id, 2, {}), 'agentstore.validation', { field: 'body' });
      await svc().deleteMessage(ctx, c.id, 3);
      await expectError(svc().getMessage(ctx, c.id, 3), 'agentstore.not_found');
      const next = await svc().append(ctx, c.id, user('four'));
      expect(next.message.seq).toBe(4);
      expect((await svc().messages(ctx, c.id)).items.map((m) => [m.seq, m.content])).toEqual([[1, 'one'], [2, 'TWO'], [4, 'four']]);
      expect(await svc().get(ctx, c.id)).toMatchObject({ lastSeq: 4, messageCount: 3 });
      const feed = await t.store.changes.read(ctx, { after: 0, resourceTypes: ['message'] });
      expect(feed.map((e) => [e.action, e.resourceId])).toEqual([
        ['create', `${c.id}/1`],
        ['create', `${c.id}/2`],
        ['create', `${c.id}/3`],
        ['update', `${c.id}/2`],
        ['delete', `${c.id}/3`],
        ['create', `${c.id}/4`],
      ]);
      const audit = await t.store.audit.list(ctx, { resourceType: 'message' });
      expect(audit.items.map((e) => e.action)).toContain('message.update');
      expect(audit.items.map((e) => e.action)).toContain('message.delete');
    });

    it('audits an append once, with its seqs, and gives each new message its own change', async () => {
      const { ctx } = await newTenant(t.store);
      const c = await conversation(ctx);
      await svc().append(ctx, c.id, user('zero', { clientId: 'z' }));
      const before = await t.store.changes.read(ctx, { after: 0 });
      await svc().appendMany(ctx, c.id, [user('one'), user('zero again', { clientId: 'z' }), user('two')]);
      const appends = (await t.store.audit.list(ctx, { resourceType: 'conversation' })).items.filter((e) => e.action === 'conversation.append');
      expect(appends.map((e) => [e.resourceId, e.details])).toEqual(expect.arrayContaining([
        [c.id, { messages: 1, fromSeq: 1, toSeq: 1 }],
        [c.id, { messages: 2, fromSeq: 2, toSeq: 3 }],
      ]));
      expect(appends).toHaveLength(2);
      expect((await t.store.audit.list(ctx, { resourceType: 'message' })).items).toEqual([]);
      const after = await t.store.changes.read(ctx, { after: before.at(-1)?.seq ?? 0 });
      expect(after.map((e) => [e.resourceType, e.action, e.resourceId])).toEqual([
        ['message', 'create', `${c.id}/2`],
        ['message', 'create', `${c.id}/3`],
      ]);
    });

    it('forks at a seq: a new conversation with copies of the history up to it; the parent is unchanged', async () => {
      const { ctx } = await newTenant(t.store);
      const c = await conversation(ctx, { agentId: 'ag', endUserId: 'eu', title: 'parent' });
      await svc().appendMany(ctx, c.id, Array.from({ length: 6 }, (_, i) => user(`p${i + 1}`, { clientId: `c${i + 1}` })));
      await svc().deleteMessage(ctx, c.id, 2);
      const { conversation: fork } = await svc().fork(ctx, c.id, { atSeq: 4 });
      expect(fork).toMatchObject({ agentId: 'ag', endUserId: 'eu', title: 'parent', parentId: c.id, forkSeq: 4, lastSeq: 4, messageCount: 3 });
      expect((await svc().messages(ctx, fork.id)).items.map((m) => [m.seq, m.content])).toEqual([[1, 'p1'], [3, 'p3'], [4, 'p4']]);
      const regenerated = await svc().append(ctx, fork.id, { role: 'assistant', content: 'another answer' });
      expect(regenerated.message.seq).toBe(5);
      expect((await svc().last(ctx, c.id, 2)).map((m) => m.content)).toEqual(['p5', 'p6']);
      await expectError(svc().fork(ctx, c.id, { atSeq: 7 }), 'agentstore.validation', { field: '/atSeq' });
      await expectError(svc().fork(ctx, c.id, { atSeq: 0 }), 'agentstore.validation', { field: '/atSeq' });
      const keyed = await svc().fork(ctx, c.id, { atSeq: 1, title: 'k' }, { idempotencyKey: 'fork-1' });
      expect(await svc().fork(ctx, c.id, { atSeq: 1, title: 'k' }, { idempotencyKey: 'fork-1' })).toEqual({ conversation: keyed.conversation, replayed: true });
    });
  });

  describe('search', () => {
    it('finds words best match first with conversation and seq, scoped to the tenant and filtered by agent and end user', async () => {
      const { ctx } = await newTenant(t.store);
      const { ctx: other } = await newTenant(t.store);
      const a = await conversation(ctx, { agentId: 'travel', endUserId: 'alice' });
      const b = await conversation(ctx, { agentId: 'cooking', endUserId: 'bob' });
      await svc().appendMany(ctx, a.id, [user('I want to fly to Paris in spring'), { role: 'assistant', content: [{ type: 'text', text: 'Paris in spring is lovely. Paris, Paris!' }] }]);
      await svc().append(ctx, b.id, user('A recipe for paris-brest, the pastry'));
      const o = await conversation(other);
      await svc().append(other, o.id, user('paris paris paris secret of another tenant'));
      const hits = (await svc().search(ctx, { q: 'Paris' })).items;
      // The message that says Paris three times first; the others match once each.
      expect(hits.map((h) => [h.conversationId, h.seq])[0]).toEqual([a.id, 2]);
      expect(new Set(hits.map((h) => `${h.conversationId}/${h.seq}`))).toEqual(new Set([`${a.id}/2`, `${a.id}/1`, `${b.id}/1`]));
      expect(hits[0]?.score).toBeGreaterThan(hits[2]?.score as number);
      expect(hits[0]?.text).toContain('lovely');
      expect((await svc().search(ctx, { q: 'paris spring' })).items.map((h) => h.seq)).toHaveLength(2);
      expect((await svc().search(ctx, { q: 'paris', agentId: 'cooking' })).items.map((h) => h.conversationId)).toEqual([b.id]);
      expect((await svc().search(ctx, { q: 'paris', endUserId: 'alice' })).items).toHaveLength(2);
      expect((await svc().search(ctx, { q: 'secret' })).items).toEqual([]);
      // Edits and deletes reach the index in their own unit.
      await svc().editMessage(ctx, b.id, 1, { content: 'now about croissants' });
      expect((await svc().search(ctx, { q: 'croissants' })).items.map((h) => h.conversationId)).toEqual([b.id]);
      expect((await svc().search(ctx, { q: 'brest' })).items).toEqual([]);
      await svc().remove(ctx, a.id);
      expect((await svc().search(ctx, { q: 'paris' })).items).toEqual([]);
    });

    it('query syntax from users is never an error: operators and quotes are plain words', async () => {
      const { ctx } = await newTenant(t.store);
      const c = await conversation(ctx);
      await svc().append(ctx, c.id, user('NEAR the AND gate or "quoted" text*'));
      for (const q of ['"unbalanced', 'NEAR(', 'AND', 'a OR', 'text*', "o'brien", '-gate', 'scope:x', 'col : gate', 'gate^2', 'a:*', "'; drop table messages; --", 'NOT', 'a & b | !c']) {
        const result = await svc().search(ctx, { q });
        expect(Array.isArray(result.items), q).toBe(true);
      }
      // Nothing but operators and punctuation: no word to look for.
      for (const q of ['(((', '\\', '*:*', '""', '&|!']) await expectError(svc().search(ctx, { q }), 'agentstore.validation', { field: 'q' });
      expect((await svc().search(ctx, { q: 'AND gate' })).items).toHaveLength(1);
      for (const q of ['', '!!!', '"" ()', 'x'.repeat(513)]) await expectError(svc().search(ctx, { q }), 'agentstore.validation', { field: 'q' });
      await expectError(svc().search(ctx, { q: 'a', limit: 101 }), 'agentstore.validation', { field: 'limit' });
    });
  });
});
