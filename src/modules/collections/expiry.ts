/**
 * Record expiry: what a write may ask for, when a record expires, and the condition every read
 * of records carries (docs/architecture.md, "Expiry").
 *
 * A record's `expires_at` is an instant of the server's clock (the clock that writes
 * `created_at` too); from then on every read treats the record as absent, and the sweep
 * (expiry-sweep.ts) deletes it later. Reads compare with the server's clock on both dialects,
 * not PostgreSQL's `now()`: one clock decides, whichever database holds the row.
 */
import { sql, type RawBuilder } from 'kysely';
import { AgentstoreError } from '../../core/errors.js';
import { parseTimestamp } from '../../core/time.js';
import { toNullableIso } from '../../db/dialect.js';
import type { Timestamp } from '../../db/schema.js';

/** Ten years: longer is not an expiry a cache or a session needs, and keeps instants in range. */
export const MAX_TTL_SECONDS = 10 * 365 * 86_400;

/** What a write asks for: a TTL from the write's instant, or an instant. At most one of them. */
export interface ExpiryOptions {
  /** Seconds from the write until the record expires (1 to 315,360,000). */
  readonly ttl?: number;
  /** When the record expires: an RFC 3339 timestamp in the future. */
  readonly expiresAt?: string;
}

/** A checked expiry request. */
export type Expiry = { readonly ttl: number } | { readonly at: string };

/** The names the two fields have where the caller gave them (query parameters, batch members, bulk lines). */
export interface ExpiryFields {
  readonly ttl: string;
  readonly expiresAt: string;
}

const QUERY_FIELDS: ExpiryFields = { ttl: 'ttl', expiresAt: 'expiresAt' };

/** A TTL in seconds: a positive integer up to MAX_TTL_SECONDS; 400 on `field` otherwise. */
export function checkTtlSeconds(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_TTL_SECONDS) {
    throw AgentstoreError.invalidField(field, `must be an integer number of seconds from 1 to ${MAX_TTL_SECONDS}`);
  }
  return value;
}

/**
 * The expiry a write asks for, or undefined for none (then the collection's default TTL
 * applies). Both at once is a 400 naming both; an instant not in the future is a 400 too:
 * a write that would be invisible at once is a caller's mistake (a clock or unit error).
 */
export function checkExpiry(options: { readonly ttl?: unknown; readonly expiresAt?: unknown } | undefined, fields: ExpiryFields = QUERY_FIELDS): Expiry | undefined {
  const ttl = options?.ttl;
  const expiresAt = options?.expiresAt;
  if (ttl !== undefined && expiresAt !== undefined) {
    throw AgentstoreError.validation(`give ${fields.ttl} or ${fields.expiresAt}, not both`, [
      { field: fields.ttl, message: `cannot be given with ${fields.expiresAt}` },
      { field: fields.expiresAt, message: `cannot be given with ${fields.ttl}` },
    ]);
  }
  if (ttl !== undefined) return { ttl: checkTtlSeconds(ttl, fields.ttl) };
  if (expiresAt === undefined) return undefined;
  const ms = typeof expiresAt === 'string' ? parseTimestamp(expiresAt) : undefined;
  if (ms === undefined) throw AgentstoreError.invalidField(fields.expiresAt, 'must be an RFC 3339 timestamp (e.g. 2026-03-01T12:00:00Z)');
  if (ms <= Date.now()) throw AgentstoreError.invalidField(fields.expiresAt, 'must be in the future');
  return { at: new Date(ms).toISOString() };
}

/** The collection's default TTL as its definition gives it: seconds, null to clear, undefined to keep. */
export function checkDefaultTtl(value: unknown, field = '/ttlSeconds'): number | null | undefined {
  if (value === undefined || value === null) return value;
  return checkTtlSeconds(value, field);
}

/**
 * When a record written at `now` expires: as the write asked, else after the collection's
 * default TTL, else never (null).
 */
export function expiresAtFor(now: string, expiry: Expiry | undefined, defaultTtl: number | null | undefined): string | null {
  if (expiry && 'at' in expiry) return expiry.at;
  const ttl = expiry?.ttl ?? defaultTtl ?? null;
  return ttl === null ? null : new Date(Date.parse(now) + ttl * 1000).toISOString();
}

/** Whether a stored expiry (text on SQLite, Date or text on PostgreSQL) has passed at `now`. */
export function isExpired(expiresAt: Timestamp | null | undefined, now: string): boolean {
  const at = toNullableIso(expiresAt);
  return at !== null && at <= now;
}

/**
 * The condition of a live record, for reads of `records` (or the view, as `records`): both
 * dialects compare ISO-8601 UTC text with milliseconds (SQLite's stored text orders as time;
 * PostgreSQL casts the parameter to timestamptz).
 */
export function liveRecord(now: string): RawBuilder<unknown> {
  return sql`(records.expires_at is null or records.expires_at > ${now})`;
}
