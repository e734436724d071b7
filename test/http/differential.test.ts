/**
 * Differential test: the same generated requests go to an app on SQLite and to apps on
 * PostgreSQL (direct and through pgbouncer), over the same data. Every backend must answer
 * with the same status, never a 500, and where a listing answers 200 with the same record
 * ids in the same order; a stored record must read back the same. Inputs come from a seeded
 * generator (the seed is in each failure message) and lean on the edges: numbers at and past
 * a double's range, -0, int4 bounds, timestamps at and past years 0001-9999, NUL, unpaired
 * surrogates, names of Object.prototype, non-ASCII names, empty strings. Counts, aggregates
 * (groups, their order and their metrics) and `fields` projections must be equal too.
 */
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeCursor } from '../../src/core/cursor.js';
import { BACKENDS, backendAvailability, seededRandom, type Backend } from '../helpers/index.js';
import { isCi } from '../helpers/backend-names.js';
import { bearer, createTenant, openHttp, type HttpHarness, type HttpTenant } from './http-kit.js';

const SEED = Number(process.env.AGENTSTORE_DIFF_SEED ?? 20261203);
const CASES = 480;
const COLL = 'diff';

interface Target {
  readonly backend: Backend;
  readonly http: HttpHarness & { close(): Promise<void> };
  tenant: HttpTenant;
}

interface Request {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH';
  readonly url: string;
  /** Raw JSON text: lets a body hold 1e400 or an escaped lone surrogate. */
  readonly body?: string;
  /**
   * Compare the ids of a 200 listing, the record of a 201/200 write, the whole body (counts,
   * aggregates), or the ids and data of a listing or a record read with `fields`.
   */
  readonly compare: 'ids' | 'record' | 'status' | 'body' | 'projection';
}

// ---- the generator's vocabulary --------------------------------------------------------

const NUMBERS = [0, -0, 1, -1, 1.5, -2.25, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1, 2 ** 53, 2 ** 53 + 2, 1e20, 1e308, -1e308, 5e-324, 1.7976931348623157e308];
const RAW_NUMBERS = ['1e400', '-1e400', '12345678901234567890', '1E2', '0.1e1', '-0.0'];
const STRINGS = ['', 'a', 'b', 'A', 'open', 'clo', 'ü', 'é', '😀', 'z\u00e9', 'x\u0000', '\u0000', 'a\ud800', '\udc00', "'; drop table records; --", '{NULL}', 'null', '2026'];
const TIMESTAMPS = [
  '2026-01-01T00:00:00Z',
  '2020-06-15T12:30:00.5+02:00',
  '0001-01-01T00:00:00Z',
  '0001-01-01T00:00:00+00:01',
  '9999-12-31T23:59:59.999Z',
  '9999-12-31T23:59:59.999-00:01',
  '0000-01-01T00:00:00Z',
  '+275760-09-13T00:00:00Z',
  '-000001-01-01T00:00:00Z',
  '2026-02-30T00:00:00Z',
  '2026-13-01T00:00:00Z',
  '2016-12-31T23:59:60Z',
  '1',
  'Tue, 01 Jan 2026 00:00:00 GMT',
  '2026-01-01',
  '2026-01-01T00:00:00',
];
const FIELDS = [
  'n', 'f', 's', 'b', 'tags', 'nested.x', 'nested.y.z', 'NULL', 'null', 'Null', 'mixed', 'missing', 'constructor', 'valueOf', 'toString', '__proto__', 'hasOwnProperty',
  'data.id', 'data.n', 'id', 'createdAt', 'updatedAt', 'version', 'ünï', '', 'a..b', 'a.b.c.d.e.f.g.h.i', '$.n', 'n;drop', 'data.', '-n', 'x-y', '_u',
  'tags.0', 'tags.1', 'tags.01', 'tags.2', 'nested.0', 'mixed.0', 'a.0.1.2.3',
];
// Fields that hold one JSON type in the seed data, by that type. Where JSON types mix, the
// order differs by backend (PostgreSQL: null < string < number < boolean < array < object;
// SQLite: null < number and boolean < text), as docs/api.md says: listings sorted on mixed
// types, or continued from a cursor value of another type than the field's, are compared by
// status only.
type SortType = 'number' | 'string' | 'boolean' | 'none' | 'meta';
// A Map: in an object literal, `__proto__:` would set the prototype instead of a key.
const SORT_TYPES: ReadonlyMap<string, SortType> = new Map<string, SortType>([
  ['n', 'number'], ['f', 'number'], ['nested.x', 'number'], ['NULL', 'number'], ['constructor', 'number'],
  ['s', 'string'], ['null', 'string'], ['valueOf', 'string'], ['data.id', 'string'],
  ['b', 'boolean'], ['missing', 'none'], ['__proto__', 'none'],
  ['id', 'meta'], ['createdAt', 'meta'], ['updatedAt', 'meta'], ['version', 'meta'],
]);
const SORT_FIELDS = [...SORT_TYPES.keys()];
const OPS = ['eq', 'ne', 'gt', 'gte', 'lt', 'lte', 'in', 'contains', 'exists', 'bogus', 'constructor', '__proto__', 'toString'];

