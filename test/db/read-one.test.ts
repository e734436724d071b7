import { CompiledQuery } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { inlineParameters } from '../../src/db/database.js';
import { forEachBackend, useTestStore } from '../helpers/backends.js';
import { newTenant } from '../helpers/fixtures.js';

/** `fn`'s result and how many queries pg clients sent while it ran. */
async function countingQueries<T>(fn: () => Promise<T>): Promise<{ value: T; queries: number }> {
  let queries = 0;
  const original = pg.Client.prototype.query;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    queries += 1;
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  } as unknown as typeof original;
  try {
    const value = await fn();
    return { value, queries };
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
  }
});
