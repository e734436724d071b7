import { sql } from 'kysely';
import { requireRole, type TenantContext } from '../../core/context.js';
import { decodeCursor, encodeCursor, pageSize, type Page } from '../../core/cursor.js';
import { AgentstoreError } from '../../core/errors.js';
import { uuidv7 } from '../../core/ids.js';
import type { Executor } from '../../db/database.js';
import { toJsonColumn, type DialectName } from '../../db/dialect.js';
import { createOnce, idempotentRequest } from '../../db/idempotency.js';
import type { UnitOfWork, UnitOfWorkRunner } from '../../db/unit-of-work.js';
import { LIMITS, checkVersion, onlyFields, validateDescription, validateId, validateJsonObject, validateName, type JsonObject, type Precondition } from '../projects/fields.js';
import { MAX_CASCADE_TASKS } from '../projects/projects-service.js';
import { cycleError, cycleThrough, dependenciesOf, lockTenantDependencies, missingTasks } from './dependencies.js';
import { TASK_LIMITS, checkTransition, validateAssignee, validateDue, validateLabel, validateLabels, validatePriority, validateStatus, type TaskStatus } from './fields.js';
import { moveIn, type MoveInput } from './move.js';
import { placeAmong, retryingRankCollisions } from './order.js';
import { TASK_COLUMNS, loadTask, toTask, type Task, type TaskRow } from './rows.js';
import { listQuery } from './list-query.js';
import { subtreeExtent, subtreeRows } from './tree.js';

export interface TaskInput {
  readonly title: string;
  readonly description?: string | null;
  /** Default `todo`; a task may be created in any status (an import). */
  readonly status?: TaskStatus;
  /** 0-100, default 0. */
  readonly priority?: number;
  readonly assignee?: string | null;
  readonly labels?: readonly string[];
  readonly dueAt?: string | null;
  readonly metadata?: JsonObject;
  /** A task of the same branch; the new task goes last among its children. */
  readonly parentId?: string | null;
  /** Tasks of the tenant (any branch) this one depends on. */
  readonly dependsOn?: readonly string[];
}

/** Fields to change; `null` clears description, assignee, dueAt. A status change must be allowed (TRANSITIONS). */
export interface TaskPatch {
  readonly title?: string;
  readonly description?: string | null;
  readonly status?: TaskStatus;
  readonly priority?: number;
  readonly assignee?: string | null;
  readonly labels?: readonly string[];
  readonly dueAt?: string | null;
  readonly metadata?: JsonObject;
}

export interface TaskFilter {
  readonly status?: TaskStatus;
  readonly assignee?: string;
  readonly label?: string;
  readonly limit?: number;
  readonly cursor?: string;
}

export interface Subtasks {
  /** Depth-first, siblings in order; each task's `depth` says how far down it is. */
  readonly items: Task[];
  /** More than TASK_LIMITS.subtree tasks: the upper levels are complete, deeper ones cut. */
  readonly truncated: boolean;
}

export interface TasksService {
  create(ctx: TenantContext, branchId: string, input: TaskInput, options?: { idempotencyKey?: string }): Promise<{ task: Task; replayed: boolean }>;
  get(ctx: TenantContext, id: string): Promise<Task>;
  /** A branch's tasks (every level), oldest first, filtered; 404 for an unknown branch. */
  list(ctx: TenantContext, branchId: string, filter?: TaskFilter): Promise<Page<Task>>;
  update(ctx: TenantContext, id: string, patch: TaskPatch, options?: { ifMatch?: Precondition }): Promise<Task>;
  /** Refused (409) while the task has subtasks, unless `cascade`. */
  delete(ctx: TenantContext, id: string, options?: { cascade?: boolean; ifMatch?: Precondition }): Promise<{ tasks: number }>;
  /** Moves the task (with its subtree) under another parent or branch, or among its siblings. */
  move(ctx: TenantContext, id: string, input: MoveInput, options?: { ifMatch?: Precondition }): Promise<Task>;
  subtasks(ctx: TenantContext, id: string): Promise<Subtasks>;
  /** `id` depends on `dependsOnId` from now on; 409 naming the cycle it would close. Adding one that exists changes nothing. */
  addDependency(ctx: TenantContext, id: string, dependsOnId: string): Promise<Task>;
  removeDependency(ctx: TenantContext, id: string, dependsOnId: string): Promise<Task>;
}

