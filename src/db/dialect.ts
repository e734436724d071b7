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

export function toIso(value: Timestamp): string {
  return value instanceof Date ? value.toISOString() : new Date(value).toISOString();
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
