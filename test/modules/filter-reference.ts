/**
 * A reference evaluator of the record filter language (src/modules/collections/filter.ts),
 * written from its documented semantics, in memory. The filter suite checks that the SQL
 * each dialect compiles selects exactly what this evaluator selects.
 *
 * Semantics: comparisons are type-strict (5 != "5", true != 1); a numeric path segment
 * indexes an array and names a key of an object; `ne` and `not` match a missing field; `contains` is substring on strings and membership on arrays; `exists` is
 * true for an explicit null; ordered comparisons only match values of the operand's type.
 */
type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface RefRecord {
  readonly id: string;
  readonly version: number;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly data: Record<string, Json>;
}

const META = new Set(['id', 'createdAt', 'updatedAt', 'version']);

/** On an array a segment of digits (up to 2^31-1) is an index; on an object every segment is a key. */
function valueAt(record: RefRecord, key: string): Json | undefined {
  if (META.has(key)) return record[key as 'id'];
  const path = key.startsWith('data.') ? key.slice(5) : key;
  let value: Json | undefined = record.data;
  for (const segment of path.split('.')) {
    if (Array.isArray(value)) {
      const index = /^[0-9]+$/.test(segment) && Number(segment) <= 2 ** 31 - 1 ? Number(segment) : -1;
      value = index >= 0 && index < value.length ? value[index] : undefined;
      continue;
    }
    if (typeof value !== 'object' || value === null) return undefined;
    value = Object.prototype.hasOwnProperty.call(value, segment) ? value[segment] : undefined;
  }
  return value;
}

function jsonType(v: Json | undefined): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function equals(v: Json | undefined, operand: Json): boolean {
  return v !== undefined && jsonType(v) === jsonType(operand) && (typeof v !== 'object' || v === null) && v === operand;
}

function ordered(v: Json | undefined, op: string, operand: Json): boolean {
  if (typeof operand !== typeof v || (typeof v !== 'number' && typeof v !== 'string')) return false;
  const a = v as number | string;
  const b = operand as number | string;
  // Byte order: the suites use ASCII strings, where UTF-16 and UTF-8 orders agree.
  switch (op) {
    case 'gt':
      return a > b;
    case 'gte':
      return a >= b;
    case 'lt':
      return a < b;
    default:
      return a <= b;
  }
}

function condition(record: RefRecord, key: string, op: string, operand: Json): boolean {
  const v = valueAt(record, key);
  const isDate = key === 'createdAt' || key === 'updatedAt';
  const norm = (x: Json): Json => (isDate && typeof x === 'string' ? new Date(x).toISOString() : x);
  switch (op) {
    case 'eq':
      return equals(v, norm(operand));
    case 'ne':
      return !equals(v, norm(operand));
    case 'in':
      return (operand as Json[]).some((o) => equals(v, norm(o)));
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte':
      return ordered(v, op, norm(operand));
    case 'contains':
      if (typeof operand === 'string' && typeof v === 'string' && v.includes(operand)) return true;
      return Array.isArray(v) && v.some((e) => equals(e, operand));
    case 'exists':
      return (v !== undefined) === operand;
    default:
      throw new Error(`reference: unknown operator ${op}`);
  }
}

export function matches(record: RefRecord, filter: unknown): boolean {
  const node = filter as Record<string, unknown>;
  return Object.entries(node).every(([key, value]) => {
    if (key === 'and') return (value as unknown[]).every((f) => matches(record, f));
    if (key === 'or') return (value as unknown[]).some((f) => matches(record, f));
    if (key === 'not') return !matches(record, value);
    const conditions = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, Json>) : { eq: value as Json };
    return Object.entries(conditions).every(([op, operand]) => condition(record, key, op, operand));
  });
}
