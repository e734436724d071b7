/**
 * The collections' part of erasing an end user: in every collection of the tenant that
 * declares an `endUserField`, the records whose field holds the end user's id (a string,
 * compared as the filter language's `eq` does). The field must be one of the collection's
 * declared indexes (service.ts refuses it otherwise), so a batch finds its records by searching
 * that index, through `tenant_records` on PostgreSQL as listings do, never by reading the
 * collection.
 */
import { sql, type Expression, type SqlBool } from 'kysely';
import type { TenantContext } from '../../core/context.js';
import type { Database, Executor } from '../../db/database.js';
import type { DialectName } from '../../db/dialect.js';
import type { UnitOfWorkRunner } from '../../db/unit-of-work.js';
import type { EndUserEraser } from '../end-users/service.js';
import { compileFilter } from './filter.js';
import { indexName } from './index-builds.js';
import { recordSource } from './list-query.js';
import { executeWithIndex, withIndex } from './search.js';

/** Records per unit of work. */
export const ERASE_BATCH = 500;

/**
 * The ids of up to `limit` records of the collection whose `field` holds `endUserId`, found
 * through the field's declared index (named on SQLite; through `tenant_records` on PostgreSQL).
 */
export function endUserRecordsQuery(trx: Executor, dialect: DialectName, tenantId: string, collection: string, field: string, endUserId: string, limit: number, hinted = true) {
  const found = trx
    .selectFrom(recordSource(dialect))
    .select('records.id')
    // Literals on SQLite, which matches a partial index's predicate only to literal values.
    .where('records.tenant_id', '=', dialect === 'sqlite' ? sql.lit(tenantId) : tenantId)
    .where('records.collection', '=', dialect === 'sqlite' ? sql.lit(collection) : collection)
    .where(compileFilter({ [field]: endUserId }, dialect) as Expression<SqlBool>)
    .limit(limit);
  return withIndex(found, dialect === 'sqlite' && hinted ? indexName(tenantId, collection, field) : undefined);
}

/** Nothing of the end user in this collection: the unit is given up (it recorded nothing). */
class NothingToErase extends Error {}

export function createRecordsEraser(deps: { db: Database; uow: UnitOfWorkRunner; batchSize?: number }): EndUserEraser {
  const { db, uow } = deps;
  const dialect = db.dialect;
  const batchSize = deps.batchSize ?? ERASE_BATCH;

  /** One batch in one collection: how many records it deleted. */
  const eraseIn = async (ctx: TenantContext, collection: string, field: string, endUserId: string): Promise<number> => {
    const matches = compileFilter({ [field]: endUserId }, dialect) as Expression<SqlBool>;
    try {
      return await uow.write(ctx, async (w) => {
        // Without the hint only if SQLite refuses it (the index dropped meanwhile).
        const query = (hint: string | undefined) => endUserRecordsQuery(w.trx, dialect, ctx.tenantId, collection, field, endUserId, batchSize, hint !== undefined);
        const index = dialect === 'sqlite' ? indexName(ctx.tenantId, collection, field) : undefined;
        const ids = (await executeWithIndex(w.trx, query, index)).rows.map((r) => r.id);
        if (ids.length === 0) throw new NothingToErase();
        // The condition again: a record changed since the search keeps its new owner's data.
        const deleted = await w.trx
          .deleteFrom('records')
          .where('tenant_id', '=', ctx.tenantId)
          .where('collection', '=', collection)
          .where('id', 'in', ids)
          .where(matches)
          .returning(['id', 'version'])
          .execute();
        if (deleted.length === 0) throw new NothingToErase();
        for (const row of deleted) {
          await w.record({ action: 'delete', resourceType: 'record', resourceId: row.id, collection, version: Number(row.version), data: null, audit: false });
        }
        return deleted.length;
      });
    } catch (error) {
      if (error instanceof NothingToErase) return 0;
      throw error;
    }
  };

  return {
    name: 'records',
    tables: ['records'],
    async eraseBatch(ctx, endUserId) {
      const declared = await uow.read(ctx, (trx) =>
        trx.selectFrom('collections').select(['name', 'end_user_field']).where('tenant_id', '=', ctx.tenantId).where('end_user_field', 'is not', null).orderBy('name').execute(),
      );
      for (const { name, end_user_field: field } of declared) {
        const n = field === null ? 0 : await eraseIn(ctx, name, field, endUserId);
        if (n > 0) return n;
      }
      return 0;
    },
  };
}
