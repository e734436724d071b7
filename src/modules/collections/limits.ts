import { sql } from 'kysely';
import type { TenantLimits } from '../../config/config.js';
import { AgentstoreError } from '../../core/errors.js';
import type { Database, Executor } from '../../db/database.js';

/**
 * The per-tenant and database-wide limits on collections and declared indexes
 * (docs/architecture.md, "Declared indexes"): the counts, the locks they are taken under,
 * and the 409s past them. Lock order, to stay free of deadlocks: the tenant's lock first,
 * then the collection's row, then the database-wide lock.
 */

/**
 * Serialises, per tenant, the transactions that add a collection or declared indexes, so
 * that two concurrent ones cannot both count under the limit and both commit. SQLite
 * serialises all writers already.
 */
export async function lockTenantCollections(trx: Executor, dialect: Database['dialect'], tenantId: string): Promise<void> {
  if (dialect === 'postgres') await sql`select pg_advisory_xact_lock(hashtext(${`agentstore.collections:${tenantId}`}))`.execute(trx);
}

/** The tenant's collections and their declared indexes, leaving out `except`. */
export async function tenantUsage(trx: Executor, dialect: Database['dialect'], tenantId: string, except?: string): Promise<{ collections: number; indexes: number }> {
  const length = dialect === 'sqlite' ? sql`json_array_length(indexes)` : sql`jsonb_array_length(indexes)`;
  const { rows } = await sql<{ collections: number | string; indexes: number | string | null }>`
    select count(*) as collections, sum(${length}) as indexes from collections
    where tenant_id = ${tenantId} and name <> ${except ?? ''}`.execute(trx);
  return { collections: Number(rows[0]?.collections ?? 0), indexes: Number(rows[0]?.indexes ?? 0) };
}

// The advisory lock that serialises, over all tenants, the transactions that add declared indexes.
const DECLARED_INDEXES_LOCK = 727_401_114;

/**
 * Declared indexes in the whole database, from the catalog (which no RLS policy hides), under
 * a database-wide lock so that concurrent defines of different tenants count one after
 * another. Taken after the tenant's lock and the collection's row lock, never before them.
 */
export async function declaredIndexesInDatabase(trx: Executor, dialect: Database['dialect']): Promise<number> {
  const { rows } =
    dialect === 'sqlite'
      ? await sql<{ n: number }>`select count(*) as n from sqlite_master where type = 'index' and tbl_name = 'records' and substr(name, 1, 10) = 'records_f_'`.execute(trx)
      : await (async () => {
          await sql`select pg_advisory_xact_lock(${DECLARED_INDEXES_LOCK})`.execute(trx);
          return sql<{ n: number }>`select count(*)::int as n from pg_indexes where schemaname = current_schema() and tablename = 'records' and substr(indexname, 1, 10) = 'records_f_'`.execute(trx);
        })();
  return Number(rows[0]?.n ?? 0);
}

export function tooManyIndexesInDatabase(limits: TenantLimits): AgentstoreError {
  return new AgentstoreError(
    'agentstore.conflict',
    `this server holds its limit of ${limits.declaredIndexesTotal} declared indexes over all tenants (each one slows every tenant's writes); ask the operator`,
    { errors: [{ field: '/indexes', message: `at most ${limits.declaredIndexesTotal} declared indexes in this database` }] },
  );
}

export function tooManyCollections(limits: TenantLimits): AgentstoreError {
  return new AgentstoreError('agentstore.conflict', `this tenant has its limit of ${limits.collections} collections; delete one first`, {
    errors: [{ field: 'collection', message: `at most ${limits.collections} collections per tenant` }],
  });
}

export function tooManyIndexes(limits: TenantLimits, others: number, wanted: number): AgentstoreError {
  return new AgentstoreError(
    'agentstore.conflict',
    `this tenant may declare at most ${limits.declaredIndexes} indexes over all its collections; its other collections have ${others}, this one asks for ${wanted}`,
    { errors: [{ field: '/indexes', message: `at most ${limits.declaredIndexes} declared indexes per tenant` }] },
  );
}
