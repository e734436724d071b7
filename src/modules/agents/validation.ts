/**
 * The bounds of an agent, checked in the service (the library gets the same as HTTP; the
 * routes' TypeBox schemas repeat the shape for the OpenAPI document). Errors name body
 * fields as JSON pointers.
 */
import { AgentstoreError } from '../../core/errors.js';
import { isUuid } from '../../core/ids.js';
import { unstorableJsonAt } from '../../core/json.js';
import { unstorableText } from '../../core/text.js';
import { AGENT_STATUSES, type AgentFields, type AgentStatus, type JsonObject } from './types.js';

/** The whole agent as stored JSON, at most: a long system prompt and large tool schemas fit. */
export const MAX_AGENT_BYTES = 256 * 1024;
export const MAX_TAGS = 32;
export const MAX_TOOLS = 128;
export const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,63}$/;
export const SECRET_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
export const MAX_SECRET_BYTES = 16 * 1024;
export const MAX_SECRETS_PER_AGENT = 64;

const TEXT_LIMITS = { name: 200, description: 10_000, industry: 200, model: 200, provider: 100, systemPrompt: 200_000 } as const;
export const AGENT_FIELDS: readonly (keyof AgentFields)[] = ['name', 'description', 'industry', 'model', 'provider', 'modelSettings', 'systemPrompt', 'tools', 'config', 'status', 'tags', 'metadata'];

export function validateAgentId(id: string, field = 'id'): string {
  if (!isUuid(id)) throw AgentstoreError.invalidField(field, 'must be an agent id (a lowercase UUID)');
  return id;
}

export function validateSecretName(name: string): string {
  if (!SECRET_NAME.test(name)) throw AgentstoreError.invalidField('name', 'must be 1-128 characters of letters, digits, _ . -, not starting with . or -');
  return name;
}

export function validateStatus(value: unknown, field = '/status'): AgentStatus {
  if (typeof value !== 'string' || !(AGENT_STATUSES as readonly string[]).includes(value)) throw AgentstoreError.invalidField(field, `must be one of ${AGENT_STATUSES.join(', ')}`);
  return value as AgentStatus;
}

export function validateTag(value: unknown, field: string): string {
  if (typeof value !== 'string' || !TAG.test(value)) throw AgentstoreError.invalidField(field, 'must be 1-64 characters of letters, digits, _ . : / -, not starting with . : / or -');
  return value;
}

function text(value: unknown, field: keyof typeof TEXT_LIMITS, nullable: boolean): string | null {
  if (value === null && nullable) return null;
  if (typeof value !== 'string') throw AgentstoreError.invalidField(`/${field}`, nullable ? 'must be a string or null' : 'must be a string');
  const max = TEXT_LIMITS[field];
  if (value.length > max) throw AgentstoreError.invalidField(`/${field}`, `must be at most ${max} characters`);
  if (field === 'name' && !/\S/.test(value)) throw AgentstoreError.invalidField('/name', 'must not be empty or blank');
  const problem = unstorableText(value);
  if (problem) throw AgentstoreError.invalidField(`/${field}`, problem);
  return value;
}

function json<T>(value: T, field: string): T {
  const found = unstorableJsonAt(value, field);
  if (found) throw AgentstoreError.invalidField(found.path, found.problem);
  return value;
}

function object(value: unknown, field: string): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw AgentstoreError.invalidField(`/${field}`, 'must be a JSON object');
  return json(value as JsonObject, `/${field}`);
}

function tags(value: unknown): string[] {
  if (!Array.isArray(value)) throw AgentstoreError.invalidField('/tags', 'must be an array of strings');
  if (value.length > MAX_TAGS) throw AgentstoreError.invalidField('/tags', `at most ${MAX_TAGS} tags`);
  // Duplicates collapse: a tag is a set member, and the child table's key holds it once.
  return [...new Set(value.map((tag, i) => validateTag(tag, `/tags/${i}`)))];
}

/**
 * The stored fields from a create's input or a patched document: every field present, the
 * absent ones at their defaults, unknown fields refused, and the whole within its size.
 */
export function normalizeAgent(input: unknown): AgentFields {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw AgentstoreError.invalidField('body', 'must be a JSON object');
  const given = input as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (!(AGENT_FIELDS as readonly string[]).includes(key)) throw AgentstoreError.invalidField(`/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`, 'is not a field of an agent');
  }
  const has = (key: string) => Object.hasOwn(given, key) && given[key] !== undefined;
  if (!has('name')) throw AgentstoreError.invalidField('/name', 'is required');
  const fields: AgentFields = {
    name: text(given.name, 'name', false) as string,
    description: has('description') ? text(given.description, 'description', true) : null,
    industry: has('industry') ? text(given.industry, 'industry', true) : null,
    model: has('model') ? text(given.model, 'model', true) : null,
    provider: has('provider') ? text(given.provider, 'provider', true) : null,
    modelSettings: has('modelSettings') ? object(given.modelSettings, 'modelSettings') : {},
    systemPrompt: has('systemPrompt') ? text(given.systemPrompt, 'systemPrompt', true) : null,
    tools: has('tools') ? toolsOf(given.tools) : [],
    config: has('config') ? object(given.config, 'config') : {},
    status: has('status') ? validateStatus(given.status) : 'active',
    tags: has('tags') ? tags(given.tags) : [],
    metadata: has('metadata') ? object(given.metadata, 'metadata') : {},
  };
  if (Buffer.byteLength(JSON.stringify(fields)) > MAX_AGENT_BYTES) {
    throw new AgentstoreError('agentstore.payload_too_large', `an agent is at most ${MAX_AGENT_BYTES / 1024} KiB of JSON`, { errors: [{ field: 'body', message: `at most ${MAX_AGENT_BYTES} bytes` }] });
  }
  return fields;
}

function toolsOf(value: unknown): unknown[] {
  if (!Array.isArray(value)) throw AgentstoreError.invalidField('/tools', 'must be an array');
  if (value.length > MAX_TOOLS) throw AgentstoreError.invalidField('/tools', `at most ${MAX_TOOLS} tools`);
  return json(value, '/tools');
}

/**
 * A patch's own checks before it is merged: an object, and name and status never null (a
 * merge patch's null removes a field; these two have no default to fall back to).
 */
export function checkPatch(patch: unknown): JsonObject {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) throw AgentstoreError.invalidField('body', 'must be a JSON object');
  for (const key of ['name', 'status'] as const) {
    if ((patch as JsonObject)[key] === null) throw AgentstoreError.invalidField(`/${key}`, 'cannot be removed');
  }
  return json(patch as JsonObject, '');
}
