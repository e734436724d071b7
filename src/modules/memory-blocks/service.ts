import { requireRole, type TenantContext } from '../../core/context.js';
import { decodeCursor, encodeCursor, pageSize, type Page } from '../../core/cursor.js';
import { AgentstoreError } from '../../core/errors.js';
import { assertText } from '../../core/text.js';
import { toIso } from '../../db/dialect.js';
import { isUniqueViolation } from '../../db/errors.js';
import type { MemoryBlocksTable } from '../../db/schema.js';
import type { UnitOfWorkRunner } from '../../db/unit-of-work.js';

/**
 * Working memory: named text blocks an agent reads into its prompt and rewrites as it
 * learns (Letta's core memory blocks, Mastra's working memory). A block is scoped to an
 * agent, an end user, both, or neither; (scope, label) names it. Its character limit is set
 * when it is created (or by a later PUT that gives one) and every write is held to it, so a
 * prompt built from blocks has a known bound.
 */
export interface MemoryBlock {
  readonly label: string;
  readonly agentId: string | null;
  readonly endUserId: string | null;
  readonly value: string;
  /** The most characters (Unicode code points) `value` may hold. */
  readonly limit: number;
  readonly description: string | null;
  readonly version: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface MemoryBlockScope {
  readonly agentId?: string;
  readonly endUserId?: string;
}

export interface MemoryBlockInput {
  readonly value: string;
  /** Default 5,000 at create; at most 100,000. Omitted on a replace: the block keeps its own. */
  readonly limit?: number;
  readonly description?: string | null;
}

export interface MemoryBlockWrite {
  /** The version read (its ETag): a replace only if it is still current; `*`: only if it exists. */
  readonly ifMatch?: number | '*';
  /** `*`: create only. */
  readonly ifNoneMatch?: '*';
}

export interface MemoryBlocksService {
  /** Creates (created: true) or replaces the block. */
  put(ctx: TenantContext, label: string, scope: MemoryBlockScope, input: MemoryBlockInput, options?: MemoryBlockWrite): Promise<{ block: MemoryBlock; created: boolean }>;
  get(ctx: TenantContext, label: string, scope?: MemoryBlockScope): Promise<MemoryBlock>;
  remove(ctx: TenantContext, label: string, scope?: MemoryBlockScope, options?: Pick<MemoryBlockWrite, 'ifMatch'>): Promise<void>;
  /** Blocks of the given scope (each filter exact when given), by agent, end user, label. */
  list(ctx: TenantContext, query?: MemoryBlockScope & { limit?: number; cursor?: string }): Promise<Page<MemoryBlock>>;
}

export const DEFAULT_BLOCK_LIMIT = 5000;
export const MAX_BLOCK_LIMIT = 100_000;
const LABEL = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$/;

function checkLabel(label: string): string {
  if (typeof label !== 'string' || !LABEL.test(label)) throw AgentstoreError.invalidField('label', 'must be 1-128 characters of letters, digits, _ . : -');
  return label;
}

function checkScopeId(value: string | undefined, field: string): string {
  if (value === undefined) return '';
  assertText(value, field);
  if (value.length === 0 || value.length > 256) throw AgentstoreError.invalidField(field, 'must be 1-256 characters');
  return value;
}

function scopeOf(scope: MemoryBlockScope = {}): { agent: string; endUser: string } {
  return { agent: checkScopeId(scope.agentId, 'agentId'), endUser: checkScopeId(scope.endUserId, 'endUserId') };
}

function characters(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

function toBlock(row: MemoryBlocksTable): MemoryBlock {
  return {
    label: row.label,
    agentId: row.agent_id === '' ? null : row.agent_id,
    endUserId: row.end_user_id === '' ? null : row.end_user_id,
    value: row.value,
    limit: row.char_limit,
    description: row.description,
    version: row.version,
    createdAt: toIso(row.created_at),
    updatedAt: toIso(row.updated_at),
  };
}

function checkInput(input: MemoryBlockInput): MemoryBlockInput {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw AgentstoreError.invalidField('body', 'must be an object');
  for (const key of Object.keys(input)) if (!['value', 'limit', 'description'].includes(key)) throw AgentstoreError.invalidField(`/${key}`, 'is not a memory block field');
  assertText(input.value, '/value');
  if (input.limit !== undefined && (!Number.isInteger(input.limit) || input.limit < 1 || input.limit > MAX_BLOCK_LIMIT)) {
    throw AgentstoreError.invalidField('/limit', `must be an integer from 1 to ${MAX_BLOCK_LIMIT}`);
  }
  if (input.description !== undefined && input.description !== null) {
    assertText(input.description, '/description');
    if (input.description.length > 2000) throw AgentstoreError.invalidField('/description', 'must be at most 2000 characters');
  }
  // Longer than any limit: refused before counting characters one by one.
  if (input.value.length > 2 * MAX_BLOCK_LIMIT) throw overLimit('', MAX_BLOCK_LIMIT, input.value.length);
  return input;
}

function overLimit(label: string, limit: number, length: number): AgentstoreError {
  const message = `memory block "${label}" holds at most ${limit} characters; this value has ${length}`;
  return new AgentstoreError('agentstore.payload_too_large', message, { errors: [{ field: '/value', message }] });
}

export function createMemoryBlocksService(deps: { uow: UnitOfWorkRunner; dialect: 'sqlite' | 'postgres' }): MemoryBlocksService {
  const { uow } = deps;
  const lock = deps.dialect === 'postgres';
  const resourceId = (agent: string, endUser: string, label: string) => JSON.stringify([agent, endUser, label]);

  const load = (trx: Parameters<Parameters<UnitOfWorkRunner['read']>[1]>[0], tenantId: string, agent: string, endUser: string, label: string, forUpdate = false) => {
    let q = trx.selectFrom('memory_blocks').selectAll().where('tenant_id', '=', tenantId).where('agent_id', '=', agent).where('end_user_id', '=', endUser).where('label', '=', label);
    if (forUpdate && lock) q = q.forUpdate();
    return q.executeTakeFirst();
  };

  const put: MemoryBlocksService['put'] = async (ctx, label, scope, input, options = {}) => {
    requireRole(ctx, 'member');
    checkLabel(label);
    const { agent, endUser } = scopeOf(scope);
    checkInput(input);
    const length = characters(input.value);
    try {
      return await uow.write(ctx, async (w) => {
        const row = await load(w.trx, ctx.tenantId, agent, endUser, label, true);
        if (row) {
          if (options.ifNoneMatch === '*') throw AgentstoreError.preconditionFailed(`memory block "${label}" exists`, row.version);
          if (options.ifMatch !== undefined && options.ifMatch !== '*' && options.ifMatch !== row.version) {
            throw AgentstoreError.preconditionFailed(`memory block "${label}" changed since it was read`, row.version);
          }
        } else if (options.ifMatch !== undefined) {
          throw AgentstoreError.preconditionFailed(`memory block "${label}" does not exist`);
        }
        const limit = input.limit ?? row?.char_limit ?? DEFAULT_BLOCK_LIMIT;
        if (length > limit) throw overLimit(label, limit, length);
        const next: MemoryBlocksTable = {
          tenant_id: ctx.tenantId,
          agent_id: agent,
          end_user_id: endUser,
          label,
          value: input.value,
          char_limit: limit,
          description: input.description !== undefined ? input.description : (row?.description ?? null),
          version: (row?.version ?? 0) + 1,
          created_at: row?.created_at ?? w.now,
          updated_at: w.now,
        };
        if (row) {
          await w.trx
            .updateTable('memory_blocks')
            .set({ value: next.value, char_limit: next.char_limit, description: next.description, version: next.version, updated_at: w.now })
            .where('tenant_id', '=', ctx.tenantId)
            .where('agent_id', '=', agent)
            .where('end_user_id', '=', endUser)
            .where('label', '=', label)
            .execute();
        } else {
          await w.trx.insertInto('memory_blocks').values(next).execute();
        }
        const block = toBlock(next);
        await w.record({ action: row ? 'update' : 'create', resourceType: 'memory_block', resourceId: resourceId(agent, endUser, label), version: block.version, data: block });
        return { block, created: !row };
      });
    } catch (error) {
      // Two first writes of one block: the loser's insert hit the key. Again, now as a replace.
      if (isUniqueViolation(error) && options.ifNoneMatch !== '*') return put(ctx, label, scope, input, options);
      if (isUniqueViolation(error)) throw AgentstoreError.preconditionFailed(`memory block "${label}" exists`);
      throw error;
    }
  };

  return {
    put,

    async get(ctx, label, scope) {
      requireRole(ctx, 'viewer');
      checkLabel(label);
      const { agent, endUser } = scopeOf(scope);
      const row = await uow.read(ctx, (trx) => load(trx, ctx.tenantId, agent, endUser, label));
      if (!row) throw AgentstoreError.notFound('memory block');
      return toBlock(row);
    },

    async remove(ctx, label, scope, options = {}) {
      requireRole(ctx, 'member');
      checkLabel(label);
      const { agent, endUser } = scopeOf(scope);
      await uow.write(ctx, async (w) => {
        const row = await load(w.trx, ctx.tenantId, agent, endUser, label, true);
        if (!row) throw AgentstoreError.notFound('memory block');
        if (options.ifMatch !== undefined && options.ifMatch !== '*' && options.ifMatch !== row.version) {
          throw AgentstoreError.preconditionFailed(`memory block "${label}" changed since it was read`, row.version);
        }
        await w.trx.deleteFrom('memory_blocks').where('tenant_id', '=', ctx.tenantId).where('agent_id', '=', agent).where('end_user_id', '=', endUser).where('label', '=', label).execute();
        await w.record({ action: 'delete', resourceType: 'memory_block', resourceId: resourceId(agent, endUser, label), data: null });
      });
    },

    async list(ctx, query = {}) {
      requireRole(ctx, 'viewer');
      const limit = pageSize(query.limit);
      const agent = query.agentId === undefined ? undefined : checkScopeId(query.agentId, 'agentId');
      const endUser = query.endUserId === undefined ? undefined : checkScopeId(query.endUserId, 'endUserId');
      const scope = `memory-blocks:${JSON.stringify([agent, endUser])}`;
      const after = query.cursor === undefined ? undefined : (decodeCursor(scope, query.cursor, ['text', 'text', 'text']) as [string, string, string]);
      // With an end user and no agent, the (tenant, end user, agent, label) index gives the order.
      const byEndUser = endUser !== undefined && agent === undefined;
      const keys = byEndUser ? (['end_user_id', 'agent_id', 'label'] as const) : (['agent_id', 'end_user_id', 'label'] as const);
      const rows = await uow.read(ctx, (trx) => {
        let q = trx.selectFrom('memory_blocks').selectAll().where('tenant_id', '=', ctx.tenantId);
        if (agent !== undefined) q = q.where('agent_id', '=', agent);
        if (endUser !== undefined) q = q.where('end_user_id', '=', endUser);
        if (after) q = q.where((eb) => eb(eb.refTuple(keys[0], keys[1], keys[2]), '>', eb.tuple(after[0], after[1], after[2])));
        return q.orderBy(keys[0]).orderBy(keys[1]).orderBy(keys[2]).limit(limit + 1).execute();
      });
      const items = rows.slice(0, limit);
      const last = items.at(-1);
      return { items: items.map(toBlock), nextCursor: rows.length > limit && last ? encodeCursor(scope, [last[keys[0]], last[keys[1]], last[keys[2]]]) : null };
    },
  };
}
