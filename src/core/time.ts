import { AgentstoreError } from './errors.js';

/**
 * Timestamps the API accepts: RFC 3339 date-times (`2026-03-01T12:00:00Z`,
 * `2026-03-01T12:00:00.123+02:00`) whose UTC instant lies in years 0001 to 9999.
 *
 * Both databases must take every accepted value alike. `Date.parse` takes far more
 * (`"1"`, `"Tue, 1 Jan 2026"`, `2026-02-30`, which it moves to March 2, years up to
 * ±275760) and PostgreSQL refused some of it as a 500 (22007, 22008, 22009). SQLite stores
 * timestamps as ISO text and compares them as text, which orders correctly only while the
 * year has four digits; PostgreSQL's timestamptz has no year 0. Hence the range.
 */
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/** 0001-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z. */
export const MIN_TIMESTAMP_MS = -62_135_596_800_000;
export const MAX_TIMESTAMP_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** What `toISOString` writes for years 0001-9999, and so what both backends store and give back. */
const CANONICAL = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Milliseconds since the epoch of an accepted timestamp, or undefined. */
export function parseTimestamp(text: string): number | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return undefined;
  // Date.UTC maps years 0-99 to 1900-1999; setUTCFullYear does not.
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  if (date.getUTCDate() !== day) return undefined; // February 30 and the like
  const millis = Number((m[7] ?? '').padEnd(3, '0').slice(0, 3));
  const offsetMinutes = m[8] ? 0 : (m[9] === '-' ? -1 : 1) * (Number(m[10]) * 60 + Number(m[11]));
  if (!m[8] && (Number(m[10]) > 23 || Number(m[11]) > 59)) return undefined;
  const ms = date.getTime() + ((hour * 60 + minute - offsetMinutes) * 60 + second) * 1000 + millis;
  return ms >= MIN_TIMESTAMP_MS && ms <= MAX_TIMESTAMP_MS ? ms : undefined;
}

/** An accepted timestamp as stored (ISO-8601 UTC, milliseconds); a 400 on `field` otherwise. */
export function toTimestamp(text: unknown, field: string): string {
  const ms = typeof text === 'string' ? parseTimestamp(text) : undefined;
  if (ms === undefined) throw AgentstoreError.invalidField(field, 'must be an RFC 3339 timestamp (e.g. 2026-03-01T12:00:00Z) in years 0001 to 9999');
  return new Date(ms).toISOString();
}

/** Whether `value` is a timestamp exactly as the API writes it (what a cursor holds). */
export function isCanonicalTimestamp(value: unknown): value is string {
  return typeof value === 'string' && CANONICAL.test(value) && parseTimestamp(value) !== undefined;
}
