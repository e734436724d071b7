/**
 * The record writes, each one function that runs inside a unit of work it is given: a single
 * route runs one in its own unit, a batch (src/modules/batch) several in one, and each sees
 * the writes made before it in its unit. Checking the input (role, names, ids, the shape of
 * the data) is apart, in the `check*` functions, and runs before any unit opens: a refused
 * write costs no transaction, and a batch checks all its operations before it writes any.
 */
import { createHash } from 'node:crypto';
import { DEFAULT_TENANT_LIMITS, type TenantLimits } from '../../config/config.js';
import { AgentstoreError } from '../../core/errors.js';
import { requireRole, type TenantContext } from '../../core/context.js';
import { uuidv7 } from '../../core/ids.js';
import type { Executor } from '../../db/database.js';
import { fromJsonColumn, fromNullableJsonColumn, toJsonColumn, toNullableIso, type DialectName } from '../../db/dialect.js';
import { isIndexRowTooLarge } from '../../db/errors.js';
import type { CollectionsTable, RecordsTable } from '../../db/schema.js';
import type { UnitOfWork } from '../../db/unit-of-work.js';
import { checkExpiry, expiresAtFor, isExpired, type Expiry, type ExpiryFields } from './expiry.js';
import { removeExpired } from './expired-rows.js';
import { lockTenantCollections, tenantUsage, tooManyCollections } from './limits.js';
import { toCollection, toRecord } from './rows.js';
import { validateAgainstSchema } from './schema-validator.js';
import type { JsonObject, Precondition, StoredRecord, UpsertRecordResult } from './types.js';
import { assertObject, mergePatch, validateCollectionName, validateRecordId } from './validation.js';

export interface CreateInput {
  readonly collection: string;
  readonly id: string;
  readonly data: JsonObject;
  /** The expiry asked for; none: the collection's default TTL, if it has one. */
  readonly expiry?: Expiry | undefined;
}

export interface PutInput extends CreateInput {
  readonly ifMatch?: Precondition;
  /** `If-None-Match: *`: create only; the record existing is a 412. */
  readonly ifNoneMatch?: '*';
  /** PUT's upsert: a missing record is created (unless `ifMatch` is given). Else 404. */
  readonly createIfMissing: boolean;
}

export interface PatchInput {
  readonly collection: string;
  readonly id: string;
  readonly patch: JsonObject;
  readonly ifMatch?: Precondition;
  /** A new expiry; none: the record keeps its own. */
  readonly expiry?: Expiry | undefined;
}

/** An expiry as a caller gave it (checked by `checkExpiry`), and what its fields are called there. */
export interface ExpiryRequest {
  readonly ttl?: unknown;
  readonly expiresAt?: unknown;
  readonly fields?: ExpiryFields;
}

const expiryOf = (request: ExpiryRequest | undefined) => {
  const expiry = checkExpiry(request, request?.fields);
  return expiry === undefined ? {} : { expiry };
};

export interface DeleteInput {
  readonly collection: string;
  readonly id: string;
  readonly ifMatch?: Precondition;
}

/** PostgreSQL refuses an index entry over ~2.7 kB: that is the caller's value, not a server fault. */
export function indexLimitError(error: unknown, field = '/data'): AgentstoreError | undefined {
  if (!isIndexRowTooLarge(error)) return undefined;
  return AgentstoreError.validation('a value of an indexed field is too large to index (keep indexed values under 2 kB)', [
    { field, message: 'an indexed field holds a value too large to index' },
  ]);
}

export function mapIndexLimit(error: unknown): never {
  throw indexLimitError(error) ?? error;
}

/**
 * A string `id` at the top of a record's data is the record's id (that is how a create names
 * it), so data may never hold another one: a replace or a patch that would make them differ
 * is refused rather than storing a record whose data contradicts its id. A non-string `id`
 * is plain data. Leaving `id` out of the data (or patching it to null) is fine.
 */
