import { sql, type RawBuilder } from 'kysely';
import { AgentstoreError } from '../../core/errors.js';
import type { Executor } from '../../db/database.js';
import type { DialectName } from '../../db/dialect.js';
import { TASK_LIMITS } from './fields.js';
import { TASK_COLUMNS, type TaskRow } from './rows.js';

/**
 * The tree queries of tasks, as recursive CTEs both dialects run alike. Every walk is
 * bounded: by depth (a task is at most `maxDepth` levels down, so an ancestor walk is at
 * most that long) and, for subtrees, by a LIMIT that stops the recursion early.
 */

const columns = (alias: string) => sql.raw(TASK_COLUMNS.map((c) => `${alias}.${c}`).join(', '));

/** PostgreSQL compares ranks byte by byte only with the C collation named (the column has it; an expression built from it needs it again). */
const binary = (dialect: DialectName) => sql.raw(dialect === 'postgres' ? ' collate "C"' : '');

/**
 * Serialises the tenant's task moves on PostgreSQL (a transaction-scoped advisory lock, as
 * for dependencies: fine behind pgbouncer in transaction mode). SQLite has one writer.
 */
export async function lockTenantTree(trx: Executor, dialect: DialectName, tenantId: string): Promise<void> {
  if (dialect !== 'postgres') return;
  await sql`select pg_advisory_xact_lock(hashtext('agentstore.task_tree'), hashtext(${tenantId}))`.execute(trx);
}

/** The task and its ancestors, nearest first (at most maxDepth + 1 rows). */
export async function ancestorIds(trx: Executor, tenantId: string, id: string): Promise<string[]> {
  const { rows } = await sql<{ id: string }>`with recursive up(id, parent_id, n) as (
      select id, parent_id, 0 from tasks where tenant_id = ${tenantId} and id = ${id}
      union all
      select t.id, t.parent_id, up.n + 1 from tasks t join up on t.tenant_id = ${tenantId} and t.id = up.parent_id where up.n < ${TASK_LIMITS.maxDepth + 1}
    ) select id from up order by n`.execute(trx);
  return rows.map((r) => r.id);
}

const subtreeCte = (tenantId: string, rootId: string): RawBuilder<unknown> => sql`with recursive sub(id) as (
      select id from tasks where tenant_id = ${tenantId} and id = ${rootId}
      union all
      select t.id from tasks t join sub on t.tenant_id = ${tenantId} and t.parent_id = sub.id
    )`;

/** How many tasks the subtree of `rootId` holds (itself included) and its deepest depth. */
export async function subtreeExtent(trx: Executor, tenantId: string, rootId: string): Promise<{ count: number; maxDepth: number }> {
  const { rows } = await sql<{ n: number | string; d: number | string | null }>`${subtreeCte(tenantId, rootId)}
    select count(*) as n, max(t.depth) as d from sub join tasks t on t.tenant_id = ${tenantId} and t.id = sub.id`.execute(trx);
  return { count: Number(rows[0]?.n ?? 0), maxDepth: Number(rows[0]?.d ?? 0) };
}

/** After a move: the descendants of `rootId` follow it to `branchId`, `delta` levels deeper. */
export async function shiftDescendants(trx: Executor, tenantId: string, rootId: string, branchId: string, delta: number): Promise<void> {
  await sql`${subtreeCte(tenantId, rootId)}
    update tasks set depth = depth + ${delta}, branch_id = ${branchId}
    where tenant_id = ${tenantId} and id in (select id from sub where id <> ${rootId})`.execute(trx);
  await sql`${subtreeCte(tenantId, rootId)}
    update task_labels set branch_id = ${branchId} where tenant_id = ${tenantId} and task_id in (select id from sub)`.execute(trx);
}

/**
 * The descendants of `rootId`, depth-first with siblings in rank order: each row's path is
 * its ancestors' ranks and its own, joined by a space (below every rank character), so
 * sorting paths sorts the tree. The walk stops after `limit` rows (breadth first, so a
 * truncated answer is the upper levels, complete).
 */
export async function subtreeRows(trx: Executor, dialect: DialectName, tenantId: string, rootId: string, limit: number): Promise<TaskRow[]> {
  return (await subtreeQuery(dialect, tenantId, rootId, limit).execute(trx)).rows;
}

export function subtreeQuery(dialect: DialectName, tenantId: string, rootId: string, limit: number): RawBuilder<TaskRow & { path: string }> {
  const c = binary(dialect);
  // The rows carry their columns through the walk: joining the walk's ids back to tasks
  // afterwards left both planners guessing its size, and they scanned the table. Both walk
  // level by level (PostgreSQL's working table, SQLite's FIFO queue), so the LIMIT keeps the
  // upper levels; `bounded` is MATERIALIZED because SQLite otherwise applied the ORDER BY
  // below the LIMIT, and a truncated walk kept the first branches of the tree whole instead.
  const names = sql.raw(TASK_COLUMNS.join(', '));
  return sql<TaskRow & { path: string }>`with recursive sub(${names}, path, lvl) as (
      select ${names}, cast(rank as text)${c} as path, 1 as lvl from tasks where tenant_id = ${tenantId} and parent_id = ${rootId}
      union all
      select ${columns('t')}, cast(sub.path || ' ' || t.rank as text)${c}, sub.lvl + 1 from tasks t join sub on t.tenant_id = ${tenantId} and t.parent_id = sub.id
      where sub.lvl <= ${TASK_LIMITS.maxDepth}
    ), bounded as materialized (select * from sub limit ${limit})
    select ${names}, path from bounded order by path${c}`;
}

/** Refuses a parent that is the task itself or below it. */
export async function assertNotUnderItself(trx: Executor, tenantId: string, taskId: string, parentId: string): Promise<void> {
  const chain = await ancestorIds(trx, tenantId, parentId);
  const at = chain.indexOf(taskId);
  if (at >= 0) {
    throw new AgentstoreError('agentstore.conflict', 'a task cannot move under itself or one of its own subtasks', {
      errors: [{ field: '/parentId', message: 'is the task or one of its subtasks' }],
      // From the task down to the parent asked for.
      path: chain.slice(0, at + 1).reverse(),
    });
  }
}
