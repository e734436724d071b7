import { AgentstoreError } from '../../core/errors.js';
import { requireRole, type TenantContext } from '../../core/context.js';
import { canonicalJson } from '../../core/json.js';
import { decodeCursor, encodeCursor, pageSize, type Page } from '../../core/cursor.js';
import { uuidv7 } from '../../core/ids.js';
import { PAGE_DATA_BYTES } from '../../core/page-budget.js';
import { assertText } from '../../core/text.js';
import type { Database, Executor, PointReadSql } from '../../db/database.js';
import { fromJsonColumn, pgIsoText, toIso, toJsonColumn } from '../../db/dialect.js';
import { isUniqueViolation } from '../../db/errors.js';
import { idempotentRequest, rememberIdempotent, replayIdempotent } from '../../db/idempotency.js';
import type { AgentsTable, AgentVersionsTable } from '../../db/schema.js';
import type { UnitOfWork, UnitOfWorkRunner } from '../../db/unit-of-work.js';
import { mergePatch } from '../collections/validation.js';
import { agentListQuery, cursorTypesOf, listShape } from './list-query.js';
import { createAgentSecrets, type AgentSecrets } from './secrets.js';
import { rotateSecrets, type RotationOptions } from './rotation.js';
import type { EncryptionKeys } from '../../core/secret-box.js';
import type { Agent, AgentFields, AgentInput, AgentPatch, AgentVersion, AgentVersionAction, AgentVersionSummary, ListAgentsOptions, Precondition, RotationReport } from './types.js';
import { AGENT_FIELDS, checkPatch, normalizeAgent, validateAgentId, validateStatus, validateTag } from './validation.js';

export interface AgentsService extends AgentSecrets {
  /** Creates an agent (version 1). An `idempotencyKey` makes a retry return the first result. */
  create(ctx: TenantContext, input: AgentInput, options?: { idempotencyKey?: string }): Promise<{ agent: Agent; replayed: boolean }>;
  get(ctx: TenantContext, id: string): Promise<Agent>;
  /** `get` as JSON text built around the stored document without parsing it (what HTTP sends). */
  getJson(ctx: TenantContext, id: string): Promise<{ readonly version: number; readonly json: string }>;
  list(ctx: TenantContext, options?: ListAgentsOptions): Promise<Page<Agent>>;
  /** A JSON merge patch of the fields; writes the next version. */
  patch(ctx: TenantContext, id: string, patch: AgentPatch, options?: { ifMatch?: Precondition }): Promise<Agent>;
  /** Deletes the agent with its versions, tags and secrets, in one unit of work. */
  delete(ctx: TenantContext, id: string, options?: { ifMatch?: Precondition }): Promise<void>;
  /** The agent's history, newest first, without the snapshots. */
  listVersions(ctx: TenantContext, id: string, options?: { limit?: number; cursor?: string }): Promise<Page<AgentVersionSummary>>;
  getVersion(ctx: TenantContext, id: string, version: number): Promise<AgentVersion>;
  /** Writes a new version whose fields are those of `version`. */
  rollback(ctx: TenantContext, id: string, version: number, options?: { ifMatch?: Precondition }): Promise<Agent>;
  /**
   * Operators only (no tenant context: every tenant's secrets): re-encrypts every secret
   * under the current key, in bounded batches, idempotent and resumable (rotation.ts).
   */
  rotateSecrets(options?: RotationOptions): Promise<RotationReport>;
}

/** An agents row as the point read returns it: timestamps and the document as text. */
interface AgentText {
  readonly id: string;
  readonly version: number | string;
  readonly created_at: string;
  readonly updated_at: string;
  readonly doc: string;
}

const AGENT_COLUMNS_PG = `id, version, ${pgIsoText('created_at')} as created_at, ${pgIsoText('updated_at')} as updated_at, doc::text as doc`;
const AGENT_BY_ID: PointReadSql = {
  sqlite: 'select id, version, created_at, updated_at, doc from agents where tenant_id = ? and id = ?',
  postgres: `select ${AGENT_COLUMNS_PG} from agents where tenant_id = $1 and id = $2`,
  postgresMany: { sql: `select ${AGENT_COLUMNS_PG} from agents where tenant_id = $1 and id in $keys`, column: 'id' },
};

// The document always holds `name`, so it is never `{}`: its members follow the attributes.
function agentJson(row: AgentText): string {
  return `{"id":${JSON.stringify(row.id)},"version":${Number(row.version)},"createdAt":${JSON.stringify(toIso(row.created_at))},"updatedAt":${JSON.stringify(toIso(row.updated_at))},${row.doc.slice(row.doc.indexOf('{') + 1)}`;
}

