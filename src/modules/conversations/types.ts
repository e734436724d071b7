import type { Page } from '../../core/cursor.js';
import type { TenantContext } from '../../core/context.js';
import type { MessageContent } from './content.js';

export type { MessageContent, MessagePart } from './content.js';

export const CONVERSATION_STATUSES = ['active', 'archived'] as const;
export type ConversationStatus = (typeof CONVERSATION_STATUSES)[number];
export const MESSAGE_ROLES = ['system', 'user', 'assistant', 'tool'] as const;
export type MessageRole = (typeof MESSAGE_ROLES)[number];

export type JsonObject = { [key: string]: unknown };

export interface Conversation {
  readonly id: string;
  readonly agentId: string | null;
  readonly endUserId: string | null;
  readonly title: string | null;
  readonly status: ConversationStatus;
  readonly metadata: JsonObject;
  /** The last seq handed out; the next message gets a larger one. */
  readonly lastSeq: number;
  readonly messageCount: number;
  /** A fork's parent conversation and the seq it was forked at. */
  readonly parentId: string | null;
  readonly forkSeq: number | null;
  /** Counts changes of the conversation's own fields (not appends): its ETag. */
  readonly version: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface ConversationInput {
  readonly agentId?: string | null;
  readonly endUserId?: string | null;
  readonly title?: string | null;
  readonly status?: ConversationStatus;
  readonly metadata?: JsonObject;
}

/** Token counts as the AI SDK reports them; other fields are kept as given. */
export interface TokenUsage {
  readonly inputTokens?: number;
  readonly outputTokens?: number;
  readonly totalTokens?: number;
  readonly reasoningTokens?: number;
  readonly cachedInputTokens?: number;
  readonly [key: string]: unknown;
}

export interface Message {
  readonly conversationId: string;
  readonly seq: number;
  readonly clientId: string | null;
  readonly role: MessageRole;
  readonly content: MessageContent;
  readonly model: string | null;
  readonly usage: TokenUsage | null;
  readonly metadata: JsonObject | null;
  readonly version: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface MessageInput {
  readonly role: MessageRole;
  readonly content: MessageContent;
  /**
   * The caller's id for the message (a UIMessage's `id`): appending the same client id to the
   * conversation again returns the stored message and writes nothing.
   */
  readonly clientId?: string;
  readonly model?: string;
  readonly usage?: TokenUsage;
  readonly metadata?: JsonObject;
}

export interface MessageEdit {
  readonly content?: MessageContent;
  readonly model?: string | null;
  readonly usage?: TokenUsage | null;
  readonly metadata?: JsonObject | null;
}

export interface AppendResult {
  /** The messages in the order given, with their seq. */
  readonly items: Message[];
  /** Per message: true when its client id was stored already, and nothing was written for it. */
  readonly replayed: boolean[];
}

/** Which messages a read returns; always in ascending seq. Default: from the first. */
export interface MessageQuery {
  /** The last N messages. */
  readonly last?: number;
  /** Messages with a larger seq. */
  readonly after?: number;
  /** Messages with a smaller seq (the newest of them). */
  readonly before?: number;
  readonly limit?: number;
  /** The nextCursor of the previous read: continues in the same direction. */
  readonly cursor?: string;
}

export interface ConversationQuery {
  readonly agentId?: string;
  readonly endUserId?: string;
  readonly status?: ConversationStatus;
  readonly limit?: number;
  readonly cursor?: string;
}

export interface SearchQuery {
  /** Words to find (all of them, any order); punctuation and operators are ignored. */
  readonly q: string;
  readonly agentId?: string;
  readonly endUserId?: string;
  readonly limit?: number;
}

export interface SearchHit {
  readonly conversationId: string;
  readonly seq: number;
  readonly role: MessageRole;
  /** The message's searchable text, cut at 500 characters. */
  readonly text: string;
  readonly createdAt: string;
  /** Higher is a better match (comparable within one answer only). */
  readonly score: number;
}

export interface Precondition {
  /** The version the caller read (its ETag); a different current one is 412. */
  readonly ifMatch?: number | '*';
}

export interface ConversationsService {
  create(ctx: TenantContext, input?: ConversationInput, options?: { idempotencyKey?: string }): Promise<{ conversation: Conversation; replayed: boolean }>;
  get(ctx: TenantContext, id: string): Promise<Conversation>;
  update(ctx: TenantContext, id: string, patch: ConversationInput, options?: Precondition): Promise<Conversation>;
  /** Deletes the conversation and all its messages in one unit of work. */
  remove(ctx: TenantContext, id: string, options?: Precondition): Promise<void>;
  /** Newest first. */
  list(ctx: TenantContext, query?: ConversationQuery): Promise<Page<Conversation>>;
  /** Appends one message; `replayed` when its client id was stored already. */
  append(ctx: TenantContext, id: string, message: MessageInput): Promise<{ message: Message; replayed: boolean }>;
  /** Appends up to 100 messages atomically, with consecutive seqs. */
  appendMany(ctx: TenantContext, id: string, messages: readonly MessageInput[]): Promise<AppendResult>;
  messages(ctx: TenantContext, id: string, query?: MessageQuery): Promise<Page<Message>>;
  /** The last `n` messages, ascending (`messages` with `last`). */
  last(ctx: TenantContext, id: string, n: number): Promise<Message[]>;
  /** Up to `limit` messages after `seq`, ascending. */
  after(ctx: TenantContext, id: string, seq: number, limit?: number): Promise<Page<Message>>;
  getMessage(ctx: TenantContext, id: string, seq: number): Promise<Message>;
  editMessage(ctx: TenantContext, id: string, seq: number, edit: MessageEdit, options?: Precondition): Promise<Message>;
  /** Deletes one message; its seq is never handed out again. */
  deleteMessage(ctx: TenantContext, id: string, seq: number, options?: Precondition): Promise<void>;
  /** A new conversation whose history is a copy of this one's messages up to `atSeq`. */
  fork(ctx: TenantContext, id: string, input: { atSeq: number; title?: string | null; metadata?: JsonObject }, options?: { idempotencyKey?: string }): Promise<{ conversation: Conversation; replayed: boolean }>;
  /** Keyword search over the tenant's messages, best match first. */
  search(ctx: TenantContext, query: SearchQuery): Promise<{ items: SearchHit[] }>;
}
