import { CompiledQuery, sql, type Compilable, type Expression, type SqlBool } from 'kysely';
import type { TenantContext } from '../../core/context.js';
import type { Database, Executor } from '../../db/database.js';
import { fromJsonColumn, type DialectName } from '../../db/dialect.js';
import type { UnitOfWorkRunner } from '../../db/unit-of-work.js';
import { liveRecord } from './expiry.js';
import { searchableFields } from './filter.js';
import { indexName } from './index-builds.js';
import { parseFieldPath } from './json-path.js';
import { indexGivesOrder, recordSource, selectPage, type PageQuery } from './list-query.js';
import { orderBy } from './sort.js';

/**
 * Reads that a declared index can serve: planning them so that it does.
 *
 * Neither planner can estimate how many records a jsonb condition matches: both take a fixed
 * fraction (PostgreSQL ignores the statistics of partial indexes, SQLite has none without
 * ANALYZE). So a listing in `createdAt` order of a rare value read the whole collection in that
 * order, and SQLite searched a range of a declared field in the primary key (it takes
 * `tenant_id = ? and collection = ?` to match ~10 rows). Here a listing whose filter a
 * declared index can search looks its page up there first, as long as few records match, and
 * on SQLite the search names the index (`INDEXED BY`). The filter alone decides what matches.
 */

/**
 * How many matches a listing reads through a declared index before it reads in the order's
 * index instead. 1,000 rows of an index are ~1 ms; past them a page in the order's index is
 * found within about page size × collection size / 1,000 rows.
 */
export const SEARCH_ROWS = 1000;

/** The SELECT of `searchPage`, on SQLite through `index` when given. */
export function searchQuery(trx: Executor, dialect: DialectName, page: PageQuery, index?: string): CompiledQuery<{ id: string; _n: number | string }> {
  let found = trx
    .selectFrom(recordSource(dialect))
    .selectAll('records')
    .where('records.tenant_id', '=', dialect === 'sqlite' ? sql.lit(page.tenantId) : page.tenantId)
    .where('records.collection', '=', dialect === 'sqlite' ? sql.lit(page.collection) : page.collection)
    .where(liveRecord(page.now) as Expression<SqlBool>);
  if (page.filter) found = found.where(page.filter as Expression<SqlBool>);
  if (page.after) found = found.where(page.after as Expression<SqlBool>);
  // The LIMIT inside: the sort needs all of them, and the count says whether that is all.
  const query = trx
    .selectFrom(found.limit(SEARCH_ROWS + 1).as('records'))
    .select(['records.id', sql<number | string>`count(*) over ()`.as('_n')])
    .orderBy(orderBy(page.keys))
    .limit(page.limit);
  return withIndex(query, index);
}

/**
 * The ids of a page found through a declared index: the records matching the filter (and the
 * cursor), at most SEARCH_ROWS + 1 of them, sorted, the page's first `limit`; undefined when
 * more match. Run with `indexSearch` on PostgreSQL, so that the LIMIT stops the index scan (a
 * bitmap scan reads every matching entry first).
 */
export async function searchPage(trx: Executor, dialect: DialectName, page: PageQuery, index?: string): Promise<string[] | undefined> {
  const { rows } = await executeWithIndex(trx, (hint) => searchQuery(trx, dialect, page, hint), index);
  if (rows.length > 0 && Number(rows[0]?._n) > SEARCH_ROWS) return undefined;
  return rows.map((r) => r.id);
}

/**
 * SQLite: the query with `INDEXED BY <index>` after its `records` table, which must occur once
 * (Kysely has no syntax for it). Names are validated hashes (index-builds.ts).
 */
export function withIndex<R>(query: Compilable<R>, index: string | undefined): CompiledQuery<R> {
  const compiled = query.compile();
  if (index === undefined) return compiled;
  const parts = compiled.sql.split('from "records" ');
  if (parts.length !== 2 || !/^records_f_[0-9a-f]{24}$/.test(index)) throw new Error('withIndex: expected one "records" table and a declared index name');
  return CompiledQuery.raw(parts.join(`from "records" indexed by "${index}" `), [...compiled.parameters]) as CompiledQuery<R>;
}

