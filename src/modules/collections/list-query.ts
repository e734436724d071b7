import { sql, type Expression, type RawBuilder, type SqlBool } from 'kysely';
import type { Executor } from '../../db/database.js';
import type { DialectName } from '../../db/dialect.js';
import { INLINE_DATA_BYTES } from '../../core/page-budget.js';
import { liveRecord } from './expiry.js';
import { orderBy, type SortKey } from './sort.js';

/**
 * The relation that listings, counts and aggregates read, as `records`. On PostgreSQL the
 * view of migration 0005 (`tenant_records`: the tenant's rows, read with the view owner's
 * rights), where a declared index can search a filter: on `records` under RLS no jsonb
 * condition may be an index condition. Typed as `records`: the view has its columns.
 */
export function recordSource(dialect: DialectName): 'records' {
  return (dialect === 'postgres' ? 'tenant_records as records' : 'records') as 'records';
}

export interface PageQuery {
  readonly tenantId: string;
  readonly collection: string;
  readonly keys: readonly SortKey[];
  readonly filter?: RawBuilder<unknown> | undefined;
  /** The keyset condition of a cursor. */
  readonly after?: RawBuilder<unknown> | undefined;
  /** Rows to read: the page size plus one, to know whether there is a next page. */
  readonly limit: number;
  /** Only these records (the ids a search found). */
  readonly ids?: readonly string[] | undefined;
  /** The read's instant: records expired by then are left out (expiry.ts). */
  readonly now: string;
}

function dataLength(dialect: DialectName): RawBuilder<unknown> {
  // Both count the JSON text the API sends: bytes on PostgreSQL, characters on SQLite.
  return dialect === 'postgres' ? sql`octet_length(records.data::text)` : sql`length(records.data)`;
}

/** The SELECT of one page of a listing; `_s<i>` are the sort keys' values, for the cursor. */
export function selectPage(trx: Executor, dialect: DialectName, page: PageQuery) {
  let q = trx
    .selectFrom(recordSource(dialect))
    .select(['records.id', 'records.version', 'records.created_at', 'records.updated_at', 'records.expires_at'])
    // A big record's data is fetched apart, and only if the page's byte budget reaches it
    // (pageWithinBudget): a page of 100 records of 1 MiB took seconds of the event loop to
    // parse and serialise.
    .select(sql`case when ${dataLength(dialect)} <= ${INLINE_DATA_BYTES} then records.data end`.as('data'))
    .select(dataLength(dialect).as('_len'))
    .select(page.keys.map((k, i) => sql`${k.expr}`.as(`_s${i}`)))
    // SQLite uses a partial index only when the query names its predicate's values
    // literally; PostgreSQL plans unnamed statements with the bound values anyway.
    .where('records.tenant_id', '=', dialect === 'sqlite' ? sql.lit(page.tenantId) : page.tenantId)
    .where('records.collection', '=', dialect === 'sqlite' ? sql.lit(page.collection) : page.collection)
    .where(liveRecord(page.now) as Expression<SqlBool>);
  if (page.filter) q = q.where(page.filter as Expression<SqlBool>);
  if (page.after) q = q.where(page.after as Expression<SqlBool>);
  if (page.ids) q = q.where('records.id', 'in', page.ids);
  return q.orderBy(orderBy(page.keys)).limit(page.limit);
}

/**
 * Whether an index of the records table gives the listing's order, or all of it but the
 * ordering of ties on the first key (`-createdAt` with the ascending `id` tie-breaker, which
 * PostgreSQL finishes with an incremental sort within equal timestamps): (tenant, collection,
 * column, id) exists for created_at, updated_at and id. Then the read should follow it
 * (`indexOrder`) rather than sort the collection. With a filter a declared index can search,
 * the page is looked for through that index first (search.ts).
 */
export function indexGivesOrder(keys: readonly SortKey[]): boolean {
  const first = keys[0]?.path;
  return first?.kind === 'meta' && first.column !== 'version';
}
