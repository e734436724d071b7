import { fromJsonColumn, fromNullableJsonColumn, toIso } from '../../db/dialect.js';
import type { CollectionsTable, RecordsTable } from '../../db/schema.js';
import type { Collection, JsonObject, StoredRecord } from './types.js';

/** A records row as the API returns it. */
export function toRecord(row: Pick<RecordsTable, 'id' | 'version' | 'created_at' | 'updated_at' | 'data'>): StoredRecord {
  return {
    id: row.id,
    version: Number(row.version),
    createdAt: toIso(row.created_at),
    updatedAt: toIso(row.updated_at),
    data: fromJsonColumn<JsonObject>(row.data),
  };
}

/** A collections row as the API returns it. */
export function toCollection(row: CollectionsTable): Collection {
  return {
    name: row.name,
    schema: fromNullableJsonColumn<JsonObject>(row.schema),
    indexes: fromJsonColumn<string[]>(row.indexes),
    version: Number(row.version),
    createdAt: toIso(row.created_at),
    updatedAt: toIso(row.updated_at),
  };
}
