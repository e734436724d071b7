/**
 * A client-supplied top-level `id`: on create it names the record and stays in its data; a
 * string `id` in the data is always the record's own, so a replace or patch that would make
 * them differ is refused (400 naming /data/id) and changes nothing; leaving it out or
 * patching it to null only removes it from the data; a non-string `id` is plain data.
 */
import { randomBytes } from 'node:crypto';
import { beforeAll, expect, it } from 'vitest';
import { forEachBackend } from '../helpers/index.js';
import { bearer, createTenant, expectProblem, useHttp, type HttpTenant } from './http-kit.js';

interface RecordBody {
  id: string;
  version: number;
  data: Record<string, unknown>;
}

forEachBackend('record ids in the body', (backend) => {
  const h = useHttp(backend);
  let t: HttpTenant;
  beforeAll(async () => {
    t = await createTenant(h.app, `ids-${randomBytes(4).toString('hex')}`);
  });
  const req = (method: 'GET' | 'POST' | 'PUT' | 'PATCH', url: string, payload?: unknown) =>
    h.app.inject({ method, url, headers: bearer(t.key), ...(payload === undefined ? {} : { payload: payload as object }) });
  const get = async (id: string) => (await req('GET', `/v1/collections/ids/records/${id}`)).json<RecordBody>();

  it('create: a string id names the record and stays in its data, found by data.id and by id', async () => {
    const res = await req('POST', '/v1/collections/ids/records', { id: 'c1', title: 'x' });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json<RecordBody>()).toMatchObject({ id: 'c1', data: { id: 'c1', title: 'x' } });
    for (const filter of [{ id: 'c1' }, { 'data.id': 'c1' }]) {
      const list = await req('GET', `/v1/collections/ids/records?filter=${encodeURIComponent(JSON.stringify(filter))}`);
      expect(list.json<{ items: RecordBody[] }>().items.map((r) => r.id)).toEqual(['c1']);
    }
  });

  it('create: a non-string id is plain data, and the record gets a generated id', async () => {
    const res = await req('POST', '/v1/collections/ids/records', { id: 5 });
    expect(res.statusCode, res.body).toBe(201);
    const body = res.json<RecordBody>();
    expect(body.id).toMatch(/^[0-9a-f]{8}-/);
    expect(body.data).toEqual({ id: 5 });
  });

  it('create: an invalid string id is a 400 naming /data/id', async () => {
    expectProblem(await req('POST', '/v1/collections/ids/records', { id: '-bad' }), 400, { field: '/data/id' });
  });

  it('replace: a body id other than the URL id is a 400 naming /data/id and changes nothing', async () => {
    await req('POST', '/v1/collections/ids/records', { id: 'p1', n: 1 });
    expectProblem(await req('PUT', '/v1/collections/ids/records/p1', { id: 'other', n: 2 }), 400, { code: 'agentstore.validation', field: '/data/id' });
    expect(await get('p1')).toMatchObject({ version: 1, data: { id: 'p1', n: 1 } });
    expect((await req('GET', '/v1/collections/ids/records/other')).statusCode).toBe(404);
    // The same id, or none: accepted; without it the data loses the field, not the record its id.
    expect((await req('PUT', '/v1/collections/ids/records/p1', { id: 'p1', n: 2 })).statusCode).toBe(200);
    const replaced = await req('PUT', '/v1/collections/ids/records/p1', { n: 3 });
    expect(replaced.json<RecordBody>()).toMatchObject({ id: 'p1', version: 3, data: { n: 3 } });
    expect(replaced.json<RecordBody>().data).not.toHaveProperty('id');
  });

  it('patch: setting another id is a 400 naming /data/id and changes nothing; null removes it from the data', async () => {
    await req('POST', '/v1/collections/ids/records', { id: 'q1', n: 1 });
    expectProblem(await req('PATCH', '/v1/collections/ids/records/q1', { id: 'other' }), 400, { field: '/data/id' });
    expect(await get('q1')).toMatchObject({ version: 1, data: { id: 'q1', n: 1 } });
    expect((await req('PATCH', '/v1/collections/ids/records/q1', { id: 'q1', n: 2 })).statusCode).toBe(200);
    const removed = await req('PATCH', '/v1/collections/ids/records/q1', { id: null });
    expect(removed.json<RecordBody>()).toMatchObject({ id: 'q1', version: 3, data: { n: 2 } });
    expect(removed.json<RecordBody>().data).not.toHaveProperty('id');
    // A non-string id is plain data here too.
    expect((await req('PATCH', '/v1/collections/ids/records/q1', { id: 7 })).json<RecordBody>()).toMatchObject({ id: 'q1', data: { id: 7, n: 2 } });
  });
});
