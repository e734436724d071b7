import { createHash } from 'node:crypto';
import { sql, type Expression, type SqlBool } from 'kysely';
import { DEFAULT_TENANT_LIMITS, type TenantLimits } from '../../config/config.js';
import { AgentstoreError, isAgentstoreError } from '../../core/errors.js';
import { requireRole, type TenantContext } from '../../core/context.js';
import { afterKey, decodeCursor, encodeCursor, pageSize, toPage, type Page } from '../../core/cursor.js';
import type { Database, Executor, PointReadSql } from '../../db/database.js';
import { fromJsonColumn, nowIso, pgIsoText, toJsonColumn } from '../../db/dialect.js';
import { isUniqueViolation } from '../../db/errors.js';
import { idempotentRequest, rememberIdempotent, replayIdempotent } from '../../db/idempotency.js';
import type { CollectionsTable, RecordsTable } from '../../db/schema.js';
import type { UnitOfWorkRunner } from '../../db/unit-of-work.js';
import { createBulkLoad, type BulkLine, type BulkOptions, type BulkResult } from './bulk.js';
import { checkDefaultTtl, isExpired, liveRecord, type ExpiryOptions } from './expiry.js';
import { compileFilter, parseFilter } from './filter.js';
import { createIndexBuilds, indexName, type IndexBuilds } from './index-builds.js';
import { parseFieldPath, parseQueryPath } from './json-path.js';
import { declaredIndexesInDatabase, lockTenantCollections, tenantUsage, tooManyCollections, tooManyIndexes, tooManyIndexesInDatabase } from './limits.js';
import { pageWithinBudget } from '../../core/page-budget.js';
import { aggregateRecords, countRecords, parseAggregate } from './aggregate.js';
import { createRecordSearch } from './search.js';
import { parseFields, project } from './projection.js';
import { deleteAllRecords } from './purge.js';
import { checkCreate, checkDelete, checkPatch, checkPut, createRecordWrites, loadCollection, mapIndexLimit, type RecordWrites } from './record-writes.js';
import { toCollection, toRecord } from './rows.js';
import { cursorTypes, cursorValue, keysetAfter, parseSort, sortScope } from './sort.js';
import type {
  AggregateOptions,
  AggregateResult,
  Collection,
  CountRecordsOptions,
  CreateRecordResult,
  GetRecordOptions,
  JsonObject,
  ListRecordsOptions,
  Precondition,
  StoredRecord,
  UpsertRecordResult,
} from './types.js';
import { compileSchema } from './schema-validator.js';
import { assertObject, validateCollectionName, validateRecordId } from './validation.js';

export interface CollectionsService {
  /**
   * Creates or configures a collection. Each field given replaces its setting, each left out
   * keeps it: `ttlSeconds` is the default TTL of records written without an expiry of their
   * own (null: none), for writes from now on. `endUserField` names the data field (one of the
   * declared indexes, so that erasure searches it) holding a record's end-user id.
   */
  define(ctx: TenantContext, name: string, input: { schema?: JsonObject | null; indexes?: readonly string[]; ttlSeconds?: number | null; endUserField?: string | null }): Promise<Collection>;
  getCollection(ctx: TenantContext, name: string): Promise<Collection>;
  listCollections(ctx: TenantContext, options?: { limit?: number; cursor?: string }): Promise<Page<Collection>>;
  deleteCollection(ctx: TenantContext, name: string): Promise<void>;

