/**
 * The expiry sweep: deletes expired records in the background, a bounded batch per unit of
 * work, each record with its delete change and audit entry (actor `system:expiry`), so the
 * change feed carries every expiry as a delete. Reads never wait for it: an expired record is
 * invisible from its instant on (expiry.ts); the sweep only frees the space.
 *
 * - Which tenants have due records: on PostgreSQL the runtime role sees one tenant's records at
 *   a time under RLS, so migration 0006's SECURITY DEFINER function names them (tenant ids
 *   only); SQLite runs the same query itself. Both walk the tenants of the partial index
 *   `records_expiry` rather than its rows.
 * - Fair across tenants: a pass takes one batch of each due tenant, and passes repeat while a
 *   batch came back full, so one tenant's million expired records do not hold up the others'.
 * - Concurrent sweepers (several servers on one PostgreSQL database) never delete or emit a
 *   record twice: a batch selects its rows `FOR UPDATE SKIP LOCKED` and deletes them
 *   `RETURNING` what it deleted, and only that is recorded. On SQLite writers are serialised.
 * - Writers are not blocked: a batch is one short unit (500 records); between batches the loop
 *   turns, and on SQLite a batch deletes in pieces of 100 with turns between them inside its
 *   unit (as bulk loads insert), so the writer is held a few ms at a time.
 */
import { CompiledQuery, sql } from 'kysely';
import type { TenantContext } from '../../core/context.js';
import { loopTurns } from '../../core/loop-turns.js';
import type { Database, Executor } from '../../db/database.js';
import { nowIso, type DialectName } from '../../db/dialect.js';
import { DUE_TENANTS_SQL } from '../../db/migrations/0006-record-expiry.js';
import type { UnitOfWork, UnitOfWorkRunner } from '../../db/unit-of-work.js';
import { recordExpired, type ExpiredRow } from './expired-rows.js';

export const SWEEP_BATCH = 500;
/** Due tenants read per query: a pass reads them in pages of this many. */
const TENANTS_PER_READ = 100;
/** SQLite: records per DELETE statement inside a batch, with a turn of the loop between them. */
const SQLITE_PIECE = 100;

export interface ExpirySweepStats {
  /** Records deleted because they expired, by this process's sweeps. */
  readonly expired: number;
  /** Units of work that deleted at least one record. */
  readonly batches: number;
  readonly sweeps: number;
  /** Sweeps that failed (the next interval tries again). */
  readonly failures: number;
}

export interface ExpirySweeper {
  /**
   * Deletes every record due now, of every tenant, in batches; resolves with how many this
   * sweep deleted (a concurrent sweeper's are not counted). Sweeps of one process run one
   * after another.
   */
  sweep(): Promise<number>;
  stats(): ExpirySweepStats;
  /** Stops the timer and waits for a sweep under way to end after its current batch. */
  close(): Promise<void>;
}

/**
 * The DELETE of up to `limit` of a tenant's records due at `now`, returning what it deleted:
 * the partial index (tenant_id, expires_at) finds them in expiry order (the plan test shows
 * it). PostgreSQL locks them `FOR UPDATE SKIP LOCKED` first: rows a concurrent sweeper (or a
 * writer) holds are left to it, and a row deleted by a sweeper that committed meanwhile is no
 * longer found, so each is deleted, and recorded, once.
 */
export function deleteDueQuery(trx: Executor, dialect: DialectName, tenantId: string, now: string, limit: number): CompiledQuery<ExpiredRow> {
  if (dialect === 'postgres') {
    // By ctid (a TID scan): a join back on the key was planned as a hash join over a scan of
    // the table, the planner taking the LIMIT's 500 rows for many. A locked row keeps its ctid.
    return sql<ExpiredRow>`delete from records where tenant_id = ${tenantId} and ctid = any(array(
        select ctid from records where tenant_id = ${tenantId} and expires_at <= ${now}::timestamptz
        order by expires_at limit ${limit} for update skip locked))
      returning collection, id, version`.compile(trx);
  }
  return sql<ExpiredRow>`delete from records where tenant_id = ${tenantId} and (collection, id) in (
      select collection, id from records where tenant_id = ${tenantId} and expires_at <= ${now} order by expires_at limit ${limit})
    returning collection, id, version`.compile(trx);
}

