import { requireRole, type TenantContext } from '../../core/context.js';
import { decodeCursor, encodeCursor, pageSize, type Page } from '../../core/cursor.js';
import { assertText } from '../../core/text.js';
import { toTimestamp } from '../../core/time.js';
import { fromNullableJsonColumn, toIso } from '../../db/dialect.js';
import type { AuditLogTable } from '../../db/schema.js';
import type { UnitOfWorkRunner } from '../../db/unit-of-work.js';

export interface AuditEntry {
  readonly id: string;
  readonly at: string;
  readonly actor: { readonly type: string; readonly id: string };
  readonly action: string;
  readonly resourceType: string;
  readonly resourceId: string;
  readonly collection: string | null;
  readonly requestId: string | null;
  readonly details: unknown;
}

export interface AuditQuery {
  readonly actorId?: string;
  readonly actorType?: string;
  readonly action?: string;
  readonly resourceType?: string;
  readonly resourceId?: string;
  /** ISO-8601, inclusive. */
  readonly from?: string;
  /** ISO-8601, exclusive. */
  readonly to?: string;
  readonly limit?: number;
  readonly cursor?: string;
}

export interface AuditService {
  list(ctx: TenantContext, query?: AuditQuery): Promise<Page<AuditEntry>>;
}

function toEntry(row: AuditLogTable): AuditEntry {
  return {
    id: row.id,
    at: toIso(row.at),
    actor: { type: row.actor_type, id: row.actor_id },
    action: row.action,
    resourceType: row.resource_type,
    resourceId: row.resource_id,
    collection: row.collection,
    requestId: row.request_id,
    details: fromNullableJsonColumn(row.details),
  };
}

const TEXT_FILTERS = ['actorId', 'actorType', 'action', 'resourceType', 'resourceId'] as const;

function optionalTimestamp(value: string | undefined, field: string): string | undefined {
  return value === undefined ? undefined : toTimestamp(value, field);
}

export function createAuditService(deps: { uow: UnitOfWorkRunner }): AuditService {
  return {
    async list(ctx, query = {}) {
      requireRole(ctx, 'admin');
      const limit = pageSize(query.limit);
      for (const field of TEXT_FILTERS) {
        const value = query[field];
        if (value !== undefined) assertText(value, field);
      }
      const from = optionalTimestamp(query.from, 'from');
      const to = optionalTimestamp(query.to, 'to');
      const scope = `audit:${JSON.stringify([query.actorId, query.actorType, query.action, query.resourceType, query.resourceId, from, to])}`;
      const after = query.cursor ? decodeCursor(scope, query.cursor, ['timestamp', 'text']) : undefined;
      const rows = await deps.uow.read(ctx, (trx) => {
        // Newest first: an audit trail is read backwards from now.
        let q = trx.selectFrom('audit_log').selectAll().where('tenant_id', '=', ctx.tenantId);
        if (query.actorId !== undefined) q = q.where('actor_id', '=', query.actorId);
        if (query.actorType !== undefined) q = q.where('actor_type', '=', query.actorType);
        if (query.action !== undefined) q = q.where('action', '=', query.action);
        if (query.resourceType !== undefined) q = q.where('resource_type', '=', query.resourceType);
        if (query.resourceId !== undefined) q = q.where('resource_id', '=', query.resourceId);
        if (from) q = q.where('at', '>=', from);
        if (to) q = q.where('at', '<', to);
        if (after) {
          const [at, id] = after as [string, string];
          q = q.where((eb) => eb.or([eb('at', '<', at), eb.and([eb('at', '=', at), eb('id', '<', id)])]));
        }
        return q.orderBy('at', 'desc').orderBy('id', 'desc').limit(limit + 1).execute();
        // Newest first by (tenant, at, id) reads just the page; a filter on the actor or action
        // may read the tenant's whole trail for it.
      }, { scan: [query.actorId, query.actorType, query.action, query.resourceType, query.resourceId].some((v) => v !== undefined) });
      const items = rows.slice(0, limit).map(toEntry);
      const last = items.at(-1);
      return { items, nextCursor: rows.length > limit && last ? encodeCursor(scope, [last.at, last.id]) : null };
    },
  };
}
