/**
 * The HTTP contract of conversation memory: status codes, Location/ETag/If-Match, client-id
 * and Idempotency-Key replays, reads by seq in ascending order with cursors, the 413 of
 * AGENTSTORE_MAX_MESSAGE_BYTES, fork, search, and memory blocks.
 */
import { randomBytes } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { beforeAll, expect, it } from 'vitest';
import { forEachBackend } from '../helpers/index.js';
import { bearer, countEverything, createTenant, expectProblem, useHttp, type HttpTenant } from './http-kit.js';

interface Msg {
  seq: number;
  content: unknown;
  clientId: string | null;
}

forEachBackend('http conversations', (backend) => {
  const h = useHttp(backend, { store: { maxMessageBytes: 2048 } });
  let T: HttpTenant;
  beforeAll(async () => {
    T = await createTenant(h.app, `conv-${randomBytes(4).toString('hex')}`, 'owner');
  });
  const req = (method: string, url: string, payload?: unknown, headers: Record<string, string> = {}) =>
    h.app.inject({ method: method as 'GET', url, headers: { ...bearer(T.key), ...headers }, ...(payload === undefined ? {} : { payload: payload as string }) });
  const json = <X>(res: LightMyRequestResponse, status = 200): X => {
    expect(res.statusCode, res.body).toBe(status);
    return res.json<X>();
  };
  const newConversation = async (body: Record<string, unknown> = {}) => json<{ id: string }>(await req('POST', '/v1/conversations', body), 201).id;

  it('POST is 201 with Location and ETag; PATCH honours If-Match; DELETE is 204 and takes the messages', async () => {
    const res = await req('POST', '/v1/conversations', { agentId: 'a', endUserId: 'u', title: 'hello' });
    const c = json<{ id: string; version: number }>(res, 201);
    expect(res.headers.location).toBe(`/v1/conversations/${c.id}`);
    expect(res.headers.etag).toBe('"1"');
    const got = await req('GET', `/v1/conversations/${c.id}`);
    expect(got.headers.etag).toBe('"1"');
    expectProblem(await req('PATCH', `/v1/conversations/${c.id}`, { title: 'x' }, { 'if-match': '"7"' }), 412);
    const patched = await req('PATCH', `/v1/conversations/${c.id}`, { title: 'x', status: 'archived' }, { 'if-match': '"1"' });
    expect(json<{ title: string; status: string }>(patched)).toMatchObject({ title: 'x', status: 'archived' });
    expect(patched.headers.etag).toBe('"2"');
    json(await req('POST', `/v1/conversations/${c.id}/messages`, { role: 'user', content: 'hi' }), 201);
    expect((await req('DELETE', `/v1/conversations/${c.id}`)).statusCode).toBe(204);
    expectProblem(await req('GET', `/v1/conversations/${c.id}/messages`), 404);
    const keyed = await req('POST', '/v1/conversations', { title: 'k' }, { 'idempotency-key': 'conv-k' });
    const replay = await req('POST', '/v1/conversations', { title: 'k' }, { 'idempotency-key': 'conv-k' });
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.json()).toEqual(keyed.json());
  });

  it('appends one (201) or a batch (201, items in order); a client id again is 200 with idempotent-replayed and writes nothing', async () => {
    const id = await newConversation();
    const one = await req('POST', `/v1/conversations/${id}/messages`, { role: 'user', content: [{ type: 'text', text: 'hi' }], clientId: 'ui-1' });
    expect(json<Msg>(one, 201)).toMatchObject({ seq: 1, clientId: 'ui-1' });
    expect(one.headers.etag).toBe('"1"');
    const before = await countEverything(h.store, [T.id]);
    const again = await req('POST', `/v1/conversations/${id}/messages`, { role: 'user', content: 'different', clientId: 'ui-1' });
    expect(json<Msg>(again, 200)).toMatchObject({ seq: 1, content: [{ type: 'text', text: 'hi' }] });
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(await countEverything(h.store, [T.id])).toEqual(before);
    const batch = json<{ items: Msg[]; replayed: boolean[] }>(
      await req('POST', `/v1/conversations/${id}/messages`, { messages: [{ role: 'user', content: 'q', clientId: 'ui-1' }, { role: 'assistant', content: 'a', model: 'm', usage: { inputTokens: 1, outputTokens: 2 } }] }),
      201,
    );
    expect(batch.items.map((m) => m.seq)).toEqual([1, 2]);
    expect(batch.replayed).toEqual([true, false]);
    const all = await Promise.all(Array.from({ length: 20 }, (_, i) => req('POST', `/v1/conversations/${id}/messages`, { role: 'user', content: `c${i}` })));
    expect(all.map((r) => r.json<Msg>().seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 3));
  });

  it('reads last, after and before in ascending seq, with a cursor in the same direction', async () => {
    const id = await newConversation();
    json(await req('POST', `/v1/conversations/${id}/messages`, { messages: Array.from({ length: 30 }, (_, i) => ({ role: 'user', content: `m${i + 1}` })) }), 201);
    const seqs = (res: LightMyRequestResponse) => json<{ items: Msg[] }>(res).items.map((m) => m.seq);
    expect(seqs(await req('GET', `/v1/conversations/${id}/messages?last=3`))).toEqual([28, 29, 30]);
    const after = await req('GET', `/v1/conversations/${id}/messages?after=10&limit=5`);
    expect(seqs(after)).toEqual([11, 12, 13, 14, 15]);
    const next = after.json<{ nextCursor: string }>().nextCursor;
    expect(seqs(await req('GET', `/v1/conversations/${id}/messages?cursor=${next}&limit=2`))).toEqual([16, 17]);
    const before = await req('GET', `/v1/conversations/${id}/messages?before=5&limit=2`);
    expect(seqs(before)).toEqual([3, 4]);
    const older = await req('GET', `/v1/conversations/${id}/messages?cursor=${before.json<{ nextCursor: string }>().nextCursor}`);
    expect(seqs(older)).toEqual([1, 2]);
    expect(older.json<{ nextCursor: null }>().nextCursor).toBeNull();
    const one = await req('GET', `/v1/conversations/${id}/messages/7`);
    expect(json<Msg>(one).content).toBe('m7');
    expect(one.headers.etag).toBe('"1"');
  });

  it('edits with If-Match, deletes without reusing the seq, and forks at a seq', async () => {
    const id = await newConversation({ agentId: 'fork-agent' });
    json(await req('POST', `/v1/conversations/${id}/messages`, { messages: [1, 2, 3, 4].map((i) => ({ role: 'user', content: `m${i}` })) }), 201);
    expectProblem(await req('PATCH', `/v1/conversations/${id}/messages/2`, { content: 'x' }, { 'if-match': '"5"' }), 412);
    const edited = await req('PATCH', `/v1/conversations/${id}/messages/2`, { content: 'edited' }, { 'if-match': '"1"' });
    expect(json<Msg>(edited).content).toBe('edited');
    expect(edited.headers.etag).toBe('"2"');
    expect((await req('DELETE', `/v1/conversations/${id}/messages/4`)).statusCode).toBe(204);
    expect(json<Msg>(await req('POST', `/v1/conversations/${id}/messages`, { role: 'user', content: 'm5' }), 201).seq).toBe(5);
    const forked = await req('POST', `/v1/conversations/${id}/fork`, { atSeq: 2, title: 'regenerate' });
    const fork = json<{ id: string; parentId: string; forkSeq: number; agentId: string }>(forked, 201);
    expect(fork).toMatchObject({ parentId: id, forkSeq: 2, agentId: 'fork-agent' });
    expect(forked.headers.location).toBe(`/v1/conversations/${fork.id}`);
    expect(json<{ items: Msg[] }>(await req('GET', `/v1/conversations/${fork.id}/messages`)).items.map((m) => m.content)).toEqual(['m1', 'edited']);
  });

  it('a message over AGENTSTORE_MAX_MESSAGE_BYTES is 413 naming it, and nothing changes', async () => {
    const id = await newConversation();
    const before = await countEverything(h.store, [T.id]);
    expectProblem(await req('POST', `/v1/conversations/${id}/messages`, { role: 'user', content: 'x'.repeat(3000) }), 413, { code: 'agentstore.payload_too_large', field: 'body' });
    expectProblem(await req('POST', `/v1/conversations/${id}/messages`, { messages: [{ role: 'user', content: 'ok' }, { role: 'user', content: 'x'.repeat(3000) }] }), 413, { field: '/messages/1' });
    expect(await countEverything(h.store, [T.id])).toEqual(before);
  });

  it('searches best match first; memory blocks honour If-Match and their limit', async () => {
    const id = await newConversation({ endUserId: 'searcher' });
    json(await req('POST', `/v1/conversations/${id}/messages`, { messages: [{ role: 'user', content: 'kangaroo once' }, { role: 'assistant', content: 'kangaroo kangaroo kangaroo' }] }), 201);
    const hits = json<{ items: { conversationId: string; seq: number }[] }>(await req('GET', '/v1/messages/search?q=Kangaroo&endUserId=searcher'));
    expect(hits.items.map((x) => [x.conversationId, x.seq])).toEqual([[id, 2], [id, 1]]);
    const put = await req('PUT', '/v1/memory-blocks/human?endUserId=searcher', { value: 'likes kangaroos', limit: 40 });
    expect(put.statusCode, put.body).toBe(201);
    expect(put.headers.etag).toBe('"1"');
    expect((await req('PUT', '/v1/memory-blocks/human?endUserId=searcher', { value: 'v2' }, { 'if-match': '"1"' })).statusCode).toBe(200);
    expectProblem(await req('PUT', '/v1/memory-blocks/human?endUserId=searcher', { value: 'lost update' }, { 'if-match': '"1"' }), 412);
    expectProblem(await req('PUT', '/v1/memory-blocks/human?endUserId=searcher', { value: 'y'.repeat(41) }), 413, { field: '/value' });
    const got = await req('GET', '/v1/memory-blocks/human?endUserId=searcher');
    expect(json<{ value: string; limit: number }>(got)).toMatchObject({ value: 'v2', limit: 40 });
    expect(got.headers.etag).toBe('"2"');
    expect(json<{ items: unknown[] }>(await req('GET', '/v1/memory-blocks?endUserId=searcher')).items).toHaveLength(1);
    expect((await req('DELETE', '/v1/memory-blocks/human?endUserId=searcher', undefined, { 'if-match': '"2"' })).statusCode).toBe(204);
  });
});