export function checkDataId(data: JsonObject, id: string): void {
  if (typeof data.id === 'string' && data.id !== id) {
    throw AgentstoreError.invalidField('/data/id', `must be the record's id ${JSON.stringify(id)} or left out: a record's id never changes`);
  }
}

/** The record's id: the one given, else a string `id` in the data, else a new UUIDv7. */
export function recordIdFor(data: JsonObject, id: unknown, field = 'id'): string {
  const chosen = id !== undefined ? validateRecordId(id, field) : typeof data.id === 'string' ? validateRecordId(data.id, '/data/id') : uuidv7();
  checkDataId(data, chosen);
  return chosen;
}

export function checkCreate(ctx: TenantContext, collection: string, data: unknown, id?: string, expiry?: ExpiryRequest): CreateInput {
  requireRole(ctx, 'member');
  validateCollectionName(collection);
  const object = assertObject(data);
  return { collection, id: recordIdFor(object, id), data: object, ...expiryOf(expiry) };
}

export function checkPut(
  ctx: TenantContext,
  collection: string,
  id: string,
  data: unknown,
  options: { ifMatch?: Precondition; ifNoneMatch?: '*'; createIfMissing: boolean },
  expiry?: ExpiryRequest,
): PutInput {
  requireRole(ctx, 'member');
  validateCollectionName(collection);
  validateRecordId(id);
  const object = assertObject(data);
  checkDataId(object, id);
  return { collection, id, data: object, ...options, ...expiryOf(expiry) };
}

export function checkPatch(ctx: TenantContext, collection: string, id: string, patch: unknown, ifMatch?: Precondition, expiry?: ExpiryRequest): PatchInput {
  requireRole(ctx, 'member');
  validateCollectionName(collection);
  validateRecordId(id);
  const object = assertObject(patch);
  // What the patch sets, not the merged result: a record stored before this rule with
  // another id in its data can still be patched (and its data id removed with null).
  checkDataId(object, id);
  return { collection, id, patch: object, ...(ifMatch !== undefined ? { ifMatch } : {}), ...expiryOf(expiry) };
}

export function checkDelete(ctx: TenantContext, collection: string, id: string, ifMatch?: Precondition): DeleteInput {
  requireRole(ctx, 'member');
  validateCollectionName(collection);
  validateRecordId(id);
  return { collection, id, ...(ifMatch !== undefined ? { ifMatch } : {}) };
}

export function loadCollection(trx: Executor, tenantId: string, name: string): Promise<CollectionsTable | undefined> {
  return trx.selectFrom('collections').selectAll().where('tenant_id', '=', tenantId).where('name', '=', name).executeTakeFirst();
}

export interface RecordWrites {
  /** The collection's row, created (and recorded) on its first write, like a map key springing into being. */
  ensureCollection(w: UnitOfWork, name: string): Promise<CollectionsTable>;
  /** The collection's JSON Schema, if it has one, run on `data` (400 naming `/data/…`). */
  checkSchema(collection: CollectionsTable, data: JsonObject): void;
  /** 409 when the id exists. */
  create(w: UnitOfWork, input: CreateInput): Promise<StoredRecord>;
  /** Replace, or with `createIfMissing` create a missing record. */
  put(w: UnitOfWork, input: PutInput): Promise<UpsertRecordResult>;
  patch(w: UnitOfWork, input: PatchInput): Promise<StoredRecord>;
  /** The version the record was at. */
  remove(w: UnitOfWork, input: DeleteInput): Promise<{ readonly version: number }>;
}

