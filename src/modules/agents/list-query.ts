/**
 * The SQL of an agent listing. One index serves each shape (test/modules/agents-plan.test.ts
 * shows the plans), chosen by the first of these the query has:
 *
 * - `tag`: a range of `agent_tags`' key (tenant, tag), in agent id order, each row joined to
 *   its agent by key; a status or name condition filters those rows.
 * - `q` as a prefix: a range of `agents_name` (tenant, name_key), in name order.
 * - `status`: a range of `agents_status` (tenant, status), in id order.
 * - nothing, or `q` as a substring: the tenant's range of the primary key, in id order. A
 *   substring cannot use an index (pg_trgm would, but the runtime role cannot be assumed to
 *   have the extension): it reads the tenant's agents until a page is full, so it runs as a
 *   scan (the fair gate; off the event loop on SQLite).
 *
 * Ids are UUIDv7, so id order is creation order.
 */
import { sql, type SqlBool, type Expression } from 'kysely';
import type { Executor } from '../../db/database.js';
import type { DialectName } from '../../db/dialect.js';
import type { CursorValueType } from '../../core/cursor.js';
import type { AgentStatus } from './types.js';

export interface AgentListSpec {
  readonly tenantId: string;
  readonly dialect: DialectName;
  readonly status?: AgentStatus | undefined;
  readonly tag?: string | undefined;
  /** Lowercased already. */
  readonly q?: string | undefined;
  readonly match: 'prefix' | 'substring';
  /** The cursor's values: [name_key, id] in name order, else [id]. */
  readonly after?: readonly unknown[] | undefined;
  readonly limit: number;
}

export type AgentListShape = 'tag' | 'name' | 'status' | 'all';

export function listShape(spec: Pick<AgentListSpec, 'tag' | 'q' | 'match' | 'status'>): AgentListShape {
  if (spec.tag !== undefined) return 'tag';
  if (spec.q !== undefined && spec.match === 'prefix') return 'name';
  if (spec.status !== undefined) return 'status';
  return 'all';
}

export function cursorTypesOf(shape: AgentListShape): CursorValueType[] {
  return shape === 'name' ? ['text', 'text'] : ['text'];
}

// The highest code point: in byte order (SQLite's BINARY, PostgreSQL's "C") every text that
// starts with q sorts before q followed by it.
const TOP = '\u{10FFFF}';

/** The agent's columns, the document as JSON text on both backends (its length bounds a page). */
function agentColumns(dialect: DialectName) {
  return ['a.id', 'a.version', 'a.created_at', 'a.updated_at', 'a.name_key', (dialect === 'postgres' ? sql<string>`a.doc::text` : sql<string>`a.doc`).as('doc')] as const;
}

/** The page's SELECT, `limit` rows (the caller asks for one more than it shows). */
export function agentListQuery(trx: Executor, spec: AgentListSpec) {
  const shape = listShape(spec);
  const nameCondition = (column: Expression<string>): Expression<SqlBool> | undefined => {
    if (spec.q === undefined) return undefined;
    if (spec.match === 'prefix') return sql<SqlBool>`${column} >= ${spec.q} and ${column} < ${spec.q + TOP}`;
    // instr (SQLite) and strpos (PostgreSQL) compare code points, with no LIKE wildcards to escape.
    return spec.dialect === 'postgres' ? sql<SqlBool>`strpos(${column}, ${spec.q}) > 0` : sql<SqlBool>`instr(${column}, ${spec.q}) > 0`;
  };
  if (shape === 'tag') return tagQuery(trx, spec, nameCondition);
  let q = trx.selectFrom('agents as a').select(agentColumns(spec.dialect)).where('a.tenant_id', '=', spec.tenantId).limit(spec.limit);
  if (spec.status !== undefined) q = q.where('a.status', '=', spec.status);
  const name = nameCondition(sql.ref('a.name_key'));
  if (name) q = q.where(name);
  if (shape === 'name') {
    q = q.orderBy('a.name_key').orderBy('a.id');
    if (spec.after) q = q.where(sql<SqlBool>`(a.name_key, a.id) > (${spec.after[0] as string}, ${spec.after[1] as string})`);
    return q;
  }
  q = q.orderBy('a.id');
  if (spec.after) q = q.where('a.id', '>', spec.after[0] as string);
  return q;
}

/**
 * By tag: the tag's range of `agent_tags`' key in agent id order, and each row's agent by its
 * key, a nested loop that stops with the page. The planners would rather not: PostgreSQL
 * hashed or merged the whole agents table (2,000 rows read for a page of 51), SQLite started
 * from agents_status and sorted. So the join order is fixed: a LATERAL subquery that cannot be
 * flattened (OFFSET 0) on PostgreSQL, a CROSS JOIN (SQLite keeps its order) on SQLite.
 */
function tagQuery(trx: Executor, spec: AgentListSpec, nameCondition: (column: Expression<string>) => Expression<SqlBool> | undefined) {
  const doc = spec.dialect === 'postgres' ? sql<string>`a.doc::text` : sql<string>`a.doc`;
  const base =
    spec.dialect === 'postgres'
      ? trx.selectFrom('agent_tags as t').crossJoinLateral((eb) =>
          eb
            .selectFrom('agents as a')
            .select(['a.id', 'a.version', 'a.created_at', 'a.updated_at', 'a.name_key', 'a.status', doc.as('doc')])
            .whereRef('a.tenant_id', '=', 't.tenant_id')
            .whereRef('a.id', '=', 't.agent_id')
            .offset(0)
            .as('a'),
        )
      : trx
          .selectFrom('agent_tags as t')
          .crossJoin('agents as a')
          .whereRef('a.tenant_id', '=', 't.tenant_id')
          .whereRef('a.id', '=', 't.agent_id');
  let q = base
    .select(['a.id', 'a.version', 'a.created_at', 'a.updated_at', 'a.name_key', 'a.doc'])
    .where('t.tenant_id', '=', spec.tenantId)
    .where('t.tag', '=', spec.tag as string)
    .orderBy('t.agent_id')
    .limit(spec.limit);
  if (spec.after) q = q.where('t.agent_id', '>', spec.after[0] as string);
  if (spec.status !== undefined) q = q.where('a.status', '=', spec.status);
  const name = nameCondition(sql.ref('a.name_key'));
  if (name) q = q.where(name);
  return q;
}
