import { AgentstoreError } from '../../core/errors.js';
import { hasRole, requireRole, type TenantContext } from '../../core/context.js';
import { fromNullableJsonColumn, toIso } from '../../db/dialect.js';
import { sql, type Selectable } from 'kysely';
import type { ChangesTable, Json } from '../../db/schema.js';
import type { DialectName } from '../../db/dialect.js';
import { INLINE_DATA_BYTES, pageWithinBudget } from '../../core/page-budget.js';
import { RESOURCE_TYPES, type UnitOfWorkRunner } from '../../db/unit-of-work.js';
import type { Executor } from '../../db/database.js';
import type { ChangeWakeup, EventBus } from '../../ports/event-bus.js';

export interface ChangeEvent {
  /** Position in the change log: the SSE event id, and what `after` resumes from. */
  readonly seq: number;
  readonly at: string;
  /** `<resourceType>.<action>`, e.g. `record.create`. */
  readonly type: string;
  readonly resourceType: string;
  readonly action: string;
  readonly resourceId: string;
  readonly collection: string | null;
  readonly version: number | null;
  readonly data: unknown;
}

export interface ChangeQuery {
  /** Return changes with seq greater than this. */
  readonly after: number;
  readonly resourceTypes?: readonly string[];
  readonly collection?: string;
  readonly limit?: number;
}

export interface ChangePage {
  readonly items: ChangeEvent[];
  /**
   * Where the next read resumes (`after`): the last item's seq, or, when the read skipped
   * changes (its filter or the role's) and returned less than `limit`, the head read before
   * it, so a filtered poller moves past what is not for it instead of rescanning it.
   */
  readonly lastSeq: number;
}

export interface ChangesService {
  read(ctx: TenantContext, query: ChangeQuery): Promise<ChangeEvent[]>;
  /** `read` and the position to resume from, as one consistent read. */
  poll(ctx: TenantContext, query: ChangeQuery): Promise<ChangePage>;
  /**
   * The newest seq of the tenant that the context's role may see (0 when there is none):
   * where a fresh subscriber starts.
   */
  head(ctx: TenantContext): Promise<number>;
  /** Calls `listener` after each commit of the tenant's changes. */
  onWake(tenantId: string, listener: (wakeup: ChangeWakeup) => void): () => void;
}

/**
 * The change types below the admin role. Users, API keys, sessions and the tenant are what
 * admins manage (their lists and the audit log need admin), so their changes are an admin's
 * to see too. An allowlist, so that a resource type added later stays hidden from viewers
 * and members until it is put here. Agents are read by viewers; their secrets are set and
 * revealed by admins, and a reveal's event tells when an admin read one: `agent_secret` stays
 * an admin's.
 */
export const MEMBER_VISIBLE_TYPES: readonly string[] = ['record', 'collection', 'counter', 'conversation', 'message', 'memory_block', 'agent', 'project', 'branch', 'task', 'context'];

/** A type no change can have is the caller's mistake, not a filter that matches nothing. */
export function checkResourceTypes(types: readonly string[]): void {
  const unknown = types.filter((type) => !(RESOURCE_TYPES as readonly string[]).includes(type));
  if (unknown.length > 0) {
    throw AgentstoreError.invalidField('types', `unknown type${unknown.length > 1 ? 's' : ''} ${unknown.map((t) => `"${t}"`).join(', ')}; the types are ${RESOURCE_TYPES.join(', ')}`);
  }
}

function toEvent(row: Selectable<ChangesTable>): ChangeEvent {
  return {
    seq: Number(row.tenant_seq),
    at: toIso(row.at),
    type: `${row.resource_type}.${row.action}`,
    resourceType: row.resource_type,
    action: row.action,
    resourceId: row.resource_id,
    collection: row.collection,
    version: row.version === null ? null : Number(row.version),
    data: fromNullableJsonColumn(row.data),
  };
}

