import { AgentstoreError } from '../../core/errors.js';
import { isUuid } from '../../core/ids.js';
import { unstorableJsonAt } from '../../core/json.js';
import { assertText } from '../../core/text.js';
import { checkContent, type MessageContent } from './content.js';
import { CONVERSATION_STATUSES, MESSAGE_ROLES, type ConversationInput, type ConversationStatus, type JsonObject, type MessageEdit, type MessageInput, type MessageRole, type TokenUsage } from './types.js';

export const MAX_BATCH = 100;
export const MAX_METADATA_BYTES = 64 * 1024;
const MAX_REF = 256;
const CLIENT_ID = /^[\x21-\x7e]{1,255}$/;
const USAGE_FIELDS = ['inputTokens', 'outputTokens', 'totalTokens', 'reasoningTokens', 'cachedInputTokens'] as const;

export function checkConversationId(id: string, field = 'id'): string {
  if (typeof id !== 'string' || !isUuid(id)) throw AgentstoreError.invalidField(field, 'must be a conversation id (a UUID)');
  return id;
}

export function checkSeq(seq: unknown, field: string, min = 1): number {
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < min) throw AgentstoreError.invalidField(field, `must be an integer of at least ${min}`);
  return seq;
}

/** An agent or end-user id: the platform's own, free text. */
export function checkRef(value: unknown, field: string): string {
  assertText(value, field);
  const text = value as string;
  if (text.length === 0 || text.length > MAX_REF) throw AgentstoreError.invalidField(field, `must be 1-${MAX_REF} characters`);
  return text;
}

function optionalRef(value: unknown, field: string): string | null | undefined {
  return value === undefined || value === null ? (value as null | undefined) : checkRef(value, field);
}

export function checkMetadata(value: unknown, field: string): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw AgentstoreError.invalidField(field, 'must be a JSON object');
  const bad = unstorableJsonAt(value, field);
  if (bad) throw AgentstoreError.invalidField(bad.path, bad.problem);
  if (Buffer.byteLength(JSON.stringify(value)) > MAX_METADATA_BYTES) throw AgentstoreError.invalidField(field, `must be at most ${MAX_METADATA_BYTES} bytes of JSON`);
  return value as JsonObject;
}

export function checkStatus(value: unknown, field: string): ConversationStatus {
  if (!CONVERSATION_STATUSES.includes(value as ConversationStatus)) throw AgentstoreError.invalidField(field, `must be one of ${CONVERSATION_STATUSES.join(', ')}`);
  return value as ConversationStatus;
}

function checkTitle(value: unknown, field: string): string | null {
  if (value === null) return null;
  assertText(value, field);
  if ((value as string).length > 512) throw AgentstoreError.invalidField(field, 'must be at most 512 characters');
  return value as string;
}

const CONVERSATION_FIELDS = new Set(['agentId', 'endUserId', 'title', 'status', 'metadata']);

/** A conversation's fields as given (create or patch): only those present. */
export function checkConversationInput(input: ConversationInput, at = ''): ConversationInput {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw AgentstoreError.invalidField(at || 'body', 'must be an object');
  for (const key of Object.keys(input)) if (!CONVERSATION_FIELDS.has(key)) throw AgentstoreError.invalidField(`${at}/${key}`, 'is not a conversation field');
  const out: { -readonly [K in keyof ConversationInput]: ConversationInput[K] } = {};
  if (input.agentId !== undefined) out.agentId = optionalRef(input.agentId, `${at}/agentId`) ?? null;
  if (input.endUserId !== undefined) out.endUserId = optionalRef(input.endUserId, `${at}/endUserId`) ?? null;
  if (input.title !== undefined) out.title = checkTitle(input.title, `${at}/title`);
  if (input.status !== undefined) out.status = checkStatus(input.status, `${at}/status`);
  if (input.metadata !== undefined) out.metadata = checkMetadata(input.metadata, `${at}/metadata`);
  return out;
}

function checkUsage(value: unknown, field: string): TokenUsage {
  const usage = checkMetadata(value, field);
  for (const name of USAGE_FIELDS) {
    const n = usage[name];
    if (n !== undefined && (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)) throw AgentstoreError.invalidField(`${field}/${name}`, 'must be a non-negative integer');
  }
  return usage as TokenUsage;
}

function checkModel(value: unknown, field: string): string {
  assertText(value, field);
  if ((value as string).length === 0 || (value as string).length > MAX_REF) throw AgentstoreError.invalidField(field, `must be 1-${MAX_REF} characters`);
  return value as string;
}

