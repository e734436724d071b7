import { CompiledQuery, sql, type Insertable } from 'kysely';
import type { TenantContext } from '../core/context.js';
import { AgentstoreError } from '../core/errors.js';
import { uuidv7 } from '../core/ids.js';
import type { EventBus } from '../ports/event-bus.js';
import type { Database, Executor, TransactionOptions } from './database.js';
import type { AuditLogTable, ChangesTable } from './schema.js';
import { isForeignKeyViolation } from './errors.js';
import { nowIso, toJsonColumn } from './dialect.js';
import { insertRows } from './multi-row.js';

/**
 * Every resource type a mutation may name: the registry the change feed checks `types`
 * against (an unknown name is the client's mistake, not an empty filter). A module with a
 * new kind of resource adds it here, or its `uow.record` does not compile.
 */
export const RESOURCE_TYPES = ['tenant', 'user', 'session', 'api_key', 'collection', 'record', 'counter', 'conversation', 'message', 'memory_block', 'agent', 'agent_secret', 'end_user', 'project', 'branch', 'task', 'context'] as const;
export type ResourceType = (typeof RESOURCE_TYPES)[number];

/** What one mutation did, written as one audit entry and one change-log entry. */
export interface Mutation {
  /** Verb: `create`, `update`, `delete`, `increment`, `revoke` ... */
  readonly action: string;
  readonly resourceType: ResourceType;
  readonly resourceId: string;
  readonly collection?: string | null;
  readonly version?: number | null;
  /** The resource after the change (null for deletes): goes to the change log. */
  readonly data?: unknown;
  /** `data` as JSON text, when the caller has it (a bulk load): not serialised again. */
  readonly dataJson?: string;
  /** Extra audit facts (never secrets). */
  readonly details?: unknown;
  /**
   * `false`: a change-log entry only, no audit entry. For an erasure's deletes, which the audit
   * log records once, as the erasure with its counts: an entry per erased item would keep a
   * trail of the very data erased.
   */
  readonly audit?: false;
}

/** An audit entry with no change-log entry of its own (see `UnitOfWork.audit`). */
export interface AuditEntry {
  readonly action: string;
  readonly resourceType: ResourceType;
  readonly resourceId: string;
  readonly details?: unknown;
}

export interface UnitOfWork {
  readonly trx: Executor;
  readonly ctx: TenantContext;
  /** The same instant for every row the unit writes. */
  readonly now: string;
  record(mutation: Mutation): Promise<void>;
  /**
   * One audit entry for mutations recorded with `audit: false`: an append of messages is one
   * act of its caller, audited once with its seqs, while each message still gets its change.
   */
  audit(entry: AuditEntry): void;
}

export interface UnitOfWorkRunner {
  /**
   * Runs `fn` in one transaction that also writes an audit entry and a change-log entry
   * for each recorded mutation; after commit, wakes change-feed listeners. A unit that
   * records nothing is a bug: it would be a mutation the audit log never saw.
   */
  write<T>(ctx: TenantContext, fn: (uow: UnitOfWork) => Promise<T>, options?: Pick<TransactionOptions, 'offLoop'>): Promise<T>;
  read<T>(ctx: TenantContext, fn: (trx: Executor) => Promise<T>, options?: Omit<TransactionOptions, 'readOnly'>): Promise<T>;
}

type AuditRow = Insertable<AuditLogTable>;
type ChangeRow = Omit<Insertable<ChangesTable>, 'seq' | 'tenant_seq'>;

const AUDIT_COLUMNS = ['tenant_id', 'id', 'at', 'actor_type', 'actor_id', 'action', 'resource_type', 'resource_id', 'collection', 'request_id', 'details'] as const;
const CHANGE_COLUMNS = ['tenant_id', 'at', 'resource_type', 'resource_id', 'collection', 'action', 'version', 'data'] as const;
const finalTexts = new Map<number | string, string>();

