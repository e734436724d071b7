/**
 * Where a declared index's build waits, and who waits for it (src/modules/collections/index-builds.ts).
 *
 * - As the runtime role alone, the build runs in the unit of work through migration 0003's
 *   function: CREATE INDEX locks the shared records table against every writer. Queued
 *   behind a long transaction it would hold every tenant's later writes behind it
 *   (PostgreSQL grants locks in order), so the function gives up after its lock_timeout: 503.
 * - With the owner's URL, it is CREATE INDEX CONCURRENTLY outside any transaction: it waits
 *   for the long transaction, and every other tenant's writes go on meanwhile.
 */
import pg from 'pg';
import { expect, it } from 'vitest';
import { isAgentstoreError } from '../../src/core/errors.js';
import { forEachBackend, newTenant, useTestStore, type TestDatabase } from '../helpers/index.js';
import { ownerUrl } from '../helpers/pg-admin.js';
import type { Store } from '../../src/store.js';
import type { TenantContext } from '../../src/core/context.js';

/** Another tenant's open write transaction on records: it holds the table's ROW EXCLUSIVE lock. */
async function holdWrite(database: TestDatabase, store: Store): Promise<{ other: TenantContext; holder: pg.Client }> {
  const { ctx: other } = await newTenant(store);
  await store.collections.create(other, 'x', { id: 'held' });
  const holder = new pg.Client({ connectionString: database.directUrl });
  holder.on('error', () => undefined);
  await holder.connect();
  await holder.query('begin');
  await holder.query("select set_config('app.tenant_id', $1, true)", [other.tenantId]);
  await holder.query("update records set updated_at = now() where tenant_id = $1 and collection = 'x'", [other.tenantId]);
  return { other, holder };
}

/** Every declared index in the database, valid or not (a failed CONCURRENTLY build leaves an invalid one). */
async function declaredIndexes(database: TestDatabase): Promise<{ name: string; valid: boolean }[]> {
  const admin = new pg.Client({ connectionString: ownerUrl(database.name) });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ name: string; valid: boolean }>(
      `select c.relname as name, i.indisvalid as valid from pg_index i join pg_class c on c.oid = i.indexrelid where c.relname like 'records_f_%' order by 1`,
    );
    return rows;
  } finally {
    await admin.end();
  }
}

/** A value PostgreSQL cannot put in a B-tree entry even compressed (the limit is ~2.7 kB). */
const unindexable = () => Array.from({ length: 12_000 }, () => String.fromCharCode(33 + Math.floor(Math.random() * 90))).join('');

function refusesUnindexableValues(t: { readonly store: Store; readonly database: TestDatabase }): void {
  it('an index over a value too large to index is a 400 naming /data; the collection and the database are unchanged', async () => {
    const { ctx } = await newTenant(t.store);
    await t.store.collections.create(ctx, 'big', { a: unindexable() });
    const before = await declaredIndexes(t.database);
    const error = await t.store.collections.define(ctx, 'big', { indexes: ['a'] }).catch((e: unknown) => e);
    expect(isAgentstoreError(error, 'agentstore.validation'), String(error)).toBe(true);
    expect((error as { context: { errors: { field: string }[] } }).context.errors.map((e) => e.field)).toEqual(['/data']);
    expect((await t.store.collections.getCollection(ctx, 'big')).indexes).toEqual([]);
    expect(await declaredIndexes(t.database)).toEqual(before);
  }, 30_000);
}

forEachBackend(
  'declared-index DDL behind a long transaction, as the runtime role alone',
  (backend) => {
    const t = useTestStore(backend, { runtimeOnly: true });
    refusesUnindexableValues(t);

    it('gives up after 2 s with a 503 and Retry-After, changes nothing, and succeeds once the table is free', async () => {
      const { ctx } = await newTenant(t.store);
      await t.store.collections.create(ctx, 'busy', { a: 1 });
      const { holder } = await holdWrite(t.database, t.store);
      try {
        const started = Date.now();
        const error = await t.store.collections.define(ctx, 'busy', { indexes: ['a'] }).catch((e: unknown) => e);
        expect(isAgentstoreError(error, 'agentstore.unavailable'), String(error)).toBe(true);
        expect((error as { context: { retryAfter?: number } }).context.retryAfter).toBeGreaterThan(0);
        expect(Date.now() - started).toBeLessThan(10_000);
        expect((await t.store.collections.getCollection(ctx, 'busy')).indexes).toEqual([]);
      } finally {
        await holder.query('rollback').catch(() => undefined);
        await holder.end();
      }
      expect((await t.store.collections.define(ctx, 'busy', { indexes: ['a'] })).indexes).toEqual(['a']);
    }, 30_000);
  },
  { only: ['postgres', 'pgbouncer'] },
);

forEachBackend(
  'declared-index DDL behind a long transaction, with the owner URL',
  (backend) => {
    const t = useTestStore(backend);
    refusesUnindexableValues(t);

    it('builds CONCURRENTLY: it waits for the transaction while other tenants write, then the index exists and is valid', async () => {
      const { ctx } = await newTenant(t.store);
      await t.store.collections.create(ctx, 'busy', { a: 1 });
      const { other, holder } = await holdWrite(t.database, t.store);
      let defined = false;
      const define = t.store.collections.define(ctx, 'busy', { indexes: ['a'] }).finally(() => (defined = true));
      try {
        // Give the build time to reach its wait for the open transaction.
        await new Promise((resolve) => setTimeout(resolve, 500));
        expect(defined).toBe(false);
        // A third tenant's and the holder's tenant's writes go on while the build waits: the
        // function's CREATE INDEX would have stopped them.
        const third = await newTenant(t.store);
        const started = Date.now();
        await t.store.collections.create(third.ctx, 'y', { b: 1 });
        await t.store.collections.create(other, 'z', { c: 1 });
        expect(Date.now() - started).toBeLessThan(2_000);
        expect(defined).toBe(false);
      } finally {
        await holder.query('rollback').catch(() => undefined);
        await holder.end();
      }
      expect((await define).indexes).toEqual(['a']);
      expect((await declaredIndexes(t.database)).filter((i) => i.valid)).toHaveLength((await declaredIndexes(t.database)).length);
    }, 30_000);
  },
  { only: ['postgres', 'pgbouncer'] },
);
