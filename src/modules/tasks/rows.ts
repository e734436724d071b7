import { AgentstoreError } from '../../core/errors.js';
import type { Executor } from '../../db/database.js';
import { fromJsonColumn, toIso, toNullableIso, type DialectName } from '../../db/dialect.js';
import type { TasksTable } from '../../db/schema.js';
import type { JsonObject } from '../projects/fields.js';
import type { TaskStatus } from './fields.js';

export interface Task {
  readonly id: string;
  readonly branchId: string;
  /** null for a top-level task of its branch. */
  readonly parentId: string | null;
  /** 0 for a top-level task, its parent's + 1 below. */
  readonly depth: number;
  /** Its place among its siblings: siblings sort by `rank` (byte order). */
  readonly rank: string;
  readonly title: string;
  readonly description: string | null;
  readonly status: TaskStatus;
  readonly priority: number;
  /** `agent:<id>` or `user:<id>`, or null. */
  readonly assignee: string | null;
  readonly labels: string[];
  readonly dueAt: string | null;
  readonly metadata: JsonObject;
  /** Ids of the tasks this one depends on. */
  readonly dependsOn: string[];
  readonly version: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export const TASK_COLUMNS = [
  'id',
  'branch_id',
  'parent_id',
  'depth',
  'rank',
  'title',
  'description',
  'status',
  'priority',
  'assignee',
  'labels',
  'due_at',
  'metadata',
  'version',
  'created_at',
  'updated_at',
] as const;

export type TaskRow = Pick<TasksTable, (typeof TASK_COLUMNS)[number]>;

export function toTask(row: TaskRow, dependsOn: readonly string[]): Task {
  return {
    id: row.id,
    branchId: row.branch_id,
    parentId: row.parent_id,
    depth: Number(row.depth),
    rank: row.rank,
    title: row.title,
    description: row.description,
    status: row.status as TaskStatus,
    priority: Number(row.priority),
    assignee: row.assignee,
    labels: fromJsonColumn<string[]>(row.labels),
    dueAt: toNullableIso(row.due_at),
    metadata: fromJsonColumn<JsonObject>(row.metadata),
    dependsOn: [...dependsOn],
    version: Number(row.version),
    createdAt: toIso(row.created_at),
    updatedAt: toIso(row.updated_at),
  };
}

/** A task's row (locked on PostgreSQL with `forUpdate`), or a 404. */
export async function loadTask(trx: Executor, dialect: DialectName, tenantId: string, id: string, forUpdate = false): Promise<TaskRow> {
  let q = trx.selectFrom('tasks').select(TASK_COLUMNS).where('tenant_id', '=', tenantId).where('id', '=', id);
  if (forUpdate && dialect === 'postgres') q = q.forUpdate();
  const row = await q.executeTakeFirst();
  if (!row) throw AgentstoreError.notFound('task');
  return row;
}

