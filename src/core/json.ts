import { unstorableText } from './text.js';

export const MAX_JSON_DEPTH = 100;

/** A JSON Pointer segment (RFC 6901): `~` and `/` escaped. */
function pointerSegment(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}

/**
 * Why a JSON value cannot be stored alike on both backends, with the JSON Pointer of the
 * offending part, or undefined. PostgreSQL's jsonb rejects U+0000 and unpaired surrogates
 * (the driver error would surface as a 500) while SQLite stores them; SQLite's JSON
 * functions stop at 1000 levels of nesting. A number past a double's range (`1e400`) is
 * Infinity once parsed, and JSON.stringify would have written it as `null`: the value would
 * change silently. All of these are refused on both backends.
 */
export function unstorableJsonAt(value: unknown, path = '', depth = 0): { readonly path: string; readonly problem: string } | undefined {
  if (typeof value === 'string') {
    const problem = unstorableText(value);
    return problem ? { path, problem } : undefined;
  }
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : { path, problem: 'must be a finite number within the range of a double (about ±1.8e308)' };
  if (typeof value !== 'object' || value === null) return undefined;
  if (depth >= MAX_JSON_DEPTH) return { path, problem: `must not nest deeper than ${MAX_JSON_DEPTH} levels` };
  const entries = Array.isArray(value) ? value.map((item, i) => [String(i), item] as const) : Object.entries(value);
  for (const [key, item] of entries) {
    // The name itself is not repeated in the path: it is what cannot be shown.
    const keyProblem = Array.isArray(value) ? undefined : unstorableText(key);
    if (keyProblem) return { path, problem: `has a field name that ${keyProblem}` };
    const problem = unstorableJsonAt(item, `${path}/${pointerSegment(key)}`, depth + 1);
    if (problem) return problem;
  }
  return undefined;
}

/** `unstorableJsonAt` as one message naming where: `/a/0: must not contain ...`. */
export function unstorableJson(value: unknown): string | undefined {
  const found = unstorableJsonAt(value);
  if (!found) return undefined;
  return found.path === '' ? found.problem : `${found.path}: ${found.problem}`;
}