const MESSAGE_FIELDS = new Set(['role', 'content', 'clientId', 'model', 'usage', 'metadata']);

export interface CheckedMessage extends MessageInput {
  /** The message as stored, for its size. */
  readonly bytes: number;
}

/**
 * One message as given, at JSON pointer `at` (`''` for a single append, `/messages/3` in a
 * batch). Over `maxBytes` (its JSON, all fields) is a 413 naming it.
 */
export function checkMessage(input: MessageInput, at: string, maxBytes: number): CheckedMessage {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw AgentstoreError.invalidField(at || 'body', 'must be a message object');
  for (const key of Object.keys(input)) if (!MESSAGE_FIELDS.has(key)) throw AgentstoreError.invalidField(`${at}/${key}`, 'is not a message field');
  if (!MESSAGE_ROLES.includes(input.role)) throw AgentstoreError.invalidField(`${at}/role`, `must be one of ${MESSAGE_ROLES.join(', ')}`);
  const content: MessageContent = checkContent(input.content, `${at}/content`);
  const out: { -readonly [K in keyof MessageInput]: MessageInput[K] } = { role: input.role as MessageRole, content };
  if (input.clientId !== undefined) {
    if (typeof input.clientId !== 'string' || !CLIENT_ID.test(input.clientId)) throw AgentstoreError.invalidField(`${at}/clientId`, 'must be 1-255 printable ASCII characters without spaces');
    out.clientId = input.clientId;
  }
  if (input.model !== undefined) out.model = checkModel(input.model, `${at}/model`);
  if (input.usage !== undefined) out.usage = checkUsage(input.usage, `${at}/usage`);
  if (input.metadata !== undefined) out.metadata = checkMetadata(input.metadata, `${at}/metadata`);
  const bytes = Buffer.byteLength(JSON.stringify(out));
  if (bytes > maxBytes) throw tooLarge(at || 'body', `a message may be at most ${maxBytes} bytes of JSON (AGENTSTORE_MAX_MESSAGE_BYTES); this one is ${bytes}`);
  return { ...out, bytes };
}

export function tooLarge(field: string, message: string): AgentstoreError {
  return new AgentstoreError('agentstore.payload_too_large', `${field}: ${message}`, { errors: [{ field, message }] });
}

/** A batch: 1-100 messages, each within the bound, and all within four times it. */
export function checkBatch(inputs: readonly MessageInput[], maxBytes: number): CheckedMessage[] {
  if (!Array.isArray(inputs) || inputs.length === 0 || inputs.length > MAX_BATCH) throw AgentstoreError.invalidField('/messages', `must be an array of 1-${MAX_BATCH} messages`);
  const checked = inputs.map((m, i) => checkMessage(m, `/messages/${i}`, maxBytes));
  const total = checked.reduce((sum, m) => sum + m.bytes, 0);
  if (total > 4 * maxBytes) throw tooLarge('/messages', `a batch may be at most ${4 * maxBytes} bytes of messages; this one is ${total}`);
  return checked;
}

const EDIT_FIELDS = new Set(['content', 'model', 'usage', 'metadata']);

export function checkEdit(edit: MessageEdit, maxBytes: number): MessageEdit {
  if (typeof edit !== 'object' || edit === null || Array.isArray(edit)) throw AgentstoreError.invalidField('body', 'must be an object');
  const keys = Object.keys(edit);
  for (const key of keys) if (!EDIT_FIELDS.has(key)) throw AgentstoreError.invalidField(`/${key}`, 'is not an editable message field');
  if (keys.length === 0) throw AgentstoreError.invalidField('body', 'must change at least one of content, model, usage, metadata');
  const out: { -readonly [K in keyof MessageEdit]: MessageEdit[K] } = {};
  if (edit.content !== undefined) out.content = checkContent(edit.content, '/content');
  if (edit.model !== undefined) out.model = edit.model === null ? null : checkModel(edit.model, '/model');
  if (edit.usage !== undefined) out.usage = edit.usage === null ? null : checkUsage(edit.usage, '/usage');
  if (edit.metadata !== undefined) out.metadata = edit.metadata === null ? null : checkMetadata(edit.metadata, '/metadata');
  const bytes = Buffer.byteLength(JSON.stringify(out));
  if (bytes > maxBytes) throw tooLarge('body', `a message may be at most ${maxBytes} bytes of JSON (AGENTSTORE_MAX_MESSAGE_BYTES); this edit is ${bytes}`);
  return out;
}
