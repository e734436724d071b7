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

/**
 * A read that can share one statement with others of the same shape: `sql()` is the read
 * for a list of keys, with `$keys` where the list goes (`... and id in $keys`), all its other
 * values already literals; its rows carry the key in the column `column`. Reads with the same
 * `shape` and tenant in one batch go as one SELECT, each getting the row whose key is its own.
 */
export interface KeyedRead {
  /** Equal for reads whose `sql()` is the same text. */
  readonly shape: string;
  /** Holds `$keys` exactly once; called for one read of each shared statement. */
  sql(): string;
  /**
   * A text column: a row answers the read whose key equals its value as a JS string, which
   * is PostgreSQL's equality only for text under a deterministic collation (not for uuid,
   * numbers, citext ...).
   */
  readonly column: string;
  /** This read's key; literal-safe (see `inlineParameters`). */
  readonly key: string;
}

export interface ReadBatcher {
  /**
   * `text()`: one SELECT whose values are literals (see `inlineParameters`), written only if
   * the read shares no statement; resolves to its first row.
   */
  read<R>(tenantId: string, text: () => string, keyed?: KeyedRead): Promise<R | undefined>;
}

interface Pending {
  readonly tenantId: string;
  readonly text: () => string;
  readonly keyed: KeyedRead | undefined;
  readonly resolve: (row: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/** Where a keyed read's SQL takes the list of keys. */
export const KEYS = '$keys';

/** A statement of a batch and the reads it answers: one, or several keyed reads by key. */
interface Statement {
  readonly text: string;
  readonly items: Pending[];
  /** A list read: the column that tells which read a row answers. */
  readonly column?: string;
}

/**
 * A tenant's reads as statements: keyed reads of one shape as one `IN (...)` SELECT (a
 * batch of 25 separate SELECTs ran at a quarter of the reads/s of one SELECT with a 25-key
 * list: bench/pg-read-batch.ts), everything else one SELECT each.
 */
function statementsOf(items: readonly Pending[]): Statement[] {
  const out: Statement[] = [];
  const byShape = new Map<string, Pending[]>();
  for (const item of items) {
    if (!item.keyed) {
      out.push({ text: item.text(), items: [item] });
      continue;
    }
    const group = byShape.get(item.keyed.shape);
    if (group) group.push(item);
    else byShape.set(item.keyed.shape, [item]);
  }
  for (const group of byShape.values()) {
    const first = group[0] as Pending & { keyed: KeyedRead };
    if (group.length === 1) {
      out.push({ text: first.text(), items: group });
      continue;
    }
    const keys = [...new Set(group.map((item) => (item.keyed as KeyedRead).key))];
    const list = `(${keys.map((key) => `'${key}'`).join(', ')})`;
    // A function replacer: a string one would read `$` patterns in the list.
    out.push({ text: first.keyed.sql().replace(KEYS, () => list), items: group, column: first.keyed.column });
  }
  return out;
}

/** The row of each read of `statement`, from its result. */
function rowsFor(statement: Statement, rows: readonly Record<string, unknown>[] | undefined): unknown[] {
  const column = statement.column;
  if (column === undefined) return [rows?.[0]];
  const byKey = new Map<string, unknown>();
  for (const row of rows ?? []) {
    const key = String(row[column]);
    if (!byKey.has(key)) byKey.set(key, row);
  }
  return statement.items.map((item) => byKey.get((item.keyed as KeyedRead).key));
}

// Enough to absorb a burst from a thousand connections in a few round trips; keyed reads of
// one shape go as one list SELECT however many they are, so a batch stays short. 256 measured
// ~8% more PostgreSQL gets/s at 1000 connections than 64 (3 runs each).
const MAX_BATCH = 256;
// Reads of a failed batch running alone at once; below the default pool size (10).
const FALLBACK_CONCURRENCY = 4;

/**
 * Coalesces point reads on PostgreSQL, as Prisma batches `findUnique` calls of one tick
 * (its "dataloader"): the reads issued while the event loop handled one round of I/O go
 * as one simple-protocol round trip, `BEGIN READ ONLY; set_config(...); SELECT ...;
 * SELECT ...; COMMIT`, instead of one round trip each. Each SELECT runs after a
 * `set_config('app.tenant_id', ...)` naming its own tenant, so row-level security applies
 * to every statement as if it were alone. Keyed reads of one shape and tenant share one
 * SELECT with the list of their keys (`KeyedRead`). Tenant ids and values were checked to be
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

  // After a failed batch each read runs alone, a few at a time: all of them at once would
  // queue on the pool behind a slow one (a statement timeout holds its connection for the
  // whole timeout) until the pool's connection timeout failed reads that did nothing wrong.
  const runAlone = (items: readonly Pending[]): void => {
    let next = 0;
    const worker = (): void => {
      const item = items[next++];
      if (!item) return;
      options.single(item.tenantId, item.text()).then(item.resolve, item.reject).finally(worker);
    };
    for (let i = 0; i < Math.min(FALLBACK_CONCURRENCY, items.length); i++) worker();
  };

  const runBatch = async (batch: Pending[]): Promise<void> => {
    if (batch.length === 1) {
      const only = batch[0] as Pending;
      options.single(only.tenantId, only.text()).then(only.resolve, only.reject);
      return;
    }
    // Grouped by tenant, so one set_config serves each tenant's reads.
    const byTenant = new Map<string, Pending[]>();
    for (const item of batch) {
      const mine = byTenant.get(item.tenantId);
      if (mine) mine.push(item);
      else byTenant.set(item.tenantId, [item]);
    }
    const parts = ['begin read only', `select set_config('statement_timeout', '${timeout}', true)`];
    const placed: Array<{ index: number; statement: Statement }> = [];
    for (const [tenant, items] of byTenant) {
      parts.push(`select set_config('app.tenant_id', '${tenant}', true)`);
      for (const statement of statementsOf(items)) {
        placed.push({ index: parts.length, statement });
        parts.push(statement.text);
      }
    }
    parts.push('commit');
    let results: pg.QueryResult[];
    try {
      results = await options.run(parts.join('; '));
    } catch (error) {
      if (error instanceof AgentstoreError) {
        for (const item of batch) item.reject(error);
        return;
      }
      runAlone(batch);
      return;
    }
    for (const { index, statement } of placed) {
      const rows = rowsFor(statement, results[index]?.rows as Record<string, unknown>[] | undefined);
      statement.items.forEach((item, k) => item.resolve(rows[k]));
    }
  };

  const flush = (): void => {
    scheduled = false;
    const all = pending;
    pending = [];
    for (let i = 0; i < all.length; i += MAX_BATCH) {
      const batch = all.slice(i, i + MAX_BATCH);
      // A throw while building the batch's text must fail its reads, not leave them pending;
      // a read already settled ignores the second settlement.
      runBatch(batch).catch((error: unknown) => {
        for (const item of batch) item.reject(error);
      });
    }
  };

  return {
    read<R>(tenantId: string, text: () => string, keyed?: KeyedRead): Promise<R | undefined> {
      return new Promise<R | undefined>((resolve, reject) => {
        pending.push({ tenantId, text, keyed, resolve: resolve as (row: unknown) => void, reject });
        if (!scheduled) {
          scheduled = true;
          // After the current I/O phase: the requests parsed in it share the round trip.
          setImmediate(flush);
        }
      });
    },
  };
}
