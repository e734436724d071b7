import { AgentstoreError } from './errors.js';
import { unstorableJsonAt } from './json.js';
import { unstorableText } from './text.js';
import { isCanonicalTimestamp } from './time.js';

/**
 * Opaque keyset cursors: base64url JSON of the last row's sort values, bound to the
 * query shape (`scope`) so a cursor from one listing cannot be replayed on another.
 */
export function encodeCursor(scope: string, values: readonly unknown[]): string {
  return Buffer.from(JSON.stringify({ s: scope, v: values })).toString('base64url');
}

/**
 * What a cursor position holds, by the column it continues from:
 * - `text`: a string PostgreSQL can compare (no U+0000, no unpaired surrogate);
 * - `timestamp`: ISO-8601 UTC with milliseconds in years 0001-9999, as the API writes them;
 * - `int32`: an integer an INTEGER column holds on both backends (a record's version);
 * - `json`: a JSON value (null included) both backends store: a data field's value.
 */
export type CursorValueType = 'text' | 'timestamp' | 'int32' | 'json';

export const INT32_MIN = -(2 ** 31);
export const INT32_MAX = 2 ** 31 - 1;

export function isInt32(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= INT32_MIN && (value as number) <= INT32_MAX;
}

function fits(type: CursorValueType, value: unknown): boolean {
  switch (type) {
    case 'text':
      return typeof value === 'string' && unstorableText(value) === undefined;
    case 'timestamp':
      return isCanonicalTimestamp(value);
    case 'int32':
      return isInt32(value);
    case 'json':
      return value !== undefined && unstorableJsonAt(value) === undefined;
  }
}

/**
 * The values of a cursor issued for `scope`, checked by type. Cursors are opaque but
 * client-held: every value is checked against what its column can hold, here once for every
 * listing, so that a forged one is a 400 on both backends and never a driver error
 * (PostgreSQL refused bad timestamps as 22007 and NUL as 22021, as 500s).
 */
export function decodeCursor(scope: string, cursor: string, types: readonly CursorValueType[], field = 'cursor'): unknown[] {
  const invalid = AgentstoreError.invalidField(field, 'is not a cursor returned by this listing');
  if (cursor.length > 4096 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalid;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid;
  }
  if (typeof parsed !== 'object' || parsed === null) throw invalid;
  const { s, v } = parsed as { s?: unknown; v?: unknown };
  if (s !== scope || !Array.isArray(v) || v.length !== types.length) throw invalid;
  if (!types.every((type, i) => fits(type, v[i]))) throw invalid;
  return v;
}

export interface Page<T> {
  readonly items: T[];
  readonly nextCursor: string | null;
}

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 500;

export function pageSize(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
    throw AgentstoreError.invalidField('limit', `must be an integer from 1 to ${MAX_PAGE_SIZE}`);
  }
  return limit;
}

/** Where a listing ordered by one text column continues: the key in its cursor, if any. */
export function afterKey(scope: string, cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  return decodeCursor(scope, cursor, ['text'])[0] as string;
}

/** A page from `limit + 1` fetched rows: the extra row only says that there is a next page. */
export function toPage<R, T>(rows: readonly R[], limit: number, map: (row: R) => T, cursorOf: (item: T) => unknown[], scope: string): Page<T> {
  const items = rows.slice(0, limit).map(map);
  const last = items.at(-1);
  return { items, nextCursor: rows.length > limit && last !== undefined ? encodeCursor(scope, cursorOf(last)) : null };
}
