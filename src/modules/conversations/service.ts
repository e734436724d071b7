import { sql } from 'kysely';
import { requireRole } from '../../core/context.js';
import { decodeCursor, encodeCursor, pageSize } from '../../core/cursor.js';
import { AgentstoreError } from '../../core/errors.js';
import { uuidv7 } from '../../core/ids.js';
import type { Database, Executor } from '../../db/database.js';
import { toJsonColumn } from '../../db/dialect.js';
import { isUniqueViolation } from '../../db/errors.js';
import { idempotentRequest, rememberIdempotent, replayIdempotent } from '../../db/idempotency.js';
import type { ConversationsTable } from '../../db/schema.js';
import type { UnitOfWork, UnitOfWorkRunner } from '../../db/unit-of-work.js';
import { searchableText } from './content.js';
import { copyMessages, deleteMessages, OFF_LOOP_MESSAGES } from './history.js';
import { AllReplayed, appendIn, parseMessageQuery, selectMessages, toMessagePage } from './messages.js';
import { MESSAGE_COLUMNS, messageResourceId, toConversation, toMessage } from './rows.js';
import { checkSearch, runSearch } from './search.js';
import type { Conversation, ConversationInput, ConversationsService, Precondition } from './types.js';
import { checkBatch, checkConversationId, checkConversationInput, checkEdit, checkMessage, checkMetadata, checkRef, checkSeq, checkStatus, tooLarge } from './validation.js';

export const DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024;

function loadConversation(trx: Executor, tenantId: string, id: string, lock = false) {
  let q = trx.selectFrom('conversations').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id);
  if (lock) q = q.forUpdate();
  return q.executeTakeFirst();
}

/**
 * Newest first, with the filters given: (tenant, created_at, id) read backwards, or with one
 * filter the index that leads with it (migration 0008), stopping after the page.
 */
export function selectConversations(trx: Executor, tenantId: string, filters: { agentId?: string | undefined; endUserId?: string | undefined; status?: string | undefined }, after: [string, string] | undefined, limit: number) {
  let q = trx.selectFrom('conversations').selectAll().where('tenant_id', '=', tenantId);
  if (filters.agentId !== undefined) q = q.where('agent_id', '=', filters.agentId);
  if (filters.endUserId !== undefined) q = q.where('end_user_id', '=', filters.endUserId);
  if (filters.status !== undefined) q = q.where('status', '=', filters.status);
  if (after) q = q.where((eb) => eb.or([eb('created_at', '<', after[0]), eb.and([eb('created_at', '=', after[0]), eb('id', '<', after[1])])]));
  return q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit + 1);
}

function checkPrecondition(options: Precondition, version: number, what: string): void {
  if (options.ifMatch !== undefined && options.ifMatch !== '*' && options.ifMatch !== version) {
    throw AgentstoreError.preconditionFailed(`the ${what} changed since it was read`, version);
  }
}

