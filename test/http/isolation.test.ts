/**
 * Tenant isolation over HTTP, one row per /v1 route (PocketBase's ApiScenario with
 * NotExpectedContent): tenant B, with an admin key, aims every route at tenant A's ids and
 * names. B gets 404 (never 403, never the data), B's lists and feeds never carry A's
 * strings, and B's writes under A's names land in B, leaving A exactly as it was.
 *
 * The table must name every /v1 route the app registers: a new route fails the first test
 * until it gets a row here.
 */
import { randomBytes } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { beforeAll, describe, expect, it } from 'vitest';
import { forEachBackend } from '../helpers/index.js';
import { TEST_ENCRYPTION_KEY } from '../helpers/fixtures.js';
import { SERVICE_KEY, bearer, countEverything, createKey, createTenant, expectProblem, listRoutes, openSse, useHttp, type HttpTenant } from './http-kit.js';

type Phase = 'probe' | 'write';

interface World {
  A: HttpTenant;
  B: HttpTenant;
  r: string;
  acoll: string;
  arec: string;
  arec2: string;
  /** A record of A's that no row writes under B. */
  arec3: string;
  asecret: string;
  acount: string;
  auserId: string;
  auserEmail: string;
  akeyId: string;
  akeyName: string;
  akeySecret: string;
  asession: string;
  bcoll: string;
  buserEmail: string;
  aconv: string;
  aagent: string;
  aenduser: string;
  /** A word only in A's message. */
  aword: string;
  ablock: string;
  /** A's agent (the agents module's: `aagent` above is a conversation's free-text agent id). */
  aagentId: string;
  aagentName: string;
  atag: string;
  asecretValue: string;
  aproject: string;
  abranch: string;
  atask: string;
  /** B's own task, for moves and dependencies aimed at A's tasks. */
  btask: string;
  /** Every string of A's that B must never see. */
  markers: string[];
}

interface Ctx {
  w: World;
  /** B's request (B's admin key unless headers say otherwise). */
  b(method: string, url: string, payload?: unknown, headers?: Record<string, string>): Promise<LightMyRequestResponse>;
  /** A's request with A's admin key. */
  a(method: string, url: string, payload?: unknown): Promise<LightMyRequestResponse>;
  /** Asserts none of A's strings is in the response, except those B itself sent. */
  noLeak(res: LightMyRequestResponse, sent?: readonly string[]): void;
  eventsUrl(): Promise<string>;
  /** A wrote on purpose: take A's row counts again. */
  resnapshotA(): Promise<void>;
}

interface Row {
  readonly phase: Phase;
  readonly run: (c: Ctx) => Promise<void>;
}

const password = 'correct horse battery staple';

const notFound = (c: Ctx, res: LightMyRequestResponse, sent: readonly string[]) => {
  expectProblem(res, 404, { code: 'agentstore.not_found' });
  c.noLeak(res, sent);
};

const forbiddenService = (c: Ctx, res: LightMyRequestResponse, sent: readonly string[] = []) => {
  expectProblem(res, 403, { code: 'agentstore.forbidden' });
  c.noLeak(res, sent);
};

const items = (res: LightMyRequestResponse): unknown[] => {
  expect(res.statusCode, res.body).toBe(200);
  return res.json<{ items: unknown[] }>().items;
};

