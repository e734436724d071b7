/**
 * Change-log positions are per tenant: two tenants writing interleaved each see 1, 2, 3 …
 * with no gaps (so no tenant learns another's write volume), a resume after position k gives
 * exactly the rest, and migrating a database written under the old global sequence keeps
 * every position already handed out valid, continuing from there without gaps.
 */
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { systemContext } from '../../src/core/context.js';
import { uuidv7 } from '../../src/core/ids.js';
import { MIGRATIONS } from '../../src/db/migrations/index.js';
import { migrateUp } from '../../src/db/migrator.js';
import { createTestDatabase, forEachBackend, newTenant, openTestDb, openTestStore, useTestStore } from '../helpers/index.js';

forEachBackend('change positions per tenant', (backend) => {
  const t = useTestStore(backend);

  it('two tenants writing interleaved, concurrently, each see 1, 2, 3 … with no gaps', async () => {
    const { ctx: a } = await newTenant(t.store);
    const { ctx: b } = await newTenant(t.store);
    const startA = await t.store.changes.head(a);
    const startB = await t.store.changes.head(b);
    await Promise.all(
      Array.from({ length: 60 }, (_, i) => {
        const ctx = i % 2 === 0 ? a : b;
        return i % 3 === 0 ? t.store.counters.increment(ctx, 'n') : t.store.collections.create(ctx, 'c', { i });
      }),
    );
    for (const [ctx, start] of [
      [a, startA],
      [b, startB],
    ] as const) {
      const all = await t.store.changes.read(ctx, { after: 0, limit: 1000 });
      expect(all.map((e) => e.seq)).toEqual(all.map((_, i) => i + 1));
      expect(await t.store.changes.head(ctx)).toBe(all.length);
      // 30 writes of the tenant, and the collection's first-write change.
      expect(all.length - start).toBe(31);
      // A resume after position k gives exactly k+1 … n.
      const k = start + 10;
      expect((await t.store.changes.read(ctx, { after: k, limit: 1000 })).map((e) => e.seq)).toEqual(all.slice(k).map((e) => e.seq));
    }
  });

  it('a unit recording several mutations gets consecutive positions, and its wake-up names the last', async () => {
    const { ctx } = await newTenant(t.store);
    const start = await t.store.changes.head(ctx);
    const woken: number[] = [];
    const off = t.store.changes.onWake(ctx.tenantId, (w) => woken.push(w.seq));
    // The first record of a collection also creates the collection: two changes, one unit.
    await t.store.collections.create(ctx, 'fresh', { x: 1 });
    off();
    const events = await t.store.changes.read(ctx, { after: start });
    expect(events.map((e) => [e.type, e.seq])).toEqual([
      ['collection.create', start + 1],
      ['record.create', start + 2],
    ]);
    expect(woken).toEqual([start + 2]);
  });

  describe('migrating a log written under the global sequence', () => {
    it('keeps the positions already handed out, and numbers new changes after them without gaps', async () => {
      const database = await createTestDatabase(backend);
      try {
        const db = openTestDb(database);
        const tenants = [uuidv7(), uuidv7()];
        try {
          await migrateUp(db, { migrations: MIGRATIONS.filter((m) => m.version < 4) });
          const now = new Date().toISOString();
          await db.inSystem(async (trx) => {
            for (const id of tenants) await sql`insert into tenants (id, name, version, created_at, updated_at) values (${id}, ${id}, 1, ${now}, ${now})`.execute(trx);
          });
          // Interleaved, as the old global sequence numbered them: A 1, B 2, A 3, A 4, B 5.
          for (const [i, tenant] of [0, 1, 0, 0, 1].entries()) {
            const id = tenants[tenant] as string;
            await db.inTenant(id, (trx) => sql`insert into changes (tenant_id, at, resource_type, resource_id, action) values (${id}, ${now}, 'counter', ${`c${i}`}, 'increment')`.execute(trx));
          }
          await migrateUp(db);
        } finally {
          await db.close();
        }
        const opened = await openTestStore(backend, { database });
        try {
          const [a, b] = tenants.map((id) => systemContext(id as string));
          if (!a || !b) throw new Error('no tenants');
          const seqs = async (ctx: typeof a) => (await opened.store.changes.read(ctx, { after: 0 })).map((e) => e.seq);
          expect(await seqs(a)).toEqual([1, 3, 4]);
          expect(await seqs(b)).toEqual([2, 5]);
          // A client that had read A up to 3 resumes with exactly the rest.
          expect((await opened.store.changes.read(a, { after: 3 })).map((e) => e.resourceId)).toEqual(['c3']);
          await opened.store.counters.increment(a, 'after');
          await opened.store.counters.increment(b, 'after');
          await opened.store.counters.increment(a, 'after');
          expect(await seqs(a)).toEqual([1, 3, 4, 5, 6]);
          expect(await seqs(b)).toEqual([2, 5, 6]);
          expect(await opened.store.changes.head(a)).toBe(6);
        } finally {
          await opened.store.close();
        }
      } finally {
        await database.drop();
      }
    });
  });
});