export function createChangesService(deps: { uow: UnitOfWorkRunner; bus: EventBus; dialect: DialectName }): ChangesService {
  const { uow, bus } = deps;
  /** The query checked, and the types it reads (undefined: all), or null when none is visible. */
  const plan = (ctx: TenantContext, query: ChangeQuery) => {
    requireRole(ctx, 'viewer');
    if (!Number.isSafeInteger(query.after) || query.after < 0) throw AgentstoreError.invalidField('after', 'must be a non-negative integer');
    const limit = Math.min(Math.max(query.limit ?? 500, 1), 1000);
    checkResourceTypes(query.resourceTypes ?? []);
    let types = query.resourceTypes && query.resourceTypes.length > 0 ? [...query.resourceTypes] : undefined;
    if (!hasRole(ctx, 'admin')) types = (types ?? MEMBER_VISIBLE_TYPES).filter((type) => MEMBER_VISIBLE_TYPES.includes(type));
    // Some changes are not for this reader: its filter's, or its role's.
    const skips = types !== undefined || query.collection !== undefined;
    // None of the types asked for is visible to this role.
    return { limit, types: types !== undefined && types.length === 0 ? null : types, skips };
  };
  /**
   * A page of the tenant's log after `query.after`, within the byte budget of a page of records
   * (a change carries the resource after it: 1,000 changes of 1 MiB records were 1 GB): `cut`
   * when the budget ended it early. Data over 64 KiB is fetched apart, for the changes let in.
   */
  const select = async (trx: Executor, ctx: TenantContext, query: ChangeQuery, limit: number, types: string[] | undefined) => {
    const length = deps.dialect === 'postgres' ? sql`octet_length(data::text)` : sql`length(data)`;
    let q = trx
      .selectFrom('changes')
      .select(['seq', 'tenant_id', 'tenant_seq', 'at', 'resource_type', 'resource_id', 'collection', 'action', 'version'])
      .select(sql<Json | null>`case when ${length} <= ${INLINE_DATA_BYTES} then data end`.as('data'))
      .select(length.as('_len'))
      .where('tenant_id', '=', ctx.tenantId)
      .where('tenant_seq', '>', query.after);
    if (types !== undefined) q = q.where('resource_type', 'in', types);
    if (query.collection !== undefined) q = q.where('collection', '=', query.collection);
    const { page, cut } = pageWithinBudget(await q.orderBy('tenant_seq').limit(limit).execute(), limit);
    const big = page.filter((row) => Number(row._len) > INLINE_DATA_BYTES).map((row) => row.tenant_seq);
    if (big.length > 0) {
      const found = await trx.selectFrom('changes').select(['tenant_seq', 'data']).where('tenant_id', '=', ctx.tenantId).where('tenant_seq', 'in', big).execute();
      const data = new Map(found.map((row) => [Number(row.tenant_seq), row.data]));
      for (const row of page) if (data.has(Number(row.tenant_seq))) row.data = data.get(Number(row.tenant_seq)) ?? null;
    }
    return { rows: page as Selectable<ChangesTable>[], cut };
  };
  const headOf = async (trx: Executor, ctx: TenantContext): Promise<number> => {
    // Below admin, the newest change the role sees: the seq of a hidden one would tell when
    // admin activity (a login, a new key) happened.
    const visible = hasRole(ctx, 'admin') ? undefined : MEMBER_VISIBLE_TYPES;
    let q = trx.selectFrom('changes').select((eb) => eb.fn.max('tenant_seq').as('seq')).where('tenant_id', '=', ctx.tenantId);
    if (visible) q = q.where('resource_type', 'in', [...visible]);
    const row = await q.executeTakeFirst();
    return row?.seq === null || row?.seq === undefined ? 0 : Number(row.seq);
  };

  return {
    async read(ctx, query) {
      const { limit, types, skips } = plan(ctx, query);
      if (types === null) return [];
      // A filter that matches little reads far along the tenant's log for a page: a scan.
      const { rows } = await uow.read(ctx, (trx) => select(trx, ctx, query, limit, types), { scan: skips });
      return rows.map(toEvent);
    },

    async poll(ctx, query) {
      const { limit, types, skips } = plan(ctx, query);
      return uow.read(ctx, async (trx) => {
        // The head is read before the page: seq order is commit order within a tenant, so
        // every change up to it has committed and the page's read sees it. A page shorter
        // than the limit has then seen every change up to the head that is for this reader.
        const head = skips || types === null ? await headOf(trx, ctx) : 0;
        const { rows, cut } = types === null ? { rows: [], cut: false } : await select(trx, ctx, query, limit, types);
        const items = rows.map(toEvent);
        const last = items.at(-1)?.seq ?? query.after;
        // A page the byte budget ended is a full page: changes after it are still to be read.
        return { items, lastSeq: items.length < limit && !cut ? Math.max(last, head) : last };
      }, { scan: skips });
    },

    async head(ctx) {
      requireRole(ctx, 'viewer');
      return uow.read(ctx, (trx) => headOf(trx, ctx));
    },

    onWake(tenantId, listener) {
      return bus.subscribe((wakeup) => {
        if (wakeup.tenantId === tenantId) listener(wakeup);
      });
    },
  };
}
