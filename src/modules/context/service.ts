import { sql } from 'kysely';
import { requireRole, type TenantContext } from '../../core/context.js';
import { AgentstoreError } from '../../core/errors.js';
import type { Executor } from '../../db/database.js';
import { fromNullableJsonColumn, toIso, toJsonColumn, type DialectName } from '../../db/dialect.js';
import type { Timestamp } from '../../db/schema.js';
import type { UnitOfWork, UnitOfWorkRunner } from '../../db/unit-of-work.js';
import { mergePatch } from '../collections/validation.js';
import { checkVersion, validateId, validateJsonObject, type JsonObject, type Precondition } from '../projects/fields.js';
import { resolveLevels, type ContextLevel } from './merge.js';

/** A context document's bound, as JSON (also after a merge patch). */
export const CONTEXT_MAX_BYTES = 256 * 1024;

export type ContextTarget = { readonly level: 'global' } | { readonly level: 'project' | 'branch' | 'task'; readonly id: string };
export type ResolveTarget = Extract<ContextTarget, { id: string }>;

export interface ContextDocument {
  readonly level: ContextLevel;
  /** The project, branch or task; null for the global document. */
  readonly id: string | null;
  readonly data: JsonObject;
  /** 1 when first written, +1 per write: the ETag. */
  readonly version: number;
  readonly updatedAt: string;
}

export interface ResolvedContext {
  readonly context: JsonObject;
  /** For each top-level key of `context`, the nearest level that set it. */
  readonly sources: Record<string, ContextLevel>;
}

export interface ContextService {
  /** 404 when the level's document was never written (or its project, branch or task does not exist). */
  get(ctx: TenantContext, target: ContextTarget): Promise<ContextDocument>;
  /** Replaces (or first writes) the document; `ifNoneMatch: '*'` writes only a first one. */
  put(ctx: TenantContext, target: ContextTarget, data: JsonObject, options?: { ifMatch?: Precondition; ifNoneMatch?: '*' }): Promise<{ document: ContextDocument; created: boolean }>;
  /** A JSON merge patch (RFC 7396) of the document, `{}` when there is none yet. */
  patch(ctx: TenantContext, target: ContextTarget, patch: JsonObject, options?: { ifMatch?: Precondition }): Promise<ContextDocument>;
  /**
   * The merge of global, project, branch and task down to `target` (nearest wins, nested
   * objects merge, arrays replace), read in one statement: one consistent snapshot, never a
   * cache, so a write at any level shows in the next resolve.
   */
  resolve(ctx: TenantContext, target: ResolveTarget): Promise<ResolvedContext>;
}

const TABLE = { project: 'projects', branch: 'branches', task: 'tasks' } as const;

interface Stored {
  data: JsonObject | null;
  version: number;
  updatedAt: Timestamp | null;
}

function checkTarget(target: ContextTarget): ContextTarget {
  if (typeof target !== 'object' || target === null) throw AgentstoreError.invalidField('level', 'must be global, project, branch or task');
  if (target.level === 'global') return target;
  if (!(target.level in TABLE)) throw AgentstoreError.invalidField('level', 'must be global, project, branch or task');
  validateId(target.id);
  return target;
}

const resourceId = (t: ContextTarget) => (t.level === 'global' ? 'global' : `${t.level}:${t.id}`);

async function load(trx: Executor, dialect: DialectName, tenantId: string, target: ContextTarget, forUpdate: boolean): Promise<Stored> {
  if (target.level === 'global') {
    let q = trx.selectFrom('context_global').select(['data', 'version', 'updated_at']).where('tenant_id', '=', tenantId);
    if (forUpdate && dialect === 'postgres') q = q.forUpdate();
    const row = await q.executeTakeFirst();
    return row ? { data: fromNullableJsonColumn<JsonObject>(row.data), version: Number(row.version), updatedAt: row.updated_at } : { data: null, version: 0, updatedAt: null };
  }
  // The three tables hold the same context columns.
  let q = trx.selectFrom(TABLE[target.level] as 'projects').select(['context', 'context_version', 'context_updated_at']).where('tenant_id', '=', tenantId).where('id', '=', target.id);
  if (forUpdate && dialect === 'postgres') q = q.forUpdate();
  const row = await q.executeTakeFirst();
  if (!row) throw AgentstoreError.notFound(target.level);
  return { data: fromNullableJsonColumn<JsonObject>(row.context), version: Number(row.context_version), updatedAt: row.context_updated_at };
}

async function store(w: UnitOfWork, target: ContextTarget, data: JsonObject, before: Stored): Promise<ContextDocument> {
  const tenantId = w.ctx.tenantId;
  const version = before.version + 1;
  const json = toJsonColumn(data);
  if (target.level === 'global') {
    if (before.data === null) {
      // ON CONFLICT DO NOTHING: a concurrent first write that committed since this unit read
      // leaves no row to lock; the caller's unit is then run again and sees it.
      const inserted = await w.trx
        .insertInto('context_global')
        .values({ tenant_id: tenantId, data: json, version, created_at: w.now, updated_at: w.now })
        .onConflict((oc) => oc.column('tenant_id').doNothing())
        .executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 0) throw new FirstWriteRaced();
    }
    else await w.trx.updateTable('context_global').set({ data: json, version, updated_at: w.now }).where('tenant_id', '=', tenantId).execute();
  } else {
    await w.trx.updateTable(TABLE[target.level] as 'projects').set({ context: json, context_version: version, context_updated_at: w.now }).where('tenant_id', '=', tenantId).where('id', '=', target.id).execute();
  }
  const document: ContextDocument = { level: target.level, id: target.level === 'global' ? null : target.id, data, version, updatedAt: w.now };
  await w.record({ action: before.data === null ? 'create' : 'update', resourceType: 'context', resourceId: resourceId(target), version, data: document });
  return document;
}

