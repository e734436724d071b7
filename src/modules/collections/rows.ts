import { fromJsonColumn, fromNullableJsonColumn, toIso, toNullableIso } from '../../db/dialect.js';
import type { CollectionsTable, RecordsTable } from '../../db/schema.js';
import type { Collection, JsonObject, StoredRecord } from './types.js';

/** A records row as the API returns it. */
export function toRecord(row: Pick<RecordsTable, 'id' | 'version' | 'created_at' | 'updated_at' | 'data'> & { readonly expires_at?: RecordsTable['expires_at'] | undefined }): StoredRecord {
  const expiresAt = toNullableIso(row.expires_at);
  return {
    id: row.id,
    version: Number(row.version),
    createdAt: toIso(row.created_at),
    updatedAt: toIso(row.updated_at),
    // Only when set: a record without an expiry looks as it did before expiry existed.
    ...(expiresAt !== null ? { expiresAt } : {}),
    data: fromJsonColumn<JsonObject>(row.data),
  };
}

/** A collections row as the API returns it. */
export function toCollection(row: CollectionsTable): Collection {
  return {
    name: row.name,
    schema: fromNullableJsonColumn<JsonObject>(row.schema),
    indexes: fromJsonColumn<string[]>(row.indexes),
    ttlSeconds: row.ttl_seconds === null || row.ttl_seconds === undefined ? null : Number(row.ttl_seconds),
    endUserField: row.end_user_field ?? null,
    version: Number(row.version),
    createdAt: toIso(row.created_at),
    updatedAt: toIso(row.updated_at),
  };
}
