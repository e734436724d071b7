import { sql } from 'kysely';
import { AgentstoreError } from '../../core/errors.js';
import type { Executor } from '../../db/database.js';
import type { DialectName } from '../../db/dialect.js';

/** Edges a cycle check may walk; past that the dependency is refused rather than checked slowly. */
export const MAX_WALK_EDGES = 100_000;

/**
 * Serialises the tenant's dependency writes on PostgreSQL: two units that each add one edge
 * of a cycle would each see no cycle in their own snapshot. A transaction-scoped advisory
 * lock keyed by the tenant (released at COMMIT, so it works behind pgbouncer in transaction
 * mode). SQLite has one writer at a time already.
 */
export async function lockTenantDependencies(trx: Executor, dialect: DialectName, tenantId: string): Promise<void> {
  if (dialect !== 'postgres') return;
  await sql`select pg_advisory_xact_lock(hashtext('agentstore.task_dependencies'), hashtext(${tenantId}))`.execute(trx);
}

/**
 * The cycle that the edge `taskId -> dependsOnId` would close, as the path of ids from
 * `taskId` back to itself, or undefined. One statement: every task reachable from
 * `dependsOnId` with the task that reached it (UNION, so each edge is walked once whatever
 * the graph's shape), then the path is read back from those links.
 */
export async function cycleThrough(trx: Executor, tenantId: string, taskId: string, dependsOnId: string): Promise<string[] | undefined> {
  if (taskId === dependsOnId) return [taskId, taskId];
  const { rows } = await sql<{ id: string; via: string | null }>`with recursive reach(id, via) as (
      select cast(${dependsOnId} as text), cast(null as text)
      union
      select d.depends_on_id, d.task_id from task_dependencies d join reach r on d.tenant_id = ${tenantId} and d.task_id = r.id
    ) select id, via from reach limit ${MAX_WALK_EDGES + 1}`.execute(trx);
  if (rows.length > MAX_WALK_EDGES) throw AgentstoreError.conflict(`the dependency graph reachable from this task is larger than ${MAX_WALK_EDGES} edges; the dependency cannot be checked`);
  const cameFrom = new Map<string, string>();
  for (const row of rows) if (row.via !== null && !cameFrom.has(row.id)) cameFrom.set(row.id, row.via);
  if (!cameFrom.has(taskId)) return undefined;
  // Back from taskId to dependsOnId along the links; the graph has no cycle yet, so this ends.
  const path = [taskId];
  let at = taskId;
  while (at !== dependsOnId) {
    at = cameFrom.get(at) as string;
    path.unshift(at);
  }
  return [taskId, ...path];
}

export function cycleError(cycle: readonly string[]): AgentstoreError {
  return new AgentstoreError('agentstore.conflict', `the dependency would make a cycle: ${cycle.join(' -> ')}`, {
    errors: [{ field: '/taskId', message: 'depends, directly or through others, on this task' }],
    cycle,
  });
}

/** The ids among `ids` that are no task of the tenant. */
export async function missingTasks(trx: Executor, tenantId: string, ids: readonly string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const found = await trx.selectFrom('tasks').select('id').where('tenant_id', '=', tenantId).where('id', 'in', ids).execute();
  const have = new Set(found.map((r) => r.id));
  return ids.filter((id) => !have.has(id));
}

/** The dependencies of each task of `ids`, in the order they were added. */
export async function dependenciesOf(trx: Executor, tenantId: string, ids: readonly string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    const rows = await trx
      .selectFrom('task_dependencies')
      .select(['task_id', 'depends_on_id'])
      .where('tenant_id', '=', tenantId)
      .where('task_id', 'in', chunk)
      .orderBy('task_id')
      .orderBy('created_at')
      .orderBy('depends_on_id')
      .execute();
    for (const row of rows) {
      const list = out.get(row.task_id);
      if (list) list.push(row.depends_on_id);
      else out.set(row.task_id, [row.depends_on_id]);
    }
  }
  return out;
}
