import { sql, type Expression, type RawBuilder, type SqlBool } from 'kysely';
import { AgentstoreError } from '../../core/errors.js';
import type { Executor } from '../../db/database.js';
import type { DialectName } from '../../db/dialect.js';
import { liveRecord } from './expiry.js';
import { parseQueryPath, typeExpr, valueExpr } from './json-path.js';
import { recordSource } from './list-query.js';
import { executeWithIndex, withIndex } from './search.js';
import type { AggregateGroup, AggregateResult, GroupKey, MetricName } from './types.js';

/**
 * Counting and a small aggregation over a collection's records, compiled to SQL on both
 * dialects and computed by the database (never by loading records):
 *
 *   groupBy  up to 2 data fields; a group per distinct combination of their scalar values
 *   metrics  `sum:f`, `min:f`, `max:f`, `avg:f` over the numeric values of a data field
 *
 * Alike on both databases: group keys are JSON scalars compared type-strictly (1 and "1" and
 * true are three groups; 1 and 1.0 one), a missing field and null are the one null group, and
 * a record whose group field holds an object or an array is in no group. Metrics read numbers
 * only (other values and missing fields are skipped); a metric with no number in its group is
 * null; sums and averages are doubles rounded to 15 significant digits (PostgreSQL adds
 * numerics exactly, SQLite doubles with compensation: they agree to that precision), and null
 * in a group holding a number of magnitude 1e300 or more; min and max the stored numbers.
 * Groups come ordered by key: null, then false and true, numbers, strings (byte order), the
 * first field first; at most `limit` (up to 1,000) with `truncated`.
 */
export const MAX_GROUP_BY = 2;
export const MAX_METRICS = 10;
export const MAX_GROUPS = 1000;

const OPS = new Set(['sum', 'min', 'max', 'avg']);

interface Field {
  readonly name: string;
  readonly segments: readonly string[];
}

interface Metric extends Field {
  readonly op: 'sum' | 'min' | 'max' | 'avg';
  readonly key: MetricName;
}

export interface AggregateSpec {
  readonly groupBy: readonly Field[];
  readonly metrics: readonly Metric[];
  readonly limit: number;
}

function list(raw: string | readonly string[] | undefined): unknown[] {
  if (raw === undefined) return [];
  return typeof raw === 'string' ? raw.split(',').map((s) => s.trim()) : [...raw];
}

function dataField(raw: unknown, field: string, what: string): Field {
  if (typeof raw !== 'string' || raw.length === 0) throw AgentstoreError.invalidField(field, `each ${what} names a data field`);
  const path = parseQueryPath(raw, field);
  if (path.kind !== 'data') throw AgentstoreError.invalidField(field, `takes data fields, not the record attribute "${raw}" (data.${raw} is a data field of that name)`);
  return { name: path.segments.join('.'), segments: path.segments };
}

export function parseAggregate(input: { groupBy?: string | readonly string[]; metrics?: string | readonly string[]; limit?: number }): AggregateSpec {
  const groupBy = list(input.groupBy).map((raw) => dataField(raw, 'groupBy', 'groupBy field'));
  if (groupBy.length > MAX_GROUP_BY) throw AgentstoreError.invalidField('groupBy', `takes at most ${MAX_GROUP_BY} fields`);
  if (new Set(groupBy.map((g) => g.name)).size !== groupBy.length) throw AgentstoreError.invalidField('groupBy', 'names a field twice');
  const metrics = list(input.metrics).map((raw): Metric => {
    const text = typeof raw === 'string' ? raw : '';
    const colon = text.indexOf(':');
    const op = colon > 0 ? text.slice(0, colon) : '';
    if (!OPS.has(op)) throw AgentstoreError.invalidField('metrics', `each metric is sum:, min:, max: or avg: and a data field, e.g. sum:amount (got "${text.slice(0, 40)}")`);
    const field = dataField(text.slice(colon + 1), 'metrics', 'metric');
    return { ...field, op: op as Metric['op'], key: `${op}:${field.name}` as MetricName };
  });
  if (metrics.length > MAX_METRICS) throw AgentstoreError.invalidField('metrics', `takes at most ${MAX_METRICS} metrics`);
  if (new Set(metrics.map((m) => m.key)).size !== metrics.length) throw AgentstoreError.invalidField('metrics', 'names a metric twice');
  const limit = input.limit ?? MAX_GROUPS;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_GROUPS) throw AgentstoreError.invalidField('limit', `must be an integer from 1 to ${MAX_GROUPS}`);
  return { groupBy, metrics, limit };
}