const TABLE: Record<string, Row> = {
  // --- service routes: a tenant key is refused, whoever's id it names --------------------
  'POST /v1/tenants': { phase: 'probe', run: async (c) => forbiddenService(c, await c.b('POST', '/v1/tenants', { name: 'from-b' })) },
  'GET /v1/tenants': { phase: 'probe', run: async (c) => forbiddenService(c, await c.b('GET', '/v1/tenants')) },
  'GET /v1/tenants/:tenantId': { phase: 'probe', run: async (c) => forbiddenService(c, await c.b('GET', `/v1/tenants/${c.w.A.id}`), [c.w.A.id]) },
  'POST /v1/tenants/:tenantId/api-keys': {
    phase: 'probe',
    run: async (c) => forbiddenService(c, await c.b('POST', `/v1/tenants/${c.w.A.id}/api-keys`, { name: 'b-into-a', role: 'owner' }), [c.w.A.id]),
  },
  'POST /v1/tenants/:tenantId/users': {
    phase: 'probe',
    run: async (c) => forbiddenService(c, await c.b('POST', `/v1/tenants/${c.w.A.id}/users`, { email: 'b-into-a@example.com', password, role: 'owner' }), [c.w.A.id]),
  },

  // --- sessions ------------------------------------------------------------------------
  'POST /v1/auth/login': {
    phase: 'probe',
    run: async (c) => {
      // B's user's credentials against A's tenant, and A's user's email under B's tenant.
      const intoA = await c.b('POST', '/v1/auth/login', { tenantId: c.w.A.id, email: c.w.buserEmail, password }, {});
      expectProblem(intoA, 401, { code: 'agentstore.unauthenticated' });
      c.noLeak(intoA, [c.w.A.id]);
      const asA = await c.b('POST', '/v1/auth/login', { tenantId: c.w.B.id, email: c.w.auserEmail, password }, {});
      expectProblem(asA, 401, { code: 'agentstore.unauthenticated' });
      c.noLeak(asA, [c.w.auserEmail]);
    },
  },
  'GET /v1/auth/me': {
    phase: 'probe',
    run: async (c) => {
      const res = await c.b('GET', '/v1/auth/me');
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json<{ tenantId: string }>().tenantId).toBe(c.w.B.id);
      c.noLeak(res);
    },
  },
  'POST /v1/auth/logout': {
    phase: 'write',
    run: async (c) => {
      const login = await c.b('POST', '/v1/auth/login', { tenantId: c.w.B.id, email: c.w.buserEmail, password }, {});
      expect(login.statusCode, login.body).toBe(200);
      const session = login.json<{ token: string }>().token;
      const out = await c.b('POST', '/v1/auth/logout', undefined, bearer(session));
      expect(out.statusCode, out.body).toBe(204);
      // Only B's session ended.
      expect((await c.b('GET', '/v1/auth/me', undefined, bearer(session))).statusCode).toBe(401);
      const aMe = await c.b('GET', '/v1/auth/me', undefined, bearer(c.w.asession));
      expect(aMe.statusCode, aMe.body).toBe(200);
      expect(aMe.json<{ tenantId: string }>().tenantId).toBe(c.w.A.id);
    },
  },

  // --- audit and the change feed --------------------------------------------------------
  'GET /v1/audit': {
    phase: 'probe',
    run: async (c) => {
      const all = await c.b('GET', '/v1/audit?limit=500');
      expect(items(all).length).toBeGreaterThan(0);
      c.noLeak(all);
      for (const q of [`resourceId=${c.w.arec}`, `actorId=${c.w.A.keyId}`, `resourceId=${c.w.auserId}`]) {
        const res = await c.b('GET', `/v1/audit?${q}`);
        expect(items(res), q).toEqual([]);
        c.noLeak(res);
      }
    },
  },
  'GET /v1/changes': {
    phase: 'probe',
    run: async (c) => {
      const all = await c.b('GET', '/v1/changes?limit=1000');
      expect(items(all).length).toBeGreaterThan(0);
      c.noLeak(all);
      const res = await c.b('GET', `/v1/changes?collection=${c.w.acoll}`);
      expect(items(res)).toEqual([]);
      c.noLeak(res);
    },
  },
  'GET /v1/events': {
    phase: 'probe',
    run: async (c) => {
      const sse = await openSse(`${await c.eventsUrl()}/v1/events?after=0`, bearer(c.w.B.key));
      try {
        expect(sse.status).toBe(200);
        // A writes while B listens; then B writes a marker of its own, which must be the
        // next event B sees after its history: A's write never arrives in between.
        const aWrite = await c.a('POST', `/v1/collections/${c.w.acoll}/records`, { secret: c.w.asecret, during: 'sse' });
        expect(aWrite.statusCode, aWrite.body).toBe(201);
        await c.resnapshotA();
        const history = await c.b('GET', '/v1/changes?limit=1000');
        const seen = items(history).length;
        const bMarker = `b-sse-${c.w.r}`;
        const bWrite = await c.b('POST', `/v1/collections/${c.w.bcoll}/records`, { id: bMarker });
        expect(bWrite.statusCode, bWrite.body).toBe(201);
        const events = await sse.take(seen + 1);
        expect(events.at(-1)?.data).toContain(bMarker);
        const text = JSON.stringify(events);
        for (const marker of c.w.markers) expect(text.includes(marker), `B's stream carries A's "${marker}"`).toBe(false);
      } finally {
        sse.close();
      }
    },
  },

  // --- api keys --------------------------------------------------------------------------
  'POST /v1/api-keys': {
    phase: 'write',
    run: async (c) => {
      const res = await c.b('POST', '/v1/api-keys', { name: c.w.akeyName, role: 'admin' });
      expect(res.statusCode, res.body).toBe(201);
      const id = res.json<{ id: string }>().id;
      const aList = await c.a('GET', '/v1/api-keys?limit=500');
      expect(JSON.stringify(items(aList))).not.toContain(id);
    },
  },
  'GET /v1/api-keys': {
    phase: 'probe',
    run: async (c) => {
      const res = await c.b('GET', '/v1/api-keys?limit=500');
      expect(items(res).length).toBeGreaterThan(0);
      c.noLeak(res);
    },
  },
  'GET /v1/api-keys/:id': { phase: 'probe', run: async (c) => notFound(c, await c.b('GET', `/v1/api-keys/${c.w.akeyId}`), [c.w.akeyId]) },
  'DELETE /v1/api-keys/:id': {
    phase: 'probe',
    run: async (c) => {
      notFound(c, await c.b('DELETE', `/v1/api-keys/${c.w.akeyId}`), [c.w.akeyId]);
      notFound(c, await c.b('DELETE', `/v1/api-keys/${c.w.A.keyId}`), [c.w.A.keyId]);
      const stillA = await c.b('GET', '/v1/auth/me', undefined, bearer(c.w.akeySecret));
      expect(stillA.statusCode, stillA.body).toBe(200);
    },
  },

  // --- users -----------------------------------------------------------------------------
  'POST /v1/users': {
    phase: 'write',
    run: async (c) => {
      // The same email in B is B's own user; A's user and password are untouched.
      const res = await c.b('POST', '/v1/users', { email: c.w.auserEmail, password: `${password}-b`, role: 'viewer' });
      expect(res.statusCode, res.body).toBe(201);
      const id = res.json<{ id: string }>().id;
      expect(id).not.toBe(c.w.auserId);
      const aList = await c.a('GET', '/v1/users?limit=500');
      expect(JSON.stringify(items(aList))).not.toContain(id);
      const bIntoA = await c.b('POST', '/v1/auth/login', { tenantId: c.w.A.id, email: c.w.auserEmail, password: `${password}-b` }, {});
      expectProblem(bIntoA, 401);
    },
  },
  'GET /v1/users': {
    phase: 'probe',
    run: async (c) => {
      const res = await c.b('GET', '/v1/users?limit=500');
      expect(items(res).length).toBeGreaterThan(0);
      c.noLeak(res);
    },
  },
  'GET /v1/users/:id': { phase: 'probe', run: async (c) => notFound(c, await c.b('GET', `/v1/users/${c.w.auserId}`), [c.w.auserId]) },
  'PATCH /v1/users/:id': {
    phase: 'probe',
    run: async (c) => {
      notFound(c, await c.b('PATCH', `/v1/users/${c.w.auserId}`, { role: 'viewer' }), [c.w.auserId]);
      notFound(c, await c.b('PATCH', `/v1/users/${c.w.auserId}`, { password: 'taken-over-by-b' }), [c.w.auserId]);
    },
  },
  'DELETE /v1/users/:id': { phase: 'probe', run: async (c) => notFound(c, await c.b('DELETE', `/v1/users/${c.w.auserId}`), [c.w.auserId]) },

  // --- collections and records ------------------------------------------------------------
  'GET /v1/collections': {
    phase: 'probe',
    run: async (c) => {
      const res = await c.b('GET', '/v1/collections?limit=500');
      expect(items(res).length).toBeGreaterThan(0);
      c.noLeak(res);
    },
  },
  'GET /v1/collections/:collection': { phase: 'probe', run: async (c) => notFound(c, await c.b('GET', `/v1/collections/${c.w.acoll}`), [c.w.acoll]) },
  'DELETE /v1/collections/:collection': { phase: 'probe', run: async (c) => notFound(c, await c.b('DELETE', `/v1/collections/${c.w.acoll}`), [c.w.acoll]) },
  'PUT /v1/collections/:collection': {
    phase: 'write',
    run: async (c) => {
      const before = await c.a('GET', `/v1/collections/${c.w.acoll}`);
      const res = await c.b('PUT', `/v1/collections/${c.w.acoll}`, { schema: { type: 'object', required: ['b_only'] }, indexes: ['b_only'], ttlSeconds: 3600 });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json<{ version: number; ttlSeconds: number }>()).toMatchObject({ version: 1, ttlSeconds: 3600 });
      const after = await c.a('GET', `/v1/collections/${c.w.acoll}`);
      expect(after.json()).toEqual(before.json());
    },
  },
  'POST /v1/collections/:collection/records': {
    phase: 'write',
    run: async (c) => {
      // With an expiry: it is B's record's, and A's record keeps none.
      const res = await c.b('POST', `/v1/collections/${c.w.acoll}/records?ttl=3600`, { id: c.w.arec, b_only: 'from-b' });
      expect(res.statusCode, res.body).toBe(201);
      expect(res.json<{ version: number; expiresAt?: string }>()).toMatchObject({ version: 1, expiresAt: expect.any(String) });
      expect((await c.a('GET', `/v1/collections/${c.w.acoll}/records/${c.w.arec}`)).json()).not.toHaveProperty('expiresAt');
      c.noLeak(res, [c.w.acoll, c.w.arec]);
    },
  },
  'GET /v1/collections/:collection/records': {
    phase: 'probe',
    run: async (c) => {
      const other = await c.b('GET', `/v1/collections/${c.w.acoll}/records?limit=500`);
      expect(items(other)).toEqual([]);
      c.noLeak(other);
      const filtered = await c.b('GET', `/v1/collections/${c.w.bcoll}/records?filter=${encodeURIComponent(JSON.stringify({ secret: c.w.asecret }))}`);
      expect(items(filtered)).toEqual([]);
      c.noLeak(filtered);
      const own = await c.b('GET', `/v1/collections/${c.w.bcoll}/records?limit=500`);
      expect(items(own).length).toBeGreaterThan(0);
      c.noLeak(own);
    },
  },
  'GET /v1/collections/:collection/records:count': {
    phase: 'probe',
    run: async (c) => {
      // A's collection name counts B's records (none); a filter on A's value finds nothing.
      const other = await c.b('GET', `/v1/collections/${c.w.acoll}/records:count`);
      expect(other.statusCode, other.body).toBe(200);
      expect(other.json()).toEqual({ count: 0 });
      const filtered = await c.b('GET', `/v1/collections/${c.w.bcoll}/records:count?filter=${encodeURIComponent(JSON.stringify({ secret: c.w.asecret }))}`);
      expect(filtered.json()).toEqual({ count: 0 });
      const own = await c.b('GET', `/v1/collections/${c.w.bcoll}/records:count`);
      expect(own.json<{ count: number }>().count).toBeGreaterThan(0);
      for (const res of [other, filtered, own]) c.noLeak(res, [c.w.acoll]);
    },
  },
  'GET /v1/collections/:collection/records:aggregate': {
    phase: 'probe',
    run: async (c) => {
      // Grouped by the field that holds A's secrets: B's groups hold B's values only.
      const other = await c.b('GET', `/v1/collections/${c.w.acoll}/records:aggregate?groupBy=secret`);
      expect(other.statusCode, other.body).toBe(200);
      expect(other.json()).toEqual({ groups: [], truncated: false });
      const own = await c.b('GET', `/v1/collections/${c.w.bcoll}/records:aggregate?groupBy=secret,data.id&metrics=max:secret`);
      expect(own.statusCode, own.body).toBe(200);
      const groups = own.json<{ groups: Array<{ key: { secret: unknown } }> }>().groups;
      expect(groups.some((g) => typeof g.key.secret === 'string' && g.key.secret.startsWith('B-SECRET-'))).toBe(true);
      // Records of B's without a secret (other rows write some) are the null group.
      expect(groups.every((g) => g.key.secret === null || (typeof g.key.secret === 'string' && g.key.secret.startsWith('B-SECRET-'))), JSON.stringify(groups)).toBe(true);
      for (const res of [other, own]) c.noLeak(res, [c.w.acoll]);
    },
  },
  'GET /v1/collections/:collection/records/:id': {
    phase: 'probe',
    run: async (c) => {
      notFound(c, await c.b('GET', `/v1/collections/${c.w.acoll}/records/${c.w.arec}?fields=secret`), [c.w.acoll, c.w.arec]);
      notFound(c, await c.b('GET', `/v1/collections/${c.w.acoll}/records/${c.w.arec}`), [c.w.acoll, c.w.arec]);
      notFound(c, await c.b('GET', `/v1/collections/${c.w.acoll}/records/${c.w.arec2}`), [c.w.acoll, c.w.arec2]);
      notFound(c, await c.b('GET', `/v1/collections/${c.w.bcoll}/records/${c.w.arec}`), [c.w.arec]);
    },
  },
  'PUT /v1/collections/:collection/records/:id': {
    phase: 'write',
    run: async (c) => {
      // PUT creates a missing record: under A's names it creates B's own, and A's is untouched.
      const res = await c.b('PUT', `/v1/collections/${c.w.acoll}/records/${c.w.arec2}`, { b_only: 'put-by-b' });
      expect(res.statusCode, res.body).toBe(201);
      expect(res.json<{ version: number; data: unknown }>()).toMatchObject({ version: 1, data: { b_only: 'put-by-b' } });
      c.noLeak(res, [c.w.acoll, c.w.arec2]);
      // If-Match on A's record is on a record B does not have: 412, with no ETag of A's.
      const guarded = await c.b('PUT', `/v1/collections/${c.w.acoll}/records/${c.w.arec3}`, { b_only: 'x' }, { 'if-match': '"1"' });
      expectProblem(guarded, 412, { code: 'agentstore.precondition_failed' });
      expect(guarded.headers.etag).toBeUndefined();
      c.noLeak(guarded, [c.w.acoll, c.w.arec3]);
    },
  },
  'POST /v1/collections/:collection/records:bulk': {
    phase: 'write',
    run: async (c) => {
      // A's collection and ids in a bulk load: created in B; A's rows and change feed untouched.
      const body = `${JSON.stringify({ id: c.w.arec, data: { b_only: 'bulk-by-b' } })}\n${JSON.stringify({ id: `bulk-${c.w.r}`, data: { b_only: 'bulk-by-b' } })}\n`;
      const res = await c.b('POST', `/v1/collections/${c.w.acoll}/records:bulk`, body, { 'content-type': 'application/x-ndjson' });
      expect(res.statusCode, res.body).toBe(200);
      const lines = res.body.trim().split('\n').map((l) => JSON.parse(l) as { status?: string });
      // arec exists in B already (POST records above wrote it there): other data, create mode.
      expect(lines.map((l) => l.status ?? 'summary')).toEqual(['failed', 'created', 'summary']);
      c.noLeak(res, [c.w.acoll, c.w.arec]);
    },
  },

  // --- batches ----------------------------------------------------------------------------
  'POST /v1/batch': {
    phase: 'write',
    run: async (c) => {
      // A's names in a batch are B's: A's record is a 404 for B, and nothing of the batch is
      // applied (the counter rows below find B's counter of A's name still absent).
      const intoA = await c.b('POST', '/v1/batch', {
        operations: [
          { op: 'increment', counter: c.w.acount, by: 1000 },
          { op: 'patch', collection: c.w.acoll, id: c.w.arec3, data: { secret: null } },
        ],
      });
      expect(expectProblem(intoA, 404, { code: 'agentstore.not_found' }).failedIndex).toBe(1);
      c.noLeak(intoA, [c.w.acoll, c.w.arec3, c.w.acount]);
      const created = await c.b('POST', '/v1/batch', { operations: [{ op: 'create', collection: c.w.acoll, id: `batch-${c.w.r}`, data: { b_only: true } }, { op: 'increment', counter: `b-${c.w.r}` }] });
      expect(created.statusCode, created.body).toBe(200);
      c.noLeak(created, [c.w.acoll]);
    },
  },
  'DELETE /v1/end-users/:endUserId': {
    phase: 'write',
    run: async (c) => {
      // A's records of an end user; B erasing the same end-user id erases nothing of A's.
      const coll = `eu-${c.w.r}`;
      const defined = await c.a('PUT', `/v1/collections/${coll}`, { indexes: ['uid'], endUserField: 'uid' });
      expect(defined.statusCode, defined.body).toBe(200);
      const created = await c.a('POST', `/v1/collections/${coll}/records`, { id: 'eu1', uid: c.w.asecret });
      expect(created.statusCode, created.body).toBe(201);
      await c.resnapshotA();
      const res = await c.b('DELETE', `/v1/end-users/${encodeURIComponent(c.w.asecret)}`);
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toMatchObject({ counts: { records: 0 }, total: 0 });
      c.noLeak(res);
      expect((await c.a('GET', `/v1/collections/${coll}/records/eu1`)).statusCode).toBe(200);
    },
  },
  'PATCH /v1/collections/:collection/records/:id': {
    phase: 'probe',
    run: async (c) => {
      notFound(c, await c.b('PATCH', `/v1/collections/${c.w.acoll}/records/${c.w.arec}`, { secret: null }), [c.w.acoll, c.w.arec]);
      notFound(c, await c.b('PATCH', `/v1/collections/${c.w.acoll}/records/${c.w.arec3}?ttl=1`, { secret: null }), [c.w.acoll, c.w.arec3]);
      const merge = await c.b('PATCH', `/v1/collections/${c.w.acoll}/records/${c.w.arec}`, JSON.stringify({ secret: 'b' }), { 'content-type': 'application/merge-patch+json' });
      notFound(c, merge, [c.w.acoll, c.w.arec]);
    },
  },
  'DELETE /v1/collections/:collection/records/:id': {
    phase: 'probe',
    run: async (c) => notFound(c, await c.b('DELETE', `/v1/collections/${c.w.acoll}/records/${c.w.arec}`), [c.w.acoll, c.w.arec]),
  },

  // --- counters ---------------------------------------------------------------------------
  'GET /v1/counters': {
    phase: 'probe',
    run: async (c) => {
      const res = await c.b('GET', '/v1/counters?limit=500');
      expect(items(res).length).toBeGreaterThan(0);
      c.noLeak(res);
    },
  },
  'GET /v1/counters/:name': { phase: 'probe', run: async (c) => notFound(c, await c.b('GET', `/v1/counters/${c.w.acount}`), [c.w.acount]) },
  'POST /v1/counters/:name/increment': {
    phase: 'write',
    run: async (c) => {
      const res = await c.b('POST', `/v1/counters/${c.w.acount}/increment`, { by: 100 });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json<{ value: number }>().value).toBe(100);
    },
  },
  'POST /v1/counters/:name/reset': {
    phase: 'write',
    run: async (c) => {
      const res = await c.b('POST', `/v1/counters/${c.w.acount}/reset`, { value: -5 });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json<{ value: number }>().value).toBe(-5);
      // A reset answers -5 whichever counter it hit: only A's own value tells.
      expect((await c.a('GET', `/v1/counters/${c.w.acount}`)).json<{ value: number }>().value).toBe(7);
    },
  },

  // --- conversations and messages ---------------------------------------------------------
  'POST /v1/conversations': {
    phase: 'write',
    run: async (c) => {
      const res = await c.b('POST', '/v1/conversations', { agentId: c.w.aagent, endUserId: c.w.aenduser });
      expect(res.statusCode, res.body).toBe(201);
      const id = res.json<{ id: string }>().id;
      expect(JSON.stringify(items(await c.a('GET', '/v1/conversations?limit=500')))).not.toContain(id);
    },
  },
  'GET /v1/conversations': {
    phase: 'probe',
    run: async (c) => {
      const all = await c.b('GET', '/v1/conversations?limit=500');
      expect(items(all).length).toBeGreaterThan(0);
      c.noLeak(all);
      for (const q of [`agentId=${c.w.aagent}`, `endUserId=${c.w.aenduser}`]) {
        const res = await c.b('GET', `/v1/conversations?${q}`);
        expect(items(res), q).toEqual([]);
        c.noLeak(res, [c.w.aagent, c.w.aenduser]);
      }
    },
  },
  'GET /v1/conversations/:id': { phase: 'probe', run: async (c) => notFound(c, await c.b('GET', `/v1/conversations/${c.w.aconv}`), [c.w.aconv]) },
  'PATCH /v1/conversations/:id': { phase: 'probe', run: async (c) => notFound(c, await c.b('PATCH', `/v1/conversations/${c.w.aconv}`, { title: 'from-b' }), [c.w.aconv]) },
  'DELETE /v1/conversations/:id': { phase: 'probe', run: async (c) => notFound(c, await c.b('DELETE', `/v1/conversations/${c.w.aconv}`), [c.w.aconv]) },
  'POST /v1/conversations/:id/messages': {
    phase: 'probe',
    run: async (c) => {
      notFound(c, await c.b('POST', `/v1/conversations/${c.w.aconv}/messages`, { role: 'user', content: 'from b' }), [c.w.aconv]);
      notFound(c, await c.b('POST', `/v1/conversations/${c.w.aconv}/messages`, { messages: [{ role: 'user', content: 'from b', clientId: 'a-msg-1' }] }), [c.w.aconv]);
    },
  },
  'GET /v1/conversations/:id/messages': {
    phase: 'probe',
    run: async (c) => {
      for (const q of ['', '?last=5', '?after=0', '?before=5']) notFound(c, await c.b('GET', `/v1/conversations/${c.w.aconv}/messages${q}`), [c.w.aconv]);
    },
  },
  'GET /v1/conversations/:id/messages/:seq': { phase: 'probe', run: async (c) => notFound(c, await c.b('GET', `/v1/conversations/${c.w.aconv}/messages/1`), [c.w.aconv]) },
  'PATCH /v1/conversations/:id/messages/:seq': {
    phase: 'probe',
    run: async (c) => notFound(c, await c.b('PATCH', `/v1/conversations/${c.w.aconv}/messages/1`, { content: 'from b' }), [c.w.aconv]),
  },
  'DELETE /v1/conversations/:id/messages/:seq': { phase: 'probe', run: async (c) => notFound(c, await c.b('DELETE', `/v1/conversations/${c.w.aconv}/messages/1`), [c.w.aconv]) },
  'POST /v1/conversations/:id/fork': { phase: 'probe', run: async (c) => notFound(c, await c.b('POST', `/v1/conversations/${c.w.aconv}/fork`, { atSeq: 1 }), [c.w.aconv]) },
  'GET /v1/messages/search': {
    phase: 'probe',
    run: async (c) => {
      for (const q of [`q=${c.w.aword}`, `q=${c.w.aword}&agentId=${c.w.aagent}`, `q=${c.w.aword}&endUserId=${c.w.aenduser}`]) {
        const res = await c.b('GET', `/v1/messages/search?${q}`);
        expect(items(res), q).toEqual([]);
        c.noLeak(res, [c.w.aagent, c.w.aenduser]);
      }
      const own = await c.b('GET', `/v1/messages/search?q=bword${c.w.r}`);
      expect(items(own).length).toBe(1);
      c.noLeak(own);
    },
  },

  // --- memory blocks -------------------------------------------------------------------------
  'GET /v1/memory-blocks': {
    phase: 'probe',
    run: async (c) => {
      const all = await c.b('GET', '/v1/memory-blocks?limit=500');
      expect(items(all).length).toBeGreaterThan(0);
      c.noLeak(all);
      const scoped = await c.b('GET', `/v1/memory-blocks?agentId=${c.w.aagent}`);
      expect(items(scoped)).toEqual([]);
      c.noLeak(scoped, [c.w.aagent]);
    },
  },
  'GET /v1/memory-blocks/:label': {
    phase: 'probe',
    run: async (c) => notFound(c, await c.b('GET', `/v1/memory-blocks/${c.w.ablock}?agentId=${c.w.aagent}`), [c.w.ablock, c.w.aagent]),
  },
  'PUT /v1/memory-blocks/:label': {
    phase: 'write',
    run: async (c) => {
      // Under A's label and scope, B creates its own block; A's stays as it was.
      const res = await c.b('PUT', `/v1/memory-blocks/${c.w.ablock}?agentId=${c.w.aagent}`, { value: 'from b' });
      expect(res.statusCode, res.body).toBe(201);
      c.noLeak(res, [c.w.ablock, c.w.aagent]);
      const a = await c.a('GET', `/v1/memory-blocks/${c.w.ablock}?agentId=${c.w.aagent}`);
      expect(a.json<{ value: string; version: number }>()).toMatchObject({ value: c.w.asecret, version: 1 });
    },
  },
  'DELETE /v1/memory-blocks/:label': {
    phase: 'probe',
    run: async (c) => notFound(c, await c.b('DELETE', `/v1/memory-blocks/${c.w.ablock}?agentId=${c.w.aagent}`), [c.w.ablock, c.w.aagent]),
  },
  // --- agents -------------------------------------------------------------------------------
  'POST /v1/agents': {
    phase: 'write',
    run: async (c) => {
      // A's name and tag in B make B's own agent; A's list does not grow.
      const res = await c.b('POST', '/v1/agents', { name: c.w.aagentName, tags: [c.w.atag] });
      expect(res.statusCode, res.body).toBe(201);
      const id = res.json<{ id: string }>().id;
      expect(id).not.toBe(c.w.aagentId);
      c.noLeak(res, [c.w.aagentName, c.w.atag]);
      const aList = await c.a('GET', '/v1/agents?limit=500');
      expect(JSON.stringify(items(aList))).not.toContain(id);
    },
  },
  'GET /v1/agents': {
    phase: 'probe',
    run: async (c) => {
      const all = await c.b('GET', '/v1/agents?limit=500');
      expect(items(all).length).toBeGreaterThan(0);
      c.noLeak(all);
      for (const q of [`q=${encodeURIComponent(c.w.aagentName)}`, `q=${encodeURIComponent(c.w.aagentName.toUpperCase())}&match=substring`, `tag=${c.w.atag}`, 'status=paused']) {
        const res = await c.b('GET', `/v1/agents?${q}`);
        expect(items(res), q).toEqual([]);
        c.noLeak(res);
      }
    },
  },
  'GET /v1/agents/:id': { phase: 'probe', run: async (c) => notFound(c, await c.b('GET', `/v1/agents/${c.w.aagentId}`), [c.w.aagentId]) },
  'PATCH /v1/agents/:id': {
    phase: 'probe',
    run: async (c) => {
      notFound(c, await c.b('PATCH', `/v1/agents/${c.w.aagentId}`, { name: 'taken-by-b' }), [c.w.aagentId]);
      const guarded = await c.b('PATCH', `/v1/agents/${c.w.aagentId}`, { status: 'archived' }, { 'if-match': '"1"' });
      notFound(c, guarded, [c.w.aagentId]);
      expect(guarded.headers.etag).toBeUndefined();
    },
  },
  'DELETE /v1/agents/:id': { phase: 'probe', run: async (c) => notFound(c, await c.b('DELETE', `/v1/agents/${c.w.aagentId}`), [c.w.aagentId]) },
  'GET /v1/agents/:id/versions': { phase: 'probe', run: async (c) => notFound(c, await c.b('GET', `/v1/agents/${c.w.aagentId}/versions`), [c.w.aagentId]) },
  'GET /v1/agents/:id/versions/:n': {
    phase: 'probe',
    run: async (c) => {
      for (const n of [1, 2]) notFound(c, await c.b('GET', `/v1/agents/${c.w.aagentId}/versions/${n}`), [c.w.aagentId]);
    },
  },
  'POST /v1/agents/:id/rollback': { phase: 'probe', run: async (c) => notFound(c, await c.b('POST', `/v1/agents/${c.w.aagentId}/rollback`, { version: 1 }), [c.w.aagentId]) },
  'GET /v1/agents/:id/secrets': { phase: 'probe', run: async (c) => notFound(c, await c.b('GET', `/v1/agents/${c.w.aagentId}/secrets`), [c.w.aagentId]) },
  'PUT /v1/agents/:id/secrets/:name': {
    phase: 'probe',
    run: async (c) => notFound(c, await c.b('PUT', `/v1/agents/${c.w.aagentId}/secrets/A_KEY`, { value: 'overwritten-by-b' }), [c.w.aagentId]),
  },
  'DELETE /v1/agents/:id/secrets/:name': { phase: 'probe', run: async (c) => notFound(c, await c.b('DELETE', `/v1/agents/${c.w.aagentId}/secrets/A_KEY`), [c.w.aagentId]) },
  'POST /v1/agents/:id/secrets/:name/reveal': {
    phase: 'probe',
    run: async (c) => notFound(c, await c.b('POST', `/v1/agents/${c.w.aagentId}/secrets/A_KEY/reveal`), [c.w.aagentId]),
  },
  // --- projects, branches, tasks, context -----------------------------------------------
  'POST /v1/projects': {
    phase: 'write',
    run: async (c) => {
      const res = await c.b('POST', '/v1/projects', { name: `b-project-${c.w.r}` });
      expect(res.statusCode, res.body).toBe(201);
      c.noLeak(res);
    },
  },
  'GET /v1/projects': {
    phase: 'probe',
    run: async (c) => {
      const res = await c.b('GET', '/v1/projects?limit=500');
      expect(items(res).length).toBeGreaterThan(0);
      c.noLeak(res);
    },
  },
  'GET /v1/projects/:id': { phase: 'probe', run: async (c) => notFound(c, await c.b('GET', `/v1/projects/${c.w.aproject}`), [c.w.aproject]) },
  'PATCH /v1/projects/:id': { phase: 'probe', run: async (c) => notFound(c, await c.b('PATCH', `/v1/projects/${c.w.aproject}`, { name: 'taken' }), [c.w.aproject]) },
  'DELETE /v1/projects/:id': { phase: 'probe', run: async (c) => notFound(c, await c.b('DELETE', `/v1/projects/${c.w.aproject}?cascade=true`), [c.w.aproject]) },
  'POST /v1/projects/:id/branches': { phase: 'probe', run: async (c) => notFound(c, await c.b('POST', `/v1/projects/${c.w.aproject}/branches`, { name: 'x' }), [c.w.aproject]) },
  'GET /v1/projects/:id/branches': { phase: 'probe', run: async (c) => notFound(c, await c.b('GET', `/v1/projects/${c.w.aproject}/branches`), [c.w.aproject]) },
  'GET /v1/branches/:id': { phase: 'probe', run: async (c) => notFound(c, await c.b('GET', `/v1/branches/${c.w.abranch}`), [c.w.abranch]) },
  'PATCH /v1/branches/:id': { phase: 'probe', run: async (c) => notFound(c, await c.b('PATCH', `/v1/branches/${c.w.abranch}`, { name: 'x' }), [c.w.abranch]) },
  'DELETE /v1/branches/:id': { phase: 'probe', run: async (c) => notFound(c, await c.b('DELETE', `/v1/branches/${c.w.abranch}?cascade=true`), [c.w.abranch]) },
  'POST /v1/branches/:id/tasks': { phase: 'probe', run: async (c) => notFound(c, await c.b('POST', `/v1/branches/${c.w.abranch}/tasks`, { title: 'x' }), [c.w.abranch]) },
  'GET /v1/branches/:id/tasks': { phase: 'probe', run: async (c) => notFound(c, await c.b('GET', `/v1/branches/${c.w.abranch}/tasks?label=secret`), [c.w.abranch]) },
  'GET /v1/tasks/:id': { phase: 'probe', run: async (c) => notFound(c, await c.b('GET', `/v1/tasks/${c.w.atask}`), [c.w.atask]) },
  'PATCH /v1/tasks/:id': { phase: 'probe', run: async (c) => notFound(c, await c.b('PATCH', `/v1/tasks/${c.w.atask}`, { status: 'done' }), [c.w.atask]) },
  'DELETE /v1/tasks/:id': { phase: 'probe', run: async (c) => notFound(c, await c.b('DELETE', `/v1/tasks/${c.w.atask}?cascade=true`), [c.w.atask]) },
  'POST /v1/tasks/:id/move': {
    phase: 'probe',
    run: async (c) => {
      notFound(c, await c.b('POST', `/v1/tasks/${c.w.atask}/move`, { parentId: null }), [c.w.atask]);
      // B's own task aimed under or next to A's: A's task is no task of B's.
      for (const body of [{ parentId: c.w.atask }, { before: c.w.atask }, { branchId: c.w.abranch }]) {
        const res = await c.b('POST', `/v1/tasks/${c.w.btask}/move`, body);
        expectProblem(res, 400, { code: 'agentstore.validation' });
        c.noLeak(res, [c.w.atask, c.w.abranch]);
      }
    },
  },
  'GET /v1/tasks/:id/subtasks': { phase: 'probe', run: async (c) => notFound(c, await c.b('GET', `/v1/tasks/${c.w.atask}/subtasks`), [c.w.atask]) },
  'POST /v1/tasks/:id/dependencies': {
    phase: 'probe',
    run: async (c) => {
      notFound(c, await c.b('POST', `/v1/tasks/${c.w.atask}/dependencies`, { taskId: c.w.btask }), [c.w.atask]);
      const res = await c.b('POST', `/v1/tasks/${c.w.btask}/dependencies`, { taskId: c.w.atask });
      expectProblem(res, 400, { field: '/taskId' });
      c.noLeak(res, [c.w.atask]);
    },
  },
  'DELETE /v1/tasks/:id/dependencies/:dependsOnId': { phase: 'probe', run: async (c) => notFound(c, await c.b('DELETE', `/v1/tasks/${c.w.atask}/dependencies/${c.w.btask}`), [c.w.atask]) },
  'GET /v1/context/global': {
    phase: 'probe',
    run: async (c) => {
      const res = await c.b('GET', '/v1/context/global');
      expect(res.statusCode, res.body).toBe(200);
      c.noLeak(res);
    },
  },
  'PUT /v1/context/global': {
    phase: 'write',
    run: async (c) => {
      const res = await c.b('PUT', '/v1/context/global', { owner: 'b' });
      expect(res.statusCode, res.body).toBe(200);
      c.noLeak(res);
    },
  },
  'PATCH /v1/context/global': {
    phase: 'write',
    run: async (c) => {
      const res = await c.b('PATCH', '/v1/context/global', { more: 'b' });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json<{ data: unknown }>().data).toEqual({ owner: 'b', more: 'b' });
      c.noLeak(res);
    },
  },
  ...Object.fromEntries(
    (['projects', 'branches', 'tasks'] as const).flatMap((plural) => {
      const id = (c: Ctx) => (plural === 'projects' ? c.w.aproject : plural === 'branches' ? c.w.abranch : c.w.atask);
      return [
        [`GET /v1/${plural}/:id/context`, { phase: 'probe', run: async (c: Ctx) => notFound(c, await c.b('GET', `/v1/${plural}/${id(c)}/context`), [id(c)]) }],
        [`PUT /v1/${plural}/:id/context`, { phase: 'probe', run: async (c: Ctx) => notFound(c, await c.b('PUT', `/v1/${plural}/${id(c)}/context`, { x: 1 }), [id(c)]) }],
        [`PATCH /v1/${plural}/:id/context`, { phase: 'probe', run: async (c: Ctx) => notFound(c, await c.b('PATCH', `/v1/${plural}/${id(c)}/context`, { x: 1 }), [id(c)]) }],
        [`GET /v1/${plural}/:id/context/resolved`, { phase: 'probe', run: async (c: Ctx) => notFound(c, await c.b('GET', `/v1/${plural}/${id(c)}/context/resolved`), [id(c)]) }],
      ] as [string, Row][];
    }),
  ),
};

