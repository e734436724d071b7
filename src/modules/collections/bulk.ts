/**
 * Bulk loads: many records per call, read one line at a time and written in chunks of up to
 * 500 lines (or 4 MiB of data), one unit of work each, so that what a call holds in memory is
 * one chunk whatever the size of the input. Each chunk writes its records with one multi-row
 * INSERT (a unit per record spent most of its time on per-statement and per-commit costs), and
 * its audit and change entries as every unit does.
 *
 * Idempotent by client id: a line whose record exists with the same data (JSON equality: key
 * order does not matter) is `unchanged` and writes nothing, so sending the same file again
 * changes nothing and records no change. In `create` mode an existing id with other data
 * fails (409); in `upsert` mode it is replaced (`updated`). Lines without an id get a UUIDv7
 * and are always created.
 *
 * Failures are per line: a line that is not a valid record, breaks the collection's schema or
 * conflicts fails alone. A statement of a chunk that fails (PostgreSQL refusing a value too
 * large for a declared index) takes the chunk again one line per unit, so only that line
 * fails. What fails a chunk as a whole (the collection limit, the database unavailable after
 * retries) fails each of its lines.
 */
import { AgentstoreError, isAgentstoreError } from '../../core/errors.js';
import { requireRole, type TenantContext } from '../../core/context.js';
import { canonicalJson, pointerSegment } from '../../core/json.js';
import { loopTurns } from '../../core/loop-turns.js';
import { fromJsonColumn, toIso, toNullableIso, type DialectName } from '../../db/dialect.js';
import { isUniqueViolation } from '../../db/errors.js';
import { insertRows } from '../../db/multi-row.js';
import type { UnitOfWork, UnitOfWorkRunner } from '../../db/unit-of-work.js';
import { removeExpired, type ExpiredRow } from './expired-rows.js';
import { checkExpiry, expiresAtFor, isExpired, type Expiry } from './expiry.js';
import { indexLimitError, recordIdFor, type RecordWrites } from './record-writes.js';
import type { JsonObject } from './types.js';
import { assertObject, validateCollectionName } from './validation.js';

export type BulkMode = 'create' | 'upsert';

/** One record of a bulk load. */
export interface BulkLine {
  /** The record's id; else a string `id` in `data`, else a new UUIDv7. */
  readonly id?: string;
  readonly data: JsonObject;
  /** `create` (default): an existing id with other data fails. `upsert`: it is replaced. */
  readonly mode?: BulkMode;
  /** Seconds until the record expires, or `expiresAt`; neither: the collection's TTL, if any. */
  readonly ttl?: number;
  readonly expiresAt?: string;
}

export interface BulkOptions {
  /** The mode of lines that name none (default `create`). */
  readonly mode?: BulkMode;
  /** Lines past this many are not read: the next one fails with 413 and the load ends. Default: no limit. */
  readonly maxLines?: number;
}

export type BulkResult =
  | { readonly line: number; readonly id: string; readonly status: 'created' | 'updated' | 'unchanged'; readonly version: number }
  | { readonly line: number; readonly id?: string; readonly status: 'failed'; readonly error: AgentstoreError };

export type BulkLoad = (
  ctx: TenantContext,
  collection: string,
  lines: AsyncIterable<BulkLine | AgentstoreError> | Iterable<BulkLine | AgentstoreError>,
  options?: BulkOptions,
) => AsyncIterable<BulkResult>;

const CHUNK_LINES = 500;
const RECORD_COLUMNS = ['tenant_id', 'collection', 'id', 'version', 'data', 'created_at', 'updated_at', 'expires_at'];
const LINE_FIELDS = new Set(['id', 'data', 'mode', 'ttl', 'expiresAt']);
const CHUNK_BYTES = 4 * 1024 * 1024;
// Attempts of a chunk that found ids created or changed by a concurrent writer after its read.
const RACE_ATTEMPTS = 3;

/** A line checked and ready to write. */
interface Line {
  readonly line: number;
  readonly id: string;
  readonly data: JsonObject;
  /** The data as stored: serialised once, for the row and the size of the chunk. */
  readonly json: string;
  readonly mode: BulkMode;
  readonly expiry: Expiry | undefined;
}