/**
 * Runs the query through the index, and without it if SQLite refuses the hint: the index was
 * dropped meanwhile ("no such index"), or cannot serve ("no query solution").
 */
export async function executeWithIndex<R>(trx: Executor, build: (index: string | undefined) => CompiledQuery<R>, index: string | undefined) {
  if (index === undefined) return trx.executeQuery(build(undefined));
  try {
    return await trx.executeQuery(build(index));
  } catch (error) {
    if (/no such index|no query solution/.test(String((error as Error | undefined)?.message))) return trx.executeQuery(build(undefined));
    throw error;
  }
}

/** A collection's declared index paths, as a point read. */
const DECLARED = {
  sqlite: 'select indexes from collections where tenant_id = ? and name = ?',
  postgres: 'select indexes::text as indexes from collections where tenant_id = $1 and name = $2',
};

type PageRow = Awaited<ReturnType<ReturnType<typeof selectPage>['execute']>>;

export interface RecordSearch {
  /** The declared field (dotted path) a filter's condition lets its index search, if any. */
  field(ctx: TenantContext, collection: string, filter: unknown): Promise<string | undefined>;
  /** SQLite: the index to name for that field (PostgreSQL's planner finds it by itself). */
  hint(ctx: TenantContext, collection: string, filter: unknown): Promise<string | undefined>;
  /**
   * One page of a listing: through a declared index when its filter lets one search and few
   * records match; otherwise in the order's index where one gives the order (`indexOrder`),
   * else as a scan.
   */
  page(ctx: TenantContext, page: PageQuery, filter: unknown): Promise<PageRow>;
}

export function createRecordSearch(db: Database, uow: UnitOfWorkRunner): RecordSearch {
  const dialect = db.dialect;
  const readDeclared = db.prepareRead<{ indexes: string | null }>(DECLARED);
  const field = async (ctx: TenantContext, collection: string, filter: unknown): Promise<string | undefined> => {
    if (filter === undefined) return undefined;
    const fields = searchableFields(filter, dialect);
    if (fields.size === 0) return undefined;
    const row = await readDeclared(ctx.tenantId, [ctx.tenantId, collection]);
    const declared = row?.indexes ? fromJsonColumn<string[]>(row.indexes) : [];
    for (const raw of declared) {
      const path = parseFieldPath(raw, 'indexes');
      if (path.kind === 'data' && fields.has(path.segments.join('.'))) return path.segments.join('.');
    }
    return undefined;
  };
  const hint = async (ctx: TenantContext, collection: string, filter: unknown): Promise<string | undefined> => {
    if (dialect !== 'sqlite') return undefined;
    const found = await field(ctx, collection, filter);
    return found === undefined ? undefined : indexName(ctx.tenantId, collection, found);
  };
  return {
    field,
    hint,
    async page(ctx, page, filter) {
      const found = await field(ctx, page.collection, filter);
      if (found !== undefined) {
        const index = dialect === 'sqlite' ? indexName(ctx.tenantId, page.collection, found) : undefined;
        const rows = await uow.read(
          ctx,
          async (trx) => {
            const ids = await searchPage(trx, dialect, page, index);
            if (ids === undefined) return undefined;
            return ids.length === 0 ? [] : selectPage(trx, dialect, { ...page, ids }).execute();
          },
          { scan: true, indexSearch: true },
        );
        if (rows) return rows;
      }
      const ordered = indexGivesOrder(page.keys);
      // Without a filter, an order an index gives reads just the page; anything else may read
      // the whole collection, and runs as a scan (off the event loop on SQLite, fairly queued).
      return uow.read(ctx, (trx) => selectPage(trx, dialect, page).execute(), { indexOrder: ordered, scan: page.filter !== undefined || !ordered });
    },
  };
}
