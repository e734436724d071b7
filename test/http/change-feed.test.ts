/**
 * The change feed as a new user meets it: an unknown type is a 400 naming it (and the known
 * ones) on both the polling route and the event stream, and a filtered poller's `lastSeq`
 * moves past the changes that are not for it, so it makes progress and still never misses a
 * matching change committed later.
 */
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { forEachBackend } from '../helpers/index.js';
import { bearer, createKey, createTenant, expectProblem, useHttp, listen } from './http-kit.js';

interface Change {
  seq: number;
  type: string;
  resourceId: string;
  collection: string | null;
}
interface ChangePage {
  items: Change[];
  lastSeq: number;
}


forEachBackend('change feed: types and filtered positions', (backend) => {
  const h = useHttp(backend);
  let base: string;
  beforeAll(async () => {
    base = await listen(h.app);
  });
  const tenant = () => createTenant(h.app, `feed-${randomBytes(4).toString('hex')}`);
  const write = async (key: string, method: 'POST' | 'PATCH' | 'PUT', url: string, payload?: object) => {
    const res = await h.app.inject({ method, url, headers: bearer(key), ...(payload ? { payload } : {}) });
    expect(res.statusCode, res.body).toBeLessThan(300);
  };
  const poll = async (key: string, query: string): Promise<ChangePage> => {
    const res = await h.app.inject({ method: 'GET', url: `/v1/changes?${query}`, headers: bearer(key) });
    expect(res.statusCode, res.body).toBe(200);
    return res.json<ChangePage>();
  };

  describe('an unknown type is a 400 naming it and the known ones', () => {
    for (const types of ['bogus', 'record,bogus', 'records', 'record,counter,nope,also_not']) {
      it(`GET /v1/changes?types=${types}`, async () => {
        const t = await tenant();
        const res = await h.app.inject({ method: 'GET', url: `/v1/changes?types=${types}`, headers: bearer(t.key) });
        const problem = expectProblem(res, 400, { code: 'agentstore.validation', field: 'types' });
        const unknown = types.split(',').filter((x) => !['record', 'counter'].includes(x));
        for (const name of unknown) expect(problem.detail).toContain(`"${name}"`);
        expect(problem.detail).toMatch(/record, counter|collection, record, counter/);
      });
      it(`GET /v1/events?types=${types} (before the stream starts)`, async () => {
        const t = await tenant();
        const res = await fetch(`${base}/v1/events?types=${types}`, { headers: bearer(t.key) });
        expect(res.status).toBe(400);
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        const body = (await res.json()) as { errors: { field: string }[]; detail: string };
        expect(body.errors.map((e) => e.field)).toEqual(['types']);
        expect(body.detail).toContain('the types are');
      });
    }
    it('every known type is accepted, by every role', async () => {
      const t = await tenant();
      const viewer = await createKey(h.app, t, 'viewer');
      for (const key of [t.key, viewer.key]) {
        const res = await h.app.inject({ method: 'GET', url: '/v1/changes?types=tenant,user,session,api_key,collection,record,counter', headers: bearer(key) });
        expect(res.statusCode, res.body).toBe(200);
      }
    });
  });

  describe('lastSeq of a filtered page', () => {
    it('moves to the head when the filter matches nothing (no rescans from 0)', async () => {
      const t = await tenant();
      for (let i = 0; i < 3; i++) await write(t.key, 'POST', '/v1/collections/busy/records', { i });
      const all = await poll(t.key, 'after=0');
      const head = all.items.at(-1)?.seq ?? 0;
      expect(head).toBeGreaterThan(0);
      expect(all.lastSeq).toBe(head);
      expect(await poll(t.key, 'after=0&collection=nope')).toEqual({ items: [], lastSeq: head });
      expect(await poll(t.key, 'after=0&types=counter')).toEqual({ items: [], lastSeq: head });
      // From the head on there is nothing: it stays put, never goes back.
      expect(await poll(t.key, `after=${head}&collection=nope`)).toEqual({ items: [], lastSeq: head });
    });

    it('a full page ends at its last item, since more may match right after it', async () => {
      const t = await tenant();
      for (let i = 0; i < 4; i++) await write(t.key, 'POST', '/v1/collections/a/records', { i });
      await write(t.key, 'POST', '/v1/collections/b/records', { x: 1 });
      const page = await poll(t.key, 'after=0&collection=a&limit=2');
      expect(page.items).toHaveLength(2);
      expect(page.lastSeq).toBe(page.items[1]?.seq);
      const rest = await poll(t.key, `after=${page.lastSeq}&collection=a&limit=2`);
      expect(rest.items.map((c) => c.type)).toEqual(['record.create', 'record.create']);
      expect(rest.lastSeq).toBe(rest.items[1]?.seq);
      // collection.create and four records: the third page is short and jumps past collection b's changes.
      const third = await poll(t.key, `after=${rest.lastSeq}&collection=a&limit=2`);
      expect(third.items.map((c) => c.type)).toEqual(['record.create']);
      const head = (await poll(t.key, 'after=0')).lastSeq;
      expect(third.lastSeq).toBe(head);
    });

    it('below admin, the role filter moves the position too, but only to the newest change the role sees', async () => {
      const t = await tenant();
      const viewer = await createKey(h.app, t, 'viewer');
      await write(t.key, 'POST', '/v1/counters/v/increment');
      await createKey(h.app, t, 'member', 'hidden-after');
      const page = await poll(viewer.key, 'after=0&types=collection');
      const counter = (await poll(viewer.key, 'after=0')).items.at(-1);
      expect(counter?.type).toBe('counter.increment');
      expect(page).toEqual({ items: [], lastSeq: counter?.seq });
    });

    it('a filtered poller makes progress and never misses a matching change committed later', async () => {
      const t = await tenant();
      const member = await createKey(h.app, t, 'member');
      let after = 0;
      const seen: Change[] = [];
      let polls = 0;
      let done = false;
      const poller = (async () => {
        for (;;) {
          const finished = done;
          const page = await poll(member.key, `after=${after}&collection=wanted&limit=3`);
          expect(page.lastSeq).toBeGreaterThanOrEqual(after);
          seen.push(...page.items);
          after = page.lastSeq;
          polls++;
          if (finished && page.items.length === 0) return;
          await new Promise((r) => setTimeout(r, 2));
        }
      })();
      // Concurrent writes: mostly noise in other collections, some in the wanted one.
      await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          i % 4 === 0 ? write(member.key, 'POST', '/v1/collections/wanted/records', { i }) : write(member.key, 'POST', `/v1/collections/noise${i % 3}/records`, { i }),
        ),
      );
      done = true;
      await poller;
      const expected = (await poll(t.key, 'after=0&collection=wanted&limit=1000')).items;
      expect(expected.filter((c) => c.type === 'record.create')).toHaveLength(10);
      expect(seen.map((c) => c.seq)).toEqual(expected.map((c) => c.seq));
      // It ends at the head of the whole log, not at its last match.
      expect(after).toBe((await poll(t.key, 'after=0&limit=1000')).lastSeq);
      expect(polls).toBeGreaterThan(0);
    });
  });
});

