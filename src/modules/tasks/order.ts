import { sql } from 'kysely';
import type { Executor } from '../../db/database.js';
import type { DialectName } from '../../db/dialect.js';
import { loopTurns } from '../../core/loop-turns.js';
import { MAX_RANK_LENGTH, evenRanks, rankBetween } from './rank.js';

/** Which siblings: a branch's top level (`parentId` null) or a task's children. */
export interface SiblingSet {
  readonly tenantId: string;
  readonly branchId: string;
  readonly parentId: string | null;
}

/** Where among its new siblings a task goes. */
export type Placement = { readonly before: string } | { readonly after: string } | { readonly end: true };

// The unique index's expression, so that the lookups below are searches of that index.
const siblings = (s: SiblingSet, except: string | null) =>
  sql`tenant_id = ${s.tenantId} and branch_id = ${s.branchId} and coalesce(parent_id, '') = ${s.parentId ?? ''} and id <> ${except ?? ''}`;

async function neighbour(trx: Executor, s: SiblingSet, except: string | null, op: '<' | '>', rank: string | null): Promise<string | null> {
  const bound = rank === null ? sql`` : op === '<' ? sql` and rank < ${rank}` : sql` and rank > ${rank}`;
  const order = sql.raw(op === '<' ? 'desc' : 'asc');
  const { rows } = await sql<{ rank: string }>`select rank from tasks where ${siblings(s, except)}${bound} order by rank ${order} limit 1`.execute(trx);
  return rows[0]?.rank ?? null;
}

/**
 * A rank for a task placed among `s` (the task itself, `except`, left out). The anchor's
 * rank is passed in by the caller, who checked it is a sibling. Two writers that place
 * tasks in the same gap at once compute the same key: the unique index refuses the second
 * (on PostgreSQL after the first commits), and the unit is retried with fresh neighbours.
 */
export async function rankFor(trx: Executor, s: SiblingSet, except: string | null, placement: Placement, anchorRank?: string): Promise<string> {
  let rank: string;
  if ('before' in placement) rank = rankBetween(await neighbour(trx, s, except, '<', anchorRank as string), anchorRank as string);
  else if ('after' in placement) rank = rankBetween(anchorRank as string, await neighbour(trx, s, except, '>', anchorRank as string));
  else rank = rankBetween(await neighbour(trx, s, except, '<', null), null);
  return rank;
}

/**
 * Fresh short keys for every sibling of `s` but `except`, in their order: when repeated
 * inserts into one gap have made a key longer than MAX_RANK_LENGTH. Two passes, since the
 * unique index is checked per row: first keys no real rank can equal (`~` sorts after
 * every rank character; the id makes each unique), in one statement, then the final ones,
 * 500 rows per statement, letting the event loop turn between them on SQLite (a branch's top
 * level may hold any number of tasks).
 */
export async function rebalance(trx: Executor, s: SiblingSet, except: string | null): Promise<void> {
  const { rows } = await sql<{ id: string }>`select id from tasks where ${siblings(s, except)} order by rank`.execute(trx);
  await sql`update tasks set rank = '~' || id where ${siblings(s, null)}`.execute(trx);
  const keys = evenRanks(rows.length);
  const turn = loopTurns();
  for (let start = 0; start < rows.length; start += 500) {
    const pairs = rows.slice(start, start + 500).map((row, i) => sql`(${row.id}, ${keys[start + i]})`);
    await sql`with v (id, rank) as (values ${sql.join(pairs)})
      update tasks set rank = (select v.rank from v where v.id = tasks.id)
      where tenant_id = ${s.tenantId} and id in (select id from v)`.execute(trx);
    await turn();
  }
}

/**
 * PostgreSQL: takes the sibling set's turn, a row lock on its owner (the parent task, or the
 * branch for the top level). Without it N writers placing into one gap at once compute one
 * key, and all but one retry, N rounds for the last. FOR NO KEY UPDATE does not conflict with
 * the key-share locks that other tasks' foreign keys take on the same row, so creates
 * elsewhere in the branch go on. With it, siblings are placed one writer at a time and a
 * collision should not happen; `retryingRankCollisions` stays as the safety net for one
 * that does, a retry instead of a 500.
 */
async function lockSiblings(trx: Executor, s: SiblingSet): Promise<void> {
  if (s.parentId === null) await sql`select id from branches where tenant_id = ${s.tenantId} and id = ${s.branchId} for no key update`.execute(trx);
  else await sql`select id from tasks where tenant_id = ${s.tenantId} and id = ${s.parentId} for no key update`.execute(trx);
}

/** `rankFor`, rebalancing the siblings first when the key it gives is too long. */
export async function placeAmong(trx: Executor, dialect: DialectName, s: SiblingSet, except: string | null, placement: Placement, anchor: (() => Promise<string>) | undefined): Promise<string> {
  if (dialect === 'postgres') await lockSiblings(trx, s);
  const rank = await rankFor(trx, s, except, placement, anchor ? await anchor() : undefined);
  if (rank.length <= MAX_RANK_LENGTH) return rank;
  await rebalance(trx, s, except);
  return rankFor(trx, s, except, placement, anchor ? await anchor() : undefined);
}

export const RANK_INDEX = 'tasks_sibling_rank';

/** A concurrent writer took the rank this unit chose (PostgreSQL reports the index by name). */
export function isRankCollision(error: unknown): boolean {
  const e = error as { code?: unknown; constraint?: unknown; message?: unknown } | null;
  if (!e) return false;
  if (e.code === '23505') return e.constraint === RANK_INDEX;
  return typeof e.code === 'string' && e.code.startsWith('SQLITE_CONSTRAINT') && typeof e.message === 'string' && e.message.includes(RANK_INDEX);
}

/** Runs `unit` again (a few times) when it lost a rank to a concurrent writer. */
export async function retryingRankCollisions<T>(unit: () => Promise<T>, attempts = 8): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await unit();
    } catch (error) {
      if (!isRankCollision(error) || attempt >= attempts) throw error;
      // A little jitter, so that the writers that collided do not collide again.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * attempt));
    }
  }
}