interface Scope {
  readonly tenantId: string;
  readonly collection: string;
  readonly filter?: RawBuilder<unknown> | undefined;
  /** The read's instant: records expired by then are not counted (expiry.ts). */
  readonly now: string;
}

function scoped(trx: Executor, dialect: DialectName, scope: Scope) {
  let q = trx
    .selectFrom(recordSource(dialect))
    // Literals on SQLite, which matches a partial index's predicate only to literal values.
    .where('records.tenant_id', '=', dialect === 'sqlite' ? sql.lit(scope.tenantId) : scope.tenantId)
    .where('records.collection', '=', dialect === 'sqlite' ? sql.lit(scope.collection) : scope.collection)
    .where(liveRecord(scope.now) as Expression<SqlBool>);
  if (scope.filter) q = q.where(scope.filter as Expression<SqlBool>);
  return q;
}

/** The SELECT of `countRecords` (the plan test explains it). */
export function countQuery(trx: Executor, dialect: DialectName, scope: Scope) {
  return scoped(trx, dialect, scope).select(sql<number | string>`count(*)`.as('n'));
}

/** The number of records that match: exact, one scan of what the filter selects (on SQLite through `index`, search.ts). */
export async function countRecords(trx: Executor, dialect: DialectName, scope: Scope, index?: string): Promise<number> {
  const { rows } = await executeWithIndex(trx, (hint) => withIndex(countQuery(trx, dialect, scope), hint), index);
  return Number(rows[0]?.n ?? 0);
}

/**
 * The values the aggregation reads, one column per distinct field (`_v<j>`; on SQLite also its
 * JSON type, `_y<j>`, since json_extract gives 1 for true), each extracted once per record.
 */
function fieldColumns(dialect: DialectName, fields: readonly Field[]): RawBuilder<unknown>[] {
  return fields.flatMap((f, j) => {
    const value = sql`${valueExpr(dialect, f.segments)}`.as(`_v${j}`) as unknown as RawBuilder<unknown>;
    return dialect === 'postgres' ? [value] : [value, sql`${typeExpr(dialect, f.segments)}`.as(`_y${j}`) as unknown as RawBuilder<unknown>];
  });
}

/** A field's JSON type, named alike on both dialects: null (or missing), boolean, number, string, object, array. */
function typeOf(dialect: DialectName, j: number): RawBuilder<unknown> {
  return dialect === 'postgres'
    ? sql.raw(`coalesce(jsonb_typeof(_v${j}), 'null')`)
    : sql.raw(`case _y${j} when 'true' then 'boolean' when 'false' then 'boolean' when 'integer' then 'number' when 'real' then 'number' when 'text' then 'string' else coalesce(_y${j}, 'null') end`);
}

/** The field's number, NULL where its value is anything else. */
function numberOf(dialect: DialectName, j: number): RawBuilder<unknown> {
  return dialect === 'postgres' ? sql.raw(`case when jsonb_typeof(_v${j}) = 'number' then (_v${j})::numeric end`) : sql.raw(`case when _y${j} in ('integer', 'real') then _v${j} end`);
}

/** Magnitudes from which a group's sum and average are null: past them a double sum may overflow. */
const HUGE = '1e300';

function metricExpr(dialect: DialectName, op: Metric['op'], j: number): RawBuilder<unknown> {
  const v = numberOf(dialect, j);
  if (op === 'min' || op === 'max') return sql`${sql.raw(op)}(${v})`;
  // SQLite adds doubles, and one past the double range is infinite (the order of the rows then
  // decides); PostgreSQL adds numerics exactly. Alike on both: null when the group holds a
  // number that large. total(): a double, where sum() fails with "integer overflow" past 2^63.
  const value = dialect === 'postgres' ? sql`${sql.raw(op)}(${v})` : op === 'sum' ? sql`case when count(${v}) = 0 then null else total(${v}) end` : sql`avg(${v})`;
  return sql`case when max(abs(${v})) >= ${sql.raw(HUGE)} then null else ${value} end`;
}

/** A group key's place by type: null, boolean, number, string. */
const rank = (i: number) => sql.raw(`case _t${i} when 'null' then 0 when 'boolean' then 1 when 'number' then 2 else 3 end`);

