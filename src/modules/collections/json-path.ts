import { sql, type RawBuilder } from 'kysely';
import { AgentstoreError } from '../../core/errors.js';
import type { DialectName } from '../../db/dialect.js';

/**
 * A validated path into a record: either a record attribute (id, createdAt, updatedAt,
 * version) or segments into `data`. Segments are restricted to a safe alphabet so that
 * the path can be written into SQL as a literal: a literal is what lets PostgreSQL and
 * SQLite match the expression against a declared expression index, which a bound
 * parameter would not.
 */
export type FieldPath = { readonly kind: 'meta'; readonly column: 'id' | 'created_at' | 'updated_at' | 'version' } | { readonly kind: 'data'; readonly segments: readonly string[] };

// A Map, not an object literal: META["constructor"] was Object, and `sort=constructor` or
// `{"valueOf":{"exists":true}}` were taken for record attributes (a 500, or every record).
const META: ReadonlyMap<string, 'id' | 'created_at' | 'updated_at' | 'version'> = new Map([
  ['id', 'id'],
  ['createdAt', 'created_at'],
  ['updatedAt', 'updated_at'],
  ['version', 'version'],
] as const);

const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$/;
const MAX_DEPTH = 8;
/** Segments that may index an array (see `arrayIndex`): each doubles a SQLite path's variants. */
const MAX_INDEX_SEGMENTS = 3;
const INT32_MAX = 2_147_483_647;

/**
 * The array index a segment means on an array: decimal digits (leading zeros allowed) up to
 * 2^31-1, as PostgreSQL's `#>` reads a path element on an array; otherwise none, and the
 * segment finds nothing in an array. On an object every segment is a key, digits too: on each
 * record the value decides, an array by index and an object by key (`items.0.name`,
 * `scores.2024`), alike on both databases and in projections.
 */
export function arrayIndex(segment: string): number | undefined {
  if (!/^[0-9]+$/.test(segment)) return undefined;
  const n = Number(segment);
  return n <= INT32_MAX ? n : undefined;
}

export function parseFieldPath(raw: string, field: string): FieldPath {
  const meta = META.get(raw);
  if (meta) return { kind: 'meta', column: meta };
  const path = raw.startsWith('data.') ? raw.slice(5) : raw;
  const segments = path.split('.');
  if (segments.length > MAX_DEPTH || !segments.every((s) => SEGMENT.test(s))) {
    throw AgentstoreError.invalidField(
      field,
      `"${raw.slice(0, 80)}" is not a field path: dot-separated names of letters, digits, _ and -, at most ${MAX_DEPTH} deep`,
    );
  }
  return { kind: 'data', segments };
}

/**
 * A path a query compiles to SQL (filters, sorts, groups, metrics, projections, new declared
 * indexes): at most 3 numeric segments, since each doubles SQLite's expression. Stored index
 * paths are read with `parseFieldPath`, so that a collection declared before still works.
 */
export function parseQueryPath(raw: string, field: string): FieldPath {
  const path = parseFieldPath(raw, field);
  if (path.kind === 'data' && path.segments.filter((s) => arrayIndex(s) !== undefined).length > MAX_INDEX_SEGMENTS) {
    throw AgentstoreError.invalidField(field, `"${raw.slice(0, 80)}" has more than ${MAX_INDEX_SEGMENTS} numeric segments (array indexes or numeric keys)`);
  }
  return path;
}

export function pathKey(path: FieldPath): string {
  return path.kind === 'meta' ? `$${path.column}` : path.segments.join('.');
}

/**
 * SQLite JSON path literals for the segments: one per reading of the numeric segments (an
 * array index `[0]` or a key `."0"`). SQLite's paths are strict where PostgreSQL's `#>` picks
 * by the value, so each reading is written out; in a record at most one of them finds a value,
 * since a value is an array or an object, not both. A path without numeric segments has one,
 * the text declared indexes were built on before arrays were indexable.
 */
function sqlitePaths(segments: readonly string[]): string[] {
  let paths = ['$'];
  for (const s of segments) {
    const index = arrayIndex(s);
    paths = paths.flatMap((p) => (index === undefined ? [`${p}."${s}"`] : [`${p}[${index}]`, `${p}."${s}"`]));
  }
  return paths.map((p) => `'${p}'`);
}

/** `fn(data, path)` over every reading, the first that finds something. */
function sqliteFirst(fn: string, segments: readonly string[]): string {
  const calls = sqlitePaths(segments).map((p) => `${fn}(data, ${p})`);
  return calls.length === 1 ? (calls[0] as string) : `coalesce(${calls.join(', ')})`;
}

/**
 * SQLite: the arguments of `json_each` over the value at the path (for `contains`): the
 * record's data and the path, or, with several readings, the JSON text (`->`) of the one that
 * finds a value.
 */
export function sqliteEachArgs(segments: readonly string[]): RawBuilder<unknown> {
  const paths = sqlitePaths(segments);
  if (paths.length === 1) return sql.raw(`records.data, ${paths[0]}`);
  return sql.raw(`coalesce(${paths.map((p) => `records.data -> ${p}`).join(', ')})`);
}

/**
 * PostgreSQL text[] literal: `'{"a","b"}'`. Quoted, since an unquoted NULL (any case) is an
 * SQL NULL element and `data #> '{NULL}'` is NULL for every record. Segments never hold
 * quotes, backslashes, commas or braces. Quoting does not change the array value, so an
 * index declared before on `'{a,b}'` still matches (PostgreSQL compares the parsed constant).
 */
function pgPath(segments: readonly string[]): string {
  return `'{${segments.map((s) => `"${s}"`).join(',')}}'`;
}

/**
 * Whether a PostgreSQL index declared on these segments before the quoting above was built
 * on another expression (an unquoted NULL element): such an index never served and must be
 * rebuilt, under another name.
 */
export function pgPathChangedByQuoting(segments: readonly string[]): boolean {
  return segments.some((s) => /^null$/i.test(s));
}

/** The value at the path: SQL scalar on SQLite (json_extract), jsonb on PostgreSQL. */
export function valueExpr(dialect: DialectName, segments: readonly string[]): RawBuilder<unknown> {
  return sql.raw(indexExpression(dialect, segments));
}

/** The JSON type at the path, in each dialect's own vocabulary. */
export function typeExpr(dialect: DialectName, segments: readonly string[]): RawBuilder<unknown> {
  return dialect === 'sqlite' ? sql.raw(sqliteFirst('json_type', segments)) : sql.raw(`jsonb_typeof(data #> ${pgPath(segments)})`);
}

/** The value as text (PostgreSQL only: SQLite's json_extract already yields text for strings). */
export function textExpr(dialect: DialectName, segments: readonly string[]): RawBuilder<unknown> {
  return dialect === 'sqlite' ? valueExpr(dialect, segments) : sql.raw(`(data #>> ${pgPath(segments)})`);
}

/** The expression a declared index is built on: the same text `valueExpr` produces. */
export function indexExpression(dialect: DialectName, segments: readonly string[]): string {
  return dialect === 'sqlite' ? sqliteFirst('json_extract', segments) : `(data #> ${pgPath(segments)})`;
}
