import { unstorableText } from './text.js';

export const MAX_JSON_DEPTH = 100;

/** A JSON Pointer segment (RFC 6901): `~` and `/` escaped. */
export function pointerSegment(key: string): string {
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
  const found = firstUnstorable(value, depth);
  if (!found) return undefined;
  let at = path;
  for (let i = found.keys.length - 1; i >= 0; i--) at += `/${pointerSegment(found.keys[i] as string)}`;
  return { path: at, problem: found.problem };
}

/**
 * The check itself, without building a path for every value it passes: on every write it
 * walks the whole record. The keys down to the problem come back innermost first.
 */
function firstUnstorable(value: unknown, depth: number): { readonly keys: string[]; readonly problem: string } | undefined {
  if (typeof value === 'string') {
    const problem = unstorableText(value);
    return problem ? { keys: [], problem } : undefined;
  }
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : { keys: [], problem: 'must be a finite number within the range of a double (about ±1.8e308)' };
  if (typeof value !== 'object' || value === null) return undefined;
  if (depth >= MAX_JSON_DEPTH) return { keys: [], problem: `must not nest deeper than ${MAX_JSON_DEPTH} levels` };
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = firstUnstorable(value[i], depth + 1);
      if (found) {
        found.keys.push(String(i));
        return found;
      }
    }
    return undefined;
  }
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    // The name itself is not repeated in the path: it is what cannot be shown.
    const keyProblem = unstorableText(key);
    if (keyProblem) return { keys: [], problem: `has a field name that ${keyProblem}` };
    const found = firstUnstorable((value as Record<string, unknown>)[key], depth + 1);
    if (found) {
      found.keys.push(key);
      return found;
    }
  }
  return undefined;
}

/** `unstorableJsonAt` as one message naming where: `/a/0: must not contain ...`. */
export function unstorableJson(value: unknown): string | undefined {
  const found = unstorableJsonAt(value);
  if (!found) return undefined;
  return found.path === '' ? found.problem : `${found.path}: ${found.problem}`;
}

/**
 * JSON equality as a string: object keys sorted, so that `{"a":1,"b":2}` and `{"b":2,"a":1}`
 * agree, as JSON Schema's equality demands (`uniqueItems`) and as a bulk load compares a line
 * with the stored record. Depth is bounded by the record's own limit.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  let out: string;
  if (Array.isArray(value)) {
    out = '[';
    for (let i = 0; i < value.length; i++) out += (i ? ',' : '') + canonicalJson(value[i]);
    return `${out}]`;
  }
  const keys = Object.keys(value).sort();
  out = '{';
  for (let i = 0; i < keys.length; i++) out += `${i ? ',' : ''}${JSON.stringify(keys[i])}:${canonicalJson((value as Record<string, unknown>)[keys[i]!])}`;
  return `${out}}`;
}
