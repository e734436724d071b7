import { sql, type RawBuilder } from 'kysely';
import { INT32_MAX, INT32_MIN, isInt32 } from '../../core/cursor.js';
import { AgentstoreError } from '../../core/errors.js';
import { parseTimestamp } from '../../core/time.js';
import type { DialectName } from '../../db/dialect.js';
import { parseQueryPath, sqliteEachArgs, textExpr, typeExpr, valueExpr, type FieldPath } from './json-path.js';
import { unstorableJson } from '../../core/json.js';

/**
 * The record filter language, compiled to SQL on both dialects (rows are never loaded to
 * be filtered in memory).
 *
 *   filter   := { "and": [filter...] } | { "or": [filter...] } | { "not": filter }
 *             | { "<path>": scalar | { "<op>": operand, ... }, ... }   (keys are ANDed)
 *   op       := eq | ne | gt | gte | lt | lte | in | contains | exists
 *
 * Comparisons are type-strict: 5 never equals "5" and true never equals 1. `ne` and
 * `not` match records where the field is missing. `contains` is substring for strings
 * and membership for arrays.
 */
export type Scalar = string | number | boolean | null;

const OPERATORS = new Set(['eq', 'ne', 'gt', 'gte', 'lt', 'lte', 'in', 'contains', 'exists']);
const MAX_FILTER_LENGTH = 8192;
const MAX_NODES = 100;
const MAX_DEPTH = 10;
const MAX_IN = 100;

interface CompileState {
  readonly dialect: DialectName;
  nodes: number;
}

function invalid(message: string): AgentstoreError {
  return AgentstoreError.invalidField('filter', message);
}

