import type pg from 'pg';
import { AgentstoreError } from '../core/errors.js';

export interface ReadBatcherOptions {
  readonly pool: pg.Pool;
  /** The statement timeout set in each batch's transaction, in ms. */
  readonly statementTimeoutMs: number;
  /** Runs a batch's text on a client with the store's bounded retry (transient failures only). */
  readonly run: (text: string) => Promise<pg.QueryResult[]>;
  /** One read on its own: what a batch falls back to when one of its statements fails. */
  readonly single: (tenantId: string, text: string) => Promise<unknown>;
}

export interface ReadBatcher {
  /** `text`: one SELECT whose values are literals (see `inlineParameters`); its first row. */
  read<R>(tenantId: string, text: string): Promise<R | undefined>;
}

interface Pending {
  readonly tenantId: string;
  readonly text: string;
  readonly resolve: (row: unknown) => void;
  readonly reject: (error: unknown) => void;
}

// Enough to absorb a burst from hundreds of connections in a few round trips; small enough
// that one batch's statements do not hold a connection for long.
const MAX_BATCH = 64;

/**
 * Coalesces point reads on PostgreSQL, as Prisma batches `findUnique` calls of one tick
 * (its "dataloader"): the reads issued while the event loop handled one round of I/O go
 * as one simple-protocol round trip, `BEGIN READ ONLY; set_config(...); SELECT ...;
 * SELECT ...; COMMIT`, instead of one round trip each. Each SELECT runs after a
 * `set_config('app.tenant_id', ...)` naming its own tenant, so row-level security applies
 * to every statement as if it were alone. Tenant ids and values were checked to be
 * literal-safe by the caller.
 *
 * If a statement fails, the transaction is aborted for all of them: each read is then run
 * on its own, so only the failing one fails. A transient failure of the whole batch (after
 * the store's retries) fails every read with 503, as it would have alone.
 */
export function createReadBatcher(options: ReadBatcherOptions): ReadBatcher {
  const timeout = Math.trunc(options.statementTimeoutMs);
  let pending: Pending[] = [];
  let scheduled = false;

  const runBatch = async (batch: Pending[]): Promise<void> => {
    if (batch.length === 1) {
      const only = batch[0] as Pending;
      options.single(only.tenantId, only.text).then(only.resolve, only.reject);
      return;
    }
    // Grouped by tenant (stable), so one set_config serves each tenant's reads.
    const ordered = [...batch].sort((a, b) => (a.tenantId < b.tenantId ? -1 : a.tenantId > b.tenantId ? 1 : 0));
    const parts = ['begin read only', `select set_config('statement_timeout', '${timeout}', true)`];
    const resultIndex: number[] = [];
    let tenant: string | undefined;
    for (const item of ordered) {
      if (item.tenantId !== tenant) {
        tenant = item.tenantId;
        parts.push(`select set_config('app.tenant_id', '${tenant}', true)`);
      }
      resultIndex.push(parts.length);
      parts.push(item.text);
    }
    parts.push('commit');
    let results: pg.QueryResult[];
    try {
      results = await options.run(parts.join('; '));
    } catch (error) {
      if (error instanceof AgentstoreError) {
        for (const item of ordered) item.reject(error);
        return;
      }
      for (const item of ordered) options.single(item.tenantId, item.text).then(item.resolve, item.reject);
      return;
    }
    ordered.forEach((item, k) => item.resolve(results[resultIndex[k] as number]?.rows[0]));
  };

  const flush = (): void => {
    scheduled = false;
    const all = pending;
    pending = [];
    for (let i = 0; i < all.length; i += MAX_BATCH) void runBatch(all.slice(i, i + MAX_BATCH));
  };

  return {
    read<R>(tenantId: string, text: string): Promise<R | undefined> {
      return new Promise<R | undefined>((resolve, reject) => {
        pending.push({ tenantId, text, resolve: resolve as (row: unknown) => void, reject });
        if (!scheduled) {
          scheduled = true;
          // After the current I/O phase: the requests parsed in it share the round trip.
          setImmediate(flush);
        }
      });
    },
  };
}
