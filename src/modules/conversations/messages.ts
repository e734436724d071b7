import { sql } from 'kysely';
import { AgentstoreError } from '../../core/errors.js';
import { MAX_PAGE_SIZE, decodeCursor, encodeCursor, pageSize, type Page } from '../../core/cursor.js';
import type { Executor } from '../../db/database.js';
import type { DialectName } from '../../db/dialect.js';
import type { MessagesTable } from '../../db/schema.js';
import type { UnitOfWork } from '../../db/unit-of-work.js';
import { MESSAGE_COLUMNS, messageResourceId, newMessageRow, toMessage } from './rows.js';
import type { AppendResult, Message, MessageQuery } from './types.js';
import type { CheckedMessage } from './validation.js';

/**
 * Thrown inside an append's unit when every message's client id turned out to be stored
 * already (a retry that raced its first attempt): the unit rolls back, writing nothing, and
 * the caller answers with the stored messages.
 */
export class AllReplayed {
  constructor(readonly result: AppendResult) {}
}

/**
 * Appends `inputs` to a conversation inside the unit `w`. The seqs come from the
 * conversation's `last_seq`, bumped by one `UPDATE … RETURNING`: on PostgreSQL the row lock
 * it takes orders every appender of this conversation (only this one) until COMMIT, so the
 * next one reads the bumped value; on SQLite the single writer orders them. Client ids are
 * looked up after the lock, so a concurrent retry of the same message finds the first
 * attempt's row once that committed, and writes nothing.
 */
export async function appendIn(w: UnitOfWork, dialect: DialectName, conversationId: string, inputs: readonly CheckedMessage[]): Promise<AppendResult> {
  const { trx, ctx, now } = w;
  const n = inputs.length;
  const head = await sql<{ last_seq: number | string }>`update conversations set last_seq = last_seq + ${n}, message_count = message_count + ${n}, updated_at = ${now}
    where tenant_id = ${ctx.tenantId} and id = ${conversationId} returning last_seq`.execute(trx);
  const top = head.rows[0];
  if (!top) throw AgentstoreError.notFound('conversation');
  const base = Number(top.last_seq) - n;
  const clientIds = [...new Set(inputs.flatMap((m) => (m.clientId === undefined ? [] : [m.clientId])))];
  const known = new Map<string, Message>();
  if (clientIds.length > 0) {
    const rows = await trx.selectFrom('messages').select(MESSAGE_COLUMNS).where('tenant_id', '=', ctx.tenantId).where('conversation_id', '=', conversationId).where('client_id', 'in', clientIds).execute();
    for (const row of rows) known.set(row.client_id as string, toMessage(row, dialect));
  }
  const items: Message[] = [];
  const replayed: boolean[] = [];
  const rows: MessagesTable[] = [];
  for (const input of inputs) {
    const stored = input.clientId === undefined ? undefined : known.get(input.clientId);
    if (stored) {
      items.push(stored);
      replayed.push(true);
      continue;
    }
    const { row, message } = newMessageRow(ctx.tenantId, conversationId, base + rows.length + 1, input, now);
    rows.push(row);
    items.push(message);
    replayed.push(false);
    // A client id twice in one batch: the second is the first, replayed.
    if (input.clientId !== undefined) known.set(input.clientId, message);
  }
  if (rows.length === 0) throw new AllReplayed({ items, replayed });
  if (rows.length < n) {
    // Replayed messages took no seq: give back what the bump took for them (the lock is held).
    await sql`update conversations set last_seq = ${base + rows.length}, message_count = message_count - ${n - rows.length}
      where tenant_id = ${ctx.tenantId} and id = ${conversationId}`.execute(trx);
  }
  await trx.insertInto('messages').values(rows).execute();
  // One audit entry for the append (a turn is one act of its caller, and the audit row was
  // the largest write of a turn after the messages themselves), a change per message.
  const fromSeq = base + 1;
  w.audit({ action: 'append', resourceType: 'conversation', resourceId: conversationId, details: { messages: rows.length, fromSeq, toSeq: fromSeq + rows.length - 1 } });
  for (const [i, message] of items.entries()) {
    if (replayed[i]) continue;
    await w.record({ action: 'create', resourceType: 'message', resourceId: messageResourceId(conversationId, message.seq), data: message, audit: false });
  }
  return { items, replayed };
}