  /** `ttl` or `expiresAt`: when the record expires (default: the collection's TTL, else never). */
  create(ctx: TenantContext, collection: string, data: JsonObject, options?: { id?: string; idempotencyKey?: string } & ExpiryOptions): Promise<CreateRecordResult>;
  get(ctx: TenantContext, collection: string, id: string, options?: GetRecordOptions): Promise<StoredRecord>;
  /**
   * `get` as the JSON text of the record, built around the stored data without parsing
   * it: what the HTTP API sends. The version is apart for the ETag.
   */
  getJson(ctx: TenantContext, collection: string, id: string, options?: GetRecordOptions): Promise<{ readonly version: number; readonly json: string }>;
  /**
   * Replaces an existing record (404 when there is none; see `upsert`). Its expiry is set
   * anew, as on a create: `ttl` or `expiresAt`, else the collection's TTL, else none.
   */
  replace(ctx: TenantContext, collection: string, id: string, data: JsonObject, options?: { ifMatch?: Precondition } & ExpiryOptions): Promise<StoredRecord>;
  /**
   * HTTP PUT: replaces the record, or creates it when it does not exist and `ifMatch` is not
   * given (`created`). `ifMatch` on a missing record and `ifNoneMatch: '*'` on an existing
   * one are 412.
   */
  upsert(ctx: TenantContext, collection: string, id: string, data: JsonObject, options?: { ifMatch?: Precondition; ifNoneMatch?: '*' } & ExpiryOptions): Promise<UpsertRecordResult>;
  /** A JSON merge patch; the record keeps its expiry unless `ttl` or `expiresAt` is given. */
  patch(ctx: TenantContext, collection: string, id: string, patch: JsonObject, options?: { ifMatch?: Precondition } & ExpiryOptions): Promise<StoredRecord>;
  delete(ctx: TenantContext, collection: string, id: string, options?: { ifMatch?: Precondition }): Promise<void>;
  list(ctx: TenantContext, collection: string, options?: ListRecordsOptions): Promise<Page<StoredRecord>>;
  /** How many records match the filter: exact, a scan of what it selects. */
  count(ctx: TenantContext, collection: string, options?: CountRecordsOptions): Promise<number>;
  /** Groups of records by up to two fields, with counts and numeric metrics (aggregate.ts). */
  aggregate(ctx: TenantContext, collection: string, options?: AggregateOptions): Promise<AggregateResult>;
  /**
   * Creates or upserts many records, streamed: one result per line, in order, as the lines'
   * chunks commit (docs/api.md, "Bulk loads"). The role and the collection name are checked
   * at the call; everything about a line fails that line only. An `AgentstoreError` in place
   * of a line reports that line as failed (the HTTP route's lines that are not JSON).
   */
  bulk(ctx: TenantContext, collection: string, lines: AsyncIterable<BulkLine | AgentstoreError> | Iterable<BulkLine | AgentstoreError>, options?: BulkOptions): AsyncIterable<BulkResult>;
}

const MAX_INDEXES = 16;

/** A collection's end-user field as a definition gives it: a data path, null to clear, undefined to keep. */
function checkEndUserField(value: string | null | undefined): string | null | undefined {
  if (value === undefined || value === null) return value;
  const path = parseQueryPath(value, '/endUserField');
  if (path.kind !== 'data') throw AgentstoreError.invalidField('/endUserField', `names a data field, not the record attribute "${value}"`);
  return path.segments.join('.');
}

/**
 * Erasing an end user searches the field's declared index, never the whole collection: the
 * field must be one of the collection's indexes, now and after any redefinition.
 */
function checkEndUserIndexed(field: string | null, indexes: readonly string[], given: boolean): void {
  if (field === null) return;
  const declared = indexes.map((raw) => {
    const path = parseQueryPath(raw, '/indexes');
    return path.kind === 'data' ? path.segments.join('.') : raw;
  });
  if (declared.includes(field)) return;
  if (given) throw AgentstoreError.invalidField('/endUserField', `must be one of the collection's indexes (add "${field}" to indexes), so that erasing an end user searches its index`);
  throw AgentstoreError.invalidField('/indexes', `must keep "${field}", the collection's endUserField (set endUserField to null first)`);
}

/**
 * Builds a declared index inside a unit of work, on PostgreSQL as the runtime role alone
 * (IndexBuilds.outside is false): the role owns no table and may not run CREATE INDEX, so
 * migration 0003's SECURITY DEFINER function does it for the tenant of the transaction
 * (never one named by the caller), after checking the name and path again.
 */
async function createIndex(trx: Executor, collection: string, segments: readonly string[]): Promise<void> {
  await sql`select agentstore_create_record_index(${collection}, ${[...segments]}::text[])`.execute(trx);
}

async function dropIndexes(trx: Executor, dialect: Database['dialect'], tenantId: string, collection: string, fields: readonly string[]): Promise<void> {
  for (const field of fields) {
    if (dialect === 'sqlite') await sql.raw(`DROP INDEX IF EXISTS ${indexName(tenantId, collection, field)}`).execute(trx);
    else await sql`select agentstore_drop_record_index(${collection}, ${field.split('.')}::text[])`.execute(trx);
  }
}

/** A record row as the point read returns it: timestamps and data as text. */
interface RecordText {
  readonly id: string;
  readonly version: number | string;
  readonly created_at: string;
  readonly updated_at: string;
  readonly data: string;
  readonly expires_at: string | null;
}

