import { AgentstoreError } from '../../core/errors.js';
import { hasRole, requireRole, type TenantContext } from '../../core/context.js';
import { fromNullableJsonColumn, toIso } from '../../db/dialect.js';
import type { Selectable } from 'kysely';
import type { ChangesTable } from '../../db/schema.js';
import type { UnitOfWorkRunner } from '../../db/unit-of-work.js';
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

export interface ChangesService {
  read(ctx: TenantContext, query: ChangeQuery): Promise<ChangeEvent[]>;
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
 * and members until it is put here.
 */
export const MEMBER_VISIBLE_TYPES: readonly string[] = ['record', 'collection', 'counter'];

function toEvent(row: Selectable<ChangesTable>): ChangeEvent {
  return {
    seq: Number(row.seq),
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

export function createChangesService(deps: { uow: UnitOfWorkRunner; bus: EventBus }): ChangesService {
  const { uow, bus } = deps;
  return {
    async read(ctx, query) {
      requireRole(ctx, 'viewer');
      if (!Number.isSafeInteger(query.after) || query.after < 0) throw AgentstoreError.invalidField('after', 'must be a non-negative integer');
      const limit = Math.min(Math.max(query.limit ?? 500, 1), 1000);
      let types = query.resourceTypes && query.resourceTypes.length > 0 ? [...query.resourceTypes] : undefined;
      if (!hasRole(ctx, 'admin')) types = (types ?? MEMBER_VISIBLE_TYPES).filter((type) => MEMBER_VISIBLE_TYPES.includes(type));
      // None of the types asked for is visible to this role.
      if (types !== undefined && types.length === 0) return [];
      const rows = await uow.read(ctx, (trx) => {
        let q = trx.selectFrom('changes').selectAll().where('tenant_id', '=', ctx.tenantId).where('seq', '>', query.after);
        if (types !== undefined) q = q.where('resource_type', 'in', types);
        if (query.collection !== undefined) q = q.where('collection', '=', query.collection);
        return q.orderBy('seq').limit(limit).execute();
      });
      return rows.map(toEvent);
    },

    async head(ctx) {
      requireRole(ctx, 'viewer');
      // Below admin, the newest change the role sees: the seq of a hidden one would tell when
      // admin activity (a login, a new key) happened.
      const visible = hasRole(ctx, 'admin') ? undefined : MEMBER_VISIBLE_TYPES;
      const row = await uow.read(ctx, (trx) => {
        let q = trx.selectFrom('changes').select((eb) => eb.fn.max('seq').as('seq')).where('tenant_id', '=', ctx.tenantId);
        if (visible) q = q.where('resource_type', 'in', [...visible]);
        return q.executeTakeFirst();
      });
      return row?.seq === null || row?.seq === undefined ? 0 : Number(row.seq);
    },

    onWake(tenantId, listener) {
      return bus.subscribe((wakeup) => {
        if (wakeup.tenantId === tenantId) listener(wakeup);
      });
    },
  };
}