// The audit rows and the change rows of a unit are written together at its end, in one
// statement on PostgreSQL:
//
// The change rows get the tenant's next positions from its `change_heads` row, bumped by an
// upsert in the same statement. The row lock the upsert takes is held until COMMIT, so the
// tenant's next writer waits for this one to commit and then reads its bumped value
// (ON CONFLICT DO UPDATE sees the latest committed row, not the statement's snapshot, as a
// max(tenant_seq) subquery would): positions are gap-free per tenant, and position order is
// commit order within a tenant, so a reader that has seen position N can never later find a
// smaller one committing (the classic gap in serial-based feeds). Every round trip between
// taking the lock and committing is a wait for the tenant's other writers, and each includes
// a turn of this process's event loop, which under load is the longest part: taking the
// lock in the statement that inserts the changes leaves one such round trip (the COMMIT).
//
// The text for `n` mutations is built once per count (a bulk chunk's 500 rows as Kysely
// template values cost more to compile than to run); its parameters are the audit rows'
// values, the tenant and `n`, then the change rows' values.
function finalStatementPostgres(audited: number, n: number): string {
  const key = audited === n ? n : `${audited}/${n}`;
  let text = finalTexts.get(key);
  if (text !== undefined) return text;
  const a = AUDIT_COLUMNS.length;
  const c = CHANGE_COLUMNS.length;
  const auditValues = Array.from({ length: audited }, (_, r) => `(${AUDIT_COLUMNS.map((_, i) => `$${r * a + i + 1}`).join(', ')})`).join(', ');
  // The tenant and the count, after the audit rows' parameters.
  const tenant = `$${audited * a + 1}`;
  const count = `$${audited * a + 2}`;
  const base = audited * a + 2;
  const changeValues = Array.from({ length: n }, (_, r) => `(${r + 1}, ${CHANGE_COLUMNS.map((_, i) => `$${base + r * c + i + 1}`).join(', ')})`).join(', ');
  // A unit whose mutations are all unaudited (an erasure's batch) inserts no audit row.
  const audit = audited === 0 ? '' : `audit as (
      insert into audit_log (${AUDIT_COLUMNS.join(', ')})
      values ${auditValues}
    ), `;
  text = `with ${audit}head as (
      insert into change_heads (tenant_id, seq) values (${tenant}, ${count}::bigint)
      on conflict (tenant_id) do update set seq = change_heads.seq + excluded.seq
      returning seq
    )
    insert into changes (tenant_id, tenant_seq, at, resource_type, resource_id, collection, action, version, data)
    select v.tenant_id, head.seq - ${count}::bigint + v.ord::bigint, v.at::timestamptz, v.resource_type, v.resource_id, v.collection, v.action, v.version::integer, v.data::jsonb
    from head, (values ${changeValues}) as v (ord, ${CHANGE_COLUMNS.join(', ')})
    returning tenant_seq`;
  // Units record a few mutations, bulk chunks up to 500: a bound on the texts kept all the same.
  if (finalTexts.size >= 1024) finalTexts.clear();
  finalTexts.set(key, text);
  return text;
}

function auditValues(a: AuditRow): unknown[] {
  return [a.tenant_id, a.id, a.at, a.actor_type, a.actor_id, a.action, a.resource_type, a.resource_id, a.collection, a.request_id, a.details];
}

