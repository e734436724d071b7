import { sql } from 'kysely';
import { requireRole, type TenantContext } from '../../core/context.js';
import { afterKey, pageSize, toPage, type Page } from '../../core/cursor.js';
import { AgentstoreError } from '../../core/errors.js';
import { uuidv7 } from '../../core/ids.js';
import type { Executor } from '../../db/database.js';
import { toJsonColumn, type DialectName } from '../../db/dialect.js';
import { isUniqueViolation } from '../../db/errors.js';
import { createOnce, idempotentRequest } from '../../db/idempotency.js';
import type { UnitOfWorkRunner } from '../../db/unit-of-work.js';
import { checkNamedFields, checkVersion, validateId, type JsonObject, type Precondition } from './fields.js';
import { MAX_CASCADE_TASKS, columnsOf, tooBigToCascade, type DeleteOptions } from './projects-service.js';
import { BRANCH_COLUMNS, toBranch, type Branch } from './rows.js';

/** Branch names are unique in their project, as git's are. */
export interface BranchInput {
  readonly name: string;
  readonly description?: string | null;
  readonly metadata?: JsonObject;
}

export type BranchPatch = Partial<BranchInput>;

export interface BranchesService {
  create(ctx: TenantContext, projectId: string, input: BranchInput, options?: { idempotencyKey?: string }): Promise<{ branch: Branch; replayed: boolean }>;
  get(ctx: TenantContext, id: string): Promise<Branch>;
  /** A project's branches, oldest first; 404 for an unknown project. */
  list(ctx: TenantContext, projectId: string, options?: { limit?: number; cursor?: string }): Promise<Page<Branch>>;
  update(ctx: TenantContext, id: string, patch: BranchPatch, options?: { ifMatch?: Precondition }): Promise<Branch>;
  /** Refused (409) while the branch has tasks, unless `cascade`. */
  delete(ctx: TenantContext, id: string, options?: DeleteOptions): Promise<{ tasks: number }>;
}

const BRANCH_NAME_MAX = 200;

const nameTaken = (name: string) =>
  new AgentstoreError('agentstore.conflict', `a branch named "${name}" exists in this project`, { errors: [{ field: '/name', message: 'is taken in this project' }] });

/** The branch, locked against new tasks (PostgreSQL: their foreign key's key-share lock), or 404. */
export async function lockBranch(trx: Executor, dialect: DialectName, tenantId: string, id: string) {
  let q = trx.selectFrom('branches').select(BRANCH_COLUMNS).where('tenant_id', '=', tenantId).where('id', '=', id);
  if (dialect === 'postgres') q = q.forUpdate();
  const row = await q.executeTakeFirst();
  if (!row) throw AgentstoreError.notFound('branch');
  return row;
}

