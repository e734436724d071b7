/**
 * The HTTP contract of records, counters, the audit log and the change log: status codes,
 * Location/ETag/If-Match, Idempotency-Key replays, query-string filter/sort/cursor paging,
 * and exactness under concurrent requests.
 */
import { randomBytes } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { beforeAll, describe, expect, it } from 'vitest';
import { forEachBackend } from '../helpers/index.js';
import { INJECTIONS, bearer, countEverything, createTenant, expectProblem, useHttp, type HttpTenant } from './http-kit.js';

interface Rec {
  id: string;
  version: number;
  createdAt: string;
  updatedAt: string;
  data: Record<string, unknown>;
}

forEachBackend('http records', (backend) => {
  const h = useHttp(backend);
  let T: HttpTenant;
  beforeAll(async () => {
    T = await createTenant(h.app, `records-${randomBytes(4).toString('hex')}`, 'owner');
  });

  const req = (method: string, url: string, payload?: unknown, headers: Record<string, string> = {}) =>
    h.app.inject({ method: method as 'GET', url, headers: { ...bearer(T.key), ...headers }, ...(payload === undefined ? {} : { payload: payload as string }) });
  const json = <X>(res: LightMyRequestResponse, status = 200): X => {
    expect(res.statusCode, res.body).toBe(status);
    return res.json<X>();
  };

  describe('create, read, replace, patch, delete', () => {
    it('POST is 201 with Location and ETag; GET at the Location returns the same record and ETag', async () => {
      const res = await req('POST', '/v1/collections/crud/records', { title: 'first', n: 1 });
      const created = json<Rec>(res, 201);
      expect(created.version).toBe(1);
      expect(res.headers.etag).toBe('"1"');
      expect(res.headers.location).toBe(`/v1/collections/crud/records/${encodeURIComponent(created.id)}`);
      const got = await req('GET', String(res.headers.location));
      expect(json<Rec>(got)).toEqual(created);
      expect(got.headers.etag).toBe('"1"');
      const withId = await req('POST', '/v1/collections/crud/records', { id: 'user:42@x', title: 'named' });
      expect(json<Rec>(withId, 201).id).toBe('user:42@x');
      expect(withId.headers.location).toBe('/v1/collections/crud/records/user%3A42%40x');
      expect((await req('GET', String(withId.headers.location))).statusCode).toBe(200);
      expectProblem(await req('POST', '/v1/collections/crud/records', { id: 'user:42@x' }), 409, { code: 'agentstore.conflict' });
    });

    it('PUT and PATCH honour If-Match: the current ETag wins, a stale one is 412 and changes nothing', async () => {
      const created = json<Rec>(await req('POST', '/v1/collections/crud/records', { a: 1, b: { c: 2, d: 3 } }), 201);
      const url = `/v1/collections/crud/records/${created.id}`;
      const put = await req('PUT', url, { a: 2, b: { c: 2, d: 3 } }, { 'if-match': '"1"' });
      expect(json<Rec>(put).version).toBe(2);
      expect(put.headers.etag).toBe('"2"');
      expectProblem(await req('PUT', url, { a: 99 }, { 'if-match': '"1"' }), 412, { code: 'agentstore.precondition_failed' });
      expectProblem(await req('PATCH', url, { a: 99 }, { 'if-match': '"1"' }), 412, { code: 'agentstore.precondition_failed' });
      const merge = await req('PATCH', url, JSON.stringify({ b: { d: null, e: 5 }, f: 'x' }), { 'if-match': '"2"', 'content-type': 'application/merge-patch+json' });
      const merged = json<Rec>(merge);
      expect(merged.data).toEqual({ a: 2, b: { c: 2, e: 5 }, f: 'x' });
      expect(merge.headers.etag).toBe('"3"');
      const star = await req('PATCH', url, { g: true }, { 'if-match': '*' });
      expect(json<Rec>(star).version).toBe(4);
      // A weak tag never matches (strong comparison).
      expectProblem(await req('PATCH', url, { g: false }, { 'if-match': 'W/"4"' }), 400, { field: 'if-match' });
      const now = await req('GET', url);
      expect(json<Rec>(now).data).toEqual({ a: 2, b: { c: 2, e: 5 }, f: 'x', g: true });
      expect(now.headers.etag).toBe('"4"');
      expectProblem(await req('DELETE', url, undefined, { 'if-match': '"3"' }), 412);
      expect((await req('DELETE', url, undefined, { 'if-match': '"4"' })).statusCode).toBe(204);
      expectProblem(await req('GET', url), 404, { code: 'agentstore.not_found' });
      // PUT with If-Match replaces only: the record is gone, so the condition is false.
      expectProblem(await req('PUT', url, { a: 1 }, { 'if-match': '"4"' }), 412);
      expectProblem(await req('PATCH', url, { a: 1 }, { 'if-match': '"4"' }), 412);
    });

    it('PUT creates a missing record (201, Location, ETag) unless If-Match; If-None-Match: * creates only', async () => {
      const url = '/v1/collections/upserts/records/u%3A1';
      const created = await req('PUT', url, { v: 1 });
      expect(json<Rec>(created, 201)).toMatchObject({ id: 'u:1', version: 1, data: { v: 1 } });
      expect(created.headers.location).toBe('/v1/collections/upserts/records/u%3A1');
      expect(created.headers.etag).toBe('"1"');
      const replaced = await req('PUT', url, { v: 2 });
      expect(json<Rec>(replaced).version).toBe(2);
      expect(replaced.headers.location).toBeUndefined();
      // If-None-Match: * on an existing record: 412 with its ETag, nothing written.
      const exists = await req('PUT', url, { v: 3 }, { 'if-none-match': '*' });
      expectProblem(exists, 412, { code: 'agentstore.precondition_failed' });
      expect(exists.headers.etag).toBe('"2"');
      expect(json<Rec>(await req('PUT', '/v1/collections/upserts/records/fresh', { v: 1 }, { 'if-none-match': '*' }), 201).version).toBe(1);
      // If-Match on a missing record is false (RFC 9110 §13.1.1): 412, nothing created.
      expectProblem(await req('PUT', '/v1/collections/upserts/records/none', { v: 1 }, { 'if-match': '*' }), 412);
      expectProblem(await req('PUT', '/v1/collections/upserts/records/none', { v: 1 }, { 'if-match': '"1"' }), 412);
      expectProblem(await req('GET', '/v1/collections/upserts/records/none'), 404);
      // Only * is an If-None-Match a write can use.
      expectProblem(await req('PUT', url, { v: 3 }, { 'if-none-match': '"2"' }), 400, { field: 'if-none-match' });
      expect(json<Rec>(await req('GET', url)).data).toEqual({ v: 2 });
    });

    it('concurrent PUTs of one new id: one 201, the others 200, never a 5xx', async () => {
      const url = `/v1/collections/upserts/records/race-${randomBytes(3).toString('hex')}`;
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => req('PUT', url, { writer: i })));
      const statuses = results.map((r) => r.statusCode).sort();
      expect(statuses, results.map((r) => r.body).join('\n')).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 201]);
      expect(json<Rec>(await req('GET', url)).version).toBe(12);
    });

    it('concurrent PATCHes with the same If-Match: exactly one 200, every other one 412', async () => {
      const created = json<Rec>(await req('POST', '/v1/collections/race/records', { n: 0 }), 201);
      const url = `/v1/collections/race/records/${created.id}`;
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => req('PATCH', url, { n: i + 1, [`w${i}`]: true }, { 'if-match': '"1"' })));
      const statuses = results.map((r) => r.statusCode);
      expect(statuses.filter((s) => s === 200), JSON.stringify(statuses)).toHaveLength(1);
      expect(statuses.filter((s) => s === 412)).toHaveLength(11);
      for (const r of results.filter((x) => x.statusCode === 412)) expectProblem(r, 412, { code: 'agentstore.precondition_failed' });
      const winner = results.find((r) => r.statusCode === 200) as LightMyRequestResponse;
      const final = json<Rec>(await req('GET', url));
      expect(final.version).toBe(2);
      expect(final).toEqual(winner.json());
    });

    it('Idempotency-Key: a replay returns the same record with idempotent-replayed: true, once stored; another body is 409', async () => {
      const key = `idem-${randomBytes(6).toString('hex')}`;
      const before = await countEverything(h.store, [T.id]);
      const first = await req('POST', '/v1/collections/idem/records', { order: 1 }, { 'idempotency-key': key });
      const created = json<Rec>(first, 201);
      expect(first.headers['idempotent-replayed']).toBeUndefined();
      const again = await req('POST', '/v1/collections/idem/records', { order: 1 }, { 'idempotency-key': key });
      expect(again.statusCode).toBe(201);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(again.body).toBe(first.body);
      expect(again.headers.etag).toBe(first.headers.etag);
      expect(again.headers.location).toBe(first.headers.location);
      const concurrent = await Promise.all(Array.from({ length: 5 }, () => req('POST', '/v1/collections/idem/records', { order: 1 }, { 'idempotency-key': key })));
      for (const r of concurrent) {
        expect(r.statusCode).toBe(201);
        expect(r.json<Rec>().id).toBe(created.id);
      }
      const other = await req('POST', '/v1/collections/idem/records', { order: 2 }, { 'idempotency-key': key });
      expectProblem(other, 409, { code: 'agentstore.conflict', field: 'idempotency-key' });
      const after = await countEverything(h.store, [T.id]);
      expect(after[`${T.id}:records`]).toBe((before[`${T.id}:records`] ?? 0) + 1);
      expect(after[`${T.id}:idempotency_keys`]).toBe((before[`${T.id}:idempotency_keys`] ?? 0) + 1);
      // A fresh key is a new record.
      json<Rec>(await req('POST', '/v1/collections/idem/records', { order: 1 }, { 'idempotency-key': `${key}-2` }), 201);
    });

    it('SQL-injection strings are data: stored verbatim, found by filter, tables intact', async () => {
      const ids: string[] = [];
      for (const [i, value] of INJECTIONS.entries()) {
        const created = json<Rec>(await req('POST', '/v1/collections/inj/records', { id: `inj-${i}`, text: value, [`k${i}`]: value }), 201);
        expect(created.data.text).toBe(value);
        ids.push(created.id);
      }
      for (const [i, value] of INJECTIONS.entries()) {
        const found = json<{ items: Rec[] }>(await req('GET', `/v1/collections/inj/records?filter=${encodeURIComponent(JSON.stringify({ text: value }))}`));
        expect(found.items.map((r) => r.id)).toEqual([`inj-${i}`]);
        expect(json<Rec>(await req('GET', `/v1/collections/inj/records/inj-${i}`)).data.text).toBe(value);
      }
      const all = json<{ items: Rec[] }>(await req('GET', '/v1/collections/inj/records?limit=100'));
      expect(all.items.map((r) => r.id).sort()).toEqual([...ids].sort());
    });
  });

  describe('filter, sort and cursor paging through the query string', () => {
    const N = 37;
    const rows: { id: string; priority: number | null; status: string; tags: string[] }[] = [];
    beforeAll(async () => {
      for (let i = 0; i < N; i++) {
        const row = { id: `p${String(i).padStart(2, '0')}`, priority: i % 7 === 3 ? null : i % 5, status: i % 3 === 0 ? 'closed' : 'open', tags: i % 2 ? ['odd'] : ['even'] };
        rows.push(row);
        const { priority, ...rest } = row;
        json(await req('POST', '/v1/collections/paged/records', priority === null ? rest : row), 201);
      }
    });

    const walk = async (query: Record<string, string>, limit: number): Promise<{ ids: string[]; pages: number }> => {
      const ids: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const qs = new URLSearchParams({ ...query, limit: String(limit), ...(cursor ? { cursor } : {}) });
        const page: { items: Rec[]; nextCursor: string | null } = json(await req('GET', `/v1/collections/paged/records?${qs}`));
        expect(page.items.length).toBeLessThanOrEqual(limit);
        ids.push(...page.items.map((r) => r.id));
        cursor = page.nextCursor;
        pages++;
        expect(pages).toBeLessThan(100);
      } while (cursor);
      return { ids, pages };
    };

    it('walks every page of a filtered, sorted listing: each match exactly once, in order', async () => {
      const { ids, pages } = await walk({ filter: JSON.stringify({ status: 'open', tags: { contains: 'odd' } }), sort: '-priority' }, 4);
      const expected = rows
        .filter((r) => r.status === 'open' && r.tags.includes('odd'))
        // Descending puts missing fields last; id breaks ties ascending.
        .sort((a, b) => (b.priority ?? -Infinity) - (a.priority ?? -Infinity) || a.id.localeCompare(b.id))
        .map((r) => r.id);
      expect(ids).toEqual(expected);
      expect(pages).toBe(Math.max(1, Math.ceil(expected.length / 4)));
    });

    it('ascending sort with an OR filter and page size 1, and the default order, each walk everything', async () => {
      const { ids } = await walk({ filter: JSON.stringify({ or: [{ priority: { gte: 3 } }, { priority: { exists: false } }] }), sort: 'priority,-id' }, 1);
      const expected = rows
        .filter((r) => r.priority === null || r.priority >= 3)
        .sort((a, b) => (a.priority ?? -Infinity) - (b.priority ?? -Infinity) || b.id.localeCompare(a.id))
        .map((r) => r.id);
      expect(ids).toEqual(expected);
      const all = await walk({}, 10);
      expect(all.ids).toEqual(rows.map((r) => r.id));
    });

    it('a cursor is bound to its query: reused with another filter or sort it is 400', async () => {
      const first = json<{ nextCursor: string }>(await req('GET', '/v1/collections/paged/records?limit=2&sort=-priority'));
      expect(first.nextCursor).toEqual(expect.any(String));
      expectProblem(await req('GET', `/v1/collections/paged/records?limit=2&sort=priority&cursor=${first.nextCursor}`), 400, { field: 'cursor' });
      expectProblem(await req('GET', `/v1/collections/paged/records?limit=2&sort=-priority&filter=${encodeURIComponent('{"status":"open"}')}&cursor=${first.nextCursor}`), 400, { field: 'cursor' });
      expectProblem(await req('GET', `/v1/collections/other/records?limit=2&sort=-priority&cursor=${first.nextCursor}`), 400, { field: 'cursor' });
    });
  });

  describe('counters', () => {
    it('increment with no body, an empty body, {} and {by}; reset; GET and list', async () => {
      const name = `c-${randomBytes(3).toString('hex')}`;
      const inc = (init: { payload?: string; headers?: Record<string, string> }) =>
        h.app.inject({ method: 'POST', url: `/v1/counters/${name}/increment`, headers: { ...bearer(T.key), ...init.headers }, ...(init.payload === undefined ? {} : { payload: init.payload }) });
      expect(json<{ value: number }>(await inc({})).value).toBe(1);
      // Declaring JSON and sending nothing is refused (problem.ts names it), not taken as "by 1".
      expectProblem(await inc({ payload: '', headers: { 'content-type': 'application/json' } }), 400, { code: 'agentstore.validation' });
      expect(json<{ value: number }>(await inc({ payload: '{}', headers: { 'content-type': 'application/json' } })).value).toBe(2);
      expect(json<{ value: number }>(await inc({ payload: '{"by":11}', headers: { 'content-type': 'application/json' } })).value).toBe(13);
      expect(json<{ value: number }>(await inc({ payload: '{"by":-20}', headers: { 'content-type': 'application/json' } })).value).toBe(-7);
      expect(json<{ name: string; value: number }>(await req('GET', `/v1/counters/${name}`))).toMatchObject({ name, value: -7 });
      expect(json<{ value: number }>(await req('POST', `/v1/counters/${name}/reset`)).value).toBe(0);
      expect(json<{ value: number }>(await req('POST', `/v1/counters/${name}/reset`, { value: 42 })).value).toBe(42);
      expectProblem(await req('GET', `/v1/counters/${name}-missing`), 404, { code: 'agentstore.not_found' });
      const list = json<{ items: { name: string }[] }>(await req('GET', '/v1/counters?limit=500'));
      expect(list.items.map((c) => c.name)).toContain(name);
    });

    it('concurrent increments over HTTP are exact', async () => {
      const name = `hot-${randomBytes(3).toString('hex')}`;
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) => (i % 2 ? req('POST', `/v1/counters/${name}/increment`) : req('POST', `/v1/counters/${name}/increment`, { by: 3 }))),
      );
      for (const r of results) expect(r.statusCode, r.body).toBe(200);
      const values = results.map((r) => r.json<{ value: number }>().value);
      expect(new Set(values).size).toBe(40);
      expect(json<{ value: number }>(await req('GET', `/v1/counters/${name}`)).value).toBe(20 * 1 + 20 * 3);
    });
  });

  describe('audit log and change log', () => {
    let other: HttpTenant;
    let writerKeyId: string;
    let startedAt: string;
    let records: string[];
    beforeAll(async () => {
      other = await createTenant(h.app, `audit-${randomBytes(4).toString('hex')}`, 'owner');
      const writer = json<{ id: string; key: string }>(
        await h.app.inject({ method: 'POST', url: '/v1/api-keys', headers: bearer(other.key), payload: { name: 'writer', role: 'member' } }),
        201,
      );
      writerKeyId = writer.id;
      startedAt = new Date(Date.now() - 1000).toISOString();
      records = [];
      for (let i = 0; i < 5; i++) {
        const res = await h.app.inject({ method: 'POST', url: '/v1/collections/log/records', headers: bearer(writer.key), payload: { i } });
        records.push(json<Rec>(res, 201).id);
      }
      await h.app.inject({ method: 'PATCH', url: `/v1/collections/log/records/${records[0]}`, headers: bearer(writer.key), payload: { i: 100 } });
      await h.app.inject({ method: 'DELETE', url: `/v1/collections/log/records/${records[1]}`, headers: bearer(writer.key) });
      await h.app.inject({ method: 'POST', url: '/v1/counters/log-hits/increment', headers: bearer(writer.key) });
    });
    const get = <X>(url: string) => h.app.inject({ method: 'GET', url, headers: bearer(other.key) }).then((r) => json<X>(r));

    it('GET /v1/audit filters by action, resource, actor and time, newest first, and pages with a cursor', async () => {
      type Entry = { id: string; at: string; action: string; resourceType: string; resourceId: string; actor: { type: string; id: string }; requestId: string | null };
      const creates = await get<{ items: Entry[] }>('/v1/audit?action=record.create&limit=500');
      expect(creates.items.map((e) => e.resourceId)).toEqual([...records].reverse());
      for (const e of creates.items) {
        expect(e.actor).toEqual({ type: 'api_key', id: writerKeyId });
        expect(e.requestId).toEqual(expect.any(String));
      }
      const one = await get<{ items: Entry[] }>(`/v1/audit?resourceId=${records[0]}`);
      expect(one.items.map((e) => e.action)).toEqual(['record.update', 'record.create']);
      expect((await get<{ items: Entry[] }>('/v1/audit?action=record.delete')).items.map((e) => e.resourceId)).toEqual([records[1]]);
      expect((await get<{ items: Entry[] }>('/v1/audit?resourceType=counter')).items).toHaveLength(1);
      const byActor = await get<{ items: Entry[] }>(`/v1/audit?actorId=${writerKeyId}&actorType=api_key&limit=500`);
      // 5 creates, 1 update, 1 delete, 1 counter, and the collection created on first write.
      expect(byActor.items).toHaveLength(9);
      expect((await get<{ items: Entry[] }>(`/v1/audit?from=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`)).items).toEqual([]);
      expect((await get<{ items: Entry[] }>(`/v1/audit?to=${encodeURIComponent(startedAt)}&actorId=${writerKeyId}`)).items).toEqual([]);
      const paged: Entry[] = [];
      let cursor: string | null = null;
      do {
        const page: { items: Entry[]; nextCursor: string | null } = await get(`/v1/audit?actorId=${writerKeyId}&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        paged.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor);
      expect(paged.map((e) => e.id)).toEqual(byActor.items.map((e) => e.id));
      // Members may write but not read the audit log.
      const member = await h.app.inject({ method: 'POST', url: '/v1/api-keys', headers: bearer(other.key), payload: { name: 'm', role: 'member' } });
      expectProblem(await h.app.inject({ method: 'GET', url: '/v1/audit', headers: bearer(member.json<{ key: string }>().key) }), 403);
    });

    it('GET /v1/changes reads after a sequence, by type and collection, in order, with lastSeq', async () => {
      type Change = { seq: number; type: string; resourceType: string; resourceId: string; collection: string | null; version: number | null };
      const all = await get<{ items: Change[]; lastSeq: number }>('/v1/changes?limit=1000');
      const seqs = all.items.map((c) => c.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(new Set(seqs).size).toBe(seqs.length);
      expect(all.lastSeq).toBe(seqs.at(-1));
      const recs = await get<{ items: Change[] }>('/v1/changes?types=record&collection=log');
      expect(recs.items.map((c) => `${c.type}:${c.resourceId}`)).toEqual([
        ...records.map((id) => `record.create:${id}`),
        `record.update:${records[0]}`,
        `record.delete:${records[1]}`,
      ]);
      expect((await get<{ items: Change[] }>('/v1/changes?types=counter')).items.map((c) => c.resourceId)).toEqual(['log-hits']);
      const mid = seqs[Math.floor(seqs.length / 2)] as number;
      const after = await get<{ items: Change[]; lastSeq: number }>(`/v1/changes?after=${mid}&limit=2`);
      expect(after.items.map((c) => c.seq)).toEqual(seqs.filter((s) => s > mid).slice(0, 2));
      const end = await get<{ items: Change[]; lastSeq: number }>(`/v1/changes?after=${all.lastSeq}`);
      expect(end).toEqual({ items: [], lastSeq: all.lastSeq });
    });
  });
});
