import { sql } from 'kysely';
import { loopTurns } from '../../core/loop-turns.js';
import type { Executor } from '../../db/database.js';
import type { DialectName } from '../../db/dialect.js';
import { MESSAGE_COLUMNS } from './rows.js';

/**
 * Past this many messages, deleting or forking a conversation runs its unit off the event
 * loop on SQLite (`offLoop`: a worker thread's connection, where a write of any size and its
 * COMMIT cannot hold the loop). Below it the work is a few ms, less than starting the thread.
 */
export const OFF_LOOP_MESSAGES = 2000;

// A chunk of rows per statement, with a turn of the event loop once 2 ms have passed: the
// same transaction, so still all-or-nothing (an in-memory database, which has no worker
// thread, runs even a long history this way; on the worker the turns cost nothing).
const CHUNK = 500;

const COLUMNS = MESSAGE_COLUMNS.join(', ');

/** Deletes a conversation's messages in the caller's unit; returns how many there were. */
export async function deleteMessages(trx: Executor, dialect: DialectName, tenantId: string, conversationId: string): Promise<number> {
  if (dialect === 'postgres') {
    const removed = await trx.deleteFrom('messages').where('tenant_id', '=', tenantId).where('conversation_id', '=', conversationId).executeTakeFirst();
    return Number(removed.numDeletedRows);
  }
  const turn = loopTurns();
  let total = 0;
  for (;;) {
    const removed = await sql`delete from messages where tenant_id = ${tenantId} and conversation_id = ${conversationId} and seq in (
      select seq from messages where tenant_id = ${tenantId} and conversation_id = ${conversationId} order by seq limit ${CHUNK})`.execute(trx);
    const count = Number(removed.numAffectedRows ?? 0n);
    total += count;
    if (count < CHUNK) return total;
    await turn();
  }
}

/**
 * Copies the messages of `from` up to `atSeq` into `to` with their seqs, content and
 * creation times, in the caller's unit, with INSERT … SELECT (nothing passes through
 * JavaScript). PostgreSQL: one statement. SQLite: ranges of seqs, turning the loop between
 * them. Returns how many were copied.
 */
export async function copyMessages(trx: Executor, dialect: DialectName, tenantId: string, from: string, to: string, atSeq: number, now: string): Promise<number> {
  const copy = (lo: number, hi: number) =>
    sql`insert into messages (${sql.raw(COLUMNS)})
      select tenant_id, ${to}, seq, client_id, role, content, text, model, usage, metadata, 1, created_at, ${now}
      from messages where tenant_id = ${tenantId} and conversation_id = ${from} and seq > ${lo} and seq <= ${hi}`.execute(trx);
  if (dialect === 'postgres') return Number((await copy(0, atSeq)).numAffectedRows ?? 0n);
  const turn = loopTurns();
  let total = 0;
  for (let lo = 0; lo < atSeq; lo += CHUNK) {
    total += Number((await copy(lo, Math.min(lo + CHUNK, atSeq))).numAffectedRows ?? 0n);
    await turn();
  }
  return total;
}