/** The SELECT of `aggregateRecords`: `limit` + 1 groups in key order. */
export function aggregateQuery(trx: Executor, dialect: DialectName, scope: Scope, spec: AggregateSpec) {
  const fields: Field[] = [];
  const column = (f: Field): number => {
    const j = fields.findIndex((x) => x.name === f.name);
    return j >= 0 ? j : fields.push(f) - 1;
  };
  const groups = spec.groupBy.map(column);
  const metrics = spec.metrics.map((m) => ({ op: m.op, j: column(m) }));
  // A constant column too: without groups or metrics there is no field, and SQLite has no
  // SELECT of zero columns.
  let values = scoped(trx, dialect, scope).select([sql`1`.as('_one'), ...fieldColumns(dialect, fields)] as never);
  // A fence (OFFSET 0; SQLite's LIMIT -1) keeps the planner from merging this query into the
  // next and extracting each field again in every expression that uses it: twice as slow.
  values = dialect === 'postgres' ? values.offset(0) : values.limit(-1);
  let grouped = trx.selectFrom(values.as('r')).select(sql<number | string>`count(*)`.as('_n'));
  groups.forEach((j, i) => {
    const type = typeOf(dialect, j);
    // The key's value: jsonb on PostgreSQL (type-aware, JSON null as missing), the scalar on
    // SQLite, which the type column keeps apart (true is 1 there).
    const value = dialect === 'postgres' ? sql.raw(`nullif(_v${j}, 'null'::jsonb)`) : sql.raw(`_v${j}`);
    grouped = grouped
      .where(sql`${type} not in ('object', 'array')` as Expression<SqlBool>)
      .select([sql`${type}`.as(`_t${i}`), sql`${value}`.as(`_k${i}`)])
      .groupBy([type, value] as never);
  });
  metrics.forEach((m, i) => {
    grouped = grouped.select(metricExpr(dialect, m.op, m.j).as(`_m${i}`));
  });
  let outer = trx.selectFrom(grouped.as('g')).selectAll('g');
  spec.groupBy.forEach((_, i) => {
    outer = outer.orderBy(rank(i)).orderBy(
      // Within a type: strings in byte order (jsonb orders them by the database's collation),
      // numbers by value, false before true.
      dialect === 'postgres' ? sql.raw(`(case when _t${i} = 'string' then _k${i} #>> '{}' end) collate "C"`) : sql.raw(`_k${i}`),
    );
    if (dialect === 'postgres') outer = outer.orderBy(sql.raw(`_k${i}`));
  });
  return outer.limit(spec.limit + 1);
}

/** The groups, their counts and metrics, ordered by key; one group without `groupBy`. */
export async function aggregateRecords(trx: Executor, dialect: DialectName, scope: Scope, spec: AggregateSpec, index?: string): Promise<AggregateResult> {
  const rows = (await executeWithIndex(trx, (hint) => withIndex(aggregateQuery(trx, dialect, scope, spec), hint), index)).rows as Record<string, unknown>[];
  const truncated = rows.length > spec.limit;
  const groups = rows.slice(0, spec.limit).map((row): AggregateGroup => {
    const key: Record<string, GroupKey> = {};
    spec.groupBy.forEach((g, i) => {
      const raw = row[`_k${i}`];
      const value: GroupKey = raw === null || raw === undefined ? null : row[`_t${i}`] === 'boolean' && dialect === 'sqlite' ? raw === 1 : (raw as GroupKey);
      Object.defineProperty(key, g.name, { value, enumerable: true, writable: true, configurable: true });
    });
    const metrics: Partial<Record<MetricName, number | null>> = {};
    spec.metrics.forEach((m, i) => {
      metrics[m.key] = metricValue(m.op, row[`_m${i}`]);
    });
    return { key, count: Number(row._n), metrics };
  });
  return { groups, truncated };
}

function metricValue(op: Metric['op'], raw: unknown): number | null {
  if (raw === null || raw === undefined) return null;
  const exact = Number(raw);
  if (!Number.isFinite(exact)) return null;
  if (op !== 'sum' && op !== 'avg') return exact;
  // Near the largest double, 15 digits round past it (1.79769313486232e308): then unrounded.
  const rounded = Number(exact.toPrecision(15));
  return Number.isFinite(rounded) ? rounded : exact;
}