const TASK_FIELDS = ['title', 'description', 'status', 'priority', 'assignee', 'labels', 'dueAt', 'metadata'];

interface CheckedFields {
  title?: string;
  description?: string | null;
  status?: TaskStatus;
  priority?: number;
  assignee?: string | null;
  labels?: string[];
  dueAt?: string | null;
  metadata?: JsonObject;
}

function checkFields(input: TaskPatch): CheckedFields {
  const out: CheckedFields = {};
  if (input.title !== undefined) out.title = validateName(input.title, '/title', TASK_LIMITS.title);
  if (input.description !== undefined) out.description = validateDescription(input.description, '/description');
  if (input.status !== undefined) out.status = validateStatus(input.status);
  if (input.priority !== undefined) out.priority = validatePriority(input.priority);
  if (input.assignee !== undefined) out.assignee = input.assignee === null ? null : validateAssignee(input.assignee);
  if (input.labels !== undefined) out.labels = validateLabels(input.labels);
  if (input.dueAt !== undefined) out.dueAt = validateDue(input.dueAt);
  if (input.metadata !== undefined) out.metadata = validateJsonObject(input.metadata, '/metadata', LIMITS.metadataBytes);
  return out;
}

async function withDependencies(trx: Executor, tenantId: string, rows: readonly TaskRow[]): Promise<Task[]> {
  const deps = await dependenciesOf(trx, tenantId, rows.map((r) => r.id));
  return rows.map((row) => toTask(row, deps.get(row.id) ?? []));
}

async function taskIn(w: UnitOfWork, dialect: DialectName, id: string): Promise<Task> {
  const [task] = await withDependencies(w.trx, w.ctx.tenantId, [await loadTask(w.trx, dialect, w.ctx.tenantId, id)]);
  return task as Task;
}

async function writeLabels(trx: Executor, tenantId: string, taskId: string, branchId: string, labels: readonly string[]): Promise<void> {
  await trx.deleteFrom('task_labels').where('tenant_id', '=', tenantId).where('task_id', '=', taskId).execute();
  if (labels.length > 0) await trx.insertInto('task_labels').values(labels.map((label) => ({ tenant_id: tenantId, task_id: taskId, label, branch_id: branchId }))).execute();
}