function isScalar(value: unknown): value is Scalar {
  return value === null || typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parses the `filter` query parameter (JSON text). */
export function parseFilter(text: string): unknown {
  if (text.length > MAX_FILTER_LENGTH) throw invalid(`is longer than ${MAX_FILTER_LENGTH} characters`);
  try {
    return JSON.parse(text);
  } catch {
    throw invalid('is not valid JSON');
  }
}

export function compileFilter(filter: unknown, dialect: DialectName): RawBuilder<unknown> {
  const problem = unstorableJson(filter);
  if (problem) throw invalid(problem);
  return compileNode(filter, { dialect, nodes: 0 }, 0);
}

function compileNode(node: unknown, state: CompileState, depth: number): RawBuilder<unknown> {
  if (depth > MAX_DEPTH) throw invalid(`nests deeper than ${MAX_DEPTH}`);
  if (++state.nodes > MAX_NODES) throw invalid(`has more than ${MAX_NODES} conditions`);
  if (!isPlainObject(node)) throw invalid('each filter must be a JSON object');
  const parts: RawBuilder<unknown>[] = [];
  for (const [key, value] of Object.entries(node)) {
    if (key === 'and' || key === 'or') {
      if (!Array.isArray(value) || value.length === 0) throw invalid(`"${key}" takes a non-empty array of filters`);
      const children = value.map((child) => compileNode(child, state, depth + 1));
      parts.push(sql`(${sql.join(children, sql.raw(key === 'and' ? ' and ' : ' or '))})`);
    } else if (key === 'not') {
      // IS NOT TRUE, not NOT: a condition on a missing field is NULL, and NOT NULL would
      // drop the record instead of matching it.
      parts.push(sql`((${compileNode(value, state, depth + 1)}) is not true)`);
    } else {
      const path = parseQueryPath(key, 'filter');
      const conditions = isPlainObject(value) ? value : { eq: value };
      const keys = Object.keys(conditions);
      if (keys.length === 0) throw invalid(`"${key}" has no condition`);
      for (const op of keys) {
        if (!OPERATORS.has(op)) throw invalid(`unknown operator "${op.slice(0, 40)}" (use ${[...OPERATORS].join(', ')})`);
        parts.push(compileCondition(path, key, op, conditions[op], state.dialect));
      }
    }
  }
  if (parts.length === 0) return sql`(1 = 1)`;
  return parts.length === 1 ? (parts[0] as RawBuilder<unknown>) : sql`(${sql.join(parts, sql.raw(' and '))})`;
}

function compileCondition(path: FieldPath, key: string, op: string, operand: unknown, dialect: DialectName): RawBuilder<unknown> {
  if (path.kind === 'meta') return compileMetaCondition(dialect, path.column, key, op, operand);
  const segments = path.segments;
  const value = valueExpr(dialect, segments);
  const type = typeExpr(dialect, segments);
  switch (op) {
    case 'exists':
      if (typeof operand !== 'boolean') throw invalid(`"${key}.exists" takes true or false`);
      return operand ? sql`(${type} is not null)` : sql`(${type} is null)`;
    case 'eq':
      return equals(dialect, value, type, key, operand);
    case 'ne':
      return sql`((${equals(dialect, value, type, key, operand)}) is not true)`;
    case 'in': {
      if (!Array.isArray(operand) || operand.length === 0 || operand.length > MAX_IN) throw invalid(`"${key}.in" takes an array of 1 to ${MAX_IN} values`);
      if (dialect === 'postgres') {
        // = any(array): one index condition, which a plain index scan can search (an OR of
        // equalities needs a bitmap scan); jsonb equality is type-aware as for eq.
        const values = operand.map((v) => {
          if (!isScalar(v)) throw invalid(`"${key}" compares with a string, number, boolean or null`);
          return sql`${JSON.stringify(v)}::jsonb`;
        });
        return sql`(${value} = any(array[${sql.join(values)}]))`;
      }
      // SQLite: one `in` per JSON type (a declared index searches a list; an OR of equalities
      // it scanned whole), each with its type check.
      operand.forEach((v) => {
        if (!isScalar(v)) throw invalid(`"${key}" compares with a string, number, boolean or null`);
      });
      const strings = operand.filter((v): v is string => typeof v === 'string');
      const numbers = operand.filter((v): v is number => typeof v === 'number');
      const others = operand.filter((v) => typeof v !== 'string' && typeof v !== 'number');
      const parts = [
        ...(strings.length > 0 ? [sql`(${value} in (${sql.join(strings)}) and ${type} = 'text')`] : []),
        ...(numbers.length > 0 ? [sql`(${value} in (${sql.join(numbers)}) and ${type} in ('integer', 'real'))`] : []),
        ...others.map((v) => equals(dialect, value, type, key, v)),
      ];
      return sql`(${sql.join(parts, sql.raw(' or '))})`;
    }
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte':
      return ordered(dialect, segments, value, type, key, op, operand);
    case 'contains':
      return contains(dialect, segments, value, type, key, operand);
    default:
      throw invalid(`unknown operator "${op}"`);
  }
}

// A Map: operator names come from the request (only known ones get here, but a lookup of a
// request's name never reaches Object.prototype).
const comparators: ReadonlyMap<string, string> = new Map([
  ['gt', '>'],
  ['gte', '>='],
  ['lt', '<'],
  ['lte', '<='],
]);

function comparator(op: string): RawBuilder<unknown> {
  const cmp = comparators.get(op);
  if (cmp === undefined) throw invalid(`unknown operator "${op}"`);
  return sql.raw(cmp);
}

function equals(dialect: DialectName, value: RawBuilder<unknown>, type: RawBuilder<unknown>, key: string, operand: unknown): RawBuilder<unknown> {
  if (!isScalar(operand)) throw invalid(`"${key}" compares with a string, number, boolean or null`);
  if (dialect === 'postgres') {
    // jsonb equality is type-aware already, and matches an expression index on (data #> path).
    return sql`(${value} = ${JSON.stringify(operand)}::jsonb)`;
  }
  // The value's own comparison first, so that a declared index on the path can search it:
  // json_extract gives NULL for null and 1/0 for booleans; the type then tells them apart.
  if (operand === null) return sql`(${value} is null and ${type} = 'null')`;
  if (typeof operand === 'boolean') return sql`(${value} = ${operand ? 1 : 0} and ${type} = ${operand ? 'true' : 'false'})`;
  if (typeof operand === 'number') return sql`(${type} in ('integer', 'real') and ${value} = ${operand})`;
  return sql`(${type} = 'text' and ${value} = ${operand})`;
}

function ordered(
  dialect: DialectName,
  segments: readonly string[],
  value: RawBuilder<unknown>,
  type: RawBuilder<unknown>,
  key: string,
  op: string,
  operand: unknown,
): RawBuilder<unknown> {
  const cmp = comparator(op);
  if (typeof operand === 'number' && Number.isFinite(operand)) {
    if (dialect === 'sqlite') return sql`(${type} in ('integer', 'real') and ${value} ${cmp} ${operand})`;
    // With the other end of the double range (always true of a stored number), the planner
    // sees a range and estimates it at 0.5% of the collection, not at a third: at a third, a
    // declared index looked dearer than reading the whole collection through the primary key.
    const other = op.startsWith('g') ? sql`${value} <= '${sql.raw(String(Number.MAX_VALUE))}'::jsonb` : sql`${value} >= '${sql.raw(String(-Number.MAX_VALUE))}'::jsonb`;
    return sql`(${type} = 'number' and ${value} ${cmp} ${JSON.stringify(operand)}::jsonb and ${other})`;
  }
  if (typeof operand === 'string') {
    // Byte order on both dialects (SQLite's BINARY, PostgreSQL's "C"), so that results do
    // not depend on the database's collation.
    return dialect === 'postgres'
      ? sql`(${type} = 'string' and ${textExpr(dialect, segments)} collate "C" ${cmp} ${operand})`
      : sql`(${type} = 'text' and ${value} ${cmp} ${operand})`;
  }
  throw invalid(`"${key}.${op}" compares with a number or a string`);
}

function contains(
  dialect: DialectName,
  segments: readonly string[],
  value: RawBuilder<unknown>,
  type: RawBuilder<unknown>,
  key: string,
  operand: unknown,
): RawBuilder<unknown> {
  if (!isScalar(operand)) throw invalid(`"${key}.contains" takes a string, number, boolean or null`);
  if (dialect === 'postgres') {
    const element = sql`(${type} = 'array' and ${value} @> jsonb_build_array(${JSON.stringify(operand)}::jsonb))`;
    if (typeof operand !== 'string') return element;
    return sql`((${type} = 'string' and strpos(${textExpr(dialect, segments)}, ${operand}) > 0) or ${element})`;
  }
  const member =
    operand === null
      ? sql`e.type = 'null'`
      : typeof operand === 'boolean'
        ? sql`e.type = ${operand ? 'true' : 'false'}`
        : typeof operand === 'number'
          ? sql`e.type in ('integer', 'real') and e.value = ${operand}`
          : sql`e.type = 'text' and e.value = ${operand}`;
  const element = sql`(${type} = 'array' and exists (select 1 from json_each(${sqliteEachArgs(segments)}) as e where ${member}))`;
  if (typeof operand !== 'string') return element;
  return sql`((${type} = 'text' and instr(${value}, ${operand}) > 0) or ${element})`;
}

/**
 * A record attribute's operand, checked against its column's real range on both backends, so
 * that both accept and refuse the same filters: version is an INTEGER (PostgreSQL's int4;
 * 1e20 was 22003, a 500), timestamps are RFC 3339 in years 0001-9999 (src/core/time.ts;
 * "+275760-09-13T00:00:00Z" was 22009), id is text.
 */
function metaOperand(column: MetaColumn, key: string, value: unknown): unknown {
  if (column === 'version') {
    if (!isInt32(value)) throw invalid(`"${key}" compares with an integer from ${INT32_MIN} to ${INT32_MAX}`);
    return value;
  }
  if (typeof value !== 'string') throw invalid(`"${key}" compares with a string`);
  if (column === 'id') return value;
  const ms = parseTimestamp(value);
  if (ms === undefined) throw invalid(`"${key}" compares with an RFC 3339 timestamp (e.g. 2026-03-01T12:00:00Z) in years 0001 to 9999`);
  return new Date(ms).toISOString();
}

type MetaColumn = 'id' | 'created_at' | 'updated_at' | 'version';

function compileMetaCondition(dialect: DialectName, column: MetaColumn, key: string, op: string, operand: unknown): RawBuilder<unknown> {
  const ref = sql.ref(`records.${column}`) as unknown as RawBuilder<unknown>;
  const check = (v: unknown): unknown => metaOperand(column, key, v);
  switch (op) {
    case 'exists':
      if (typeof operand !== 'boolean') throw invalid(`"${key}.exists" takes true or false`);
      return operand ? sql`(1 = 1)` : sql`(1 = 0)`;
    case 'eq':
      return sql`(${ref} = ${check(operand)})`;
    case 'ne':
      return sql`(${ref} <> ${check(operand)})`;
    case 'in':
      if (!Array.isArray(operand) || operand.length === 0 || operand.length > MAX_IN) throw invalid(`"${key}.in" takes an array of 1 to ${MAX_IN} values`);
      return sql`(${ref} in (${sql.join(operand.map(check))}))`;
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte':
      return sql`(${ref} ${comparator(op)} ${check(operand)})`;
    case 'contains':
      // Substring of the id only: on a timestamp it was a 500 on PostgreSQL (no strpos for
      // timestamptz, 42883) and a text search in SQLite's stored text.
      if (column !== 'id') throw invalid(`"${key}.contains" applies to text fields, not to ${column === 'version' ? 'the version' : 'timestamps'}`);
      if (typeof operand !== 'string') throw invalid(`"${key}.contains" takes a string`);
      return dialect === 'postgres' ? sql`(strpos(${ref}, ${operand}) > 0)` : sql`(instr(${ref}, ${operand}) > 0)`;
    default:
      throw invalid(`unknown operator "${op}"`);
  }
}

/** Operators a btree index on the value can search, per dialect (see `searchableFields`). */
function searchable(dialect: DialectName, op: string, operand: unknown): boolean {
  if (op === 'eq' || op === 'in') return true;
  if (!comparators.has(op)) return false;
  // PostgreSQL compares strings as `#>>` text in byte order, another expression than the index's.
  return typeof operand === 'number' || (dialect === 'sqlite' && typeof operand === 'string');
}

/**
 * The data fields of a compiled filter that a declared index on the field could search: the
 * conditions every match must meet (the filter's top level and its top-level `and`s) whose SQL
 * compares the indexed expression itself. Decides only how a listing is planned
 * (list-query.ts); the filter alone decides what matches.
 */
export function searchableFields(filter: unknown, dialect: DialectName): Set<string> {
  const found = new Set<string>();
  const visit = (node: unknown): void => {
    if (!isPlainObject(node)) return;
    for (const [key, value] of Object.entries(node)) {
      if (key === 'and') {
        if (Array.isArray(value)) value.forEach(visit);
        continue;
      }
      if (key === 'or' || key === 'not') continue;
      const path = parseQueryPath(key, 'filter');
      if (path.kind !== 'data') continue;
      const conditions = isPlainObject(value) ? value : { eq: value };
      if (Object.entries(conditions).some(([op, operand]) => searchable(dialect, op, operand))) found.add(path.segments.join('.'));
    }
  };
  visit(filter);
  return found;
}