// Both dialects give back text for the timestamps (ISO-8601 with milliseconds, as stored)
// and the data (JSON), so a read can be answered without parsing the data.
// The expiry is selected and compared here, not in the SQL: the point read's text stays one
// prepared statement without a clock parameter.
const RECORD_COLUMNS_PG = `id, version, ${pgIsoText('created_at')} as created_at, ${pgIsoText('updated_at')} as updated_at, data::text as data, ${pgIsoText('expires_at')} as expires_at`;
const RECORD_BY_ID: PointReadSql = {
  sqlite: 'select id, version, created_at, updated_at, data, expires_at from records where tenant_id = ? and collection = ? and id = ?',
  postgres: `select ${RECORD_COLUMNS_PG} from records where tenant_id = $1 and collection = $2 and id = $3`,
  postgresMany: { sql: `select ${RECORD_COLUMNS_PG} from records where tenant_id = $1 and collection = $2 and id in $keys`, column: 'id' },
};

function recordJson(row: RecordText): string {
  const expiry = row.expires_at === null ? '' : `,"expiresAt":${JSON.stringify(row.expires_at)}`;
  return `{"id":${JSON.stringify(row.id)},"version":${Number(row.version)},"createdAt":${JSON.stringify(row.created_at)},"updatedAt":${JSON.stringify(row.updated_at)}${expiry},"data":${row.data}}`;
}