function toAgent(row: { id: string; version: number | string; created_at: AgentsTable['created_at']; updated_at: AgentsTable['updated_at']; doc: unknown }): Agent {
  return { id: row.id, version: Number(row.version), createdAt: toIso(row.created_at), updatedAt: toIso(row.updated_at), ...fromJsonColumn<AgentFields>(row.doc) };
}

function toSummary(row: Omit<AgentVersionsTable, 'tenant_id' | 'doc'>): AgentVersionSummary {
  return {
    agentId: row.agent_id,
    version: Number(row.n),
    action: row.action as AgentVersionAction,
    changed: fromJsonColumn<string[]>(row.changed),
    actor: { type: row.actor_type, id: row.actor_id },
    requestId: row.request_id,
    rolledBackFrom: row.rolled_back_from === null ? null : Number(row.rolled_back_from),
    createdAt: toIso(row.created_at),
  };
}

function checkIfMatch(ifMatch: Precondition | undefined, version: number): void {
  if (ifMatch !== undefined && ifMatch !== '*' && ifMatch !== version) {
    throw AgentstoreError.preconditionFailed(`the agent is at version ${version}, not ${ifMatch}`, version);
  }
}

function checkVersionNumber(version: unknown, field: string): number {
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1 || version > 2 ** 31 - 1) throw AgentstoreError.invalidField(field, 'must be a version number (an integer from 1)');
  return version;
}

const changedFields = (before: AgentFields | undefined, after: AgentFields): string[] =>
  AGENT_FIELDS.filter((key) => before === undefined || canonicalJson(before[key]) !== canonicalJson(after[key]));