/** The unit found nothing left to delete (another sweeper took it): rolled back, not an error. */
class NothingDue extends Error {}

/** Who the audit log names for a sweep's deletes. */
const sweepContext = (tenantId: string): TenantContext => ({ tenantId, actor: { type: 'system', id: 'expiry' }, role: 'owner' });

export function createExpirySweeper(deps: { db: Database; uow: UnitOfWorkRunner; intervalMs: number; batchSize?: number }): ExpirySweeper {
  const { db, uow, intervalMs } = deps;
  const batchSize = deps.batchSize ?? SWEEP_BATCH;
  const counts = { expired: 0, batches: 0, sweeps: 0, failures: 0 };
  let closed = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let current: Promise<unknown> = Promise.resolve();

  const dueTenants = (now: string, after: string): Promise<string[]> =>
    db.inSystem(
      async (trx) => {
        const query =
          db.dialect === 'postgres'
            ? sql<{ tenant_id: string }>`select t as tenant_id from agentstore_expiry_due_tenants(${now}::timestamptz, ${after}, ${TENANTS_PER_READ}) as t`.compile(trx)
            : // Placeholders in the order they occur in the text: after, now, limit.
              (CompiledQuery.raw(DUE_TENANTS_SQL('?', '?', '?'), [after, now, TENANTS_PER_READ]) as CompiledQuery<{ tenant_id: string }>);
        return (await trx.executeQuery(query)).rows.map((r) => r.tenant_id);
      },
      { readOnly: true },
    );

  /** Deletes up to `limit` of the tenant's due records in the unit, returning what it deleted. */
  const deleteDue = async (w: UnitOfWork, limit: number): Promise<ExpiredRow[]> => {
    const tenant = w.ctx.tenantId;
    if (db.dialect === 'postgres') {
      const { rows } = await w.trx.executeQuery(deleteDueQuery(w.trx, 'postgres', tenant, w.now, limit));
      return rows.map((r) => ({ ...r, version: Number(r.version) }));
    }
    const turn = loopTurns();
    const deleted: ExpiredRow[] = [];
    while (deleted.length < limit) {
      const piece = Math.min(SQLITE_PIECE, limit - deleted.length);
      const { rows } = await w.trx.executeQuery(deleteDueQuery(w.trx, 'sqlite', tenant, w.now, piece));
      deleted.push(...rows.map((r) => ({ ...r, version: Number(r.version) })));
      if (rows.length < piece) break;
      const due = turn();
      if (due) await due;
    }
    return deleted;
  };

  /** One batch of one tenant: how many records it deleted. */
  const sweepTenant = async (tenantId: string): Promise<number> => {
    try {
      return await uow.write(sweepContext(tenantId), async (w) => {
        const rows = await deleteDue(w, batchSize);
        if (rows.length === 0) throw new NothingDue();
        await recordExpired(w, rows);
        return rows.length;
      });
    } catch (error) {
      if (error instanceof NothingDue) return 0;
      throw error;
    }
  };

  const run = async (): Promise<number> => {
    let total = 0;
    for (let full = true; full && !closed; ) {
      full = false;
      const now = nowIso();
      for (let after = ''; !closed; ) {
        const tenants = await dueTenants(now, after);
        for (const tenantId of tenants) {
          if (closed) break;
          const n = await sweepTenant(tenantId);
          if (n > 0) {
            total += n;
            counts.expired += n;
            counts.batches++;
          }
          if (n >= batchSize) full = true;
          // Between units: whatever else waits for the loop (or the SQLite writer) goes first.
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
        if (tenants.length < TENANTS_PER_READ) break;
        after = tenants[tenants.length - 1] as string;
      }
    }
    counts.sweeps++;
    return total;
  };

  const sweep = (): Promise<number> => {
    const next = current.then(run, run);
    current = next.catch(() => undefined);
    return next;
  };

  const schedule = (): void => {
    if (closed || intervalMs <= 0) return;
    timer = setTimeout(() => {
      sweep()
        .catch(() => {
          counts.failures++;
        })
        .finally(schedule);
    }, intervalMs);
    // A script using the library still exits when it is done.
    timer.unref();
  };
  schedule();

  return {
    sweep,
    stats: () => ({ ...counts }),
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      await current;
    },
  };
}