export function createTasksService(deps: { uow: UnitOfWorkRunner; dialect: DialectName }): TasksService {
  const { uow, dialect } = deps;

  return {
    async create(ctx, branchId, input, options = {}) {
      requireRole(ctx, 'member');
      validateId(branchId);
      if (typeof input !== 'object' || input === null) throw AgentstoreError.invalidField('body', 'must be an object');
      onlyFields(input, [...TASK_FIELDS, 'parentId', 'dependsOn']);
      if (input.title === undefined) throw AgentstoreError.invalidField('/title', 'is required');
      const fields = checkFields(input);
      const parentId = input.parentId === undefined || input.parentId === null ? null : validateId(input.parentId, '/parentId');
      if (input.dependsOn !== undefined && (!Array.isArray(input.dependsOn) || input.dependsOn.length > TASK_LIMITS.dependsOn)) {
        throw AgentstoreError.invalidField('/dependsOn', `must be an array of at most ${TASK_LIMITS.dependsOn} task ids`);
      }
      const dependsOn = [...new Set((input.dependsOn ?? []).map((d, i) => validateId(d, `/dependsOn/${i}`)))];
      const keyed = idempotentRequest(options.idempotencyKey, `tasks.create:${branchId}`, JSON.stringify({ ...fields, parentId, dependsOn }));
      const { value, replayed } = await retryingRankCollisions(() =>
        createOnce(uow, ctx, keyed, async (w) => {
          const branch = await w.trx.selectFrom('branches').select('id').where('tenant_id', '=', ctx.tenantId).where('id', '=', branchId).executeTakeFirst();
          if (!branch) throw AgentstoreError.notFound('branch');
          let depth = 0;
          if (parentId !== null) {
            const parent = await w.trx.selectFrom('tasks').select(['branch_id', 'depth']).where('tenant_id', '=', ctx.tenantId).where('id', '=', parentId).executeTakeFirst();
            if (!parent) throw AgentstoreError.invalidField('/parentId', 'is no task of this tenant');
            if (parent.branch_id !== branchId) throw AgentstoreError.invalidField('/parentId', 'is a task of another branch');
            depth = Number(parent.depth) + 1;
            if (depth > TASK_LIMITS.maxDepth) throw AgentstoreError.invalidField('/parentId', `subtasks nest at most ${TASK_LIMITS.maxDepth} levels`);
          }
          const missing = await missingTasks(w.trx, ctx.tenantId, dependsOn);
          if (missing.length > 0) throw AgentstoreError.invalidField(`/dependsOn/${dependsOn.indexOf(missing[0] as string)}`, 'is no task of this tenant');
          const id = uuidv7();
          const rank = await placeAmong(w.trx, dialect, { tenantId: ctx.tenantId, branchId, parentId }, null, { end: true }, undefined);
          const labels = fields.labels ?? [];
          const row = {
            tenant_id: ctx.tenantId,
            id,
            branch_id: branchId,
            parent_id: parentId,
            depth,
            rank,
            title: fields.title as string,
            description: fields.description ?? null,
            status: fields.status ?? 'todo',
            priority: fields.priority ?? 0,
            assignee: fields.assignee ?? null,
            labels: toJsonColumn(labels),
            due_at: fields.dueAt ?? null,
            metadata: toJsonColumn(fields.metadata ?? {}),
            version: 1,
            created_at: w.now,
            updated_at: w.now,
          };
          await w.trx.insertInto('tasks').values(row).execute();
          await writeLabels(w.trx, ctx.tenantId, id, branchId, labels);
          // A new task has no dependents yet, so no edge of it can close a cycle.
          if (dependsOn.length > 0) await w.trx.insertInto('task_dependencies').values(dependsOn.map((d) => ({ tenant_id: ctx.tenantId, task_id: id, depends_on_id: d, created_at: w.now }))).execute();
          const task = toTask(row, dependsOn);
          await w.record({ action: 'create', resourceType: 'task', resourceId: id, version: 1, data: task, details: { branchId } });
          return task;
        }),
      );
      return { task: value, replayed };
    },

    async get(ctx, id) {
      requireRole(ctx, 'viewer');
      validateId(id);
      return uow.read(ctx, async (trx) => {
        const [task] = await withDependencies(trx, ctx.tenantId, [await loadTask(trx, dialect, ctx.tenantId, id)]);
        return task as Task;
      });
    },

    async list(ctx, branchId, filter = {}) {
      requireRole(ctx, 'viewer');
      validateId(branchId);
      const limit = pageSize(filter.limit);
      const status = filter.status === undefined ? undefined : validateStatus(filter.status, 'status');
      const assignee = filter.assignee === undefined ? undefined : validateAssignee(filter.assignee, 'assignee');
      const label = filter.label === undefined ? undefined : validateLabel(filter.label, 'label');
      const scope = `tasks:${branchId}:${status ?? ''}:${assignee ?? ''}:${label ?? ''}`;
      const after = filter.cursor === undefined ? undefined : (decodeCursor(scope, filter.cursor, ['text'])[0] as string);
      const { found, items } = await uow.read(ctx, async (trx) => {
        const branch = await trx.selectFrom('branches').select('id').where('tenant_id', '=', ctx.tenantId).where('id', '=', branchId).executeTakeFirst();
        if (!branch) return { found: false, items: [] };
        const rows = await listQuery(trx, ctx.tenantId, branchId, { status, assignee, label, after }, limit + 1).execute();
        return { found: true, items: await withDependencies(trx, ctx.tenantId, rows) };
      });
      if (!found) throw AgentstoreError.notFound('branch');
      const page = items.slice(0, limit);
      const last = page.at(-1);
      return { items: page, nextCursor: items.length > limit && last ? encodeCursor(scope, [last.id]) : null };
    },

    async update(ctx, id, patch, options = {}) {
      requireRole(ctx, 'member');
      validateId(id);
      if (typeof patch !== 'object' || patch === null) throw AgentstoreError.invalidField('body', 'must be an object');
      onlyFields(patch, TASK_FIELDS);
      const fields = checkFields(patch);
      if (Object.keys(fields).length === 0) throw AgentstoreError.invalidField('body', `names none of ${TASK_FIELDS.join(', ')}`);
      return uow.write(ctx, async (w) => {
        const current = await loadTask(w.trx, dialect, ctx.tenantId, id, true);
        checkVersion(Number(current.version), options.ifMatch, 'task');
        if (fields.status !== undefined) checkTransition(current.status as TaskStatus, fields.status);
        const version = Number(current.version) + 1;
        const set = {
          ...(fields.title !== undefined ? { title: fields.title } : {}),
          ...(fields.description !== undefined ? { description: fields.description } : {}),
          ...(fields.status !== undefined ? { status: fields.status } : {}),
          ...(fields.priority !== undefined ? { priority: fields.priority } : {}),
          ...(fields.assignee !== undefined ? { assignee: fields.assignee } : {}),
          ...(fields.labels !== undefined ? { labels: toJsonColumn(fields.labels) } : {}),
          ...(fields.dueAt !== undefined ? { due_at: fields.dueAt } : {}),
          ...(fields.metadata !== undefined ? { metadata: toJsonColumn(fields.metadata) } : {}),
          version,
          updated_at: w.now,
        };
        await w.trx.updateTable('tasks').set(set).where('tenant_id', '=', ctx.tenantId).where('id', '=', id).execute();
        if (fields.labels !== undefined) await writeLabels(w.trx, ctx.tenantId, id, current.branch_id, fields.labels);
        const task = await taskIn(w, dialect, id);
        await w.record({
          action: 'update',
          resourceType: 'task',
          resourceId: id,
          version,
          data: task,
          details: { fields: Object.keys(fields), ...(fields.status !== undefined && fields.status !== current.status ? { from: current.status, to: fields.status } : {}) },
        });
        return task;
      });
    },

    async delete(ctx, id, options = {}) {
      requireRole(ctx, 'member');
      validateId(id);
      return uow.write(
        ctx,
        async (w) => {
          const current = await loadTask(w.trx, dialect, ctx.tenantId, id, true);
          checkVersion(Number(current.version), options.ifMatch, 'task');
          const { count } = await subtreeExtent(w.trx, ctx.tenantId, id);
          const below = count - 1;
          if (below > 0 && !options.cascade) throw AgentstoreError.conflict(`the task has ${below} subtask${below === 1 ? '' : 's'}; delete with cascade to delete them too`);
          if (count > MAX_CASCADE_TASKS) throw AgentstoreError.conflict(`the task has ${below} subtasks, more than a cascade deletes at once (${MAX_CASCADE_TASKS})`);
          await w.trx.deleteFrom('tasks').where('tenant_id', '=', ctx.tenantId).where('id', '=', id).execute();
          await w.record({ action: 'delete', resourceType: 'task', resourceId: id, data: null, details: { branchId: current.branch_id, subtasks: below } });
          return { tasks: count };
        },
        { offLoop: options.cascade === true },
      );
    },

    async move(ctx, id, input, options = {}) {
      requireRole(ctx, 'member');
      validateId(id);
      return retryingRankCollisions(() =>
        uow.write(ctx, async (w) => {
          await moveIn(w, dialect, id, input, options.ifMatch);
          return taskIn(w, dialect, id);
        }),
      );
    },

    async subtasks(ctx, id) {
      requireRole(ctx, 'viewer');
      validateId(id);
      return uow.read(ctx, async (trx) => {
        await loadTask(trx, dialect, ctx.tenantId, id);
        const rows = await subtreeRows(trx, dialect, ctx.tenantId, id, TASK_LIMITS.subtree + 1);
        const truncated = rows.length > TASK_LIMITS.subtree;
        // Cut by the walk's order (upper levels first), then kept in tree order.
        const kept = truncated ? keepUpperLevels(rows, TASK_LIMITS.subtree) : rows;
        return { items: await withDependencies(trx, ctx.tenantId, kept), truncated };
      });
    },

    async addDependency(ctx, id, dependsOnId) {
      requireRole(ctx, 'member');
      validateId(id);
      validateId(dependsOnId, '/taskId');
      return uow.write(ctx, async (w) => {
        await lockTenantDependencies(w.trx, dialect, ctx.tenantId);
        await loadTask(w.trx, dialect, ctx.tenantId, id);
        if ((await missingTasks(w.trx, ctx.tenantId, [dependsOnId])).length > 0) throw AgentstoreError.invalidField('/taskId', 'is no task of this tenant');
        const existing = await w.trx.selectFrom('task_dependencies').select('task_id').where('tenant_id', '=', ctx.tenantId).where('task_id', '=', id).execute();
        const cycle = await cycleThrough(w.trx, ctx.tenantId, id, dependsOnId);
        if (cycle) throw cycleError(cycle);
        const { rows } = await sql<{ n: number | string }>`select count(*) as n from task_dependencies where tenant_id = ${ctx.tenantId} and task_id = ${id} and depends_on_id = ${dependsOnId}`.execute(w.trx);
        const added = Number(rows[0]?.n ?? 0) === 0;
        if (added) {
          if (existing.length >= TASK_LIMITS.dependsOn) throw AgentstoreError.conflict(`a task depends on at most ${TASK_LIMITS.dependsOn} tasks`);
          await w.trx.insertInto('task_dependencies').values({ tenant_id: ctx.tenantId, task_id: id, depends_on_id: dependsOnId, created_at: w.now }).execute();
        }
        const task = await taskIn(w, dialect, id);
        await w.record({ action: 'depend', resourceType: 'task', resourceId: id, version: task.version, data: task, details: { dependsOn: dependsOnId, added } });
        return task;
      });
    },

    async removeDependency(ctx, id, dependsOnId) {
      requireRole(ctx, 'member');
      validateId(id);
      validateId(dependsOnId, 'dependsOnId');
      return uow.write(ctx, async (w) => {
        await loadTask(w.trx, dialect, ctx.tenantId, id);
        const removed = await w.trx.deleteFrom('task_dependencies').where('tenant_id', '=', ctx.tenantId).where('task_id', '=', id).where('depends_on_id', '=', dependsOnId).executeTakeFirst();
        if (Number(removed.numDeletedRows) === 0) throw AgentstoreError.notFound('dependency');
        const task = await taskIn(w, dialect, id);
        await w.record({ action: 'undepend', resourceType: 'task', resourceId: id, version: task.version, data: task, details: { dependsOn: dependsOnId } });
        return task;
      });
    },
  };
}

/** The first `n` rows by level (shallowest first), in tree order: a truncated subtree's upper part. */
function keepUpperLevels(rows: readonly TaskRow[], n: number): TaskRow[] {
  const byDepth = [...rows].sort((a, b) => Number(a.depth) - Number(b.depth));
  const keep = new Set(byDepth.slice(0, n).map((r) => r.id));
  return rows.filter((r) => keep.has(r.id));
}