type Rand = () => number;
const pick = <T>(r: Rand, items: readonly T[]): T => items[Math.floor(r() * items.length)] as T;

function scalar(r: Rand): unknown {
  const kind = r();
  if (kind < 0.3) return pick(r, NUMBERS);
  if (kind < 0.55) return pick(r, STRINGS);
  if (kind < 0.75) return pick(r, TIMESTAMPS);
  if (kind < 0.85) return pick(r, [true, false, null]);
  return pick(r, [[], [1, 'a'], {}, { a: 1 }, ['x']]);
}

/** JSON text of a value; sometimes with a raw number JSON.stringify cannot write. */
function rawJson(r: Rand, value: unknown): string {
  const text = JSON.stringify(value) ?? 'null';
  return r() < 0.12 ? text.replace(/-?\d+(\.\d+)?(e[+-]?\d+)?/i, pick(r, RAW_NUMBERS)) : text;
}

function condition(r: Rand, depth: number): Record<string, unknown> {
  const roll = r();
  if (depth < 2 && roll < 0.12) return { [pick(r, ['and', 'or'])]: [condition(r, depth + 1), condition(r, depth + 1)] };
  if (depth < 2 && roll < 0.18) return { not: condition(r, depth + 1) };
  const field = pick(r, FIELDS);
  if (r() < 0.25) return { [field]: scalar(r) };
  const op = pick(r, OPS);
  const operand = op === 'in' ? (r() < 0.8 ? [scalar(r), scalar(r)] : scalar(r)) : op === 'exists' ? pick(r, [true, false, 1, null]) : scalar(r);
  return { [field]: { [op]: operand } };
}

function sortSpec(r: Rand, valid: boolean): string {
  const count = valid ? 1 + Math.floor(r() * 3) : 1 + Math.floor(r() * 4);
  const fields = new Set<string>();
  while (fields.size < count) fields.add(pick(r, valid ? SORT_FIELDS : [...SORT_FIELDS, ...FIELDS]));
  return [...fields].map((f) => (r() < 0.4 ? `-${f}` : f)).join(',');
}

/** The scope the service binds a records cursor to (src/modules/collections/sort.ts), to forge cursors that pass it. */
function scopeOf(sort: string, filterText: string | undefined): string {
  const meta: Record<string, string> = { id: '$id', createdAt: '$created_at', updatedAt: '$updated_at', version: '$version' };
  const keys = sort.split(',').map((part) => {
    const desc = part.startsWith('-');
    const name = desc ? part.slice(1) : part;
    const key = Object.hasOwn(meta, name) ? (meta[name] as string) : `json:${name.replace(/^data\./, '')}`;
    return (desc ? '-' : '') + key;
  });
  if (!keys.some((k) => k === '$id' || k === '-$id')) keys.push('$id');
  return `records:${COLL}:${keys.join(',')}:${filterText ?? ''}`;
}

const qs = (params: Record<string, string>) => new URLSearchParams(params).toString();

