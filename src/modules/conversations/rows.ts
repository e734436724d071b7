import { fromJsonColumn, fromNullableJsonColumn, toIso, toJsonColumn } from '../../db/dialect.js';
import type { DialectName } from '../../db/dialect.js';
import type { ConversationsTable, MessagesTable } from '../../db/schema.js';
import { searchableText, type MessageContent } from './content.js';
import type { Conversation, ConversationStatus, JsonObject, Message, MessageInput, MessageRole, TokenUsage } from './types.js';

export function toConversation(row: ConversationsTable): Conversation {
  return {
    id: row.id,
    agentId: row.agent_id,
    endUserId: row.end_user_id,
    title: row.title,
    status: row.status as ConversationStatus,
    metadata: fromJsonColumn<JsonObject>(row.metadata),
    lastSeq: Number(row.last_seq),
    messageCount: Number(row.message_count),
    parentId: row.parent_id,
    forkSeq: row.fork_seq === null ? null : Number(row.fork_seq),
    version: row.version,
    createdAt: toIso(row.created_at),
    updatedAt: toIso(row.updated_at),
  };
}

/**
 * `dialect`: a string content is JSON text on SQLite, but pg hands a jsonb string back
 * parsed, so only the dialect tells `"hi"` (the text hi) from `"\"hi\""`.
 */
export function toMessage(row: MessagesTable, dialect: DialectName): Message {
  return {
    conversationId: row.conversation_id,
    seq: Number(row.seq),
    clientId: row.client_id,
    role: row.role as MessageRole,
    content: dialect === 'sqlite' ? fromJsonColumn<MessageContent>(row.content) : (row.content as MessageContent),
    model: row.model,
    usage: fromNullableJsonColumn<TokenUsage>(row.usage),
    metadata: fromNullableJsonColumn<JsonObject>(row.metadata),
    version: row.version,
    createdAt: toIso(row.created_at),
    updatedAt: toIso(row.updated_at),
  };
}

/** The row of a new message, and the message as the API returns it. */
export function newMessageRow(tenantId: string, conversationId: string, seq: number, input: MessageInput, now: string): { row: MessagesTable; message: Message } {
  const row: MessagesTable = {
    tenant_id: tenantId,
    conversation_id: conversationId,
    seq,
    client_id: input.clientId ?? null,
    role: input.role,
    content: toJsonColumn(input.content),
    text: searchableText(input.content),
    model: input.model ?? null,
    usage: input.usage === undefined ? null : toJsonColumn(input.usage),
    metadata: input.metadata === undefined ? null : toJsonColumn(input.metadata),
    version: 1,
    created_at: now,
    updated_at: now,
  };
  const message: Message = {
    conversationId,
    seq,
    clientId: row.client_id,
    role: input.role,
    content: input.content,
    model: row.model,
    usage: input.usage ?? null,
    metadata: input.metadata ?? null,
    version: 1,
    createdAt: now,
    updatedAt: now,
  };
  return { row, message };
}

/**
 * The columns a message is read with: never `select *`, which on PostgreSQL also sends the
 * generated tsvector of every message read.
 */
export const MESSAGE_COLUMNS = ['tenant_id', 'conversation_id', 'seq', 'client_id', 'role', 'content', 'text', 'model', 'usage', 'metadata', 'version', 'created_at', 'updated_at'] as const satisfies readonly (keyof MessagesTable)[];

/** A message for the change feed and the audit log's resource id. */
export function messageResourceId(conversationId: string, seq: number): string {
  return `${conversationId}/${seq}`;
}