export function createConversationsService(deps: { db: Database; uow: UnitOfWorkRunner; maxMessageBytes: number }): ConversationsService {
  const { db, uow, maxMessageBytes } = deps;
  const dialect = db.dialect;
  // SQLite's FOR UPDATE does not exist; its single writer serialises the unit anyway.
  const lock = dialect === 'postgres';

  const insertConversation = async (w: UnitOfWork, row: ConversationsTable, action: string, details?: unknown): Promise<Conversation> => {
    await w.trx.insertInto('conversations').values(row).execute();
    const conversation = toConversation(row);
    await w.record({ action, resourceType: 'conversation', resourceId: row.id, version: 1, data: conversation, ...(details === undefined ? {} : { details }) });
    return conversation;
  };

  const newRow = (w: UnitOfWork, input: ConversationInput): ConversationsTable => ({
    tenant_id: w.ctx.tenantId,
    id: uuidv7(),
    agent_id: input.agentId ?? null,
    end_user_id: input.endUserId ?? null,
    title: input.title ?? null,
    status: input.status ?? 'active',
    metadata: toJsonColumn(input.metadata ?? {}),
    last_seq: 0,
    message_count: 0,
    parent_id: null,
    fork_seq: null,
    version: 1,
    created_at: w.now,
    updated_at: w.now,
  });

  /** A create with an optional Idempotency-Key: the first answer is stored in its unit. */
  const keyedCreate = async (ctx: Parameters<ConversationsService['create']>[0], key: string | undefined, scope: string, request: string, fn: (w: UnitOfWork) => Promise<Conversation>, offLoop = false) => {
    const keyed = idempotentRequest(key, scope, request);
    if (keyed) {
      const replay = await replayIdempotent<Conversation>(uow, ctx, keyed);
      if (replay) return { conversation: replay, replayed: true };
    }
    try {
      const conversation = await uow.write(ctx, async (w) => {
        const made = await fn(w);
        if (keyed) await rememberIdempotent(w, keyed, 201, made);
        return made;
      }, { offLoop });
      return { conversation, replayed: false };
    } catch (error) {
      if (keyed && isUniqueViolation(error)) {
        const replay = await replayIdempotent<Conversation>(uow, ctx, keyed);
        if (replay) return { conversation: replay, replayed: true };
      }
      throw error;
    }
  };

  const existing = async (ctx: Parameters<ConversationsService['get']>[0], id: string) => {
    const row = await uow.read(ctx, (trx) => loadConversation(trx, ctx.tenantId, id));
    if (!row) throw AgentstoreError.notFound('conversation');
    return row;
  };

  const appendChecked = async (ctx: Parameters<ConversationsService['get']>[0], id: string, inputs: ReturnType<typeof checkBatch>) => {
    try {
      return await uow.write(ctx, (w) => appendIn(w, dialect, id, inputs));
    } catch (error) {
      if (error instanceof AllReplayed) return error.result;
      // A retry whose first attempt committed between our lookup and our insert cannot
      // happen under the row lock; a violation here is another writer's bug, not a 500.
      if (isUniqueViolation(error)) throw AgentstoreError.conflict('a message with this clientId was appended concurrently; retry');
      throw error;
    }
  };

  return {
    async create(ctx, input = {}, options = {}) {
      requireRole(ctx, 'member');
      const checked = checkConversationInput(input);
      return keyedCreate(ctx, options.idempotencyKey, 'conversations.create', JSON.stringify(checked), (w) => insertConversation(w, newRow(w, checked), 'create'));
    },

    async get(ctx, id) {
      requireRole(ctx, 'viewer');
      checkConversationId(id);
      return toConversation(await existing(ctx, id));
    },

    async update(ctx, id, patch, options = {}) {
      requireRole(ctx, 'member');
      checkConversationId(id);
      const checked = checkConversationInput(patch);
      if (Object.keys(checked).length === 0) throw AgentstoreError.invalidField('body', 'must change at least one of agentId, endUserId, title, status, metadata');
      return uow.write(ctx, async (w) => {
        const row = await loadConversation(w.trx, ctx.tenantId, id, lock);
        if (!row) throw AgentstoreError.notFound('conversation');
        checkPrecondition(options, row.version, 'conversation');
        const next: ConversationsTable = {
          ...row,
          ...(checked.agentId !== undefined ? { agent_id: checked.agentId } : {}),
          ...(checked.endUserId !== undefined ? { end_user_id: checked.endUserId } : {}),
          ...(checked.title !== undefined ? { title: checked.title } : {}),
          ...(checked.status !== undefined ? { status: checked.status } : {}),
          ...(checked.metadata !== undefined ? { metadata: toJsonColumn(checked.metadata) } : {}),
          version: row.version + 1,
          updated_at: w.now,
        };
        await w.trx
          .updateTable('conversations')
          .set({ agent_id: next.agent_id, end_user_id: next.end_user_id, title: next.title, status: next.status, metadata: next.metadata, version: next.version, updated_at: w.now })
          .where('tenant_id', '=', ctx.tenantId)
          .where('id', '=', id)
          .execute();
        const conversation = toConversation(next);
        await w.record({ action: 'update', resourceType: 'conversation', resourceId: id, version: next.version, data: conversation });
        return conversation;
      });
    },

    async remove(ctx, id, options = {}) {
      requireRole(ctx, 'member');
      checkConversationId(id);
      const found = await existing(ctx, id);
      // A long history is deleted off the event loop (SQLite); a short one is not worth a thread.
      const offLoop = Number(found.message_count) > OFF_LOOP_MESSAGES;
      await uow.write(ctx, async (w) => {
        const row = await loadConversation(w.trx, ctx.tenantId, id, lock);
        if (!row) throw AgentstoreError.notFound('conversation');
        checkPrecondition(options, row.version, 'conversation');
        const messages = await deleteMessages(w.trx, dialect, ctx.tenantId, id);
        await w.trx.deleteFrom('conversations').where('tenant_id', '=', ctx.tenantId).where('id', '=', id).execute();
        await w.record({ action: 'delete', resourceType: 'conversation', resourceId: id, data: null, details: { messages } });
      }, { offLoop });
    },

    async list(ctx, query = {}) {
      requireRole(ctx, 'viewer');
      const limit = pageSize(query.limit);
      const agentId = query.agentId === undefined ? undefined : checkRef(query.agentId, 'agentId');
      const endUserId = query.endUserId === undefined ? undefined : checkRef(query.endUserId, 'endUserId');
      const status = query.status === undefined ? undefined : checkStatus(query.status, 'status');
      const scope = `conversations:${JSON.stringify([agentId, endUserId, status])}`;
      const after = query.cursor === undefined ? undefined : (decodeCursor(scope, query.cursor, ['timestamp', 'text']) as [string, string]);
      const rows = await uow.read(ctx, (trx) => selectConversations(trx, ctx.tenantId, { agentId, endUserId, status }, after, limit).execute());
      const items = rows.slice(0, limit).map(toConversation);
      const last = items.at(-1);
      return { items, nextCursor: rows.length > limit && last ? encodeCursor(scope, [last.createdAt, last.id]) : null };
    },

    async append(ctx, id, message) {
      requireRole(ctx, 'member');
      checkConversationId(id);
      const result = await appendChecked(ctx, id, [checkMessage(message, '', maxMessageBytes)]);
      return { message: result.items[0] as NonNullable<(typeof result.items)[0]>, replayed: result.replayed[0] === true };
    },

    async appendMany(ctx, id, messages) {
      requireRole(ctx, 'member');
      checkConversationId(id);
      return appendChecked(ctx, id, checkBatch(messages, maxMessageBytes));
    },

    async messages(ctx, id, query = {}) {
      requireRole(ctx, 'viewer');
      checkConversationId(id);
      const read = parseMessageQuery(id, query);
      const rows = await uow.read(ctx, async (trx) => {
        const found = await selectMessages(trx, dialect, ctx.tenantId, id, read).execute();
        // No message: an empty conversation, or none (404) - only then is it looked up.
        if (found.length === 0 && !(await loadConversation(trx, ctx.tenantId, id))) throw AgentstoreError.notFound('conversation');
        return found;
      });
      return toMessagePage(dialect, id, read, rows);
    },

    async last(ctx, id, n) {
      return (await this.messages(ctx, id, { last: n })).items;
    },

    async after(ctx, id, seq, limit) {
      return this.messages(ctx, id, { after: seq, ...(limit === undefined ? {} : { limit }) });
    },

    async getMessage(ctx, id, seq) {
      requireRole(ctx, 'viewer');
      checkConversationId(id);
      checkSeq(seq, 'seq');
      const row = await uow.read(ctx, (trx) =>
        trx.selectFrom('messages').select(MESSAGE_COLUMNS).where('tenant_id', '=', ctx.tenantId).where('conversation_id', '=', id).where('seq', '=', seq).executeTakeFirst(),
      );
      if (!row) throw AgentstoreError.notFound('message');
      return toMessage(row, dialect);
    },

    async editMessage(ctx, id, seq, edit, options = {}) {
      requireRole(ctx, 'member');
      checkConversationId(id);
      checkSeq(seq, 'seq');
      const checked = checkEdit(edit, maxMessageBytes);
      return uow.write(ctx, async (w) => {
        let q = w.trx.selectFrom('messages').select(MESSAGE_COLUMNS).where('tenant_id', '=', ctx.tenantId).where('conversation_id', '=', id).where('seq', '=', seq);
        if (lock) q = q.forUpdate();
        const row = await q.executeTakeFirst();
        if (!row) throw AgentstoreError.notFound('message');
        checkPrecondition(options, row.version, 'message');
        const before = toMessage(row, dialect);
        const after = {
          ...before,
          ...(checked.content !== undefined ? { content: checked.content } : {}),
          ...(checked.model !== undefined ? { model: checked.model } : {}),
          ...(checked.usage !== undefined ? { usage: checked.usage } : {}),
          ...(checked.metadata !== undefined ? { metadata: checked.metadata } : {}),
          version: before.version + 1,
          updatedAt: w.now,
        };
        const bytes = Buffer.byteLength(JSON.stringify({ role: after.role, content: after.content, clientId: after.clientId, model: after.model, usage: after.usage, metadata: after.metadata }));
        if (bytes > maxMessageBytes) throw tooLarge('body', `a message may be at most ${maxMessageBytes} bytes of JSON (AGENTSTORE_MAX_MESSAGE_BYTES); the edited one is ${bytes}`);
        await w.trx
          .updateTable('messages')
          .set({
            content: toJsonColumn(after.content),
            text: searchableText(after.content),
            model: after.model,
            usage: after.usage === null ? null : toJsonColumn(after.usage),
            metadata: after.metadata === null ? null : toJsonColumn(after.metadata),
            version: after.version,
            updated_at: w.now,
          })
          .where('tenant_id', '=', ctx.tenantId)
          .where('conversation_id', '=', id)
          .where('seq', '=', seq)
          .execute();
        await w.record({ action: 'update', resourceType: 'message', resourceId: messageResourceId(id, seq), version: after.version, data: after });
        return after;
      });
    },

    async deleteMessage(ctx, id, seq, options = {}) {
      requireRole(ctx, 'member');
      checkConversationId(id);
      checkSeq(seq, 'seq');
      await uow.write(ctx, async (w) => {
        // The conversation's row first, as appends take it: the same lock order, so a delete
        // and an append (whose client id check may wait on this delete) cannot deadlock.
        // last_seq stays: a deleted message's seq is never handed out again.
        const head = await sql`update conversations set message_count = message_count - 1, updated_at = ${w.now} where tenant_id = ${ctx.tenantId} and id = ${id} returning id`.execute(w.trx);
        if (head.rows.length === 0) throw AgentstoreError.notFound('message');
        const row = await w.trx.selectFrom('messages').select(['version']).where('tenant_id', '=', ctx.tenantId).where('conversation_id', '=', id).where('seq', '=', seq).executeTakeFirst();
        if (!row) throw AgentstoreError.notFound('message');
        checkPrecondition(options, row.version, 'message');
        await w.trx.deleteFrom('messages').where('tenant_id', '=', ctx.tenantId).where('conversation_id', '=', id).where('seq', '=', seq).execute();
        await w.record({ action: 'delete', resourceType: 'message', resourceId: messageResourceId(id, seq), data: null });
      });
    },

    async fork(ctx, id, input, options = {}) {
      requireRole(ctx, 'member');
      checkConversationId(id);
      if (typeof input !== 'object' || input === null) throw AgentstoreError.invalidField('body', 'must be an object');
      for (const key of Object.keys(input)) if (!['atSeq', 'title', 'metadata'].includes(key)) throw AgentstoreError.invalidField(`/${key}`, 'is not a fork field');
      const atSeq = checkSeq(input.atSeq, '/atSeq');
      const own = checkConversationInput({ ...(input.title !== undefined ? { title: input.title } : {}), ...(input.metadata !== undefined ? { metadata: checkMetadata(input.metadata, '/metadata') } : {}) });
      const parent = await existing(ctx, id);
      if (atSeq > Number(parent.last_seq)) throw AgentstoreError.invalidField('/atSeq', `must be at most the conversation's last seq (${Number(parent.last_seq)})`);
      const offLoop = Number(parent.message_count) > OFF_LOOP_MESSAGES;
      const request = JSON.stringify([id, atSeq, own]);
      return keyedCreate(
        ctx,
        options.idempotencyKey,
        'conversations.fork',
        request,
        async (w) => {
          const source = await loadConversation(w.trx, ctx.tenantId, id, lock);
          if (!source) throw AgentstoreError.notFound('conversation');
          const row: ConversationsTable = {
            ...newRow(w, { agentId: source.agent_id, endUserId: source.end_user_id, title: own.title !== undefined ? own.title : source.title, metadata: own.metadata ?? {} }),
            parent_id: id,
            fork_seq: atSeq,
            last_seq: atSeq,
          };
          await w.trx.insertInto('conversations').values(row).execute();
          const copied = await copyMessages(w.trx, dialect, ctx.tenantId, id, row.id, atSeq, w.now);
          await sql`update conversations set message_count = ${copied} where tenant_id = ${ctx.tenantId} and id = ${row.id}`.execute(w.trx);
          const conversation = toConversation({ ...row, message_count: copied });
          await w.record({ action: 'fork', resourceType: 'conversation', resourceId: row.id, version: 1, data: conversation, details: { parentId: id, atSeq, messages: copied } });
          return conversation;
        },
        offLoop,
      );
    },

    async search(ctx, query) {
      requireRole(ctx, 'viewer');
      const checked = checkSearch(query);
      // A common word can match much of a tenant's history: a scan (gated, off the SQLite loop).
      return { items: await uow.read(ctx, (trx) => runSearch(trx, dialect, ctx.tenantId, checked), { scan: true }) };
    },
  };
}