type Entry = Line | BulkResult;

const isLine = (entry: Entry): entry is Line => 'json' in entry;

const failed = (line: number, error: AgentstoreError, id?: string): BulkResult => ({ line, ...(id !== undefined ? { id } : {}), status: 'failed', error });

/** A chunk whose lines all turned out unchanged or failed: the unit is rolled back, the results stand. */
class NothingWritten extends Error {
  constructor(readonly results: BulkResult[]) {
    super('nothing to write');
  }
}

/** Rows appeared or changed between the chunk's read and its writes (a concurrent writer on PostgreSQL). */
class ChunkRace extends Error {}

function checkLine(item: unknown, line: number, defaultMode: BulkMode): Entry {
  try {
    if (isAgentstoreError(item)) return failed(line, item);
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      throw AgentstoreError.invalidField('body', 'each line must be a JSON object: {"id"?, "data", "mode"?}');
    }
    const fields = item as Record<string, unknown>;
    for (const key of Object.keys(fields)) {
      if (!LINE_FIELDS.has(key)) throw AgentstoreError.invalidField(`/${pointerSegment(key)}`, 'is not a known field');
    }
    if (fields.data === undefined) throw AgentstoreError.invalidField('/data', 'is required: the record, a JSON object');
    const data = assertObject(fields.data, '/data');
    const mode = fields.mode ?? defaultMode;
    if (mode !== 'create' && mode !== 'upsert') throw AgentstoreError.invalidField('/mode', 'must be "create" or "upsert"');
    const expiry = checkExpiry({ ttl: fields.ttl, expiresAt: fields.expiresAt }, { ttl: '/ttl', expiresAt: '/expiresAt' });
    return { line, id: recordIdFor(data, fields.id, '/id'), data, json: JSON.stringify(data), mode, expiry };
  } catch (error) {
    if (isAgentstoreError(error)) return failed(line, error);
    throw error;
  }
}

/** What a chunk knows of one id: as stored, then as its earlier lines left it. */
interface State {
  version: number;
  data: JsonObject | undefined;
  /** The stored JSON text (SQLite) or value (PostgreSQL), until parsed. */
  raw: unknown;
  json: string | undefined;
  canonical: string | undefined;
  readonly createdAt: string;
  expiresAt: string | null;
  /** The stored version, for the update's guard; undefined for a record this chunk creates. */
  readonly storedVersion: number | undefined;
  dirty: boolean;
}

function sameData(state: State, line: Line): boolean {
  // The stored text is the line's text whenever the same serialiser wrote the same object
  // (SQLite); otherwise compare as JSON (PostgreSQL's jsonb reorders keys).
  if (state.json !== undefined && state.json === line.json) return true;
  state.canonical ??= canonicalJson(state.data ?? fromJsonColumn<JsonObject>(state.raw));
  return state.canonical === canonicalJson(line.data);
}

