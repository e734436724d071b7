import { AgentstoreError } from './errors.js';

/**
 * Opaque keyset cursors: base64url JSON of the last row's sort values, bound to the
 * query shape (`scope`) so a cursor from one listing cannot be replayed on another.
 */
export function encodeCursor(scope: string, values: readonly unknown[]): string {
  return Buffer.from(JSON.stringify({ s: scope, v: values })).toString('base64url');
}

export function decodeCursor(scope: string, cursor: string, field = 'cursor'): unknown[] {
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
  if (s !== scope || !Array.isArray(v)) throw invalid;
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
  const [key, ...rest] = decodeCursor(scope, cursor);
  if (typeof key !== 'string' || rest.length > 0) throw AgentstoreError.invalidField('cursor', 'is not a cursor returned by this listing');
  return key;
}

/** A page from `limit + 1` fetched rows: the extra row only says that there is a next page. */
export function toPage<R, T>(rows: readonly R[], limit: number, map: (row: R) => T, cursorOf: (item: T) => unknown[], scope: string): Page<T> {
  const items = rows.slice(0, limit).map(map);
  const last = items.at(-1);
  return { items, nextCursor: rows.length > limit && last !== undefined ? encodeCursor(scope, cursorOf(last)) : null };
}
