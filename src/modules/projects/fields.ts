import { AgentstoreError } from '../../core/errors.js';
import { isUuid } from '../../core/ids.js';
import { unstorableJson } from '../../core/json.js';
import { unstorableText } from '../../core/text.js';
import type { JsonObject, Precondition } from '../collections/types.js';

/** Field bounds of projects, branches and tasks (docs/api.md "Projects, branches and tasks"). */
export const LIMITS = {
  name: 200,
  description: 10_000,
  /** Serialized metadata, bytes of UTF-8. */
  metadataBytes: 16 * 1024,
} as const;

export type { JsonObject, Precondition } from '../collections/types.js';

/** An id this API gave out (UUIDv7); anything else is a 400 on `field`, never a lookup. */
export function validateId(id: unknown, field = 'id'): string {
  if (typeof id !== 'string' || !isUuid(id)) throw AgentstoreError.invalidField(field, 'must be an id this API returned (a UUID)');
  return id;
}

export function validateName(value: unknown, field: string, max: number = LIMITS.name): string {
  if (typeof value !== 'string' || value.trim().length === 0 || value.length > max) throw AgentstoreError.invalidField(field, `must be a non-blank string of at most ${max} characters`);
  const problem = unstorableText(value);
  if (problem) throw AgentstoreError.invalidField(field, problem);
  return value;
}

export function validateDescription(value: unknown, field: string): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'string' || value.length > LIMITS.description) throw AgentstoreError.invalidField(field, `must be a string of at most ${LIMITS.description} characters, or null`);
  const problem = unstorableText(value);
  if (problem) throw AgentstoreError.invalidField(field, problem);
  return value;
}

/** A JSON object both backends store alike, of at most `maxBytes` serialized. */
export function validateJsonObject(value: unknown, field: string, maxBytes: number): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw AgentstoreError.invalidField(field, 'must be a JSON object');
  const problem = unstorableJson(value);
  if (problem) throw AgentstoreError.invalidField(field, problem);
  if (Buffer.byteLength(JSON.stringify(value)) > maxBytes) {
    throw new AgentstoreError('agentstore.payload_too_large', `${field}: must be at most ${maxBytes} bytes as JSON`, { errors: [{ field, message: `must be at most ${maxBytes} bytes as JSON` }] });
  }
  return value as JsonObject;
}

/** Refuses fields a library caller passed that the input does not have (the HTTP schema does the same). */
export function onlyFields(input: object, allowed: readonly string[]): void {
  for (const key of Object.keys(input)) {
    if (!allowed.includes(key)) throw AgentstoreError.invalidField(`/${key}`, 'is not a field of this input');
  }
}

export function checkVersion(current: number, ifMatch: Precondition | undefined, what: string): void {
  if (ifMatch !== undefined && ifMatch !== '*' && ifMatch !== current) {
    throw AgentstoreError.preconditionFailed(`the ${what} is at version ${current}, not ${ifMatch}`, current);
  }
}

export interface NamedFields {
  readonly name?: string;
  readonly description?: string | null;
  readonly metadata?: JsonObject;
}

/**
 * The fields of a project or branch, checked: on a create `name` is required, on a patch the
 * fields named (at least one). Unknown fields are refused.
 */
export function checkNamedFields(input: unknown, mode: 'create' | 'patch', nameMax: number = LIMITS.name): NamedFields {
  if (typeof input !== 'object' || input === null) throw AgentstoreError.invalidField('body', 'must be an object');
  onlyFields(input, ['name', 'description', 'metadata']);
  const given = input as NamedFields;
  const out: { name?: string; description?: string | null; metadata?: JsonObject } = {};
  if (mode === 'create' || given.name !== undefined) out.name = validateName(given.name, '/name', nameMax);
  if (given.description !== undefined) out.description = validateDescription(given.description, '/description');
  if (given.metadata !== undefined) out.metadata = validateJsonObject(given.metadata, '/metadata', LIMITS.metadataBytes);
  if (mode === 'patch' && Object.keys(out).length === 0) throw AgentstoreError.invalidField('body', 'names none of name, description, metadata');
  return out;
}