export function createRecordWrites(deps: { dialect: DialectName; limits?: TenantLimits }): RecordWrites {
  const { dialect } = deps;
  const limits = deps.limits ?? DEFAULT_TENANT_LIMITS;

  const ensureCollection = async (w: UnitOfWork, name: string): Promise<CollectionsTable> => {
    const tenantId = w.ctx.tenantId;
    const existing = await loadCollection(w.trx, tenantId, name);
    if (existing) return existing;
    await lockTenantCollections(w.trx, dialect, tenantId);
    // Under the lock a concurrent first write may have created it meanwhile: count it then.
    if ((await tenantUsage(w.trx, dialect, tenantId, name)).collections >= limits.collections) {
      const created = await loadCollection(w.trx, tenantId, name);
      if (created) return created;
      throw tooManyCollections(limits);
    }
    const row: CollectionsTable = { tenant_id: tenantId, name, schema: null, indexes: '[]', ttl_seconds: null, end_user_field: null, version: 1, created_at: w.now, updated_at: w.now };
    // Concurrent first writes race to create the row: the losers (PostgreSQL, which does not
    // serialise writers as SQLite's BEGIN IMMEDIATE does) use the winner's row instead of
    // failing on its primary key.
    const inserted = await w.trx.insertInto('collections').values(row).onConflict((oc) => oc.columns(['tenant_id', 'name']).doNothing()).executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) {
      const winner = await loadCollection(w.trx, tenantId, name);
      if (winner) return winner;
    }
    await w.record({ action: 'create', resourceType: 'collection', resourceId: name, collection: name, version: 1, data: toCollection(row) });
    return row;
  };

  const checkSchema = (collection: CollectionsTable, data: JsonObject): void => {
    const schema = fromNullableJsonColumn<JsonObject>(collection.schema);
    // Keyed by the schema's text, not (tenant, name, version): a collection deleted and
    // defined again starts over at version 1 with another schema, and the cache is process-wide.
    if (schema) validateAgainstSchema(createHash('sha256').update(JSON.stringify(schema)).digest('hex'), schema, data);
  };

  const loadStored = (w: UnitOfWork, collection: string, id: string) => {
    let q = w.trx.selectFrom('records').selectAll().where('tenant_id', '=', w.ctx.tenantId).where('collection', '=', collection).where('id', '=', id);
    // SQLite's BEGIN IMMEDIATE already serialises writers; PostgreSQL needs the row lock.
    if (dialect === 'postgres') q = q.forUpdate();
    return q.executeTakeFirst();
  };

  /**
   * The record, locked, as every write sees it: an expired one is absent. Such a row is still
   * stored until the sweep comes; it is deleted here, with its delete change, so that a write
   * that goes on to create the id emits a delete of the old record and then a create, as if
   * the sweep had come first. A write that fails instead rolls the deletion back with it.
   */
  const loadRecord = async (w: UnitOfWork, collection: string, id: string): Promise<RecordsTable | undefined> => {
    const row = await loadStored(w, collection, id);
    if (!row || !isExpired(row.expires_at, w.now)) return row;
    await removeExpired(w, collection, [{ id, version: Number(row.version) }]);
    return undefined;
  };

  const checkPrecondition = (row: RecordsTable | undefined, ifMatch: Precondition | undefined): RecordsTable => {
    if (!row) {
      if (ifMatch !== undefined) throw AgentstoreError.preconditionFailed('the record does not exist');
      throw AgentstoreError.notFound('record');
    }
    if (ifMatch !== undefined && ifMatch !== '*' && Number(row.version) !== ifMatch) {
      throw AgentstoreError.preconditionFailed(`the record is at version ${row.version}, not ${ifMatch}`, Number(row.version));
    }
    return row;
  };

  /**
   * Inserts the record unless a live record has its id (then undefined: no SQL error, which
   * would abort a PostgreSQL unit). An expired record of that id is removed first.
   */
  const insert = async (w: UnitOfWork, input: CreateInput): Promise<StoredRecord | undefined> => {
    const coll = await ensureCollection(w, input.collection);
    checkSchema(coll, input.data);
    const row: RecordsTable = {
      tenant_id: w.ctx.tenantId,
      collection: input.collection,
      id: input.id,
      version: 1,
      data: toJsonColumn(input.data),
      created_at: w.now,
      updated_at: w.now,
      expires_at: expiresAtFor(w.now, input.expiry, coll.ttl_seconds),
    };
    const attempt = () => w.trx.insertInto('records').values(row).onConflict((oc) => oc.columns(['tenant_id', 'collection', 'id']).doNothing()).executeTakeFirst();
    let inserted = await attempt();
    // Taken: by a live record (409), or by an expired one not swept yet, which loadRecord
    // removes (only then, so that a create costs one statement while its id is free).
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0 && !(await loadRecord(w, input.collection, input.id))) inserted = await attempt();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) return undefined;
    const stored = toRecord({ ...row, data: input.data });
    await w.record({ action: 'create', resourceType: 'record', resourceId: input.id, collection: input.collection, version: 1, data: stored });
    return stored;
  };

  /** `expiry`: the new one asked for (or the collection's default), or `keep` the record's (PATCH). */
  const update = async (w: UnitOfWork, collection: string, id: string, row: RecordsTable, data: JsonObject, expiry: Expiry | undefined | 'keep'): Promise<StoredRecord> => {
    const coll = await loadCollection(w.trx, w.ctx.tenantId, collection);
    if (coll) checkSchema(coll, data);
    const version = Number(row.version) + 1;
    const expiresAt = expiry === 'keep' ? toNullableIso(row.expires_at) : expiresAtFor(w.now, expiry, coll?.ttl_seconds);
    const result = await w.trx
      .updateTable('records')
      .set({ data: toJsonColumn(data), version, updated_at: w.now, expires_at: expiresAt })
      .where('tenant_id', '=', w.ctx.tenantId)
      .where('collection', '=', collection)
      .where('id', '=', id)
      .where('version', '=', Number(row.version))
      .executeTakeFirst();
    // The version guard catches a writer that slipped in between read and update.
    if (Number(result.numUpdatedRows) !== 1) throw AgentstoreError.preconditionFailed('the record changed concurrently');
    const record = toRecord({ ...row, data, version, updated_at: w.now, expires_at: expiresAt });
    await w.record({ action: 'update', resourceType: 'record', resourceId: id, collection, version, data: record });
    return record;
  };

  return {
    ensureCollection,
    checkSchema,

    async create(w, input) {
      const record = await insert(w, input);
      if (!record) throw AgentstoreError.conflict(`a record with id "${input.id}" already exists in this collection`);
      return record;
    },

    async put(w, input) {
      let row = await loadRecord(w, input.collection, input.id);
      if (!row && input.createIfMissing && input.ifMatch === undefined) {
        const created = await insert(w, input);
        if (created) return { record: created, created: true };
        // A concurrent upsert of the same new id committed first (PostgreSQL; SQLite
        // serialises writers): this one replaces what it created, as if it had come second.
        row = await loadRecord(w, input.collection, input.id);
      }
      // RFC 9110 §13.2.2: If-Match first (false on a missing record), then If-None-Match.
      const current = checkPrecondition(row, input.ifMatch);
      if (input.ifNoneMatch === '*') throw AgentstoreError.preconditionFailed('the record exists (If-None-Match: * creates only)', Number(current.version));
      return { record: await update(w, input.collection, input.id, current, input.data, input.expiry), created: false };
    },

    async patch(w, input) {
      const row = checkPrecondition(await loadRecord(w, input.collection, input.id), input.ifMatch);
      return update(w, input.collection, input.id, row, mergePatch(fromJsonColumn<JsonObject>(row.data), input.patch) as JsonObject, input.expiry ?? 'keep');
    },

    async remove(w, input) {
      const row = checkPrecondition(await loadRecord(w, input.collection, input.id), input.ifMatch);
      const result = await w.trx
        .deleteFrom('records')
        .where('tenant_id', '=', w.ctx.tenantId)
        .where('collection', '=', input.collection)
        .where('id', '=', input.id)
        .where('version', '=', Number(row.version))
        .executeTakeFirst();
      if (Number(result.numDeletedRows) !== 1) throw AgentstoreError.preconditionFailed('the record changed concurrently');
      const version = Number(row.version);
      await w.record({ action: 'delete', resourceType: 'record', resourceId: input.id, collection: input.collection, version, data: null });
      return { version };
    },
  };
}
