import { CompiledQuery } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { inlineParameters } from '../../src/db/database.js';
import { forEachBackend, useTestStore } from '../helpers/backends.js';
import { newTenant } from '../helpers/fixtures.js';

/** `fn`'s result and how many queries pg clients sent while it ran, and their texts. */
async function countingQueries<T>(fn: () => Promise<T>): Promise<{ value: T; queries: number; texts: string[] }> {
  const texts: string[] = [];
  const original = pg.Client.prototype.query;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const first = args[0];
    texts.push(typeof first === 'string' ? first : String((first as { text?: unknown } | undefined)?.text ?? ''));
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  } as unknown as typeof original;
  try {
    const value = await fn();
    return { value, queries: texts.length, texts };
  } finally {
    pg.Client.prototype.query = original;
  }
}

describe('inlineParameters', () => {
  it('writes ids, names and numbers as literals', () => {
    expect(inlineParameters(CompiledQuery.raw('select * from t where a = $1 and b = $2 and c = $10', ['x-1:a@b.c', 2, 3, 4, 5, 6, 7, 8, 9, 10]))).toBe(
      "select * from t where a = 'x-1:a@b.c' and b = 2 and c = 10",
    );
  });

  it('refuses anything that is not plainly safe, so the caller binds it instead', () => {
    for (const value of ["o'brien", 'a\\b', 'a;b', '$1', 'a b', { a: 1 }, null, Number.NaN, 'x'.repeat(257)]) {
      expect(inlineParameters(CompiledQuery.raw('select $1', [value])), String(value)).toBeUndefined();
    }
    expect(inlineParameters(CompiledQuery.raw('select $2', ['a']))).toBeUndefined();
    expect(inlineParameters(CompiledQuery.raw('select $0', ['a']))).toBeUndefined();
    expect(inlineParameters(CompiledQuery.raw('select $1; select 1', ['a']))).toBeUndefined();
  });
});

forEachBackend('readOne', (backend) => {
  const t = useTestStore(backend);

  it('reads one row under the tenant, whichever path it takes', async () => {
    const a = await newTenant(t.store);
    const b = await newTenant(t.store);
    await t.store.collections.create(a.ctx, 'notes', { id: 'n1', owner: 'a' });
    await t.store.collections.create(b.ctx, 'notes', { id: 'n1', owner: 'b' });
    expect((await t.store.collections.get(a.ctx, 'notes', 'n1')).data.owner).toBe('a');
    expect((await t.store.collections.get(b.ctx, 'notes', 'n1')).data.owner).toBe('b');
    const db = t.store.internals.db;
    // Both paths: literals, and a value that must stay bound.
    const safe = db.kysely.selectFrom('records').select('id').where('tenant_id', '=', a.ctx.tenantId).where('id', '=', 'n1').compile();
    const quoted = db.kysely.selectFrom('records').select('id').where('tenant_id', '=', a.ctx.tenantId).where('id', '=', "n1' or '1'='1").compile();
    expect(await db.readOne(a.ctx.tenantId, safe)).toEqual({ id: 'n1' });
    expect(await db.readOne(a.ctx.tenantId, quoted)).toBeUndefined();
  });

  if (backend.dialect === 'postgres') {
    it('is one round trip, and row-level security still confines a query without a tenant filter', async () => {
      const a = await newTenant(t.store);
      const b = await newTenant(t.store);
      await t.store.collections.create(b.ctx, 'secret', { id: 's1' });
      const db = t.store.internals.db;
      const unfiltered = db.kysely.selectFrom('records').select('id').where('collection', '=', 'secret').compile();
      const { value, queries } = await countingQueries(() => db.readOne(a.ctx.tenantId, unfiltered));
      expect(value).toBeUndefined();
      expect(queries).toBe(1);
      expect(await db.readOne(b.ctx.tenantId, unfiltered)).toEqual({ id: 's1' });
    });
  }
});

