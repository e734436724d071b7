import { describe, expect, it } from 'vitest';
import { isCanonicalTimestamp, parseTimestamp, toTimestamp } from './time.js';

describe('timestamps the API accepts', () => {
  it.each([
    ['2026-03-01T12:00:00Z', '2026-03-01T12:00:00.000Z'],
    ['2026-03-01t12:00:00z', '2026-03-01T12:00:00.000Z'],
    ['2026-03-01 12:00:00Z', '2026-03-01T12:00:00.000Z'],
    ['2024-02-29T10:00:00.123456+05:30', '2024-02-29T04:30:00.123Z'],
    ['0001-01-01T00:00:00Z', '0001-01-01T00:00:00.000Z'],
    ['0050-06-01T00:00:00-01:00', '0050-06-01T01:00:00.000Z'],
    ['9999-12-31T23:59:59.999Z', '9999-12-31T23:59:59.999Z'],
  ])('%s is %s', (text, iso) => {
    expect(toTimestamp(text, 'f')).toBe(iso);
  });

  it.each([
    '0000-01-01T00:00:00Z',
    '0001-01-01T00:00:00+00:01',
    '9999-12-31T23:59:59.999-00:01',
    '+275760-09-13T00:00:00Z',
    '-000001-01-01T00:00:00Z',
    '2026-02-29T00:00:00Z',
    '2026-02-30T00:00:00Z',
    '2026-04-31T00:00:00Z',
    '2026-13-01T00:00:00Z',
    '2026-00-01T00:00:00Z',
    '2026-01-01T24:00:00Z',
    '2016-12-31T23:59:60Z',
    '2026-01-01T00:00:00+24:00',
    '2026-01-01T00:00:00',
    '2026-01-01',
    '1',
    'Tue, 01 Jan 2026 00:00:00 GMT',
    ' 2026-01-01T00:00:00Z',
    '2026-01-01T00:00:00.Z',
  ])('%s is refused', (text) => {
    expect(parseTimestamp(text)).toBeUndefined();
    expect(() => toTimestamp(text, 'from')).toThrow(/from: must be an RFC 3339 timestamp/);
  });

  it('refuses what is not a string', () => {
    for (const value of [0, null, undefined, {}, ['2026-01-01T00:00:00Z']]) expect(() => toTimestamp(value, 'f')).toThrow();
  });

  it('knows the form the API writes, which cursors must hold', () => {
    expect(isCanonicalTimestamp('2026-03-01T12:00:00.000Z')).toBe(true);
    expect(isCanonicalTimestamp('2026-03-01T12:00:00Z')).toBe(false);
    expect(isCanonicalTimestamp('0000-01-01T00:00:00.000Z')).toBe(false);
    expect(isCanonicalTimestamp('2026-02-30T00:00:00.000Z')).toBe(false);
  });
});
