import { AgentstoreError } from '../../core/errors.js';
import { unstorableJson } from '../../core/json.js';
import type { JsonObject } from './types.js';

// Moved to src/core (cursors and every listing's text parameters use them too).
export { unstorableJson } from '../../core/json.js';
export { unstorableText } from '../../core/text.js';

export const COLLECTION_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
export const RECORD_ID = /^[A-Za-z0-9_][A-Za-z0-9_.:@-]{0,127}$/;

export function validateCollectionName(name: string): string {
  if (!COLLECTION_NAME.test(name)) {
    throw AgentstoreError.invalidField('collection', 'must be 1-64 characters of letters, digits, _ . -, not starting with . or -');
  }
  return name;
}

export function validateRecordId(id: unknown, field = 'id'): string {
  if (typeof id !== 'string' || !RECORD_ID.test(id)) {
    throw AgentstoreError.invalidField(field, 'must be 1-128 characters of letters, digits, _ . : @ -, not starting with . : @ or -');
  }
  return id;
}

export function assertObject(data: unknown, field = 'body'): JsonObject {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw AgentstoreError.invalidField(field, 'must be a JSON object');
  const problem = unstorableJson(data);
  if (problem) throw AgentstoreError.invalidField(field, problem);
  return data as JsonObject;
}

/** RFC 7396 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const result: JsonObject = typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as JsonObject) } : {};
  for (const [key, value] of Object.entries(patch as JsonObject)) {
    // defineProperty, not assignment: a "__proto__" key from JSON must stay a plain key.
    // Own properties only: result["constructor"] would otherwise be Object, a value the record never held.
    if (value === null) delete result[key];
    else Object.defineProperty(result, key, { value: mergePatch(Object.hasOwn(result, key) ? result[key] : undefined, value), enumerable: true, writable: true, configurable: true });
  }
  return result;
}