const ORDERED = [...Object.entries(TABLE).filter(([, r]) => r.phase === 'probe'), ...Object.entries(TABLE).filter(([, r]) => r.phase === 'write')];

/** A concrete URL for a route pattern; the ids need not exist. */
function concrete(pattern: string): string {
  return pattern
    .replace(':tenantId', '0190a0a0-0000-7000-8000-000000000001')
    .replace(':collection', 'things')
    .replace(':name', 'hits')
    .replace(':dependsOnId', '0190a0a0-0000-7000-8000-000000000003')
    .replace(':id', '0190a0a0-0000-7000-8000-000000000002')
    .replace(':seq', '1')
    .replace(':label', 'persona');
}

forEachBackend('http tenant isolation', (backend) => {
  const h = useHttp(backend, { store: { encryptionKey: TEST_ENCRYPTION_KEY } });
  let w: World;
  let aBefore: Record<string, number>;
  let aRecordBefore: unknown;
  let eventsBase: string | undefined;

  const ctx: Ctx = {
    get w() {
      return w;
    },
    b: (method, url, payload, headers = {}) =>
      h.app.inject({
        method: method as 'GET',
        url,
        headers: { ...bearer(w.B.key), ...headers },
        ...(payload === undefined ? {} : { payload: payload as string }),
      }),
    a: (method, url, payload) => h.app.inject({ method: method as 'GET', url, headers: bearer(w.A.key), ...(payload === undefined ? {} : { payload: payload as string }) }),
    noLeak(res, sent = []) {
      const text = `${res.body}\n${JSON.stringify(res.headers)}`;
      for (const marker of w.markers) {
        if (sent.includes(marker)) continue;
        expect(text.includes(marker), `B's response carries A's "${marker}": ${res.body.slice(0, 400)}`).toBe(false);
      }
    },
    async resnapshotA() {
      aBefore = await countEverything(h.store, [w.A.id]);
    },
    async eventsUrl() {
      if (!eventsBase) {
        await h.app.listen({ port: 0, host: '127.0.0.1' });
        const address = h.app.server.address();
        if (!address || typeof address === 'string') throw new Error('no address');
        eventsBase = `http://127.0.0.1:${address.port}`;
      }
      return eventsBase;
    },
  };

  beforeAll(async () => {
    const r = randomBytes(5).toString('hex');
    const A = await createTenant(h.app, `tenant-A-${r}`);
    const B = await createTenant(h.app, `tenant-B-${r}`);
    const asA = (method: string, url: string, payload?: unknown, token = A.key) =>
      h.app.inject({ method: method as 'GET', url, headers: bearer(token), ...(payload === undefined ? {} : { payload: payload as string }) });
    const ok = (res: LightMyRequestResponse, status = 200) => {
      expect(res.statusCode, res.body).toBe(status);
      return res.json<Record<string, unknown>>();
    };
    const acoll = `acoll_${r}`;
    const asecret = `A-SECRET-${r}`;
    ok(await asA('PUT', `/v1/collections/${acoll}`, { schema: { type: 'object', properties: { secret: { type: 'string' } } }, indexes: ['secret'] }));
    const arec = `arec_${r}`;
    ok(await asA('POST', `/v1/collections/${acoll}/records`, { id: arec, secret: asecret }), 201);
    const arec2 = ok(await asA('POST', `/v1/collections/${acoll}/records`, { secret: `${asecret}-2` }), 201).id as string;
    const arec3 = `arec3_${r}`;
    ok(await asA('POST', `/v1/collections/${acoll}/records`, { id: arec3, secret: `${asecret}-3` }), 201);
    const acount = `acount_${r}`;
    ok(await asA('POST', `/v1/counters/${acount}/increment`, { by: 7 }));
    const auserEmail = `a-user-${r}@example.com`;
    const auserId = ok(await asA('POST', '/v1/users', { email: auserEmail, password, role: 'member' }), 201).id as string;
    const akeyName = `a-key-${r}`;
    const akey = await createKey(h.app, A, 'viewer', akeyName);
    const asession = ok(await h.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { tenantId: A.id, email: auserEmail, password } })).token as string;

    // B's own data, so that its lists and feeds are not trivially empty.
    const asB = (method: string, url: string, payload?: unknown) => asA(method, url, payload, B.key);
    const bcoll = `bcoll_${r}`;
    ok(await asB('POST', `/v1/collections/${bcoll}/records`, { id: `brec_${r}`, secret: `B-SECRET-${r}` }), 201);
    ok(await asB('POST', `/v1/counters/bcount_${r}/increment`));
    const buserEmail = `b-user-${r}@example.com`;
    ok(await asB('POST', '/v1/users', { email: buserEmail, password, role: 'member' }), 201);

    const aagent = `aagent_${r}`;
    const aenduser = `aenduser_${r}`;
    const aword = `aword${r}`;
    const aconv = ok(await asA('POST', '/v1/conversations', { agentId: aagent, endUserId: aenduser, title: asecret }), 201).id as string;
    ok(await asA('POST', `/v1/conversations/${aconv}/messages`, { role: 'user', content: `${asecret} ${aword}`, clientId: 'a-msg-1' }), 201);
    const ablock = `ablock_${r}`;
    ok(await asA('PUT', `/v1/memory-blocks/${ablock}?agentId=${aagent}`, { value: asecret }), 201);
    const bconv = ok(await asB('POST', '/v1/conversations', { title: 'b' }), 201).id as string;
    ok(await asB('POST', `/v1/conversations/${bconv}/messages`, { role: 'user', content: `bword${r}` }), 201);
    ok(await asB('PUT', '/v1/memory-blocks/bblock', { value: 'b' }), 201);
    ok(await asB('POST', '/v1/agents', { name: `b-agent-${r}`, tags: ['b-tag'] }), 201);

    // A's agent, its second version and its secret.
    const aagentName = `a-agent-${r}`;
    const atag = `a-tag-${r}`;
    const asecretValue = `A-AGENT-SECRET-${r}`;
    const aagentId = ok(await asA('POST', '/v1/agents', { name: aagentName, tags: [atag], status: 'paused' }), 201).id as string;
    ok(await asA('PATCH', `/v1/agents/${aagentId}`, { systemPrompt: asecret }));
    ok(await asA('PUT', `/v1/agents/${aagentId}/secrets/A_KEY`, { value: asecretValue }), 201);

    // A's project, branch and tasks (with a subtask, a dependency, labels), and every level's context.
    const aproject = ok(await asA('POST', '/v1/projects', { name: `aproj_${r}`, metadata: { secret: asecret } }), 201).id as string;
    const abranch = ok(await asA('POST', `/v1/projects/${aproject}/branches`, { name: `abranch_${r}` }), 201).id as string;
    const atask = ok(await asA('POST', `/v1/branches/${abranch}/tasks`, { title: `atask_${r}`, labels: ['secret'] }), 201).id as string;
    const asub = ok(await asA('POST', `/v1/branches/${abranch}/tasks`, { title: `asub_${r}`, parentId: atask, dependsOn: [atask] }), 201).id as string;
    ok(await asA('PUT', '/v1/context/global', { secret: `${asecret}-global` }), 201);
    ok(await asA('PUT', `/v1/projects/${aproject}/context`, { secret: `${asecret}-project` }), 201);
    ok(await asA('PUT', `/v1/branches/${abranch}/context`, { secret: `${asecret}-branch` }), 201);
    ok(await asA('PUT', `/v1/tasks/${atask}/context`, { secret: `${asecret}-task` }), 201);
    const bproject = ok(await asB('POST', '/v1/projects', { name: `bproj_${r}` }), 201).id as string;
    const bbranch = ok(await asB('POST', `/v1/projects/${bproject}/branches`, { name: 'main' }), 201).id as string;
    const btask = ok(await asB('POST', `/v1/branches/${bbranch}/tasks`, { title: 'b task' }), 201).id as string;
    ok(await asB('PUT', '/v1/context/global', { owner: 'b' }), 201);

    w = {
      A,
      B,
      r,
      acoll,
      arec,
      arec2,
      arec3,
      asecret,
      acount,
      auserId,
      auserEmail,
      akeyId: akey.id,
      akeyName,
      akeySecret: akey.key,
      asession,
      bcoll,
      buserEmail,
      aconv,
      aagent,
      aenduser,
      aword,
      ablock,
      aagentId,
      aagentName,
      atag,
      asecretValue,
      aproject,
      abranch,
      atask,
      btask,
      markers: [aproject, `aproj_${r}`, abranch, `abranch_${r}`, atask, `atask_${r}`, asub, `asub_${r}`, aagentId, aagentName, atag, asecretValue, A.id, A.name, A.key, A.keyId, acoll, arec, arec2, arec3, asecret, acount, auserId, auserEmail, akey.id, akeyName, akey.key, asession, aconv, aagent, aenduser, aword, ablock],
    };
    aBefore = await countEverything(h.store, [A.id]);
    aRecordBefore = (await asA('GET', `/v1/collections/${acoll}/records/${arec}`)).json();
  });

  it('has a row for every /v1 route the app registers, and no row for a route that is gone', () => {
    const routes = listRoutes(h.app).filter((r) => r.split(' ')[1]?.startsWith('/v1/'));
    expect(routes.length).toBeGreaterThan(30);
    expect(routes.filter((r) => !(r in TABLE)), 'routes without an isolation row').toEqual([]);
    expect(Object.keys(TABLE).filter((r) => !routes.includes(r)), 'rows for routes that do not exist').toEqual([]);
  });

  for (const [route, row] of ORDERED) {
    it(`${route}: B cannot reach A (${row.phase})`, () => row.run(ctx));
  }

  it('leaves A exactly as it was: row counts, record, counter, user, keys and session', async () => {
    expect(await countEverything(h.store, [w.A.id])).toEqual(aBefore);
    expect((await ctx.a('GET', `/v1/collections/${w.acoll}/records/${w.arec}`)).json()).toEqual(aRecordBefore);
    expect((await ctx.a('GET', `/v1/counters/${w.acount}`)).json<{ value: number }>().value).toBe(7);
    const resolved = (await ctx.a('GET', `/v1/tasks/${w.atask}/context/resolved`)).json<{ context: unknown }>();
    expect(resolved.context).toEqual({ secret: `${w.asecret}-task` });
    expect((await ctx.a('GET', '/v1/context/global')).json<{ data: unknown; version: number }>()).toMatchObject({ data: { secret: `${w.asecret}-global` }, version: 1 });
    const user = await ctx.a('GET', `/v1/users/${w.auserId}`);
    expect(user.json<{ role: string }>().role).toBe('member');
    expect((await ctx.b('GET', '/v1/auth/me', undefined, bearer(w.akeySecret))).statusCode).toBe(200);
    expect((await ctx.b('GET', '/v1/auth/me', undefined, bearer(w.asession))).statusCode).toBe(200);
    const keys = items(await ctx.a('GET', '/v1/api-keys?limit=500')) as { id: string; revokedAt: string | null }[];
    expect(keys.filter((k) => k.revokedAt !== null)).toEqual([]);
  });

  describe('credentials on every route', () => {
    let tenant: HttpTenant;
    let revoked: string;
    beforeAll(async () => {
      tenant = await createTenant(h.app, `creds-${randomBytes(4).toString('hex')}`, 'owner');
      const key = await createKey(h.app, tenant, 'owner');
      const res = await h.app.inject({ method: 'DELETE', url: `/v1/api-keys/${key.id}`, headers: bearer(tenant.key) });
      expect(res.statusCode, res.body).toBe(200);
      revoked = key.key;
    });

    it('no credential, a malformed header, an unknown token and a revoked key are 401 on every authenticated /v1 route', async () => {
      const routes = listRoutes(h.app).filter((r) => r.split(' ')[1]?.startsWith('/v1/') && r !== 'POST /v1/auth/login');
      const variants: Record<string, Record<string, string>> = {
        none: {},
        malformed: { authorization: 'Basic dXNlcjpwYXNz' },
        unknown: bearer(`ask_${'0'.repeat(32)}_${'A'.repeat(43)}`),
        garbage: bearer('not-a-token'),
        revoked: bearer(revoked),
      };
      for (const route of routes) {
        const [method, pattern] = route.split(' ') as [string, string];
        for (const [variant, headers] of Object.entries(variants)) {
          const res = await h.app.inject({ method: method as 'GET', url: concrete(pattern), headers, ...(method === 'GET' || method === 'DELETE' ? {} : { payload: {} }) });
          const body = expectProblem(res, 401, { code: 'agentstore.unauthenticated' });
          expect(body.detail, `${route} ${variant}`).not.toMatch(/select|insert|from |where /i);
        }
      }
    });

    it('a tenant key on a service route is 403, the service key on a tenant route is 403', async () => {
      const routes = listRoutes(h.app).filter((r) => r.split(' ')[1]?.startsWith('/v1/') && r !== 'POST /v1/auth/login');
      const serviceRoutes = routes.filter((r) => r.includes('/v1/tenants'));
      expect(serviceRoutes.length).toBe(5);
      for (const route of routes) {
        const [method, pattern] = route.split(' ') as [string, string];
        const isService = serviceRoutes.includes(route);
        const res = await h.app.inject({
          method: method as 'GET',
          url: concrete(pattern.replace(':tenantId', tenant.id)),
          headers: bearer(isService ? tenant.key : SERVICE_KEY),
          ...(method === 'GET' || method === 'DELETE' ? {} : { payload: {} }),
        });
        expectProblem(res, 403, { code: 'agentstore.forbidden' });
      }
    });
  });
});
