/**
 * Client input that PostgreSQL refused as a 500 (while SQLite answered 200), or that either
 * backend took the wrong way: each is a 400 problem+json naming the field on every backend,
 * and changes nothing (issue 9, part 2). Values are checked against the real range of their
 * column at the edge, cursors by type, text parameters for NUL and unpaired surrogates, and
 * names from a request never resolve to Object.prototype.
 */
import { randomBytes } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { encodeCursor } from '../../src/core/cursor.js';
import { forEachBackend } from '../helpers/index.js';
import { SERVICE_KEY, bearer, countEverything, createTenant, expectProblem, useHttp, type HttpTenant } from './http-kit.js';

interface Rec {
  id: string;
  data: Record<string, unknown>;
}

const PROTOTYPE_NAMES = ['constructor', 'toString', 'valueOf', 'hasOwnProperty', '__proto__', 'isPrototypeOf', '__defineGetter__'];

forEachBackend('http edge input', (backend) => {
  const h = useHttp(backend);
  let T: HttpTenant;
  const coll = 'edge';

  const req = (method: string, url: string, payload?: unknown, headers: Record<string, string> = {}) =>
    h.app.inject({
      method: method as 'GET',
      url,
      headers: { ...bearer(T.key), ...(typeof payload === 'string' ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(payload === undefined ? {} : { payload: payload as string }),
    });
  const list = (query: Record<string, string>, collection = coll) => req('GET', `/v1/collections/${collection}/records?${new URLSearchParams(query).toString()}`);
  const ids = (res: LightMyRequestResponse): string[] => {
    expect(res.statusCode, res.body).toBe(200);
    return res.json<{ items: Rec[] }>().items.map((r) => r.id);
  };

  beforeAll(async () => {
    T = await createTenant(h.app, `edge-${randomBytes(4).toString('hex')}`, 'owner');
    for (const [id, data] of [
      ['a', { n: 1, s: 'x', NULL: 'upper', null: 'lower' }],
      ['b', { n: 2, valueOf: 1, constructor: 'c', toString: { x: 1 } }],
      ['c', { n: 3, flag: true }],
    ] as const) {
      expect((await req('POST', `/v1/collections/${coll}/records`, { id, ...data })).statusCode).toBe(201);
    }
  });

  /** In a describe of refused requests: each test must leave every table as it was. */
  const changesNothing = () => {
    let before: Record<string, number>;
    beforeEach(async () => {
      before = await countEverything(h.store, [T.id]);
    });
    afterEach(async () => {
      expect(await countEverything(h.store, [T.id])).toEqual(before);
    });
  };

  describe('filters: each value within its column range, each operator where it applies', () => {
    changesNothing();
    it.each([
      ['version past int8 (22003 on PostgreSQL)', { version: 1e20 }],
      ['version past int4', { version: 2 ** 31 }],
      ['version below int4', { version: { gt: -(2 ** 31) - 1 } }],
      ['version not an integer', { version: 1.5 }],
      ['version in a list past int4', { version: { in: [1, 2 ** 40] } }],
      ['contains on a timestamp (42883 on PostgreSQL)', { updatedAt: { contains: '2026' } }],
      ['contains on the version', { version: { contains: '1' } }],
      ['a year past 9999 (22009 on PostgreSQL)', { createdAt: { gt: '+275760-09-13T00:00:00Z' } }],
      ['year 0000 (no year 0 on PostgreSQL)', { createdAt: { gte: '0000-01-01T00:00:00Z' } }],
      ['an offset that moves year 0001 into year 0', { createdAt: { gte: '0001-01-01T00:00:00+01:00' } }],
      ['February 30 (Date.parse moves it to March 2)', { createdAt: '2026-02-30T00:00:00Z' }],
      ['a bare number Date.parse reads as 2001', { updatedAt: { lt: '1' } }],
      ['an RFC 2822 date', { createdAt: { lt: 'Tue, 01 Jan 2026 00:00:00 GMT' } }],
      ['a leap second', { createdAt: { lt: '2016-12-31T23:59:60Z' } }],
      ['a timestamp that is not a string', { createdAt: 1700000000000 }],
      ['NUL in an id', { id: 'a\u0000' }],
      ['an unpaired surrogate in a value', { s: { gt: '\ud800' } }],
    ])('%s is a 400 on filter', async (_what, filter) => {
      expectProblem(await list({ filter: JSON.stringify(filter) }), 400, { code: 'agentstore.validation', field: 'filter' });
    });

    it('a number past a double in a filter (JSON.parse gives Infinity) is a 400', async () => {
      expectProblem(await list({ filter: '{"n":{"lt":1e400}}' }), 400, { field: 'filter' });
      expectProblem(await list({ filter: '{"version":-1e400}' }), 400, { field: 'filter' });
    });

    it('timestamps in range, in any RFC 3339 form, compare as instants', async () => {
      expect(await ids(await list({ filter: JSON.stringify({ createdAt: { gte: '0001-01-01T00:00:00Z' } }) }))).toEqual(['a', 'b', 'c']);
      expect(await ids(await list({ filter: JSON.stringify({ createdAt: { lt: '9999-12-31T23:59:59.999Z' } }) }))).toEqual(['a', 'b', 'c']);
      expect(await ids(await list({ filter: JSON.stringify({ createdAt: { gt: '9999-12-31T23:59:59+01:00' } }) }))).toEqual([]);
      expect(await ids(await list({ filter: JSON.stringify({ updatedAt: { gt: '2000-01-01t00:00:00.123456789-05:30' } }) }))).toEqual(['a', 'b', 'c']);
      expect(await ids(await list({ filter: JSON.stringify({ version: { in: [1, 2 ** 31 - 1, -(2 ** 31)] } }) }))).toEqual(['a', 'b', 'c']);
      expect(await ids(await list({ filter: JSON.stringify({ id: { contains: 'b' } }) }))).toEqual(['b']);
    });
  });

  describe('forged cursors are 400s, checked by the type of their column', () => {
    changesNothing();
    const scope = (sort: string) => `records:${coll}:${sort}:`;
    it.each([
      ['a date Date.parse accepts: "1" (22007 on PostgreSQL)', 'createdAt', '$created_at,$id', ['1', 'a']],
      ['an RFC 2822 date', 'createdAt', '$created_at,$id', ['Tue, 01 Jan 2026 00:00:00 GMT', 'a']],
      ['a date in another RFC 3339 form than the API writes', '-updatedAt', '-$updated_at,$id', ['2026-01-01T00:00:00Z', 'a']],
      ['a date past year 9999', 'createdAt', '$created_at,$id', ['+275760-09-13T00:00:00.000Z', 'a']],
      ['year 0000', 'createdAt', '$created_at,$id', ['0000-01-01T00:00:00.000Z', 'a']],
      ['a timestamp as a number', 'createdAt', '$created_at,$id', [0, 'a']],
      ['NUL in the id', 'createdAt', '$created_at,$id', ['2026-01-01T00:00:00.000Z', 'a\u0000']],
      ['an unpaired surrogate in the id', 'id', '$id', ['\udc00']],
      ['a version past int4', 'version', '$version,$id', [2 ** 31, 'a']],
      ['a version that is text', 'version', '$version,$id', ['1', 'a']],
      ['NUL in a data value', 's', 'json:s,$id', ['\u0000', 'a']],
      ['NUL in a nested data value', 's', 'json:s,$id', [{ k: ['\u0000'] }, 'a']],
      ['a missing value', 'createdAt', '$created_at,$id', ['2026-01-01T00:00:00.000Z']],
      ['one value too many', 'id', '$id', ['a', 'b']],
    ])('%s', async (_what, sort, keys, values) => {
      expectProblem(await list({ sort, cursor: encodeCursor(scope(keys), values) }), 400, { code: 'agentstore.validation', field: 'cursor' });
    });

    it('a cursor value of any JSON type the column can hold is a position, on every backend', async () => {
      const cursor = (values: unknown[]) => encodeCursor(scope('json:s,$id'), values);
      for (const value of [null, 'x', 5, -0, 1e308, true, false, { a: 1 }, ['x'], '']) {
        expect((await list({ sort: 's', cursor: cursor([value, 'a']) })).statusCode, JSON.stringify(value)).toBe(200);
      }
      expect(await ids(await list({ sort: 'createdAt', cursor: encodeCursor(scope('$created_at,$id'), ['0001-01-01T00:00:00.000Z', '']) }))).toEqual(['a', 'b', 'c']);
      expect(await ids(await list({ sort: 'version', cursor: encodeCursor(scope('$version,$id'), [2 ** 31 - 1, 'z']) }))).toEqual([]);
    });

    it('paging by a data field still follows its cursors to the end', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res = await list({ sort: '-n', limit: '1', ...(cursor ? { cursor } : {}) });
        expect(res.statusCode, res.body).toBe(200);
        const page = res.json<{ items: Rec[]; nextCursor: string | null }>();
        seen.push(...page.items.map((r) => r.id));
        cursor = page.nextCursor;
      } while (cursor);
      expect(seen).toEqual(['c', 'b', 'a']);
    });
  });

  describe('the audit log and the other listings', () => {
    changesNothing();
    it.each(['actorId', 'actorType', 'action', 'resourceType', 'resourceId'])('NUL or an unpaired surrogate in audit %s is a 400 naming it (22021 on PostgreSQL)', async (field) => {
      for (const value of ['%00', 'a%00b']) {
        expectProblem(await req('GET', `/v1/audit?${field}=${value}`), 400, { field: new RegExp(`${field}$`) });
      }
    });

    it.each([
      ['0000-01-01T00:00:00Z', 'year 0000 (22008 on PostgreSQL)'],
      ['2026-02-30T00:00:00Z', 'February 30'],
      ['+275760-09-13T00:00:00Z', 'past year 9999'],
    ])('audit from/to %s (%s) is a 400', async (value) => {
      for (const field of ['from', 'to']) {
        expectProblem(await req('GET', `/v1/audit?${field}=${encodeURIComponent(value)}`), 400, { field: new RegExp(`${field}$`) });
      }
    });

    it('audit from/to in range answer 200', async () => {
      const res = await req('GET', `/v1/audit?from=${encodeURIComponent('0001-01-01T00:00:00Z')}&to=${encodeURIComponent('9999-12-31T23:59:59.999Z')}&limit=1`);
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json<{ items: unknown[] }>().items).toHaveLength(1);
    });

    it('an audit cursor ["x","y"] (22007 on PostgreSQL) and other forged ones are 400s', async () => {
      const scope = `audit:${JSON.stringify([null, null, null, null, null, null, null])}`;
      for (const values of [['x', 'y'], ['2026-01-01T00:00:00.000Z', 'a\u0000'], ['2026-01-01T00:00:00.000Z'], [1, 'y']]) {
        expectProblem(await req('GET', `/v1/audit?cursor=${encodeCursor(scope, values)}`), 400, { field: 'cursor' });
      }
      expect((await req('GET', `/v1/audit?cursor=${encodeCursor(scope, ['9999-01-01T00:00:00.000Z', 'z'])}`)).statusCode).toBe(200);
    });

    it.each([
      ['/v1/counters', 'counters'],
      ['/v1/users', 'users'],
      ['/v1/api-keys', 'api_keys'],
      ['/v1/collections', 'collections'],
    ])('a cursor holding U+0000 on %s is a 400 (22021 on PostgreSQL)', async (url, scope) => {
      for (const value of ['\u0000', 'a\u0000', '\ud800', 5, null]) {
        expectProblem(await req('GET', `${url}?cursor=${encodeCursor(scope, [value])}`), 400, { field: 'cursor' });
      }
      expect((await req('GET', `${url}?cursor=${encodeCursor(scope, ['a'])}`)).statusCode).toBe(200);
    });

    it('a cursor holding U+0000 on /v1/tenants (service key) is a 400', async () => {
      const res = await h.app.inject({ method: 'GET', url: `/v1/tenants?cursor=${encodeCursor('tenants', ['\u0000'])}`, headers: bearer(SERVICE_KEY) });
      expectProblem(res, 400, { field: 'cursor' });
    });

    it('NUL or an unpaired surrogate in a JSON body of any route is a 400 (tenant and key names were 22021, a 500)', async () => {
      for (const name of ['a\\u0000', 'a\\ud800', '\\udc00b']) {
        const service = await h.app.inject({ method: 'POST', url: '/v1/tenants', headers: { ...bearer(SERVICE_KEY), 'content-type': 'application/json' }, payload: `{"name":"${name}"}` });
        expectProblem(service, 400, { code: 'agentstore.validation', field: /name$/ });
        expectProblem(await req('POST', '/v1/api-keys', `{"name":"${name}","role":"viewer"}`), 400, { field: /name$/ });
      }
      expectProblem(await req('POST', '/v1/api-keys', '{"name\\u0000":"k","role":"viewer"}'), 400);
    });

    it('NUL in any query parameter or path parameter of any route is a 400, before the route runs', async () => {
      expectProblem(await req('GET', '/v1/changes?collection=%00'), 400);
      expectProblem(await req('GET', `/v1/collections/${coll}/records?sort=%00`), 400);
      expectProblem(await req('GET', '/v1/counters/a%00b'), 400);
      expectProblem(await req('GET', `/v1/collections/${coll}/records/a%00`), 400);
    });
  });

  describe('names of Object.prototype are data fields like any other', () => {
    it.each(PROTOTYPE_NAMES)('filter on %s reads the data field of that name', async (name) => {
      const expected = name === 'valueOf' || name === 'constructor' || name === 'toString' ? ['b'] : [];
      expect(await ids(await list({ filter: JSON.stringify({ [name]: { exists: true } }) }))).toEqual(expected);
      expect(await ids(await list({ filter: JSON.stringify({ not: { [name]: { exists: true } } }) }))).toEqual(['a', 'b', 'c'].filter((id) => !expected.includes(id)));
      expect(await ids(await list({ filter: `{"${name}":{"eq":null}}` }))).toEqual([]);
      expect(await ids(await list({ filter: JSON.stringify({ [`data.${name}`]: { exists: false } }) }))).toEqual(['a', 'b', 'c'].filter((id) => !expected.includes(id)));
    });

    it.each(PROTOTYPE_NAMES)('sort=%s sorts by the data field (was a 500)', async (name) => {
      const res = await list({ sort: `-${name}`, limit: '2' });
      expect(res.statusCode, res.body).toBe(200);
      const page = res.json<{ items: Rec[]; nextCursor: string | null }>();
      if (name === 'valueOf' || name === 'constructor' || name === 'toString') expect(page.items[0]?.id).toBe('b');
      expect(page.nextCursor).not.toBeNull();
      expect((await list({ sort: `-${name}`, cursor: page.nextCursor as string })).statusCode).toBe(200);
    });

    it('an operator named after Object.prototype is an unknown operator', async () => {
      for (const op of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
        expectProblem(await list({ filter: `{"n":{"${op}":1}}` }), 400, { field: 'filter' });
      }
    });

    it('indexes on those names are data indexes, and the filter still finds the records', async () => {
      const res = await req('PUT', '/v1/collections/protoidx', { indexes: PROTOTYPE_NAMES });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json<{ indexes: string[] }>().indexes).toEqual(PROTOTYPE_NAMES);
      expect((await req('POST', '/v1/collections/protoidx/records', { id: 'p', constructor: 1, valueOf: 'v' })).statusCode).toBe(201);
      expect(await ids(await list({ filter: JSON.stringify({ constructor: 1, valueOf: 'v' }) }, 'protoidx'))).toEqual(['p']);
      expect(await ids(await list({ filter: JSON.stringify({ toString: { exists: true } }) }, 'protoidx'))).toEqual([]);
      // A record attribute is still refused as an index.
      expectProblem(await req('PUT', '/v1/collections/protoidx', { indexes: ['createdAt'] }), 400, { field: '/indexes/0' });
      expect((await req('DELETE', '/v1/collections/protoidx')).statusCode).toBe(204);
    });

    it('a merge patch on a prototype name sets the field, as on any name', async () => {
      const created = await req('POST', '/v1/collections/protopatch/records', { keep: 1 });
      expect(created.statusCode, created.body).toBe(201);
      const res = await req('PATCH', `/v1/collections/protopatch/records/${created.json<Rec>().id}`, { constructor: { a: 1 }, toString: 'x' });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json<Rec>().data).toEqual({ keep: 1, constructor: { a: 1 }, toString: 'x' });
      expect((await req('DELETE', '/v1/collections/protopatch')).statusCode).toBe(204);
    });
  });

  describe('a number past a double is refused, not stored as null', () => {
    describe('refused', () => {
      changesNothing();
      it.each([
        ['POST', `/v1/collections/${'edge'}/records`, '{"n":1e400}', '/n'],
        ['POST', `/v1/collections/${'edge'}/records`, '{"a":{"b":[1,-1e999]}}', '/a/b/1'],
        ['PUT', `/v1/collections/${'edge'}/records/a`, '{"n":1e400}', '/n'],
        ['PATCH', `/v1/collections/${'edge'}/records/a`, '{"m":{"x":-1e400}}', '/m/x'],
      ])('%s %s %s is a 400 naming the path', async (method, url, body, pointer) => {
        const problem = expectProblem(await req(method, url, body), 400, { code: 'agentstore.validation', field: 'body' });
        expect(problem.detail).toContain(pointer);
        expect(problem.detail).toMatch(/finite/);
      });
    });

    it('a schema holding 1e400 is refused too, and 1.7e308 is stored as it is', async () => {
      expectProblem(await req('PUT', '/v1/collections/bigschema', '{"schema":{"type":"object","properties":{"n":{"maximum":1e400}}}}'), 400, { field: '/schema' });
      const res = await req('POST', `/v1/collections/${coll}/records`, '{"id":"big","n":1.7e308,"m":-0}');
      expect(res.statusCode, res.body).toBe(201);
      expect(res.json<Rec>().data).toMatchObject({ n: 1.7e308, m: 0 });
      expect(await ids(await list({ filter: '{"n":{"gt":1e308}}' }))).toEqual(['big']);
      expect((await req('DELETE', `/v1/collections/${coll}/records/big`)).statusCode).toBe(204);
    });
  });

  describe('a data field named NULL', () => {
    it('is found by a filter on every backend (PostgreSQL read {NULL} as an SQL NULL element)', async () => {
      expect(await ids(await list({ filter: JSON.stringify({ NULL: 'upper' }) }))).toEqual(['a']);
      expect(await ids(await list({ filter: JSON.stringify({ null: 'lower' }) }))).toEqual(['a']);
      expect(await ids(await list({ filter: JSON.stringify({ Null: { exists: true } }) }))).toEqual([]);
      expect(await ids(await list({ filter: JSON.stringify({ NULL: { contains: 'pp' } }) }))).toEqual(['a']);
      expect(await ids(await list({ sort: '-NULL', limit: '1' }))).toEqual(['a']);
    });

    it('is found through a declared index on it', async () => {
      expect((await req('PUT', '/v1/collections/nullidx', { indexes: ['NULL', 'x.null'] })).statusCode).toBe(200);
      expect((await req('POST', '/v1/collections/nullidx/records', { id: 'n1', NULL: 5, x: { null: 'y' } })).statusCode).toBe(201);
      expect(await ids(await list({ filter: JSON.stringify({ NULL: 5, 'x.null': 'y' }) }, 'nullidx'))).toEqual(['n1']);
      expect((await req('DELETE', '/v1/collections/nullidx')).statusCode).toBe(204);
    });
  });
});
