import { sql, type RawBuilder } from 'kysely';
import { AgentstoreError } from '../../core/errors.js';
import type { CursorValueType } from '../../core/cursor.js';
import type { DialectName } from '../../db/dialect.js';
import { parseQueryPath, pathKey, valueExpr, type FieldPath } from './json-path.js';

/**
 * `sort=-priority,createdAt`: up to three keys, `-` for descending; `id` always breaks
 * ties, so the order is total and keyset pagination is exact. NULL (a missing field)
 * sorts first ascending and last descending, on both dialects.
 */
export interface SortKey {
  readonly path: FieldPath;
  readonly descending: boolean;
  readonly expr: RawBuilder<unknown>;
}

const MAX_SORT_KEYS = 3;

export function parseSort(raw: string | undefined, dialect: DialectName): SortKey[] {
  const spec = raw === undefined || raw.trim() === '' ? 'createdAt' : raw;
  const parts = spec.split(',').map((p) => p.trim());
  if (parts.length > MAX_SORT_KEYS || parts.some((p) => p.length === 0)) {
    throw AgentstoreError.invalidField('sort', `takes 1 to ${MAX_SORT_KEYS} comma-separated fields, each optionally prefixed with -`);
  }
  const keys = parts.map((part) => {
    const descending = part.startsWith('-');
    const path = parseQueryPath(descending ? part.slice(1) : part, 'sort');
    return { path, descending, expr: sortExpr(path, dialect) };
  });
  const seen = new Set(keys.map((k) => pathKey(k.path)));
  if (seen.size !== keys.length) throw AgentstoreError.invalidField('sort', 'names a field twice');
  if (!seen.has('$id')) keys.push({ path: { kind: 'meta', column: 'id' }, descending: false, expr: sortExpr({ kind: 'meta', column: 'id' }, dialect) });
  return keys;
}

function sortExpr(path: FieldPath, dialect: DialectName): RawBuilder<unknown> {
  if (path.kind === 'meta') return sql.ref(`records.${path.column}`) as unknown as RawBuilder<unknown>;
  // A JSON null sorts as a missing field, as SQLite's json_extract already does. Without
  // nullif, PostgreSQL put jsonb 'null' between the missing fields and the values, and the
  // cursor (where both read back as null) repeated or skipped rows, or never ended.
  return dialect === 'postgres' ? sql`nullif(${valueExpr(dialect, path.segments)}, 'null'::jsonb)` : valueExpr(dialect, path.segments);
}

export function orderBy(keys: readonly SortKey[]): RawBuilder<unknown> {
  return sql.join(keys.map((k) => sql`${k.expr} ${sql.raw(direction(k))}`));
}

// The record columns are NOT NULL, and an index serves an order only if the NULLS clause
// matches its own (PostgreSQL does not infer it from NOT NULL): `created_at asc nulls first`
// sorted the whole collection where `created_at asc` reads the index in order.
function direction(key: SortKey): string {
  if (key.path.kind === 'meta') return key.descending ? 'desc' : 'asc';
  return key.descending ? 'desc nulls last' : 'asc nulls first';
}

/**
 * The scope a cursor is bound to: the same sort and filter must be used to continue. A data
 * key is marked `json:` since its cursor value became the JSON value on both backends (it
 * was JSON text on PostgreSQL): an older cursor is refused rather than read another way.
 */
export function sortScope(keys: readonly SortKey[], collection: string, filterText: string | undefined): string {
  return `records:${collection}:${keys.map((k) => (k.descending ? '-' : '') + (k.path.kind === 'data' ? 'json:' : '') + pathKey(k.path)).join(',')}:${filterText ?? ''}`;
}

/** What each key's cursor value must be (src/core/cursor.ts checks it). */
export function cursorTypes(keys: readonly SortKey[]): CursorValueType[] {
  return keys.map((k) => {
    if (k.path.kind === 'data') return 'json';
    if (k.path.column === 'version') return 'int32';
    return k.path.column === 'id' ? 'text' : 'timestamp';
  });
}

