/**
 * `POST /v1/batch` over HTTP: 200 with a result per operation, or the failing operation's
 * problem (its status, `failedIndex`, fields as pointers into the body) with nothing applied,
 * whichever layer refused it (the body schema or the service); Idempotency-Key replays.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { forEachBackend } from '../helpers/index.js';
import { bearer, countEverything, createKey, createTenant, expectProblem, useHttp, type HttpTenant } from './http-kit.js';

interface Results {
  results: { op: string; status: number; record?: { id: string; version: number; data: unknown }; counter?: { value: number } }[];
}

forEachBackend('http batch', (backend) => {
  const h = useHttp(backend, { app: { server: { bodyLimitBytes: 16 * 1024 } } });
  let T: HttpTenant;
  beforeAll(async () => {
    T = await createTenant(h.app, `batch-${randomBytes(4).toString('hex')}`);
    const typed = await h.app.inject({ method: 'PUT', url: '/v1/collections/typed', headers: bearer(T.key), payload: { schema: { type: 'object', properties: { priority: { type: 'integer' } } } } });
    expect(typed.statusCode, typed.body).toBe(200);
  });
  const batch = (operations: unknown, headers: Record<string, string> = {}) =>
    h.app.inject({ method: 'POST', url: '/v1/batch', headers: { ...bearer(T.key), ...headers }, payload: { operations } as Record<string, unknown> });

  it('applies the operations together and answers a result per operation; the feed has them in order', async () => {
    const head = (await h.app.inject({ method: 'GET', url: '/v1/changes?limit=1000', headers: bearer(T.key) })).json<{ lastSeq: number }>().lastSeq;
    const res = await batch([
      { op: 'create', collection: 'conversations', id: 'c1', data: { title: 'hi' } },
      { op: 'create', collection: 'messages', data: { conversation: 'c1', text: 'hello' } },
      { op: 'patch', collection: 'conversations', id: 'c1', data: { last: 'hello' }, ifMatch: 1 },
      { op: 'increment', counter: 'messages', by: 1 },
    ]);
    expect(res.statusCode, res.body).toBe(200);
    const { results } = res.json<Results>();
    expect(results.map((r) => [r.op, r.status])).toEqual([
      ['create', 201],
      ['create', 201],
      ['patch', 200],
      ['increment', 200],
    ]);
    expect(results[2]?.record).toMatchObject({ id: 'c1', version: 2, data: { title: 'hi', last: 'hello' } });
    const feed = await h.app.inject({ method: 'GET', url: `/v1/changes?after=${head}`, headers: bearer(T.key) });
    const items = feed.json<{ items: { seq: number; type: string; at: string }[] }>().items;
    expect(items.map((c) => c.type)).toEqual(['collection.create', 'record.create', 'collection.create', 'record.create', 'record.update', 'counter.increment']);
    expect(items.map((c) => c.seq)).toEqual(items.map((_, i) => head + i + 1));
    expect(new Set(items.map((c) => c.at)).size).toBe(1);
  });

  describe('refusals: the failing operation, with its index, and nothing written', () => {
    let before: Record<string, number>;
    beforeEach(async () => {
      before = await countEverything(h.store, [T.id]);
    });
    afterEach(async () => {
      expect(await countEverything(h.store, [T.id])).toEqual(before);
    });

    it('a write that fails: its status and failedIndex; a 412 carries the version in the body, not as ETag', async () => {
      const missing = expectProblem(await batch([{ op: 'increment', counter: 'k' }, { op: 'delete', collection: 'conversations', id: 'nope' }]), 404, { code: 'agentstore.not_found' });
      expect(missing.failedIndex).toBe(1);
      const stale = await batch([{ op: 'increment', counter: 'k' }, { op: 'replace', collection: 'conversations', id: 'c1', data: {}, ifMatch: 1 }]);
      const problem = expectProblem(stale, 412, { code: 'agentstore.precondition_failed' });
      expect(problem).toMatchObject({ failedIndex: 1, currentVersion: 2 });
      expect(stale.headers.etag).toBeUndefined();
      const taken = expectProblem(await batch([{ op: 'create', collection: 'conversations', id: 'c1', data: {} }]), 409);
      expect(taken.failedIndex).toBe(0);
    });

    it('a schema error or a service check names the member as a pointer into the body, with failedIndex', async () => {
      const cases: [unknown[], string, number | undefined][] = [
        [[{ op: 'increment', counter: 'k' }, { op: 'upsert', collection: 'c', data: {} }], '/operations/1/op', 1],
        [[{ op: 'increment', counter: 'k' }, { op: 'create', collection: 'c', data: {}, zz: 1 }], '/operations/1/zz', 1],
        [[{ op: 'create', collection: 5, data: {} }], '/operations/0/collection', 0],
        [[{ op: 'create', collection: 'c', data: [1] }], '/operations/0/data', 0],
        [[{ op: 'create', collection: 'c', data: {}, ifMatch: 'x' }], '/operations/0/ifMatch', 0],
        [[{ op: 'increment', counter: 'k', by: '1' }], '/operations/0/by', 0],
        [[{ op: 'increment', counter: 'k' }, { op: 'increment', counter: 'k' }, { op: 'create', collection: 'typed', data: { priority: 'high' } }], '/operations/2/data/priority', 2],
        [[{ op: 'create', collection: 'bad name', data: {} }], '/operations/0/collection', 0],
        [[{ op: 'patch', collection: 'c', data: {} }], '/operations/0/id', 0],
        [[{ op: 'delete', collection: 'c', id: 'x', counter: 'k' }], '/operations/0/counter', 0],
        [[{ op: 'increment', counter: 'bad name' }], '/operations/0/counter', 0],
        [[{ op: 'create', collection: 'c', data: { s: '\ud800' } }], '/operations/0/data/s', 0],
        [[], '/operations', undefined],
        [Array.from({ length: 101 }, () => ({ op: 'increment', counter: 'k' })), '/operations', undefined],
      ];
      for (const [operations, field, index] of cases) {
        const problem = expectProblem(await batch(operations), 400, { code: 'agentstore.validation', field });
        expect(problem.failedIndex, `${field}: ${JSON.stringify(problem)}`).toBe(index);
      }
      expectProblem(await h.app.inject({ method: 'POST', url: '/v1/batch', headers: bearer(T.key), payload: { operations: [], zz: 1 } }), 400, { field: '/zz' });
      expectProblem(await h.app.inject({ method: 'POST', url: '/v1/batch', headers: bearer(T.key), payload: {} }), 400, { field: '/operations' });
    });

    it('a body over the limit is 413; a viewer is 403 at the first write', async () => {
      const big = [{ op: 'create', collection: 'c', data: { pad: 'x'.repeat(17 * 1024) } }];
      expectProblem(await batch(big), 413, { code: 'agentstore.payload_too_large' });
      const viewer = await createKey(h.app, T, 'viewer', `viewer-${randomBytes(3).toString('hex')}`);
      before = await countEverything(h.store, [T.id]);
      const forbidden = expectProblem(await batch([{ op: 'increment', counter: 'k' }], bearer(viewer.key)), 403, { code: 'agentstore.forbidden' });
      expect(forbidden.failedIndex).toBe(0);
    });
  });

  it('Idempotency-Key: a retry replays the first results (Idempotent-Replayed), another batch under it is 409', async () => {
    const key = `batch-${randomBytes(4).toString('hex')}`;
    const ops = [{ op: 'increment', counter: 'once', by: 5 }];
    const first = await batch(ops, { 'idempotency-key': key });
    expect(first.statusCode, first.body).toBe(200);
    const again = await batch(ops, { 'idempotency-key': key });
    expect(again.statusCode).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toEqual(first.json());
    expectProblem(await batch([{ op: 'increment', counter: 'once', by: 6 }], { 'idempotency-key': key }), 409, { field: 'idempotency-key' });
    expectProblem(await batch(ops, { 'idempotency-key': '' }), 400, { field: 'idempotency-key' });
    const counter = await h.app.inject({ method: 'GET', url: '/v1/counters/once', headers: bearer(T.key) });
    expect(counter.json<{ value: number }>().value).toBe(5);
  });
});
