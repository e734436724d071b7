import { sql } from 'kysely';
import { requireRole, type TenantContext } from '../../core/context.js';
import { afterKey, pageSize, toPage, type Page } from '../../core/cursor.js';
import { AgentstoreError } from '../../core/errors.js';
import { uuidv7 } from '../../core/ids.js';
import type { Executor } from '../../db/database.js';
import { toJsonColumn, type DialectName } from '../../db/dialect.js';
import { createOnce, idempotentRequest } from '../../db/idempotency.js';
import type { UnitOfWorkRunner } from '../../db/unit-of-work.js';
import { checkNamedFields, checkVersion, validateId, type JsonObject, type NamedFields, type Precondition } from './fields.js';
import { PROJECT_COLUMNS, toProject, type Project } from './rows.js';

export interface ProjectInput {
  readonly name: string;
  readonly description?: string | null;
  readonly metadata?: JsonObject;
}

/** The fields to change; `description: null` clears it, `metadata` replaces the whole object. */
export interface ProjectPatch {
  readonly name?: string;
  readonly description?: string | null;
  readonly metadata?: JsonObject;
}

export interface DeleteOptions {
  /** Delete everything below too (else a 409 when there is anything). */
  readonly cascade?: boolean;
  readonly ifMatch?: Precondition;
}

export interface ProjectsService {
  create(ctx: TenantContext, input: ProjectInput, options?: { idempotencyKey?: string }): Promise<{ project: Project; replayed: boolean }>;
  get(ctx: TenantContext, id: string): Promise<Project>;
  /** Oldest first (ids are time-ordered). */
  list(ctx: TenantContext, options?: { limit?: number; cursor?: string }): Promise<Page<Project>>;
  update(ctx: TenantContext, id: string, patch: ProjectPatch, options?: { ifMatch?: Precondition }): Promise<Project>;
  /** Refused (409) while the project has branches, unless `cascade`: then its branches, their tasks and every context document below go in the same unit. */
  delete(ctx: TenantContext, id: string, options?: DeleteOptions): Promise<{ branches: number; tasks: number }>;
}

/** Past this many tasks a cascade is refused: delete branches one by one. */
export const MAX_CASCADE_TASKS = 100_000;

export function tooBigToCascade(what: string, tasks: number): AgentstoreError {
  return AgentstoreError.conflict(`the ${what} has ${tasks} tasks, more than a cascade deletes at once (${MAX_CASCADE_TASKS}); delete its branches first`);
}

/** A patch's fields as the columns they set. */
export function columnsOf(fields: NamedFields): { name?: string; description?: string | null; metadata?: string } {
  return {
    ...(fields.name !== undefined ? { name: fields.name } : {}),
    ...(fields.description !== undefined ? { description: fields.description } : {}),
    ...(fields.metadata !== undefined ? { metadata: toJsonColumn(fields.metadata) } : {}),
  };
}

/** The row locked against concurrent children (PostgreSQL), or a 404. */
export async function lockProject(trx: Executor, dialect: DialectName, tenantId: string, id: string) {
  let q = trx.selectFrom('projects').select(PROJECT_COLUMNS).where('tenant_id', '=', tenantId).where('id', '=', id);
  // FOR UPDATE conflicts with the key-share lock a new branch's foreign key check takes: a
  // branch inserted concurrently is committed (and counted) before this goes on.
  if (dialect === 'postgres') q = q.forUpdate();
  const row = await q.executeTakeFirst();
  if (!row) throw AgentstoreError.notFound('project');
  return row;
}