// A page of messages carries at most this much content (its first message always): 500
// messages of 256 KiB would be 128 MB to build and send.
const PAGE_BYTES = 4 * 1024 * 1024;

type Direction = 'after' | 'before';

function decodeMessageCursor(conversationId: string, cursor: string): { direction: Direction; seq: number } {
  const [direction, seq] = decodeCursor(`messages:${conversationId}`, cursor, ['text', 'json']) as [string, unknown];
  if ((direction !== 'after' && direction !== 'before') || typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) {
    throw AgentstoreError.invalidField('cursor', 'is not a cursor returned by this listing');
  }
  return { direction, seq };
}

function seqParam(value: number | undefined, field: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || value < min) throw AgentstoreError.invalidField(field, `must be an integer of at least ${min}`);
  return value;
}

export interface MessageRead {
  readonly direction: Direction;
  /** Exclusive bound: after it (ascending), or before it (descending), or from the end when null. */
  readonly seq: number | null;
  readonly limit: number;
}

/** `last`, `after`, `before` and `cursor` as one range read; at most one of them. */
export function parseMessageQuery(conversationId: string, query: MessageQuery): MessageRead {
  const given = (['last', 'after', 'before', 'cursor'] as const).filter((k) => query[k] !== undefined);
  if (given.length > 1) throw AgentstoreError.invalidField(given[1] as string, `cannot be combined with ${given[0] as string}`);
  if (query.last !== undefined) {
    if (query.limit !== undefined) throw AgentstoreError.invalidField('limit', 'cannot be combined with last (last is the count)');
    const n = seqParam(query.last, 'last', 1) as number;
    if (n > MAX_PAGE_SIZE) throw AgentstoreError.invalidField('last', `must be an integer from 1 to ${MAX_PAGE_SIZE}`);
    return { direction: 'before', seq: null, limit: n };
  }
  const limit = pageSize(query.limit);
  if (query.cursor !== undefined) {
    const { direction, seq } = decodeMessageCursor(conversationId, query.cursor);
    return { direction, seq, limit };
  }
  const before = seqParam(query.before, 'before', 1);
  if (before !== undefined) return { direction: 'before', seq: before, limit };
  return { direction: 'after', seq: seqParam(query.after, 'after', 0) ?? 0, limit };
}

/**
 * One range scan of the primary key (tenant_id, conversation_id, seq): forwards from an
 * exclusive seq, or backwards from one (or from the end), `limit + 1` rows; the page is
 * returned ascending either way.
 */
export function selectMessages(trx: Executor, dialect: DialectName, tenantId: string, conversationId: string, read: MessageRead) {
  const size = dialect === 'postgres' ? sql<number>`octet_length(content::text)` : sql<number>`length(content)`;
  let q = trx.selectFrom('messages').select(MESSAGE_COLUMNS).select(size.as('content_bytes')).where('tenant_id', '=', tenantId).where('conversation_id', '=', conversationId);
  if (read.seq !== null) q = q.where('seq', read.direction === 'after' ? '>' : '<', read.seq);
  return q.orderBy('seq', read.direction === 'after' ? 'asc' : 'desc').limit(read.limit + 1);
}

export function toMessagePage(dialect: DialectName, conversationId: string, read: MessageRead, rows: readonly (MessagesTable & { content_bytes: number | string })[]): Page<Message> {
  const kept: (MessagesTable & { content_bytes: number | string })[] = [];
  let bytes = 0;
  for (const row of rows.slice(0, read.limit)) {
    bytes += Number(row.content_bytes);
    if (kept.length > 0 && bytes > PAGE_BYTES) break;
    kept.push(row);
  }
  const more = rows.length > kept.length;
  const items = kept.map(({ content_bytes: _, ...row }) => toMessage(row, dialect));
  if (read.direction === 'before') items.reverse();
  const edge = read.direction === 'after' ? items.at(-1) : items[0];
  return { items, nextCursor: more && edge ? encodeCursor(`messages:${conversationId}`, [read.direction, edge.seq]) : null };
}
