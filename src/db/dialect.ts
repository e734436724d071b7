import type { Timestamp } from './schema.js';

export type DialectName = 'sqlite' | 'postgres';

/** Values going into a JSON column: SQLite stores text, pg's jsonb takes text too. */
export function toJsonColumn(value: unknown): string {
  return JSON.stringify(value);
}

export function fromJsonColumn<T = unknown>(value: unknown): T {
  return (typeof value === 'string' ? JSON.parse(value) : value) as T;
}

export function fromNullableJsonColumn<T = unknown>(value: unknown): T | null {
  return value === null || value === undefined ? null : fromJsonColumn<T>(value);
}

/** Both dialects store what `toIso` gives: ISO-8601 UTC with milliseconds. */
export function nowIso(): string {
  return new Date().toISOString();
}

// What toISOString() writes, and so what SQLite holds: such text is returned as it is,
// since parsing it into a Date to print it again was a tenth of a 20-record listing.
const CANONICAL_ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/**
 * PostgreSQL SQL text of a timestamptz column as `toIso` writes it (ISO-8601 UTC with
 * milliseconds), for point reads that answer with stored text instead of parsed values.
 */
export function pgIsoText(column: string): string {
  return `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
}

export function toIso(value: Timestamp): string {
  if (value instanceof Date) return value.toISOString();
  return typeof value === 'string' && CANONICAL_ISO.test(value) ? value : new Date(value).toISOString();
}

export function toNullableIso(value: Timestamp | null | undefined): string | null {
  return value === null || value === undefined ? null : toIso(value);
}

/** int8 comes back from pg as text when it would not fit a double exactly. */
export function toNumber(value: unknown): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isSafeInteger(n) && !Number.isFinite(n)) throw new Error(`not a number: ${String(value)}`);
  return n;
}