export function createAgentsService(deps: { db: Database; uow: UnitOfWorkRunner; encryption?: EncryptionKeys | undefined }): AgentsService {
  const { db, uow } = deps;
  const dialect = db.dialect;
  const readAgent = db.prepareRead<AgentText>(AGENT_BY_ID);
  const loadText = async (ctx: TenantContext, id: string): Promise<AgentText> => {
    requireRole(ctx, 'viewer');
    validateAgentId(id);
    const row = await readAgent(ctx.tenantId, [ctx.tenantId, id]);
    if (!row) throw AgentstoreError.notFound('agent');
    return row;
  };

  /** The row, locked on PostgreSQL: concurrent writers of one agent take versions one after another. */
  const lockAgent = async (w: UnitOfWork, id: string): Promise<AgentsTable> => {
    let q = w.trx.selectFrom('agents').selectAll().where('tenant_id', '=', w.ctx.tenantId).where('id', '=', id);
    if (dialect === 'postgres') q = q.forUpdate();
    const row = await q.executeTakeFirst();
    if (!row) throw AgentstoreError.notFound('agent');
    return row;
  };

  const writeTags = async (trx: Executor, tenantId: string, id: string, tags: readonly string[]): Promise<void> => {
    if (tags.length > 0) await trx.insertInto('agent_tags').values(tags.map((tag) => ({ tenant_id: tenantId, tag, agent_id: id }))).execute();
  };

  /** The agent row, its tags, its next version and the mutation, for an update or a rollback. */
  const saveVersion = async (w: UnitOfWork, row: AgentsTable, fields: AgentFields, action: AgentVersionAction, rolledBackFrom: number | null): Promise<Agent> => {
    const before = fromJsonColumn<AgentFields>(row.doc);
    const n = Number(row.version) + 1;
    const doc = toJsonColumn(fields);
    await w.trx
      .updateTable('agents')
      .set({ name: fields.name, name_key: fields.name.toLowerCase(), status: fields.status, version: n, doc, updated_at: w.now })
      .where('tenant_id', '=', w.ctx.tenantId)
      .where('id', '=', row.id)
      .execute();
    if (canonicalJson(before.tags) !== canonicalJson(fields.tags)) {
      await w.trx.deleteFrom('agent_tags').where('tenant_id', '=', w.ctx.tenantId).where('agent_id', '=', row.id).execute();
      await writeTags(w.trx, w.ctx.tenantId, row.id, fields.tags);
    }
    const changed = changedFields(before, fields);
    await insertVersion(w, row.id, n, action, doc, changed, rolledBackFrom);
    const agent: Agent = { id: row.id, version: n, createdAt: toIso(row.created_at), updatedAt: w.now, ...fields };
    await w.record({ action, resourceType: 'agent', resourceId: row.id, version: n, data: agent, details: { changed, ...(rolledBackFrom === null ? {} : { rolledBackFrom }) } });
    return agent;
  };

  const insertVersion = (w: UnitOfWork, agentId: string, n: number, action: AgentVersionAction, doc: string, changed: readonly string[], rolledBackFrom: number | null) =>
    w.trx
      .insertInto('agent_versions')
      .values({
        tenant_id: w.ctx.tenantId,
        agent_id: agentId,
        n,
        action,
        doc,
        changed: toJsonColumn(changed),
        actor_type: w.ctx.actor.type,
        actor_id: w.ctx.actor.id,
        request_id: w.ctx.requestId ?? null,
        rolled_back_from: rolledBackFrom,
        created_at: w.now,
      })
      .execute();

  const secrets = createAgentSecrets({ db, uow, encryption: deps.encryption });

  return {
    ...secrets,
    rotateSecrets: (options) => rotateSecrets(db, deps.encryption, options),

    async create(ctx, input, options = {}) {
      requireRole(ctx, 'member');
      const fields = normalizeAgent(input);
      const keyed = idempotentRequest(options.idempotencyKey, 'agents.create', canonicalJson(fields));
      if (keyed) {
        const replay = await replayIdempotent<Agent>(uow, ctx, keyed);
        if (replay) return { agent: replay, replayed: true };
      }
      try {
        const agent = await uow.write(ctx, async (w) => {
          const id = uuidv7();
          const doc = toJsonColumn(fields);
          await w.trx
            .insertInto('agents')
            .values({ tenant_id: ctx.tenantId, id, name: fields.name, name_key: fields.name.toLowerCase(), status: fields.status, version: 1, doc, created_at: w.now, updated_at: w.now })
            .execute();
          await writeTags(w.trx, ctx.tenantId, id, fields.tags);
          const changed = changedFields(undefined, fields);
          await insertVersion(w, id, 1, 'create', doc, changed, null);
          const created: Agent = { id, version: 1, createdAt: w.now, updatedAt: w.now, ...fields };
          await w.record({ action: 'create', resourceType: 'agent', resourceId: id, version: 1, data: created });
          if (keyed) await rememberIdempotent(w, keyed, 201, created);
          return created;
        });
        return { agent, replayed: false };
      } catch (error) {
        // A concurrent request with the same Idempotency-Key won: its response is the answer.
        if (keyed && isUniqueViolation(error)) {
          const replay = await replayIdempotent<Agent>(uow, ctx, keyed);
          if (replay) return { agent: replay, replayed: true };
        }
        throw error;
      }
    },

    async get(ctx, id) {
      return toAgent(await loadText(ctx, id));
    },

    async getJson(ctx, id) {
      const row = await loadText(ctx, id);
      return { version: Number(row.version), json: agentJson(row) };
    },

    async list(ctx, options = {}) {
      requireRole(ctx, 'viewer');
      const limit = pageSize(options.limit);
      const status = options.status === undefined ? undefined : validateStatus(options.status, 'status');
      const tag = options.tag === undefined ? undefined : validateTag(options.tag, 'tag');
      const match = options.match ?? 'prefix';
      if (match !== 'prefix' && match !== 'substring') throw AgentstoreError.invalidField('match', 'must be prefix or substring');
      const q = options.q === undefined ? undefined : assertText(options.q, 'q').toLowerCase();
      if (q !== undefined && (q.length === 0 || q.length > 200)) throw AgentstoreError.invalidField('q', 'must be 1-200 characters');
      const shape = listShape({ tag, q, match, status });
      const scope = `agents:${shape}:${status ?? ''}:${tag ?? ''}:${match}:${q ?? ''}`;
      const after = options.cursor === undefined ? undefined : decodeCursor(scope, options.cursor, cursorTypesOf(shape));
      // A substring reads the tenant's agents until a page is full: a scan whose cost the
      // caller cannot bound. The other shapes are index ranges.
      const scan = q !== undefined && match === 'substring' && shape !== 'tag';
      const rows = await uow.read(ctx, (trx) => agentListQuery(trx, { tenantId: ctx.tenantId, dialect, status, tag, q, match, after, limit: limit + 1 }).execute(), scan ? { scan: true } : {});
      // A page carries at most PAGE_DATA_BYTES of agents (its first always).
      const items: Agent[] = [];
      let bytes = 0;
      let cut = false;
      for (const row of rows.slice(0, limit)) {
        if (items.length > 0 && bytes + row.doc.length > PAGE_DATA_BYTES) {
          cut = true;
          break;
        }
        bytes += row.doc.length;
        items.push(toAgent(row));
      }
      const last = items.at(-1);
      const nextCursor = (rows.length > limit || cut) && last ? encodeCursor(scope, shape === 'name' ? [last.name.toLowerCase(), last.id] : [last.id]) : null;
      return { items, nextCursor };
    },

    async patch(ctx, id, patch, options = {}) {
      requireRole(ctx, 'member');
      validateAgentId(id);
      const checked = checkPatch(patch);
      return uow.write(ctx, async (w) => {
        const row = await lockAgent(w, id);
        checkIfMatch(options.ifMatch, Number(row.version));
        const fields = normalizeAgent(mergePatch(fromJsonColumn<AgentFields>(row.doc), checked));
        return saveVersion(w, row, fields, 'update', null);
      });
    },

    async delete(ctx, id, options = {}) {
      requireRole(ctx, 'member');
      validateAgentId(id);
      await uow.write(ctx, async (w) => {
        const row = await lockAgent(w, id);
        checkIfMatch(options.ifMatch, Number(row.version));
        // Explicitly, though the foreign keys cascade: the counts go to the audit entry.
        const removedSecrets = Number((await w.trx.deleteFrom('agent_secrets').where('tenant_id', '=', ctx.tenantId).where('agent_id', '=', id).executeTakeFirst()).numDeletedRows);
        const removedVersions = Number((await w.trx.deleteFrom('agent_versions').where('tenant_id', '=', ctx.tenantId).where('agent_id', '=', id).executeTakeFirst()).numDeletedRows);
        await w.trx.deleteFrom('agent_tags').where('tenant_id', '=', ctx.tenantId).where('agent_id', '=', id).execute();
        await w.trx.deleteFrom('agents').where('tenant_id', '=', ctx.tenantId).where('id', '=', id).execute();
        await w.record({ action: 'delete', resourceType: 'agent', resourceId: id, data: null, details: { versions: removedVersions, secrets: removedSecrets } });
      });
    },

    async listVersions(ctx, id, options = {}) {
      requireRole(ctx, 'viewer');
      validateAgentId(id);
      const limit = pageSize(options.limit);
      const scope = `agent-versions:${id}`;
      const before = options.cursor === undefined ? undefined : (decodeCursor(scope, options.cursor, ['int32'])[0] as number);
      const rows = await uow.read(ctx, async (trx) => {
        const agent = await trx.selectFrom('agents').select('id').where('tenant_id', '=', ctx.tenantId).where('id', '=', id).executeTakeFirst();
        if (!agent) throw AgentstoreError.notFound('agent');
        let q = trx
          .selectFrom('agent_versions')
          .select(['agent_id', 'n', 'action', 'changed', 'actor_type', 'actor_id', 'request_id', 'rolled_back_from', 'created_at'])
          .where('tenant_id', '=', ctx.tenantId)
          .where('agent_id', '=', id)
          .orderBy('n', 'desc')
          .limit(limit + 1);
        if (before !== undefined) q = q.where('n', '<', before);
        return q.execute();
      });
      const items = rows.slice(0, limit).map(toSummary);
      const last = items.at(-1);
      return { items, nextCursor: rows.length > limit && last ? encodeCursor(scope, [last.version]) : null };
    },

    async getVersion(ctx, id, version) {
      requireRole(ctx, 'viewer');
      validateAgentId(id);
      checkVersionNumber(version, 'n');
      const row = await uow.read(ctx, (trx) =>
        trx.selectFrom('agent_versions').selectAll().where('tenant_id', '=', ctx.tenantId).where('agent_id', '=', id).where('n', '=', version).executeTakeFirst(),
      );
      if (!row) throw AgentstoreError.notFound('agent version');
      return { ...toSummary(row), agent: fromJsonColumn<AgentFields>(row.doc) };
    },

    async rollback(ctx, id, version, options = {}) {
      requireRole(ctx, 'member');
      validateAgentId(id);
      checkVersionNumber(version, '/version');
      return uow.write(ctx, async (w) => {
        const row = await lockAgent(w, id);
        checkIfMatch(options.ifMatch, Number(row.version));
        const old = await w.trx
          .selectFrom('agent_versions')
          .select('doc')
          .where('tenant_id', '=', ctx.tenantId)
          .where('agent_id', '=', id)
          .where('n', '=', version)
          .executeTakeFirst();
        if (!old) throw new AgentstoreError('agentstore.not_found', `the agent has no version ${version}`, { errors: [{ field: '/version', message: 'no such version' }] });
        return saveVersion(w, row, fromJsonColumn<AgentFields>(old.doc), 'rollback', version);
      });
    },
  };
}
