/**
 * PostgreSQL data paths are written quoted (`'{"a","b"}'`): an unquoted NULL element was an
 * SQL NULL, so a field named NULL could not be filtered. Indexes declared before the change
 * were built on the unquoted text: those must still serve the (now quoted) filters, and one
 * on a NULL segment, built on the wrong expression, must be rebuilt when declared again (by
 * migration 0003's index function, which replaces an index of its name on another expression).
 * The legacy indexes are made as the owner: the store's runtime role may not run DDL.
 */
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { beforeAll, expect, it } from 'vitest';
import type { TenantContext } from '../../src/core/context.js';
import { compileFilter } from '../../src/modules/collections/filter.js';
import { PG_ADMIN_URL, forEachBackend, newTenant, openTestDb, useTestStore } from '../helpers/index.js';
import { withAdmin } from '../helpers/pg-admin.js';

/** The name src/modules/collections/service.ts gave a declared index before paths were quoted. */
const legacyName = (tenantId: string, collection: string, field: string) =>
  `records_f_${createHash('sha256').update(`${tenantId}\0${collection}\0${field}`).digest('hex').slice(0, 24)}`;

forEachBackend(
  'collections: declared indexes across the quoting of PostgreSQL paths',
  (backend) => {
    const t = useTestStore(backend);
    let ctx: TenantContext;
    beforeAll(async () => {
      ({ ctx } = await newTenant(t.store));
    });
    /** DDL and ANALYZE as the owner of the tables. */
    const asOwner = async (text: string): Promise<void> => {
      const owner = openTestDb(t.database);
      try {
        await sql.raw(text).execute(owner.kysely);
      } finally {
        await owner.close();
      }
    };

    const indexDefs = async (collection: string): Promise<Map<string, string>> => {
      const { rows } = await sql<{ indexname: string; indexdef: string }>`select indexname, indexdef from pg_indexes where tablename = 'records' and indexdef like ${`%'${collection}'%`}`.execute(
        t.store.internals.db.kysely,
      );
      return new Map(rows.map((r) => [r.indexname, r.indexdef]));
    };

    /**
     * The indexes the filter's query searches on the path (Index Cond), planned as the admin:
     * under RLS PostgreSQL never searches an index with a non-leakproof operator such as #>
     * (list-query.ts), so only a role that bypasses RLS shows whether the expressions match.
     */
    const indexesUsed = async (collection: string, filter: Record<string, unknown>): Promise<string[]> => {
      const query = t.store.internals.db.kysely
        .selectFrom('records')
        .select('id')
        .where('tenant_id', '=', sql.lit(ctx.tenantId))
        .where('collection', '=', sql.lit(collection))
        .where(compileFilter(filter, 'postgres') as never)
        .compile();
      const url = new URL(PG_ADMIN_URL);
      url.pathname = `/${t.database.name}`;
      const lines = await withAdmin(async (client) => {
        await client.query('set enable_seqscan = off');
        const result = await client.query<{ 'QUERY PLAN': string }>(`explain ${query.sql}`, [...query.parameters]);
        return result.rows.map((r) => r['QUERY PLAN']);
      }, url.toString());
      return lines.flatMap((line, i) => {
        const name = /(?:Index|Index Only|Bitmap Index) Scan (?:Backward )?(?:using|on) (\S+)/.exec(line)?.[1];
        return name && /Index Cond: .*data #>/.test(lines[i + 1] ?? '') ? [name] : [];
      });
    };

    /** Enough other rows that an index on the filtered path is the cheap plan. */
    const fill = async (collection: string, field: string) => {
      await t.store.internals.db.inTenant(ctx.tenantId, async (trx) => {
        const now = new Date().toISOString();
        const rows = Array.from({ length: 2000 }, (_, i) => ({ tenant_id: ctx.tenantId, collection, id: `f${i}`, version: 1, data: JSON.stringify({ [field]: -i - 1 }), created_at: now, updated_at: now }));
        await trx.insertInto('records').values(rows).execute();
      });
      await asOwner('analyze records');
    };

    it('an index declared on the unquoted text of a path still serves the quoted filter', async () => {
      await t.store.collections.define(ctx, 'older', {});
      await t.store.collections.create(ctx, 'older', { id: 'o1', status: 'open' });
      await fill('older', 'status');
      const name = legacyName(ctx.tenantId, 'older', 'status');
      // What a declaration made before this change left in the database.
      await asOwner(`CREATE INDEX ${name} ON records ((data #> '{status}')) WHERE tenant_id = '${ctx.tenantId}' AND collection = 'older'`);
      expect(await indexesUsed('older', { status: 'open' })).toContain(name);
      expect((await t.store.collections.list(ctx, 'older', { filter: { status: 'open' } })).items.map((r) => r.id)).toEqual(['o1']);
      // Declaring it again keeps that index: same name, same array value.
      await t.store.collections.define(ctx, 'older', { indexes: ['status'] });
      expect([...(await indexDefs('older')).keys()]).toEqual([name]);
    });

    it('an index declared on a NULL segment is rebuilt on the quoted path and dropped with the collection', async () => {
      await t.store.collections.define(ctx, 'nullish', {});
      await t.store.collections.create(ctx, 'nullish', { id: 'n1', NULL: 7 });
      await fill('nullish', 'NULL');
      const old = legacyName(ctx.tenantId, 'nullish', 'NULL');
      await asOwner(`CREATE INDEX ${old} ON records ((data #> '{NULL}')) WHERE tenant_id = '${ctx.tenantId}' AND collection = 'nullish'`);
      expect(await indexesUsed('nullish', { NULL: 7 })).not.toContain(old);

      await t.store.collections.define(ctx, 'nullish', { indexes: ['NULL'] });
      const defs = await indexDefs('nullish');
      expect(defs.size).toBe(1);
      const [name, def] = [...defs][0] as [string, string];
      // The same name, rebuilt on the path with a NULL text element.
      expect(name).toBe(old);
      expect(def).toContain(`'{"NULL"}'`);
      expect(await indexesUsed('nullish', { NULL: 7 })).toEqual([name]);
      expect((await t.store.collections.list(ctx, 'nullish', { filter: { NULL: 7 } })).items.map((r) => r.id)).toEqual(['n1']);

      await t.store.collections.deleteCollection(ctx, 'nullish');
      expect((await indexDefs('nullish')).size).toBe(0);
    });
  },
  { only: ['postgres', 'pgbouncer'] },
);