/** A count, an aggregate, or a read with `fields`, over the seeded collection. */
function queryRequest(r: Rand): Request {
  const records = `/v1/collections/${COLL}/records`;
  const roll = r();
  const filter: Record<string, string> = r() < 0.5 ? { filter: rawJson(r, condition(r, 0)) } : {};
  const some = (n: number, item: () => string) => Array.from({ length: 1 + Math.floor(r() * n) }, item).join(',');
  if (roll < 0.25) return { method: 'GET', url: `${records}:count?${qs(filter)}`, compare: 'body' };
  if (roll < 0.7) {
    const params: Record<string, string> = { ...filter };
    if (r() < 0.85) params.groupBy = some(2, () => pick(r, FIELDS));
    if (r() < 0.8) params.metrics = some(3, () => `${pick(r, ['sum', 'min', 'max', 'avg', 'sum', 'avg', 'count'])}:${pick(r, FIELDS)}`);
    if (r() < 0.3) params.limit = pick(r, ['1', '2', '3', '1000', '0', '1001']);
    return { method: 'GET', url: `${records}:aggregate?${qs(params)}`, compare: 'body' };
  }
  const fields = some(3, () => pick(r, [...FIELDS, 'nested', 'nested.y', 'tags']));
  if (roll < 0.88) return { method: 'GET', url: `${records}?${qs({ ...filter, fields })}`, compare: 'projection' };
  return { method: 'GET', url: `${records}/r${String(Math.floor(r() * 26)).padStart(3, '0')}?${qs({ fields })}`, compare: 'projection' };
}