/** Another unit wrote the first global document between this one's read and its insert. */
class FirstWriteRaced extends Error {}

/** Runs `unit` once more when it lost the first write of the global document: then it finds the row and locks it. */
async function againIfRaced<T>(unit: () => Promise<T>): Promise<T> {
  try {
    return await unit();
  } catch (error) {
    if (error instanceof FirstWriteRaced) return unit();
    throw error;
  }
}

const writeRole = (target: ContextTarget) => (target.level === 'global' ? 'admin' : 'member');

export function createContextService(deps: { uow: UnitOfWorkRunner; dialect: DialectName }): ContextService {
  const { uow, dialect } = deps;

  const resolveSql = (tenantId: string, target: ResolveTarget) => {
    // Each level's document by key, in one statement: one snapshot on both backends.
    const global = sql`left join context_global g on g.tenant_id = ${tenantId}`;
    switch (target.level) {
      case 'task':
        return sql<{ g: unknown; p: unknown; b: unknown; t: unknown }>`select g.data as g, p.context as p, b.context as b, t.context as t
          from tasks t join branches b on b.tenant_id = t.tenant_id and b.id = t.branch_id
          join projects p on p.tenant_id = b.tenant_id and p.id = b.project_id ${global}
          where t.tenant_id = ${tenantId} and t.id = ${target.id}`;
      case 'branch':
        return sql<{ g: unknown; p: unknown; b: unknown; t: unknown }>`select g.data as g, p.context as p, b.context as b, null as t
          from branches b join projects p on p.tenant_id = b.tenant_id and p.id = b.project_id ${global}
          where b.tenant_id = ${tenantId} and b.id = ${target.id}`;
      case 'project':
        return sql<{ g: unknown; p: unknown; b: unknown; t: unknown }>`select g.data as g, p.context as p, null as b, null as t
          from projects p ${global} where p.tenant_id = ${tenantId} and p.id = ${target.id}`;
    }
  };

  return {
    async get(ctx, target) {
      requireRole(ctx, 'viewer');
      const t = checkTarget(target);
      const stored = await uow.read(ctx, (trx) => load(trx, dialect, ctx.tenantId, t, false));
      if (stored.data === null || stored.updatedAt === null) throw AgentstoreError.notFound(`${t.level} context`);
      return { level: t.level, id: t.level === 'global' ? null : t.id, data: stored.data, version: stored.version, updatedAt: toIso(stored.updatedAt) };
    },

    async put(ctx, target, data, options = {}) {
      const t = checkTarget(target);
      requireRole(ctx, writeRole(t));
      const doc = validateJsonObject(data, 'body', CONTEXT_MAX_BYTES);
      return againIfRaced(() => uow.write(ctx, async (w) => {
        const before = await load(w.trx, dialect, ctx.tenantId, t, true);
        if (options.ifMatch !== undefined && before.data === null) throw AgentstoreError.preconditionFailed('the context document does not exist');
        if (options.ifNoneMatch === '*' && before.data !== null) throw AgentstoreError.preconditionFailed('the context document exists (If-None-Match: * writes only a first one)', before.version);
        checkVersion(before.version, options.ifMatch, 'context document');
        return { document: await store(w, t, doc, before), created: before.data === null };
      }));
    },

    async patch(ctx, target, patch, options = {}) {
      const t = checkTarget(target);
      requireRole(ctx, writeRole(t));
      validateJsonObject(patch, 'body', CONTEXT_MAX_BYTES);
      return againIfRaced(() => uow.write(ctx, async (w) => {
        const before = await load(w.trx, dialect, ctx.tenantId, t, true);
        if (options.ifMatch !== undefined && before.data === null) throw AgentstoreError.preconditionFailed('the context document does not exist');
        checkVersion(before.version, options.ifMatch, 'context document');
        const merged = validateJsonObject(mergePatch(before.data ?? {}, patch), 'body', CONTEXT_MAX_BYTES);
        return store(w, t, merged, before);
      }));
    },

    async resolve(ctx, target) {
      requireRole(ctx, 'viewer');
      const t = checkTarget(target);
      if (t.level === 'global') throw AgentstoreError.invalidField('level', 'resolves for a project, branch or task');
      const row = await uow.read(ctx, async (trx) => (await resolveSql(ctx.tenantId, t).execute(trx)).rows[0]);
      if (!row) throw AgentstoreError.notFound(t.level);
      return resolveLevels([
        { level: 'global', data: fromNullableJsonColumn<JsonObject>(row.g) },
        { level: 'project', data: fromNullableJsonColumn<JsonObject>(row.p) },
        { level: 'branch', data: fromNullableJsonColumn<JsonObject>(row.b) },
        { level: 'task', data: fromNullableJsonColumn<JsonObject>(row.t) },
      ]);
    },
  };
}