export function createCollectionsService(deps: { db: Database; uow: UnitOfWorkRunner; limits?: TenantLimits; indexBuilds?: IndexBuilds; writes?: RecordWrites }): CollectionsService {
  const { db, uow } = deps;
  const builds = deps.indexBuilds ?? createIndexBuilds(db, undefined, undefined);
  const limits = deps.limits ?? DEFAULT_TENANT_LIMITS;
  const dialect = db.dialect;
  const readRecord = db.prepareRead<RecordText>(RECORD_BY_ID);
  const loadText = async (ctx: TenantContext, collection: string, id: string): Promise<RecordText> => {
    requireRole(ctx, 'viewer');
    validateCollectionName(collection);
    validateRecordId(id);
    const row = await readRecord(ctx.tenantId, [ctx.tenantId, collection, id]);
    // An expired record is absent, swept or not.
    if (!row || isExpired(row.expires_at, nowIso())) throw AgentstoreError.notFound('record');
    return row;
  };

  const search = createRecordSearch(db, uow);
  /** A count's or an aggregate's filter: compiled, and on SQLite the declared index to name. */
  const scopeOf = async (ctx: TenantContext, collection: string, filter: string | JsonObject | undefined) => {
    const parsed = filter === undefined ? undefined : parseFilter(typeof filter === 'string' ? filter : JSON.stringify(filter));
    const compiled = parsed === undefined ? undefined : compileFilter(parsed, dialect);
    return { scope: { tenantId: ctx.tenantId, collection, filter: compiled, now: nowIso() }, index: await search.hint(ctx, collection, parsed) };
  };

  const writes = deps.writes ?? createRecordWrites({ dialect, limits });

  return {
    async define(ctx, name, input) {
      requireRole(ctx, 'admin');
      validateCollectionName(name);
      const schema = input.schema === undefined ? undefined : input.schema === null ? null : assertObject(input.schema, '/schema');
      if (schema) compileSchema(schema);
      const ttlSeconds = checkDefaultTtl(input.ttlSeconds);
      const endUserField = checkEndUserField(input.endUserField);
      const indexes = input.indexes === undefined ? undefined : [...new Set(input.indexes)];
      if (indexes && indexes.length > MAX_INDEXES) throw AgentstoreError.invalidField('/indexes', `at most ${MAX_INDEXES} indexed fields`);
      const paths = (indexes ?? []).map((field) => {
        // Named by its place in the request (the list was de-duplicated).
        const at = `/indexes/${input.indexes?.indexOf(field) ?? 0}`;
        const path = parseQueryPath(field, at);
        if (path.kind !== 'data') throw AgentstoreError.invalidField(at, `"${field}" is a record attribute and indexed already`);
        return path.segments;
      });
      const dotted = (segments: readonly string[]) => segments.join('.');
      const declaredFields = (row: CollectionsTable | undefined) =>
        row ? fromJsonColumn<string[]>(row.indexes).map((field) => parseFieldPath(field, 'indexes')).map((p) => (p.kind === 'data' ? dotted(p.segments) : '')) : [];
      /**
       * The collection and index limits, against the definition as it stands. `built` are
       * indexes this call already built outside the unit of work: the database counts them.
       */
      const checkLimits = async (trx: Executor, existing: CollectionsTable | undefined, built: number): Promise<void> => {
        if (existing && indexes === undefined) return;
        const usage = await tenantUsage(trx, dialect, ctx.tenantId, name);
        if (!existing && usage.collections >= limits.collections) throw tooManyCollections(limits);
        const wanted = indexes?.length ?? 0;
        if (usage.indexes + wanted > limits.declaredIndexes) throw tooManyIndexes(limits, usage.indexes, wanted);
        if (indexes === undefined) return;
        const before = declaredFields(existing);
        const kept = new Set(paths.map(dotted));
        const added = [...kept].filter((field) => !before.includes(field)).length;
        if (added === 0) return;
        const removed = before.filter((field) => !kept.has(field)).length;
        if ((await declaredIndexesInDatabase(trx, dialect)) - built - removed + added > limits.declaredIndexesTotal) throw tooManyIndexesInDatabase(limits);
      };
      const run = (built: number) => uow.write(ctx, async (w) => {
        await lockTenantCollections(w.trx, dialect, ctx.tenantId);
        let load = w.trx.selectFrom('collections').selectAll().where('tenant_id', '=', ctx.tenantId).where('name', '=', name);
        // Concurrent redefinitions must not both compute the same next version.
        if (dialect === 'postgres') load = load.forUpdate();
        const existing = await load.executeTakeFirst();
        await checkLimits(w.trx, existing, built);
        checkEndUserIndexed(endUserField === undefined ? (existing?.end_user_field ?? null) : endUserField, indexes ?? declaredFields(existing), endUserField !== undefined);
        const row: CollectionsTable = {
          tenant_id: ctx.tenantId,
          name,
          schema: schema === undefined ? (existing?.schema ?? null) : schema === null ? null : toJsonColumn(schema),
          indexes: indexes === undefined ? (existing ? toJsonColumn(fromJsonColumn(existing.indexes)) : '[]') : toJsonColumn(indexes),
          ttl_seconds: ttlSeconds === undefined ? (existing?.ttl_seconds ?? null) : ttlSeconds,
          end_user_field: endUserField === undefined ? (existing?.end_user_field ?? null) : endUserField,
          version: existing ? Number(existing.version) + 1 : 1,
          created_at: existing?.created_at ?? w.now,
          updated_at: w.now,
        };
        if (existing) {
          await w.trx
            .updateTable('collections')
            .set({ schema: row.schema, indexes: row.indexes, ttl_seconds: row.ttl_seconds, end_user_field: row.end_user_field, version: row.version, updated_at: row.updated_at })
            .where('tenant_id', '=', ctx.tenantId)
            .where('name', '=', name)
            .execute();
        } else {
          await w.trx.insertInto('collections').values(row).execute();
        }
        if (indexes !== undefined) {
          const kept = new Set(paths.map(dotted));
          await dropIndexes(w.trx, dialect, ctx.tenantId, name, declaredFields(existing).filter((field) => !kept.has(field)));
        }
        if (!builds.outside) for (const segments of paths) await createIndex(w.trx, name, segments).catch(mapIndexLimit);
        const collection = toCollection(row);
        await w.record({ action: existing ? 'update' : 'create', resourceType: 'collection', resourceId: name, collection: name, version: row.version, data: collection });
        return collection;
      });
      // A concurrent define or first record write can create the row (or the same index)
      // between our read and insert; once more, it is an update and the index exists.
      const attempt = (built: number) =>
        run(built).catch((error: unknown) => {
          if (isUniqueViolation(error)) return run(built);
          throw error;
        });
      if (!builds.outside || paths.length === 0) return attempt(0);
      // Built before the unit of work that records them, after the limits were checked once
      // (the unit checks them again): a build that fails changes nothing.
      return builds.serially(async () => {
        await uow.read(ctx, async (trx) => checkLimits(trx, await loadCollection(trx, ctx.tenantId, name), 0));
        const created = await builds.build(ctx.tenantId, name, paths).catch(mapIndexLimit);
        try {
          return await attempt(created.length);
        } catch (error) {
          // Unless a concurrent definition that committed uses them, the indexes this call built go.
          const current = await uow.read(ctx, (trx) => loadCollection(trx, ctx.tenantId, name)).catch(() => undefined);
          const used = new Set(declaredFields(current));
          await builds.drop(ctx.tenantId, name, created.filter((field) => !used.has(field))).catch(() => undefined);
          throw error;
        }
      });
    },

    async getCollection(ctx, name) {
      requireRole(ctx, 'viewer');
      validateCollectionName(name);
      const row = await uow.read(ctx, (trx) => loadCollection(trx, ctx.tenantId, name));
      if (!row) throw AgentstoreError.notFound('collection');
      return toCollection(row);
    },

    async listCollections(ctx, options = {}) {
      requireRole(ctx, 'viewer');
      const limit = pageSize(options.limit);
      const after = afterKey('collections', options.cursor);
      const rows = await uow.read(ctx, (trx) => {
        let q = trx.selectFrom('collections').selectAll().where('tenant_id', '=', ctx.tenantId).orderBy('name').limit(limit + 1);
        if (after !== undefined) q = q.where('name', '>', after);
        return q.execute();
      });
      return toPage(rows, limit, toCollection, (item) => [item.name], 'collections');
    },

    async deleteCollection(ctx, name) {
      requireRole(ctx, 'admin');
      validateCollectionName(name);
      await uow.write(ctx, async (w) => {
        const existing = await loadCollection(w.trx, ctx.tenantId, name);
        if (!existing) throw AgentstoreError.notFound('collection');
        const removed = await deleteAllRecords(w.trx, dialect, ctx.tenantId, name);
        await w.trx.deleteFrom('collections').where('tenant_id', '=', ctx.tenantId).where('name', '=', name).execute();
        const declared = fromJsonColumn<string[]>(existing.indexes).map((field) => parseFieldPath(field, 'indexes'));
        await dropIndexes(w.trx, dialect, ctx.tenantId, name, declared.map((p) => (p.kind === 'data' ? p.segments.join('.') : '')));
        await w.record({ action: 'delete', resourceType: 'collection', resourceId: name, collection: name, data: null, details: { records: removed } });
        // A collection of any size: on SQLite the deletion and its COMMIT run off the event loop.
      }, { offLoop: true });
    },

    async create(ctx, collection, data, options = {}) {
      const input = checkCreate(ctx, collection, data, options.id, options);
      // The expiry as asked (a TTL, not the instant it gives) is part of what a repeat must match.
      const keyed = idempotentRequest(options.idempotencyKey, `records.create:${collection}`, `${options.id ?? ''}\n${JSON.stringify(input.data)}${input.expiry ? `\n${JSON.stringify(input.expiry)}` : ''}`);
      if (keyed) {
        const replay = await replayIdempotent<StoredRecord>(uow, ctx, keyed);
        if (replay) return { record: replay, replayed: true };
      }
      try {
        const record = await uow.write(ctx, async (w) => {
          const stored = await writes.create(w, input);
          if (keyed) await rememberIdempotent(w, keyed, 201, stored);
          return stored;
        });
        return { record, replayed: false };
      } catch (error) {
        // A concurrent request with the same Idempotency-Key won (its key row, or the id it took).
        if (keyed && (isUniqueViolation(error) || isAgentstoreError(error, 'agentstore.conflict'))) {
          const replay = await replayIdempotent<StoredRecord>(uow, ctx, keyed);
          if (replay) return { record: replay, replayed: true };
        }
        if (isUniqueViolation(error)) throw AgentstoreError.conflict(`a record with id "${input.id}" already exists in this collection`);
        return mapIndexLimit(error);
      }
    },

    async get(ctx, collection, id, options = {}) {
      const fields = parseFields(options.fields);
      const row = await loadText(ctx, collection, id);
      const data = JSON.parse(row.data) as JsonObject;
      const expiry = row.expires_at === null ? {} : { expiresAt: row.expires_at };
      return { id: row.id, version: Number(row.version), createdAt: row.created_at, updatedAt: row.updated_at, ...expiry, data: fields ? project(data, fields) : data };
    },

    async getJson(ctx, collection, id, options = {}) {
      const fields = parseFields(options.fields);
      const row = await loadText(ctx, collection, id);
      // Parsed only to project: without fields the stored text is sent as it is.
      return { version: Number(row.version), json: recordJson(fields ? { ...row, data: JSON.stringify(project(JSON.parse(row.data) as JsonObject, fields)) } : row) };
    },

    async replace(ctx, collection, id, data, options = {}) {
      const { ttl, expiresAt, ...preconditions } = options;
      const input = checkPut(ctx, collection, id, data, { ...preconditions, createIfMissing: false }, { ttl, expiresAt });
      return (await uow.write(ctx, (w) => writes.put(w, input)).catch(mapIndexLimit)).record;
    },

    async upsert(ctx, collection, id, data, options = {}) {
      const { ttl, expiresAt, ...preconditions } = options;
      const input = checkPut(ctx, collection, id, data, { ...preconditions, createIfMissing: true }, { ttl, expiresAt });
      return uow.write(ctx, (w) => writes.put(w, input)).catch(mapIndexLimit);
    },

    async patch(ctx, collection, id, patch, options = {}) {
      const input = checkPatch(ctx, collection, id, patch, options.ifMatch, options);
      return uow.write(ctx, (w) => writes.patch(w, input)).catch(mapIndexLimit);
    },

    async delete(ctx, collection, id, options = {}) {
      const input = checkDelete(ctx, collection, id, options.ifMatch);
      await uow.write(ctx, (w) => writes.remove(w, input));
    },

    bulk: createBulkLoad({ uow, writes, dialect }),

    async list(ctx, collection, options = {}) {
      requireRole(ctx, 'viewer');
      validateCollectionName(collection);
      const limit = pageSize(options.limit);
      const fields = parseFields(options.fields);
      const filterText = typeof options.filter === 'string' ? options.filter : options.filter === undefined ? undefined : JSON.stringify(options.filter);
      const parsed = filterText === undefined ? undefined : parseFilter(filterText);
      const filter = parsed === undefined ? undefined : compileFilter(parsed, dialect);
      const keys = parseSort(options.sort, dialect);
      const scope = sortScope(keys, collection, filterText);
      const after = options.cursor ? keysetAfter(keys, decodeCursor(scope, options.cursor, cursorTypes(keys)), dialect) : undefined;
      const now = nowIso();
      const rows = await search.page(ctx, { tenantId: ctx.tenantId, collection, keys, filter, after, limit: limit + 1, now }, parsed);
      const { page, cut } = pageWithinBudget(rows, limit);
      const last = page.at(-1) as Record<string, unknown> | undefined;
      const nextCursor =
        (rows.length > limit || cut) && last ? encodeCursor(scope, keys.map((k, i) => cursorValue(k, last[`_s${i}`]))) : null;
      // The big records the budget let in: their data by id. One changed since keeps its newer
      // data; one deleted since is left out.
      const big = page.filter((row) => row.data === null).map((row) => row.id);
      const data = new Map<string, unknown>();
      if (big.length > 0) {
        const found = await uow.read(ctx, (trx) =>
          trx.selectFrom('records').select(['id', 'data']).where('tenant_id', '=', ctx.tenantId).where('collection', '=', collection).where('id', 'in', big).where(liveRecord(now) as Expression<SqlBool>).execute(),
        );
        for (const row of found) data.set(row.id, row.data);
      }
      const items = page.flatMap((row) => {
        const full = row.data === null ? data.get(row.id) : row.data;
        if (full === undefined) return [];
        const record = toRecord({ ...(row as unknown as RecordsTable), data: full as RecordsTable['data'] });
        return [fields ? { ...record, data: project(record.data, fields) } : record];
      });
      return { items, nextCursor };
    },

    async count(ctx, collection, options = {}) {
      requireRole(ctx, 'viewer');
      validateCollectionName(collection);
      const { scope, index } = await scopeOf(ctx, collection, options.filter);
      // A scan whatever serves it: a declared index bounds the read by the matches, which the
      // caller does not bound either.
      return uow.read(ctx, (trx) => countRecords(trx, dialect, scope, index), { scan: true });
    },

    async aggregate(ctx, collection, options = {}) {
      requireRole(ctx, 'viewer');
      validateCollectionName(collection);
      const spec = parseAggregate(options);
      const { scope, index } = await scopeOf(ctx, collection, options.filter);
      return uow.read(ctx, (trx) => aggregateRecords(trx, dialect, scope, spec, index), { scan: true, hashAggregate: true });
    },
  };
}
