import { sql } from 'kysely';
import type { TenantContext } from '../core/context.js';
import { AgentstoreError } from '../core/errors.js';
import { uuidv7 } from '../core/ids.js';
import type { EventBus } from '../ports/event-bus.js';
import type { Database, Executor } from './database.js';
import { isForeignKeyViolation } from './errors.js';
import { nowIso, toJsonColumn } from './dialect.js';

/** What one mutation did, written as one audit entry and one change-log entry. */
export interface Mutation {
  /** Verb: `create`, `update`, `delete`, `increment`, `revoke` ... */
  readonly action: string;
  readonly resourceType: string;
  readonly resourceId: string;
  readonly collection?: string | null;
  readonly version?: number | null;
  /** The resource after the change (null for deletes): goes to the change log. */
  readonly data?: unknown;
  /** Extra audit facts (never secrets). */
  readonly details?: unknown;
}

export interface UnitOfWork {
  readonly trx: Executor;
  readonly ctx: TenantContext;
  /** The same instant for every row the unit writes. */
  readonly now: string;
  record(mutation: Mutation): Promise<void>;
}

export interface UnitOfWorkRunner {
  /**
   * Runs `fn` in one transaction that also writes an audit entry and a change-log entry
   * for each recorded mutation; after commit, wakes change-feed listeners. A unit that
   * records nothing is a bug: it would be a mutation the audit log never saw.
   */
  write<T>(ctx: TenantContext, fn: (uow: UnitOfWork) => Promise<T>): Promise<T>;
  read<T>(ctx: TenantContext, fn: (trx: Executor) => Promise<T>): Promise<T>;
}

// A per-tenant transaction lock taken just before the change rows are inserted: it makes
// sequence order and commit order agree within a tenant, so a reader that has seen seq N
// can never later find a smaller seq committing (the classic gap in serial-based feeds).
const changeLock = (tenantId: string) => sql`select pg_advisory_xact_lock(hashtext(${'agentstore.changes:' + tenantId}))`;

export function createUnitOfWorkRunner(db: Database, bus: EventBus): UnitOfWorkRunner {
  // Every tenant row references its tenant, and some rows a parent (a session its user, a
  // record its collection): a violated reference means the tenant does not exist, or a
  // parent was removed by a concurrent request. Either way not a driver error for the caller.
  const foreignKeyError = async (tenantId: string, cause: unknown): Promise<AgentstoreError> => {
    const tenant = await db.inSystem((trx) => trx.selectFrom('tenants').select('id').where('id', '=', tenantId).executeTakeFirst(), { readOnly: true });
    return tenant
      ? new AgentstoreError('agentstore.conflict', 'a resource this change refers to was removed concurrently', {}, { cause })
      : new AgentstoreError('agentstore.not_found', 'tenant not found', {}, { cause });
  };
  return {
    async write(ctx, fn) {
      let lastSeq = 0;
      const result = await db.inTenant(ctx.tenantId, async (trx) => {
        const pending: Mutation[] = [];
        const now = nowIso();
        const uow: UnitOfWork = {
          trx,
          ctx,
          now,
          async record(mutation) {
            await trx
              .insertInto('audit_log')
              .values({
                tenant_id: ctx.tenantId,
                id: uuidv7(),
                at: now,
                actor_type: ctx.actor.type,
                actor_id: ctx.actor.id,
                action: `${mutation.resourceType}.${mutation.action}`,
                resource_type: mutation.resourceType,
                resource_id: mutation.resourceId,
                collection: mutation.collection ?? null,
                request_id: ctx.requestId ?? null,
                details: mutation.details === undefined ? null : toJsonColumn(mutation.details),
              })
              .execute();
            pending.push(mutation);
          },
        };
        const value = await fn(uow);
        if (pending.length === 0) throw new Error('unit of work recorded no mutation');
        if (db.dialect === 'postgres') await changeLock(ctx.tenantId).execute(trx);
        const rows = await trx
          .insertInto('changes')
          .values(
            pending.map((m) => ({
              tenant_id: ctx.tenantId,
              at: now,
              resource_type: m.resourceType,
              resource_id: m.resourceId,
              collection: m.collection ?? null,
              action: m.action,
              version: m.version ?? null,
              data: m.data === undefined || m.data === null ? null : toJsonColumn(m.data),
            })),
          )
          .returning('seq')
          .execute();
        lastSeq = rows.reduce((max, row) => Math.max(max, Number(row.seq)), 0);
        return value;
      }).catch(async (error: unknown) => {
        throw isForeignKeyViolation(error) ? await foreignKeyError(ctx.tenantId, error) : error;
      });
      bus.publish({ tenantId: ctx.tenantId, seq: lastSeq });
      return result;
    },
    read(ctx, fn) {
      return db.inTenant(ctx.tenantId, fn, { readOnly: true });
    },
  };
}
