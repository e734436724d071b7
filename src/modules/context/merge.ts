import type { JsonObject } from '../projects/fields.js';

export const CONTEXT_LEVELS = ['global', 'project', 'branch', 'task'] as const;
export type ContextLevel = (typeof CONTEXT_LEVELS)[number];

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

function define(target: JsonObject, key: string, value: unknown): void {
  // defineProperty: a "__proto__" key from JSON stays a plain key.
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** `near` over `far`: objects merge key by key (recursively), anything else (arrays, null) from `near` replaces. */
export function deepMerge(far: unknown, near: unknown): unknown {
  if (!isObject(near) || !isObject(far)) return near;
  const out: JsonObject = {};
  for (const key of Object.keys(far)) define(out, key, far[key]);
  for (const key of Object.keys(near)) define(out, key, Object.hasOwn(far, key) ? deepMerge(far[key], near[key]) : near[key]);
  return out;
}

/**
 * The documents from the farthest level to the nearest, merged: the nearest level wins,
 * nested objects merge, arrays are replaced. `sources` names, for each top-level key, the
 * nearest level that set it.
 */
export function resolveLevels(docs: readonly { level: ContextLevel; data: JsonObject | null }[]): { context: JsonObject; sources: Record<string, ContextLevel> } {
  let context: JsonObject = {};
  const sources: Record<string, ContextLevel> = {};
  for (const { level, data } of docs) {
    if (!data) continue;
    context = deepMerge(context, data) as JsonObject;
    for (const key of Object.keys(data)) define(sources, key, level);
  }
  return { context, sources };
}