// SQLite wrote a numeric segment as a key ('$."items"."0"'), which never finds an array's
// element: such an index is rebuilt on the expression the filters now use when the collection
// is declared again (service.ts, createIndex).
forEachBackend(
  'collections: SQLite indexes declared on a numeric path before array indexes',
  (backend) => {
    const t = useTestStore(backend);
    it('are rebuilt on the expression that reads arrays, and then serve the filter', async () => {
      const { ctx } = await newTenant(t.store);
      await t.store.collections.define(ctx, 'lines', {});
      await t.store.collections.create(ctx, 'lines', { id: 'l1', items: [{ sku: 'a' }] });
      const name = legacyName(ctx.tenantId, 'lines', 'items.0.sku');
      const db = t.store.internals.db.kysely;
      await sql.raw(`CREATE INDEX ${name} ON records (json_extract(data, '$."items"."0"."sku"')) WHERE tenant_id = '${ctx.tenantId}' AND collection = 'lines'`).execute(db);
      await t.store.collections.define(ctx, 'lines', { indexes: ['items.0.sku'] });
      const { rows } = await sql<{ sql: string }>`select sql from sqlite_master where type = 'index' and name = ${name}`.execute(db);
      expect(rows[0]?.sql).toContain(`coalesce(json_extract(data, '$."items"[0]."sku"'), json_extract(data, '$."items"."0"."sku"'))`);
      expect((await t.store.collections.list(ctx, 'lines', { filter: { 'items.0.sku': 'a' } })).items.map((r) => r.id)).toEqual(['l1']);
      const plan = await sql<{ detail: string }>`explain query plan select id from records where tenant_id = ${sql.lit(ctx.tenantId)} and collection = 'lines' and ${compileFilter({ 'items.0.sku': 'a' }, 'sqlite')}`.execute(db);
      expect(plan.rows.map((r) => r.detail).join(' | ')).toContain(name);
    });
  },
  { only: ['sqlite'] },
);