export function createBranchesService(deps: { uow: UnitOfWorkRunner; dialect: DialectName }): BranchesService {
  const { uow, dialect } = deps;
  return {
    async create(ctx, projectId, input, options = {}) {
      requireRole(ctx, 'member');
      validateId(projectId);
      const checked = checkNamedFields(input, 'create', BRANCH_NAME_MAX);
      const name = checked.name as string;
      const description = checked.description ?? null;
      const metadata = checked.metadata ?? {};
      const keyed = idempotentRequest(options.idempotencyKey, `branches.create:${projectId}`, JSON.stringify({ name, description, metadata }));
      try {
        const { value, replayed } = await createOnce(uow, ctx, keyed, async (w) => {
          const project = await w.trx.selectFrom('projects').select('id').where('tenant_id', '=', ctx.tenantId).where('id', '=', projectId).executeTakeFirst();
          if (!project) throw AgentstoreError.notFound('project');
          const row = { tenant_id: ctx.tenantId, id: uuidv7(), project_id: projectId, name, description, metadata: toJsonColumn(metadata), version: 1, created_at: w.now, updated_at: w.now };
          await w.trx.insertInto('branches').values(row).execute();
          const branch = toBranch(row);
          await w.record({ action: 'create', resourceType: 'branch', resourceId: branch.id, version: 1, data: branch, details: { projectId } });
          return branch;
        });
        return { branch: value, replayed };
      } catch (error) {
        if (isUniqueViolation(error)) throw nameTaken(name);
        throw error;
      }
    },

    async get(ctx, id) {
      requireRole(ctx, 'viewer');
      validateId(id);
      const row = await uow.read(ctx, (trx) => trx.selectFrom('branches').select(BRANCH_COLUMNS).where('tenant_id', '=', ctx.tenantId).where('id', '=', id).executeTakeFirst());
      if (!row) throw AgentstoreError.notFound('branch');
      return toBranch(row);
    },

    async list(ctx, projectId, options = {}) {
      requireRole(ctx, 'viewer');
      validateId(projectId);
      const limit = pageSize(options.limit);
      const after = afterKey(`branches:${projectId}`, options.cursor);
      const { project, rows } = await uow.read(ctx, async (trx) => {
        const project = await trx.selectFrom('projects').select('id').where('tenant_id', '=', ctx.tenantId).where('id', '=', projectId).executeTakeFirst();
        let q = trx.selectFrom('branches').select(BRANCH_COLUMNS).where('tenant_id', '=', ctx.tenantId).where('project_id', '=', projectId).orderBy('id').limit(limit + 1);
        if (after !== undefined) q = q.where('id', '>', after);
        return { project, rows: project ? await q.execute() : [] };
      });
      if (!project) throw AgentstoreError.notFound('project');
      return toPage(rows, limit, toBranch, (b) => [b.id], `branches:${projectId}`);
    },

    async update(ctx, id, patch, options = {}) {
      requireRole(ctx, 'member');
      validateId(id);
      const set = columnsOf(checkNamedFields(patch, 'patch', BRANCH_NAME_MAX));
      try {
        return await uow.write(ctx, async (w) => {
          const current = await lockBranch(w.trx, dialect, ctx.tenantId, id);
          checkVersion(Number(current.version), options.ifMatch, 'branch');
          const version = Number(current.version) + 1;
          await w.trx.updateTable('branches').set({ ...set, version, updated_at: w.now }).where('tenant_id', '=', ctx.tenantId).where('id', '=', id).execute();
          const branch = toBranch({ ...current, ...set, version, updated_at: w.now });
          await w.record({ action: 'update', resourceType: 'branch', resourceId: id, version, data: branch, details: { fields: Object.keys(set) } });
          return branch;
        });
      } catch (error) {
        if (isUniqueViolation(error) && set.name !== undefined) throw nameTaken(set.name);
        throw error;
      }
    },

    async delete(ctx, id, options = {}) {
      requireRole(ctx, 'admin');
      validateId(id);
      return uow.write(
        ctx,
        async (w) => {
          const current = await lockBranch(w.trx, dialect, ctx.tenantId, id);
          checkVersion(Number(current.version), options.ifMatch, 'branch');
          const { rows } = await sql<{ n: number | string }>`select count(*) as n from tasks where tenant_id = ${ctx.tenantId} and branch_id = ${id}`.execute(w.trx);
          const tasks = Number(rows[0]?.n ?? 0);
          if (tasks > 0 && !options.cascade) throw AgentstoreError.conflict(`the branch has ${tasks} task${tasks === 1 ? '' : 's'}; delete with cascade to delete them too`);
          if (tasks > MAX_CASCADE_TASKS) throw tooBigToCascade('branch', tasks);
          await w.trx.deleteFrom('branches').where('tenant_id', '=', ctx.tenantId).where('id', '=', id).execute();
          await w.record({ action: 'delete', resourceType: 'branch', resourceId: id, data: null, details: { projectId: current.project_id, tasks } });
          return { tasks };
        },
        { offLoop: options.cascade === true },
      );
    },
  };
}