/** JSON with every object's keys sorted: PostgreSQL's jsonb orders keys its own way. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    typeof v === 'object' && v !== null && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

function generate(r: Rand): Request {
  if (r() < 0.3) return queryRequest(r);
  const roll = r();
  const records = `/v1/collections/${COLL}/records`;
  if (roll < 0.45) {
    const filter = condition(r, 0);
    const text = rawJson(r, filter);
    const params: Record<string, string> = { filter: text };
    if (r() < 0.3) params.sort = sortSpec(r, true);
    return { method: 'GET', url: `${records}?${qs(params)}`, compare: 'ids' };
  }
  if (roll < 0.6) {
    const sort = sortSpec(r, r() < 0.6);
    const comparable = sort.split(',').every((p) => SORT_TYPES.has(p.replace(/^-/, '')));
    return { method: 'GET', url: `${records}?${qs({ sort, limit: String(1 + Math.floor(r() * 40)) })}`, compare: comparable ? 'ids' : 'status' };
  }
  if (roll < 0.72) {
    // A cursor with the right scope and forged values: each value from the edges.
    const sort = sortSpec(r, true);
    const fields = sort.split(',').map((p) => p.replace(/^-/, ''));
    if (!fields.includes('id')) fields.push('id');
    const values: unknown[] = fields.map((f) => (r() < 0.2 ? pick(r, ['r005', 'r010', '']) : scalar(r)));
    if (r() < 0.1) values.push('extra');
    const sameTypes = values.length === fields.length && fields.every((f, i) => {
      const v = values[i];
      const type = SORT_TYPES.get(f);
      return v === null || type === 'meta' || (type === 'none' ? false : typeof v === type);
    });
    return { method: 'GET', url: `${records}?${qs({ sort, cursor: encodeCursor(scopeOf(sort, undefined), values) })}`, compare: sameTypes ? 'ids' : 'status' };
  }
  if (roll < 0.8) {
    const params = pick<Record<string, string>>(r, [
      { limit: pick(r, ['0', '1', '500', '501', '-1', '1.5', 'abc', '1e2', '', '%00']) },
      { cursor: pick(r, ['', 'x', '!!!', 'e30', encodeCursor('counters', ['a']), 'a'.repeat(5000)]) },
      { unknown: '1' },
      { sort: pick(r, ['', ',', '-', 'a b', 'n,n', '\u0000', 'ü']) },
      { filter: pick(r, ['', '{', '[]', 'null', '1', '"x"', '{"n":1e400}', '{"n":{"gt":1e400}}', '{"and":[]}', '{"not":1}', '{"n":{}}']) },
    ]);
    return { method: 'GET', url: `${records}?${qs(params)}`, compare: 'status' };
  }
  if (roll < 0.9) {
    const route = pick(r, ['/v1/audit', '/v1/counters', '/v1/collections', '/v1/users', '/v1/api-keys', '/v1/changes']);
    const field = pick(r, ['actorId', 'actorType', 'action', 'resourceType', 'resourceId', 'from', 'to', 'cursor', 'collection', 'limit']);
    const value = field === 'from' || field === 'to' ? pick(r, TIMESTAMPS) : field === 'cursor' ? encodeCursor(pick(r, ['counters', 'collections', 'users', 'api_keys', `audit:${JSON.stringify([null, null, null, null, null, null, null])}`]), [scalar(r), scalar(r)].slice(0, r() < 0.5 ? 1 : 2)) : String(scalar(r));
    return { method: 'GET', url: `${route}?${qs({ [field]: value })}`, compare: 'status' };
  }
  // A record body into its own collection, so the listings' data stays the same.
  const body: Record<string, unknown> = {};
  const names = ['v', 'w', 'NULL', 'ü', '', 'constructor', 'toString', '__proto__', 'x\u0000', 'nested'];
  for (let i = 0; i < 1 + Math.floor(r() * 3); i++) {
    // defineProperty: assigning body.__proto__ would set the prototype, not a key.
    Object.defineProperty(body, pick(r, names), { value: r() < 0.2 ? { inner: scalar(r) } : scalar(r), enumerable: true, writable: true, configurable: true });
  }
  let text = rawJson(r, body);
  if (r() < 0.1) text = text.replace('{', '{"s":"\\ud800",');
  if (r() < 0.1) text = text.replace('{', '{"__proto__":{"x":1},');
  return { method: 'POST', url: '/v1/collections/bodies/records', body: text, compare: 'record' };
}

// ---- the data every backend holds -------------------------------------------------------

function seedRecords(): Array<Record<string, unknown>> {
  const r = seededRandom(SEED ^ 0x5eed);
  const out: Array<Record<string, unknown>> = [];
  for (let i = 0; i < 24; i++) {
    const rec: Record<string, unknown> = { id: `r${String(i).padStart(3, '0')}` };
    if (r() < 0.85) rec.n = pick(r, [...NUMBERS, i, -i, i / 4]);
    if (r() < 0.8) rec.f = i % 3 === 0 ? 2 ** 31 + i : -1.5 * i;
    if (r() < 0.85) rec.s = pick(r, ['', 'a', 'b', 'A', 'open', 'closed', 'ü', 'é', '😀', 'z\u00e9', '{NULL}', '2026-01-01T00:00:00Z', "it's"]) + (i % 2 ? '' : String(i));
    if (r() < 0.7) rec.b = r() < 0.5;
    if (r() < 0.7) rec.tags = [pick(r, ['x', 'y', 'open']), pick(r, [1, 2, true, null])];
    if (r() < 0.7) rec.nested = { x: i % 5, y: r() < 0.5 ? { z: 'deep' } : null };
    if (r() < 0.5) rec.NULL = i % 4;
    if (r() < 0.5) rec.null = `lower${i % 3}`;
    if (r() < 0.6) rec.mixed = pick(r, [1, '1', true, null, [1], { a: 1 }]);
    // Through a string-keyed setter: TypeScript types rec.constructor as Function.
    const set = (key: string, value: unknown) => Object.defineProperty(rec, key, { value, enumerable: true, writable: true, configurable: true });
    if (r() < 0.3) set('constructor', i);
    if (r() < 0.3) set('valueOf', `v${i % 2}`);
    if (r() < 0.2) set('toString', { x: i });
    out.push(rec);
  }
  return out;
}

const available = BACKENDS.filter((b) => backendAvailability(b).available);
const missing = BACKENDS.filter((b) => !backendAvailability(b).available).map((b) => `${b.name}: ${backendAvailability(b).reason ?? 'unavailable'}`);
const runnable = available.length >= 2 && available.some((b) => b.dialect === 'sqlite') && available.some((b) => b.dialect === 'postgres');

const suite = runnable ? describe : isCi() ? describe : describe.skip;
const title = runnable || isCi() ? `differential: ${available.map((b) => b.name).join(' = ')}` : `differential (skipped: needs sqlite and a PostgreSQL backend; ${missing.join('; ')})`;

suite(title, () => {
  const targets: Target[] = [];
  beforeAll(async () => {
    if (!runnable) return;
    for (const backend of available) {
      const http = await openHttp(backend);
      const target: Target = { backend, http, tenant: await createTenant(http.app, `diff-${backend.name}`, 'owner') };
      targets.push(target);
      for (const rec of seedRecords()) {
        const res = await send(target, { method: 'POST', url: `/v1/collections/${COLL}/records`, body: JSON.stringify(rec), compare: 'record' });
        expect(res.statusCode, res.body).toBe(201);
      }
      // Declared indexes must not change any answer.
      expect((await send(target, { method: 'PUT', url: `/v1/collections/${COLL}`, body: JSON.stringify({ indexes: ['n', 's', 'NULL', 'null', 'nested.x', 'constructor'] }), compare: 'status' })).statusCode).toBe(200);
      expect((await send(target, { method: 'POST', url: '/v1/counters/c1/increment', compare: 'status' })).statusCode).toBe(200);
    }
  }, 120_000);
  afterAll(async () => {
    for (const t of targets) await t.http.close();
  });

  function send(target: Target, request: Request): Promise<LightMyRequestResponse> {
    return target.http.app.inject({
      method: request.method,
      url: request.url,
      headers: { ...bearer(target.tenant.key), ...(request.body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(request.body !== undefined ? { payload: request.body } : {}),
    });
  }

  /** What must be equal across backends: the status, and the ids or the stored data. */
  function outcome(request: Request, res: LightMyRequestResponse): unknown {
    if (res.statusCode >= 300 || request.compare === 'status') return { status: res.statusCode };
    if (request.compare === 'body') return { status: res.statusCode, body: canonical(res.json()) };
    if (request.compare === 'projection') {
      const read = res.json<{ items?: Array<{ id: string; data: unknown }>; id?: string; data?: unknown }>();
      return { status: res.statusCode, read: canonical(read.items ? read.items.map((i) => [i.id, i.data]) : [read.id, read.data]) };
    }
    const body = res.json<{ items?: Array<{ id: string }>; data?: unknown; nextCursor?: string | null }>();
    if (request.compare === 'ids') return { status: res.statusCode, ids: body.items?.map((i) => i.id), more: body.nextCursor !== null };
    const { id: _id, ...data } = (body.data ?? {}) as Record<string, unknown>;
    return { status: res.statusCode, data };
  }

  it.runIf(!runnable && isCi())('has sqlite and a PostgreSQL backend available (CI=true: a missing service is a failure)', () => {
    throw new Error(`the differential test needs sqlite and PostgreSQL: ${missing.join('; ')}`);
  });

  it.runIf(runnable)(`answers ${CASES} generated requests alike on every backend (seed ${SEED})`, async () => {
    const r = seededRandom(SEED);
    const differences: string[] = [];
    const statuses = new Map<number, number>();
    for (let i = 0; i < CASES; i++) {
      const request = generate(r);
      const results = await Promise.all(targets.map(async (t) => ({ t, res: await send(t, request) })));
      const outcomes = results.map(({ res }) => outcome(request, res));
      const first = JSON.stringify(outcomes[0]);
      statuses.set(results[0]?.res.statusCode ?? 0, (statuses.get(results[0]?.res.statusCode ?? 0) ?? 0) + 1);
      const server = results.find(({ res }) => res.statusCode >= 500);
      if (server || outcomes.some((o) => JSON.stringify(o) !== first)) {
        differences.push(
          `#${i} ${request.method} ${decodeURIComponent(request.url)}${request.body ? ` ${request.body}` : ''}\n` +
            results.map(({ t, res }, k) => `    ${t.backend.name}: ${JSON.stringify(outcomes[k])} ${res.statusCode >= 300 ? res.body.slice(0, 200) : ''}`).join('\n'),
        );
      }
    }
    expect(differences, `seed ${SEED}: ${differences.length} of ${CASES} differ\n${differences.slice(0, 15).join('\n')}`).toEqual([]);
    // The generator must reach both sides of the edge: many refusals and many answers.
    expect(statuses.get(400) ?? 0).toBeGreaterThan(CASES / 5);
    expect(statuses.get(200) ?? 0).toBeGreaterThan(CASES / 5);
  }, 120_000);

  it.runIf(runnable)('walks every page of listings alike on every backend', async () => {
    const r = seededRandom(SEED + 1);
    for (let i = 0; i < 25; i++) {
      const sort = sortSpec(r, true);
      const limit = String(1 + Math.floor(r() * 7));
      const walks = await Promise.all(
        targets.map(async (t) => {
          const ids: string[] = [];
          let cursor: string | null = null;
          for (let page = 0; page < 40; page++) {
            const res = await send(t, { method: 'GET', url: `/v1/collections/${COLL}/records?${qs({ sort, limit, ...(cursor ? { cursor } : {}) })}`, compare: 'ids' });
            expect(res.statusCode, res.body).toBe(200);
            const body = res.json<{ items: Array<{ id: string }>; nextCursor: string | null }>();
            ids.push(...body.items.map((x) => x.id));
            cursor = body.nextCursor;
            if (!cursor) break;
          }
          return ids;
        }),
      );
      for (const walk of walks.slice(1)) expect(walk, `sort=${sort} limit=${limit}`).toEqual(walks[0]);
      expect(new Set(walks[0]).size, `sort=${sort}`).toBe(24);
    }
  }, 60_000);
});
