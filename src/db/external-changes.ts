import { setImmediate as turn } from 'node:timers/promises';
import { LRUCache } from 'lru-cache';
import type { ChangeWakeup, EventBus } from '../ports/event-bus.js';
import type { Database } from './database.js';

/** The resource types whose changes can end or alter a credential the auth cache holds. */
export const CREDENTIAL_TYPES = ['api_key', 'session', 'user'] as const;

/**
 * A change that may have revoked or altered a credential: an API key revoked, a session
 * ended, a user's role or password changed or the user deleted (which ends or alters every
 * session of theirs).
 */
export interface CredentialChange {
  readonly tenantId: string;
  readonly resourceType: (typeof CREDENTIAL_TYPES)[number];
  readonly resourceId: string;
}

export interface ExternalChangesStats {
  /** Times other connections' commits were seen and the change log read after them. */
  readonly catchUps: number;
  /** Wake-ups published for changes committed by another process. */
  readonly wakeups: number;
  /**
   * Tenants whose new changes in a catch-up this process had already woken its listeners
   * for (its own commits, committed in the same poll interval), so no second wake-up.
   */
  readonly ownSkipped: number;
  /** Wake-ups that arrived for a position already announced (harmless: a read that finds nothing). */
  readonly duplicateWakeups: number;
  /** Credential changes handed to the auth cache. */
  readonly credentialChanges: number;
  /** Reads of the change log that failed; each is tried again. */
  readonly failures: number;
}

export interface ExternalChanges {
  stats(): ExternalChangesStats;
  /** Stops following; waits for a catch-up in progress. */
  close(): Promise<void>;
}

// Rows per read of the log: a script's bulk load of a million records must not become one
// read that holds the event loop. Windows of `seq` values (the table's integer key, a range
// scan), with a turn of the loop between them.
const WINDOW = 4096;
// After a failed read (the file busy past busy_timeout, say): try again this soon.
const RETRY_MS = 100;
// Tenants whose last announced position is kept. One evicted costs a spurious wake-up, a
// read that finds nothing, never a missed one.
const ANNOUNCED_TENANTS = 10_000;

const isCredentialType = (type: string): type is CredentialChange['resourceType'] => (CREDENTIAL_TYPES as readonly string[]).includes(type);

/**
 * Makes another process's commits to the same SQLite file reach this process as if they
 * were its own: when the database reports an external commit (`Database.onExternalCommit`,
 * a poll of `PRAGMA data_version`), reads the change log after the last position it saw,
 * hands the credential changes to `onCredentialChanges` (so that the auth cache drops what
 * they revoked) and then publishes one wake-up per tenant with that tenant's highest new
 * position, so event streams read their tenant's log as after a local commit.
 *
 * The read is by the database-wide `changes.seq`, in commit order on SQLite (writers are
 * serialised by the file's write lock, and rows are numbered inside the transaction), so
 * everything up to the head read has committed and a window never skips a row. It also
 * finds this process's own commits of the same interval: a tenant whose highest position
 * this process already announced gets no second wake-up (`ownSkipped`); credential changes
 * are always passed on, since a later local commit of the tenant says nothing about whether
 * an earlier foreign revocation was seen.
 *
 * On a database without `onExternalCommit` (PostgreSQL, in-memory SQLite) this does nothing.
 */
export async function followExternalChanges(deps: {
  readonly db: Database;
  readonly bus: EventBus;
  readonly onCredentialChanges: (changes: readonly CredentialChange[]) => void;
}): Promise<ExternalChanges> {
  const { db, bus } = deps;
  const counts = { catchUps: 0, wakeups: 0, ownSkipped: 0, duplicateWakeups: 0, credentialChanges: 0, failures: 0 };
  const stats = (): ExternalChangesStats => ({ ...counts });
  if (!db.onExternalCommit) return { stats, close: async () => undefined };

  const announced = new LRUCache<string, number>({ max: ANNOUNCED_TENANTS });
  const unsubscribeBus = bus.subscribe((wakeup: ChangeWakeup) => {
    const before = announced.get(wakeup.tenantId) ?? 0;
    if (wakeup.seq > before) announced.set(wakeup.tenantId, wakeup.seq);
    else counts.duplicateWakeups += 1;
  });

  const head = async (): Promise<number> => {
    const row = await db.inSystem((trx) => trx.selectFrom('changes').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst(), { readOnly: true });
    return row?.seq === null || row?.seq === undefined ? 0 : Number(row.seq);
  };

  let cursor: number | undefined;
  let pending = false;
  let closed = false;
  let running: Promise<void> | undefined;
  let retry: NodeJS.Timeout | undefined;

  const apply = (rows: readonly { tenant_id: string; tenant_seq: number | string; resource_type: string; resource_id: string; action: string }[]): void => {
    const highest = new Map<string, number>();
    const credentials: CredentialChange[] = [];
    for (const row of rows) {
      const seq = Number(row.tenant_seq);
      if (seq > (highest.get(row.tenant_id) ?? 0)) highest.set(row.tenant_id, seq);
      // A credential's creation revokes nothing; everything else may.
      if (row.action !== 'create' && isCredentialType(row.resource_type)) {
        credentials.push({ tenantId: row.tenant_id, resourceType: row.resource_type, resourceId: row.resource_id });
      }
    }
    // Before the wake-ups: a stream woken by the revocation checks its credential again and
    // must find the cache without it (src/modules/changes/routes.ts).
    if (credentials.length > 0) {
      counts.credentialChanges += credentials.length;
      deps.onCredentialChanges(credentials);
    }
    for (const [tenantId, seq] of highest) {
      if (seq <= (announced.get(tenantId) ?? 0)) {
        counts.ownSkipped += 1;
        continue;
      }
      counts.wakeups += 1;
      bus.publish({ tenantId, seq });
    }
  };

  const catchUp = async (): Promise<void> => {
    while (pending && !closed && cursor !== undefined) {
      pending = false;
      counts.catchUps += 1;
      const to = await head();
      while (cursor < to && !closed) {
        const from: number = cursor;
        const end = Math.min(to, from + WINDOW);
        const rows = await db.inSystem(
          (trx) =>
            trx
              .selectFrom('changes')
              .select(['tenant_id', 'tenant_seq', 'resource_type', 'resource_id', 'action'])
              .where('seq', '>', from)
              .where('seq', '<=', end)
              .execute(),
          { readOnly: true },
        );
        if (closed) return;
        apply(rows);
        cursor = end;
        if (cursor < to) await turn();
      }
    }
  };

  const kick = (): void => {
    if (running || closed || cursor === undefined || !pending) return;
    running = catchUp()
      .catch(() => {
        // The position did not move past what failed: the next attempt reads it again.
        counts.failures += 1;
        pending = true;
        retry = setTimeout(() => {
          retry = undefined;
          kick();
        }, RETRY_MS);
        retry.unref();
      })
      .finally(() => {
        running = undefined;
        if (!retry) kick();
      });
  };

  // Subscribed before the head is read: a commit in between is then reported (and found
  // below the head, or after it) instead of falling between the two.
  const unsubscribe = db.onExternalCommit(() => {
    pending = true;
    kick();
  });
  try {
    cursor = await head();
  } catch (error) {
    unsubscribe();
    unsubscribeBus();
    throw error;
  }
  kick();

  return {
    stats,
    async close() {
      closed = true;
      unsubscribe();
      if (retry) clearTimeout(retry);
      await running;
      unsubscribeBus();
    },
  };
}