export function createBulkLoad(deps: { uow: UnitOfWorkRunner; writes: RecordWrites; dialect: DialectName }): BulkLoad {
  const { uow, writes, dialect } = deps;

  /** The live records of these ids, and the expired ones (to be removed: their ids are free). */
  const loadStored = async (w: UnitOfWork, collection: string, ids: readonly string[], turn: () => Promise<void> | undefined) => {
    const stored = new Map<string, State>();
    const expired: ExpiredRow[] = [];
    // On SQLite in pieces, like the inserts (src/db/multi-row.ts): each runs on the event loop.
    const piece = dialect === 'sqlite' ? 100 : CHUNK_LINES;
    for (let first = 0; first < ids.length; first += piece) {
      const due = turn();
      if (due) await due;
      let q = w.trx
        .selectFrom('records')
        .select(['id', 'version', 'data', 'created_at', 'expires_at'])
        .where('tenant_id', '=', w.ctx.tenantId)
        .where('collection', '=', collection)
        .where('id', 'in', ids.slice(first, first + piece));
      // The rows are compared and then written: no other writer may change them in between
      // (SQLite's BEGIN IMMEDIATE serialises writers already).
      if (dialect === 'postgres') q = q.forUpdate();
      for (const row of await q.execute()) {
        const version = Number(row.version);
        if (isExpired(row.expires_at, w.now)) {
          expired.push({ collection, id: row.id, version });
          continue;
        }
        const json = typeof row.data === 'string' ? row.data : undefined;
        const expiresAt = toNullableIso(row.expires_at);
        stored.set(row.id, { version, data: undefined, raw: row.data, json, canonical: undefined, createdAt: toIso(row.created_at), expiresAt, storedVersion: version, dirty: false });
      }
    }
    return { stored, expired };
  };

  /** One chunk in the unit `w`: a result per line, in order. */
  const applyChunk = async (w: UnitOfWork, collection: string, lines: readonly Line[]): Promise<BulkResult[]> => {
    const coll = await writes.ensureCollection(w, collection);
    const turn = loopTurns();
    // By line number: a call's line numbers are distinct.
    const results = new Map<number, BulkResult>();
    const valid: Line[] = [];
    for (const line of lines) {
      const due = turn();
      if (due) await due;
      try {
        writes.checkSchema(coll, line.data);
        valid.push(line);
      } catch (error) {
        if (!isAgentstoreError(error)) throw error;
        results.set(line.line, failed(line.line, error, line.id));
      }
    }
    const { stored: states, expired } = await loadStored(w, collection, [...new Set(valid.map((l) => l.id))], turn);
    const changes: { action: 'create' | 'update'; line: Line; version: number; createdAt: string; expiresAt: string | null }[] = [];
    for (const line of valid) {
      const state = states.get(line.id);
      const expiresAt = expiresAtFor(w.now, line.expiry, coll.ttl_seconds);
      if (!state) {
        states.set(line.id, { version: 1, data: line.data, raw: undefined, json: line.json, canonical: undefined, createdAt: w.now, expiresAt, storedVersion: undefined, dirty: true });
        changes.push({ action: 'create', line, version: 1, createdAt: w.now, expiresAt });
        results.set(line.line, { line: line.line, id: line.id, status: 'created', version: 1 });
        continue;
      }
      const same = sameData(state, line);
      if (same && (line.expiry === undefined || expiresAt === state.expiresAt)) {
        // Unchanged keeps the stored expiry when the line asks for none (re-sending a file
        // writes nothing, default TTL or not); a line's `ttl` is a new instant, so it refreshes
        // the record even in create mode, as its data is the same.
        results.set(line.line, { line: line.line, id: line.id, status: 'unchanged', version: state.version });
      } else if (!same && line.mode === 'create') {
        const error = AgentstoreError.conflict(`a record with id "${line.id}" exists with other data; send the line with "mode": "upsert" to replace it`);
        results.set(line.line, failed(line.line, error, line.id));
      } else {
        Object.assign(state, { version: state.version + 1, data: line.data, json: line.json, canonical: undefined, expiresAt, dirty: true });
        changes.push({ action: 'update', line, version: state.version, createdAt: state.createdAt, expiresAt });
        results.set(line.line, { line: line.line, id: line.id, status: 'updated', version: state.version });
      }
    }
    // A unit records a mutation or it is a bug (src/db/unit-of-work.ts): with nothing to write
    // the unit is given up instead. A new collection is a mutation, and its first line a create.
    if (changes.length === 0) throw new NothingWritten(lines.map((l) => results.get(l.line) as BulkResult));
    // Expired records of the chunk's ids go first, with their delete changes before the creates
    // that take their ids (as a single create does).
    await removeExpired(w, collection, expired);
    const rows: unknown[][] = [];
    for (const [id, state] of states) {
      if (state.dirty && state.storedVersion === undefined) rows.push([w.ctx.tenantId, collection, id, state.version, state.json, w.now, w.now, state.expiresAt]);
    }
    // A plain INSERT: PostgreSQL's ON CONFLICT DO NOTHING inserts each row speculatively, which
    // made a chunk's insert markedly slower. An id that exists after all was created by a
    // concurrent writer after the read (PostgreSQL; SQLite serialises writers): the unique
    // violation fails the unit, and the chunk runs again (writeChunk).
    if (rows.length > 0) await insertRows(w.trx, dialect, 'records', RECORD_COLUMNS, rows);
    for (const [id, state] of states) {
      if (!state.dirty || state.storedVersion === undefined) continue;
      const updated = await w.trx
        .updateTable('records')
        .set({ data: state.json as string, version: state.version, updated_at: w.now, expires_at: state.expiresAt })
        .where('tenant_id', '=', w.ctx.tenantId)
        .where('collection', '=', collection)
        .where('id', '=', id)
        .where('version', '=', state.storedVersion)
        .executeTakeFirst();
      if (Number(updated.numUpdatedRows) !== 1) throw new ChunkRace();
    }
    for (const { action, line, version, createdAt, expiresAt } of changes) {
      // The stored record as the API returns it, around the line's JSON text (as a read builds it).
      const expiry = expiresAt === null ? '' : `,"expiresAt":"${expiresAt}"`;
      const dataJson = `{"id":${JSON.stringify(line.id)},"version":${version},"createdAt":"${createdAt}","updatedAt":"${w.now}"${expiry},"data":${line.json}}`;
      await w.record({ action, resourceType: 'record', resourceId: line.id, collection, version, dataJson });
    }
    return lines.map((l) => results.get(l.line) as BulkResult);
  };

  const writeChunk = async (ctx: TenantContext, collection: string, lines: readonly Line[]): Promise<BulkResult[]> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await uow.write(ctx, (w) => applyChunk(w, collection, lines));
      } catch (error) {
        if (error instanceof NothingWritten) return error.results;
        if (!(error instanceof ChunkRace) && !isUniqueViolation(error)) throw error;
        if (attempt >= RACE_ATTEMPTS) throw AgentstoreError.unavailable('other writers kept changing these records; send the lines again', error);
      }
    }
  };

  const writeLines = async (ctx: TenantContext, collection: string, lines: readonly Line[]): Promise<BulkResult[]> => {
    try {
      return await writeChunk(ctx, collection, lines);
    } catch (error) {
      // The chunk's own failure (the collection limit, the database unavailable): every line's.
      if (isAgentstoreError(error)) return lines.map((l) => failed(l.line, error, l.id));
      const only = lines.length === 1 ? lines[0] : undefined;
      if (only) {
        const refused = indexLimitError(error);
        if (refused) return [failed(only.line, refused, only.id)];
        throw error;
      }
      // A statement failed on one line's value: each line on its own, so that only it fails.
      const results: BulkResult[] = [];
      for (const line of lines) results.push(...(await writeLines(ctx, collection, [line])));
      return results;
    }
  };

  return (ctx, collection, source, options = {}) => {
    requireRole(ctx, 'member');
    validateCollectionName(collection);
    const mode = options.mode ?? 'create';
    if (mode !== 'create' && mode !== 'upsert') throw AgentstoreError.invalidField('mode', 'must be "create" or "upsert"');
    const maxLines = options.maxLines ?? Number.POSITIVE_INFINITY;

    async function* flush(entries: readonly Entry[]): AsyncGenerator<BulkResult> {
      const lines = entries.filter(isLine);
      const written = lines.length > 0 ? await writeLines(ctx, collection, lines) : [];
      let next = 0;
      for (const entry of entries) yield isLine(entry) ? (written[next++] as BulkResult) : entry;
    }

    return (async function* load(): AsyncGenerator<BulkResult> {
      let pending: Entry[] = [];
      let bytes = 0;
      let count = 0;
      // Checking lines is synchronous work too: a source that never waits (an array) would
      // otherwise hold the loop from one chunk's commit to the next.
      const turn = loopTurns();
      for await (const item of source) {
        const due = turn();
        if (due) await due;
        count++;
        if (count > maxLines) {
          yield* flush(pending);
          const error = new AgentstoreError('agentstore.payload_too_large', `a bulk load takes at most ${maxLines} lines per call; send the rest in another call`, {
            errors: [{ field: 'body', message: `more than ${maxLines} lines` }],
          });
          yield failed(count, error);
          return;
        }
        const entry = checkLine(item, count, mode);
        pending.push(entry);
        if (isLine(entry)) bytes += entry.json.length;
        if (pending.length >= CHUNK_LINES || bytes >= CHUNK_BYTES) {
          yield* flush(pending);
          pending = [];
          bytes = 0;
        }
      }
      yield* flush(pending);
    })();
  };
}
