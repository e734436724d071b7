import type { Executor } from '../../db/database.js';
import { TASK_COLUMNS, type TaskRow } from './rows.js';

/** The page query of a branch's task listing (its plan is test/modules/tasks-plan.test.ts). */
export function listQuery(
  trx: Executor,
  tenantId: string,
  branchId: string,
  f: { status: string | undefined; assignee: string | undefined; label: string | undefined; after: string | undefined },
  limit: number,
): { execute(): Promise<TaskRow[]>; compile(): { sql: string; parameters: readonly unknown[] } } {
  // With a label, the walk is the label index's (tenant, branch, label, task_id) in id order;
  // otherwise the status, assignee or plain branch index, each ending in id.
  if (f.label !== undefined) {
    let q = trx
      .selectFrom('task_labels as l')
      .innerJoin('tasks as t', (j) => j.onRef('t.tenant_id', '=', 'l.tenant_id').onRef('t.id', '=', 'l.task_id'))
      .select(TASK_COLUMNS.map((c) => `t.${c}` as const))
      .where('l.tenant_id', '=', tenantId)
      .where('l.branch_id', '=', branchId)
      .where('l.label', '=', f.label)
      .where('t.tenant_id', '=', tenantId);
    if (f.status !== undefined) q = q.where('t.status', '=', f.status);
    if (f.assignee !== undefined) q = q.where('t.assignee', '=', f.assignee);
    if (f.after !== undefined) q = q.where('l.task_id', '>', f.after);
    return q.orderBy('l.task_id').limit(limit);
  }
  let q = trx.selectFrom('tasks').select(TASK_COLUMNS).where('tenant_id', '=', tenantId).where('branch_id', '=', branchId);
  if (f.status !== undefined) q = q.where('status', '=', f.status);
  if (f.assignee !== undefined) q = q.where('assignee', '=', f.assignee);
  if (f.after !== undefined) q = q.where('id', '>', f.after);
  return q.orderBy('id').limit(limit);
}