/**
 * A sort value read from a row, as the cursor stores it: timestamps as ISO text, a data
 * field's value as the JSON value the database gave (PostgreSQL: the jsonb parsed;
 * SQLite: json_extract's scalar, or the JSON text of an object or array).
 */
export function cursorValue(key: SortKey, raw: unknown): unknown {
  if (raw === null || raw === undefined) return null;
  return raw instanceof Date ? raw.toISOString() : raw;
}

/** A cursor value as a bound parameter of the key's expression. */
function bound(key: SortKey, value: unknown, dialect: DialectName): RawBuilder<unknown> {
  if (key.path.kind !== 'data') return sql`${value}`;
  if (dialect === 'postgres') return sql`${JSON.stringify(value)}::jsonb`;
  // What json_extract gives for the same JSON: 1/0 for booleans, JSON text for containers
  // (better-sqlite3 cannot bind either as they are).
  if (typeof value === 'boolean') return sql`${value ? 1 : 0}`;
  if (typeof value === 'object' && value !== null) return sql`${JSON.stringify(value)}`;
  return sql`${value}`;
}

/**
 * Rows strictly after the cursor row in the sort order: (k1 > c1) or (k1 = c1 and k2 > c2) ...
 * `values` come from decodeCursor with `cursorTypes(keys)`, so each fits its column.
 */
export function keysetAfter(keys: readonly SortKey[], values: readonly unknown[], dialect: DialectName): RawBuilder<unknown> {
  if (values.length !== keys.length) throw AgentstoreError.invalidField('cursor', 'is not a cursor returned by this listing');
  const disjuncts: RawBuilder<unknown>[] = [];
  for (let i = 0; i < keys.length; i++) {
    const conjuncts: RawBuilder<unknown>[] = [];
    for (let j = 0; j < i; j++) conjuncts.push(equalTo(keys[j] as SortKey, values[j], dialect));
    const after = afterValue(keys[i] as SortKey, values[i], dialect);
    if (!after) continue;
    conjuncts.push(after);
    disjuncts.push(sql`(${sql.join(conjuncts, sql.raw(' and '))})`);
  }
  if (disjuncts.length === 0) return sql`(1 = 0)`;
  const after = sql`(${sql.join(disjuncts, sql.raw(' or '))})`;
  // The same condition with the first key's bound alone in front: an index can seek to the
  // cursor with it, where the disjunction would be read from the collection's first row.
  const seek = seekBound(keys[0] as SortKey, values[0]);
  return seek ? sql`(${seek} and ${after})` : after;
}

function seekBound(key: SortKey, value: unknown): RawBuilder<unknown> | undefined {
  if (key.path.kind !== 'meta' || value === null) return undefined;
  return key.descending ? sql`(${key.expr} <= ${value})` : sql`(${key.expr} >= ${value})`;
}

function equalTo(key: SortKey, value: unknown, dialect: DialectName): RawBuilder<unknown> {
  return value === null ? sql`(${key.expr} is null)` : sql`(${key.expr} = ${bound(key, value, dialect)})`;
}

function afterValue(key: SortKey, value: unknown, dialect: DialectName): RawBuilder<unknown> | undefined {
  if (!key.descending) {
    // Ascending, NULLs first: after NULL come all non-NULLs; after v come larger values.
    return value === null ? sql`(${key.expr} is not null)` : sql`(${key.expr} > ${bound(key, value, dialect)})`;
  }
  // Descending, NULLs last: after v come smaller values and the NULLs; nothing is after NULL.
  if (value === null) return undefined;
  if (key.path.kind === 'meta') return sql`(${key.expr} < ${bound(key, value, dialect)})`;
  return sql`(${key.expr} < ${bound(key, value, dialect)} or ${key.expr} is null)`;
}
