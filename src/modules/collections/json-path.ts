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

export function pathKey(path: FieldPath): string {
  return path.kind === 'meta' ? `$${path.column}` : path.segments.join('.');
}

/** SQLite JSON path literal: `'$."a"."b"'`. */
function sqlitePath(segments: readonly string[]): string {
  return `'$${segments.map((s) => `."${s}"`).join('')}'`;
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
  return dialect === 'sqlite' ? sql.raw(`json_extract(data, ${sqlitePath(segments)})`) : sql.raw(`(data #> ${pgPath(segments)})`);
}

/** The JSON type at the path, in each dialect's own vocabulary. */
export function typeExpr(dialect: DialectName, segments: readonly string[]): RawBuilder<unknown> {
  return dialect === 'sqlite' ? sql.raw(`json_type(data, ${sqlitePath(segments)})`) : sql.raw(`jsonb_typeof(data #> ${pgPath(segments)})`);
}

/** The value as text (PostgreSQL only: SQLite's json_extract already yields text for strings). */
export function textExpr(dialect: DialectName, segments: readonly string[]): RawBuilder<unknown> {
  return dialect === 'sqlite' ? valueExpr(dialect, segments) : sql.raw(`(data #>> ${pgPath(segments)})`);
}

/** The expression a declared index is built on: the same text `valueExpr` produces. */
export function indexExpression(dialect: DialectName, segments: readonly string[]): string {
  return dialect === 'sqlite' ? `json_extract(data, ${sqlitePath(segments)})` : `(data #> ${pgPath(segments)})`;
}