export function createProjectsService(deps: { uow: UnitOfWorkRunner; dialect: DialectName }): ProjectsService {
  const { uow, dialect } = deps;
  return {
    async create(ctx, input, options = {}) {
      requireRole(ctx, 'member');
      const checked = checkNamedFields(input, 'create');
      const fields = { name: checked.name as string, description: checked.description ?? null, metadata: checked.metadata ?? {} };
      const keyed = idempotentRequest(options.idempotencyKey, 'projects.create', JSON.stringify(fields));
      const { value, replayed } = await createOnce(uow, ctx, keyed, async (w) => {
        const row = { tenant_id: ctx.tenantId, id: uuidv7(), name: fields.name, description: fields.description, metadata: toJsonColumn(fields.metadata), version: 1, created_at: w.now, updated_at: w.now };
        await w.trx.insertInto('projects').values(row).execute();
        const project = toProject(row);
        await w.record({ action: 'create', resourceType: 'project', resourceId: project.id, version: 1, data: project });
        return project;
      });
      return { project: value, replayed };
    },

    async get(ctx, id) {
      requireRole(ctx, 'viewer');
      validateId(id);
      const row = await uow.read(ctx, (trx) => trx.selectFrom('projects').select(PROJECT_COLUMNS).where('tenant_id', '=', ctx.tenantId).where('id', '=', id).executeTakeFirst());
      if (!row) throw AgentstoreError.notFound('project');
      return toProject(row);
    },

    async list(ctx, options = {}) {
      requireRole(ctx, 'viewer');
      const limit = pageSize(options.limit);
      const after = afterKey('projects', options.cursor);
      const rows = await uow.read(ctx, (trx) => {
        let q = trx.selectFrom('projects').select(PROJECT_COLUMNS).where('tenant_id', '=', ctx.tenantId).orderBy('id').limit(limit + 1);
        if (after !== undefined) q = q.where('id', '>', after);
        return q.execute();
      });
      return toPage(rows, limit, toProject, (p) => [p.id], 'projects');
    },

    async update(ctx, id, patch, options = {}) {
      requireRole(ctx, 'member');
      validateId(id);
      const set = columnsOf(checkNamedFields(patch, 'patch'));
      return uow.write(ctx, async (w) => {
        const current = await lockProject(w.trx, dialect, ctx.tenantId, id);
        checkVersion(Number(current.version), options.ifMatch, 'project');
        const version = Number(current.version) + 1;
        await w.trx.updateTable('projects').set({ ...set, version, updated_at: w.now }).where('tenant_id', '=', ctx.tenantId).where('id', '=', id).execute();
        const project = toProject({ ...current, ...set, version, updated_at: w.now });
        await w.record({ action: 'update', resourceType: 'project', resourceId: id, version, data: project, details: { fields: Object.keys(set) } });
        return project;
      });
    },

    async delete(ctx, id, options = {}) {
      requireRole(ctx, 'admin');
      validateId(id);
      return uow.write(
        ctx,
        async (w) => {
          const current = await lockProject(w.trx, dialect, ctx.tenantId, id);
          checkVersion(Number(current.version), options.ifMatch, 'project');
          const { rows } = await sql<{ branches: number | string; tasks: number | string }>`select
              (select count(*) from branches where tenant_id = ${ctx.tenantId} and project_id = ${id}) as branches,
              (select count(*) from tasks t join branches b on b.tenant_id = t.tenant_id and b.id = t.branch_id
                where b.tenant_id = ${ctx.tenantId} and b.project_id = ${id} and t.tenant_id = ${ctx.tenantId}) as tasks`.execute(w.trx);
          const branches = Number(rows[0]?.branches ?? 0);
          const tasks = Number(rows[0]?.tasks ?? 0);
          if (branches > 0 && !options.cascade) throw AgentstoreError.conflict(`the project has ${branches} branch${branches === 1 ? '' : 'es'}; delete with cascade to delete them too`);
          if (tasks > MAX_CASCADE_TASKS) throw tooBigToCascade('project', tasks);
          // The foreign keys cascade to branches, tasks, labels and dependencies; the context
          // documents live in those rows.
          await w.trx.deleteFrom('projects').where('tenant_id', '=', ctx.tenantId).where('id', '=', id).execute();
          await w.record({ action: 'delete', resourceType: 'project', resourceId: id, data: null, details: { branches, tasks } });
          return { branches, tasks };
        },
        // A cascade of any size: on SQLite it and its COMMIT run off the event loop.
        { offLoop: options.cascade === true },
      );
    },
  };
}
