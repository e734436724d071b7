import { CompiledQuery } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { inlineParameters } from '../../src/db/database.js';
import { forEachBackend, useTestStore } from '../helpers/backends.js';
import { newTenant } from '../helpers/fixtures.js';

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
      let queries = 0;
      const original = pg.Client.prototype.query;
      pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
        queries += 1;
        return (original as (...a: unknown[]) => unknown).apply(this, args);
      } as unknown as typeof original;
      try {
        expect(await db.readOne(a.ctx.tenantId, unfiltered)).toBeUndefined();
        expect(queries).toBe(1);
      } finally {
        pg.Client.prototype.query = original;
      }
      expect(await db.readOne(b.ctx.tenantId, unfiltered)).toEqual({ id: 's1' });
    });
  }
});