function changeValues(c: ChangeRow): unknown[] {
  return [c.tenant_id, c.at, c.resource_type, c.resource_id, c.collection, c.action, c.version, c.data];
}

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
    async write(ctx, fn, options) {
      let lastSeq = 0;
      const result = await db.inTenant(ctx.tenantId, async (trx) => {
        const pending: { mutation: Mutation; auditId: string }[] = [];
        const audited: { entry: AuditEntry; auditId: string; order: number }[] = [];
        const now = nowIso();
        const uow: UnitOfWork = {
          trx,
          ctx,
          now,
          record(mutation) {
            // The id now, so audit order (at, id) is the order of the calls.
            pending.push({ mutation, auditId: uuidv7() });
            return Promise.resolve();
          },
          audit(entry) {
            audited.push({ entry, auditId: uuidv7(), order: pending.length });
          },
        };
        const value = await fn(uow);
        if (pending.length === 0) throw new Error('unit of work recorded no mutation');
        const auditRow = (entry: AuditEntry & { collection?: string | null }, auditId: string): AuditRow => ({
          tenant_id: ctx.tenantId,
          id: auditId,
          at: now,
          actor_type: ctx.actor.type,
          actor_id: ctx.actor.id,
          action: `${entry.resourceType}.${entry.action}`,
          resource_type: entry.resourceType,
          resource_id: entry.resourceId,
          collection: entry.collection ?? null,
          request_id: ctx.requestId ?? null,
          details: entry.details === undefined ? null : toJsonColumn(entry.details),
        });
        const audit: AuditRow[] = [];
        // In the order of the calls (their ids are time-ordered too).
        let next = 0;
        for (const [i, { mutation, auditId }] of pending.entries()) {
          for (let a = audited[next]; a !== undefined && a.order <= i; a = audited[++next]) audit.push(auditRow(a.entry, a.auditId));
          if (mutation.audit !== false) audit.push(auditRow(mutation, auditId));
        }
        for (const a of audited.slice(next)) audit.push(auditRow(a.entry, a.auditId));
        const changes: ChangeRow[] = pending.map(({ mutation: m }) => ({
          tenant_id: ctx.tenantId,
          at: now,
          resource_type: m.resourceType,
          resource_id: m.resourceId,
          collection: m.collection ?? null,
          action: m.action,
          version: m.version ?? null,
          data: m.dataJson ?? (m.data === undefined || m.data === null ? null : toJsonColumn(m.data)),
        }));
        if (db.dialect === 'postgres') {
          const parameters: unknown[] = [];
          for (const a of audit) parameters.push(...auditValues(a));
          parameters.push(ctx.tenantId, changes.length);
          for (const c of changes) parameters.push(...changeValues(c));
          const { rows } = await trx.executeQuery<{ tenant_seq: number | string }>(CompiledQuery.raw(finalStatementPostgres(audit.length, changes.length), parameters));
          lastSeq = rows.reduce((max, row) => Math.max(max, Number(row.tenant_seq)), 0);
        } else {
          // SQLite serialises writers (BEGIN IMMEDIATE), and these statements cost no round
          // trips: the same head row, for the same numbering, in plain steps.
          await insertRows(trx, 'sqlite', 'audit_log', AUDIT_COLUMNS, audit.map(auditValues));
          // Raw SQL: the builder's compile was most of this statement's cost (one text, so the
          // writer's statement cache prepares it once).
          const { rows } = await sql<{ seq: number }>`insert into change_heads (tenant_id, seq) values (${ctx.tenantId}, ${changes.length})
            on conflict (tenant_id) do update set seq = change_heads.seq + excluded.seq returning seq`.execute(trx);
          const head = rows[0];
          if (!head) throw new Error('the change head upsert returned no row');
          lastSeq = Number(head.seq);
          const first = lastSeq - changes.length + 1;
          await insertRows(trx, 'sqlite', 'changes', [...CHANGE_COLUMNS, 'tenant_seq'], changes.map((c, i) => [...changeValues(c), first + i]));
        }
        return value;
      }, options).catch(async (error: unknown) => {
        throw isForeignKeyViolation(error) ? await foreignKeyError(ctx.tenantId, error) : error;
      });
      bus.publish({ tenantId: ctx.tenantId, seq: lastSeq });
      return result;
    },
    read(ctx, fn, options) {
      return db.inTenant(ctx.tenantId, fn, { ...options, readOnly: true });
    },
  };
}
