/**
 * A message's content: plain text, or the parts of a Vercel AI SDK `UIMessage` (AI SDK 5/6:
 * `text`, `reasoning`, `tool-<name>` and `dynamic-tool`, `file`, `source-url`,
 * `source-document`, `step-start`, `data-<name>`).
 *
 * Strict where a wrong value is a client's bug: every part is an object with a known `type`,
 * and the fields the SDK requires of that type are there with the right JSON type, or the
 * answer names the field (`/content/2/toolCallId`). Open where the SDK grows between
 * releases: unknown fields of a known part are kept as they are (`providerMetadata`,
 * `approval`, …), and a tool part's `state` is any short string (AI SDK 6 added approval
 * states to 5's four), so a newer client's messages are stored unchanged.
 *
 * Files are stored by reference: a file part's `url` points at the file (an https URL, or an
 * id of the caller's file store); `data:` URLs are refused, since they would put the file
 * into every read of the history.
 */
import { AgentstoreError } from '../../core/errors.js';
import { unstorableJsonAt } from '../../core/json.js';

export type TextPart = { type: 'text'; text: string; state?: 'streaming' | 'done'; [key: string]: unknown };
export type ReasoningPart = { type: 'reasoning'; text: string; state?: 'streaming' | 'done'; [key: string]: unknown };
export type ToolPart = { type: `tool-${string}`; toolCallId: string; state: string; input?: unknown; output?: unknown; errorText?: string; [key: string]: unknown };
export type DynamicToolPart = { type: 'dynamic-tool'; toolName: string; toolCallId: string; state: string; input?: unknown; output?: unknown; errorText?: string; [key: string]: unknown };
export type FilePart = { type: 'file'; mediaType: string; url: string; filename?: string; [key: string]: unknown };
export type SourceUrlPart = { type: 'source-url'; sourceId: string; url: string; title?: string; [key: string]: unknown };
export type SourceDocumentPart = { type: 'source-document'; sourceId: string; mediaType: string; title: string; filename?: string; [key: string]: unknown };
export type StepStartPart = { type: 'step-start'; [key: string]: unknown };
export type DataPart = { type: `data-${string}`; id?: string; data: unknown; [key: string]: unknown };

/** One part of a UIMessage, as the AI SDK defines it. */
export type MessagePart = TextPart | ReasoningPart | ToolPart | DynamicToolPart | FilePart | SourceUrlPart | SourceDocumentPart | StepStartPart | DataPart;

/** Plain text, or UIMessage parts. */
export type MessageContent = string | MessagePart[];

export const MAX_PARTS = 1000;
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$/;
const SHORT = 256;
const URL_MAX = 8192;
const TYPES = 'text, reasoning, tool-<name>, dynamic-tool, file, source-url, source-document, step-start or data-<name>';

type Kind = 'string' | 'boolean';

function field(part: Record<string, unknown>, at: string, name: string, kind: Kind, required: boolean, max?: number): void {
  const value = part[name];
  if (value === undefined) {
    if (required) throw AgentstoreError.invalidField(`${at}/${name}`, `is required for a "${String(part.type)}" part`);
    return;
  }
  if (typeof value !== kind) throw AgentstoreError.invalidField(`${at}/${name}`, `must be a ${kind}`);
  if (max !== undefined && (value as string).length > max) throw AgentstoreError.invalidField(`${at}/${name}`, `must be at most ${max} characters`);
}

function streamState(part: Record<string, unknown>, at: string): void {
  if (part.state !== undefined && part.state !== 'streaming' && part.state !== 'done') throw AgentstoreError.invalidField(`${at}/state`, 'must be "streaming" or "done"');
}

function checkPart(value: unknown, at: string): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw AgentstoreError.invalidField(at, 'must be an object (a UIMessage part)');
  const part = value as Record<string, unknown>;
  const type = part.type;
  if (typeof type !== 'string') throw AgentstoreError.invalidField(`${at}/type`, `must be a string: ${TYPES}`);
  if (type === 'text' || type === 'reasoning') {
    field(part, at, 'text', 'string', true);
    streamState(part, at);
    return;
  }
  if (type.startsWith('tool-') || type === 'dynamic-tool') {
    if (type === 'dynamic-tool') field(part, at, 'toolName', 'string', true, SHORT);
    else if (!NAME.test(type.slice(5))) throw AgentstoreError.invalidField(`${at}/type`, 'a tool part is "tool-<name>", the name 1-128 letters, digits, _ . : -');
    field(part, at, 'toolCallId', 'string', true, SHORT);
    field(part, at, 'state', 'string', true, 64);
    field(part, at, 'errorText', 'string', false);
    field(part, at, 'providerExecuted', 'boolean', false);
    return;
  }
  if (type.startsWith('data-')) {
    if (!NAME.test(type.slice(5))) throw AgentstoreError.invalidField(`${at}/type`, 'a data part is "data-<name>", the name 1-128 letters, digits, _ . : -');
    if (!('data' in part)) throw AgentstoreError.invalidField(`${at}/data`, 'is required for a data part');
    field(part, at, 'id', 'string', false, SHORT);
    return;
  }
  switch (type) {
    case 'file':
      field(part, at, 'mediaType', 'string', true, SHORT);
      field(part, at, 'url', 'string', true, URL_MAX);
      field(part, at, 'filename', 'string', false, 1024);
      if (/^data:/i.test(part.url as string)) throw AgentstoreError.invalidField(`${at}/url`, 'files are stored by reference: upload the file and give its URL, not a data: URL');
      return;
    case 'source-url':
      field(part, at, 'sourceId', 'string', true, SHORT);
      field(part, at, 'url', 'string', true, URL_MAX);
      field(part, at, 'title', 'string', false, 1024);
      return;
    case 'source-document':
      field(part, at, 'sourceId', 'string', true, SHORT);
      field(part, at, 'mediaType', 'string', true, SHORT);
      field(part, at, 'title', 'string', true, 1024);
      field(part, at, 'filename', 'string', false, 1024);
      return;
    case 'step-start':
      return;
    default:
      throw AgentstoreError.invalidField(`${at}/type`, `is not a UIMessage part type: ${TYPES}`);
  }
}

/** Checks content as it arrives (`at`: its JSON pointer) and returns it typed. */
export function checkContent(value: unknown, at: string): MessageContent {
  if (typeof value === 'string') {
    const bad = unstorableJsonAt(value, at);
    if (bad) throw AgentstoreError.invalidField(bad.path, bad.problem);
    return value;
  }
  if (!Array.isArray(value)) throw AgentstoreError.invalidField(at, 'must be a string or an array of UIMessage parts');
  if (value.length > MAX_PARTS) throw AgentstoreError.invalidField(at, `must have at most ${MAX_PARTS} parts`);
  value.forEach((part, i) => checkPart(part, `${at}/${i}`));
  const bad = unstorableJsonAt(value, at);
  if (bad) throw AgentstoreError.invalidField(bad.path, bad.problem);
  return value as MessagePart[];
}

/** What search indexes: the text itself, or the text parts joined (reasoning and tool data are not searched). */
export function searchableText(content: MessageContent): string {
  if (typeof content === 'string') return content;
  let out = '';
  for (const part of content) {
    if (part.type === 'text') out += (out ? '\n' : '') + (part as TextPart).text;
  }
  return out;
}