forEachBackend('prepareRead', (backend) => {
  const t = useTestStore(backend);
  // No tenant filter in the SQL: on PostgreSQL only row-level security confines these reads,
  // which shows that every statement of a coalesced batch runs under its own tenant.
  const unfilteredById = {
    sqlite: 'select collection, id, data from records where tenant_id = ? and collection = ? and id = ?',
    postgres: 'select collection, id, data::text as data from records where collection = $2 and id = $3 and $1::uuid is not null',
  };

  it('reads issued together return each its own tenant\'s row, never another tenant\'s', async () => {
    const tenants = await Promise.all([newTenant(t.store), newTenant(t.store), newTenant(t.store)]);
    await Promise.all(tenants.map((x, i) => t.store.collections.create(x.ctx, 'mixed', { id: 'same', owner: i })));
    await Promise.all(tenants.map((x, i) => t.store.collections.create(x.ctx, 'mixed', { id: `only-${i}`, owner: i })));
    const read = t.store.internals.db.prepareRead<{ id: string; data: string }>(unfilteredById);
    const calls = tenants.flatMap((x, i) => [
      read(x.ctx.tenantId, [x.ctx.tenantId, 'mixed', 'same']).then((row) => ({ i, want: i, row })),
      // The other tenants' own ids: absent for this tenant.
      ...[0, 1, 2].filter((j) => j !== i).map((j) => read(x.ctx.tenantId, [x.ctx.tenantId, 'mixed', `only-${j}`]).then((row) => ({ i, want: -1, row }))),
      read(x.ctx.tenantId, [x.ctx.tenantId, 'mixed', `only-${i}`]).then((row) => ({ i, want: i, row })),
    ]);
    for (const { i, want, row } of await Promise.all(calls)) {
      if (want === -1) expect(row, `tenant ${i}`).toBeUndefined();
      else expect(JSON.parse(row?.data ?? 'null'), `tenant ${i}`).toMatchObject({ owner: want });
    }
  });

  if (backend.dialect === 'postgres') {
    it('coalesces the reads of one tick into one round trip; a failing statement fails alone', async () => {
      const a = await newTenant(t.store);
      await t.store.collections.create(a.ctx, 'batch', { id: 'r1' });
      const db = t.store.internals.db;
      const read = db.prepareRead<{ id: string }>(unfilteredById);
      const { value: rows, queries } = await countingQueries(() => Promise.all(Array.from({ length: 20 }, () => read(a.ctx.tenantId, [a.ctx.tenantId, 'batch', 'r1']))));
      expect(rows.every((row) => row?.id === 'r1')).toBe(true);
      expect(queries).toBe(1);
      // 1/0 fails at run time: the batch is aborted, then each read runs alone.
      const divide = db.prepareRead<{ q: number }>({ sqlite: 'select 1 as q', postgres: 'select 10 / $2::int as q where $1::uuid is not null' });
      const results = await Promise.allSettled([5, 0, 2].map((n) => divide(a.ctx.tenantId, [a.ctx.tenantId, n])));
      expect(results.map((r) => (r.status === 'fulfilled' ? r.value?.q : 'failed'))).toEqual([2, 'failed', 5]);
    });

    it('keyed reads of one tick share one SELECT per tenant, and each gets its own row or none', async () => {
      const tenants = await Promise.all([newTenant(t.store), newTenant(t.store)]);
      await Promise.all(tenants.map((x, i) => t.store.collections.create(x.ctx, 'keyed', { id: 'same', owner: i })));
      await Promise.all(tenants.map((x, i) => t.store.collections.create(x.ctx, 'keyed', { id: `own-${i}`, owner: i })));
      const db = t.store.internals.db;
      // No tenant filter and no tenant value at all: the list SQL of both tenants is the same
      // text, and only the batch's grouping by tenant and row-level security keep each list
      // to its own tenant's rows.
      const read = db.prepareRead<{ id: string; data: string }>({
        ...unfilteredById,
        postgresMany: { sql: 'select collection, id, data::text as data from records where collection = $2 and id in $keys', column: 'id' },
      });
      const asks = tenants.flatMap((x, i) =>
        ['same', 'same', `own-${i}`, `own-${1 - i}`, 'missing'].map((id) => ({ i, id, want: id === 'same' || id === `own-${i}` ? i : undefined })),
      );
      const tenantOf = (i: number) => (tenants[i] as (typeof tenants)[number]).ctx.tenantId;
      const { value: rows, queries, texts } = await countingQueries(() => Promise.all(asks.map((a) => read(tenantOf(a.i), [tenantOf(a.i), 'keyed', a.id]))));
      asks.forEach((a, k) => {
        const row = rows[k];
        if (a.want === undefined) expect(row, `${a.i} ${a.id}`).toBeUndefined();
        else expect({ id: row?.id, owner: (JSON.parse(row?.data ?? 'null') as { owner?: number } | null)?.owner }, `${a.i} ${a.id}`).toEqual({ id: a.id, owner: a.want });
      });
      expect(queries).toBe(1);
      // One list SELECT per tenant, each key once.
      expect(texts[0]?.match(/select collection, id/g)).toHaveLength(2);
      expect(texts[0]).toContain("id in ('same', 'own-0', 'own-1', 'missing')");
    });

    it('keyed reads of one tenant with other values apart (another collection) get separate lists', async () => {
      const a = await newTenant(t.store);
      for (const collection of ['left', 'right']) await t.store.collections.create(a.ctx, collection, { id: 'same', side: collection });
      const db = t.store.internals.db;
      const read = db.prepareRead<{ collection: string; id: string; data: string }>({
        ...unfilteredById,
        postgresMany: { sql: 'select collection, id, data::text as data from records where collection = $2 and id in $keys', column: 'id' },
      });
      const asks = ['left', 'right', 'left', 'right'];
      const { value: rows, queries, texts } = await countingQueries(() => Promise.all(asks.map((c) => read(a.ctx.tenantId, [a.ctx.tenantId, c, 'same']))));
      expect(rows.map((row) => [row?.collection, (JSON.parse(row?.data ?? 'null') as { side?: string } | null)?.side])).toEqual(asks.map((c) => [c, c]));
      expect(queries).toBe(1);
      expect(texts[0]?.match(/id in \('same'\)/g)).toHaveLength(2);
    });

    it('a failing list statement fails only the read it failed for; unkeyed reads share the batch', async () => {
      const a = await newTenant(t.store);
      for (const id of ['one', 'zero', 'two']) await t.store.collections.create(a.ctx, 'fails', { id });
      const db = t.store.internals.db;
      // 1/0 for the row 'zero' only, so the list statement fails and each read runs alone.
      const q = "10 / (case when id = 'zero' then 0 else 1 end) as q";
      const read = db.prepareRead<{ id: string; q: number }>({
        sqlite: 'select 1',
        postgres: `select id, ${q} from records where collection = $2 and id = $3 and $1::uuid is not null`,
        postgresMany: { sql: `select id, ${q} from records where collection = $2 and id in $keys`, column: 'id' },
      });
      const plain = db.prepareRead<{ id: string }>(unfilteredById);
      const ids = ['one', 'zero', 'two'];
      const results = await Promise.allSettled([...ids.map((id) => read(a.ctx.tenantId, [a.ctx.tenantId, 'fails', id])), plain(a.ctx.tenantId, [a.ctx.tenantId, 'fails', 'two'])]);
      expect(results.map((r) => (r.status === 'fulfilled' ? `${r.value?.id}` : 'failed'))).toEqual(['one', 'failed', 'two', 'two']);
      // Without 'zero' the list succeeds, beside an unkeyed read, in one round trip.
      const { value: rows, queries } = await countingQueries(() => Promise.all([read(a.ctx.tenantId, [a.ctx.tenantId, 'fails', 'one']), plain(a.ctx.tenantId, [a.ctx.tenantId, 'fails', 'zero']), read(a.ctx.tenantId, [a.ctx.tenantId, 'fails', 'two'])]));
      expect(rows.map((row) => row?.id)).toEqual(['one', 'zero', 'two']);
      expect(queries).toBe(1);
      expect(() => db.prepareRead({ sqlite: 'select 1', postgres: 'select 1', postgresMany: { sql: 'select 1 where 1 in $keys or 2 in $keys', column: 'id' } })).toThrow(/exactly once/);
      expect(() => db.prepareRead({ sqlite: 'select 1', postgres: 'select $1; select 2' })).toThrow(/one statement/);
      expect(() => db.prepareRead({ sqlite: 'select 1', postgres: 'select $0' })).toThrow(/from \$1/);
    });

    it('collections.get of many tenants at once: each its own record, in one round trip', async () => {
      const tenants = await Promise.all([newTenant(t.store), newTenant(t.store), newTenant(t.store)]);
      await Promise.all(tenants.map((x, i) => t.store.collections.create(x.ctx, 'gets', { id: 'shared', owner: i })));
      await Promise.all(tenants.map((x, i) => t.store.collections.create(x.ctx, 'gets', { id: `mine-${i}`, owner: i })));
      const asks = tenants.flatMap((x, i) => [0, 1, 2].flatMap((j) => [{ x, i, id: `mine-${j}` }, { x, i, id: 'shared' }]));
      const { value: got, queries } = await countingQueries(() =>
        Promise.allSettled(asks.map(({ x, id }) => t.store.collections.get(x.ctx, 'gets', id))),
      );
      asks.forEach(({ i, id }, k) => {
        const r = got[k];
        if (id === 'shared' || id === `mine-${i}`) expect(r?.status === 'fulfilled' ? r.value.data.owner : r?.reason, `${i} ${id}`).toBe(i);
        else expect(r?.status === 'rejected' ? (r.reason as { status?: number }).status : 'found', `${i} ${id}`).toBe(404);
      });
      expect(queries).toBe(1);
    });
  }
});
