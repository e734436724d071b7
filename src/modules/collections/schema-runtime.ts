/**
 * What a tenant's schema runs on tenant data, made safe to run on the shared event loop:
 * patterns on a linear-time engine (re2js), format checks bounded per value, a linear
 * `uniqueItems`, and one time budget per validation that every string or array scan checks.
 */
import type { FormatDefinition, FuncKeywordDefinition } from 'ajv';
import type { RegExpEngine } from 'ajv/dist/types/index.js';
import { fullFormats } from 'ajv-formats/dist/formats.js';
import { createRequire } from 'node:module';
import type { RE2JS as RE2JSClass } from 're2js';
import { canonicalJson } from '../../core/json.js';

// Loaded on the first pattern, synchronously (its CommonJS build): ~100 ms of module loading
// that CLI commands which never see a schema need not pay at every start.
let re2js: typeof RE2JSClass | undefined;
const RE2JS = (): typeof RE2JSClass => (re2js ??= (createRequire(import.meta.url)('re2js') as { RE2JS: typeof RE2JSClass }).RE2JS);

/**
 * One validation may spend this long before its next scan (pattern or format) stops it. Each scan is linear and capped, so this bounds the sum: a record of many
 * strings, each checked by a slow pattern or format, cannot add up to seconds on the shared
 * loop. A safety net, not a quota: records that reach it are pathological on an idle core,
 * but it is wall-clock time, so on a saturated machine a large record with many formatted
 * strings can reach it.
 */
export const VALIDATION_BUDGET_MS = 100;

/**
 * The longest string a `pattern` (or a `patternProperties` key) is run on. RE2 is linear,
 * but its constant depends on the pattern: up to ~2 µs per character for large
 * case-insensitive or Unicode classes (`^[\p{L} ]+$` on 1 MiB: 420 ms), and one call cannot
 * be interrupted. 16 Ki characters keep one call under ~35 ms.
 */
export const MAX_PATTERN_INPUT = 16 * 1024;

/**
 * Thrown from inside a running validator when a limit is hit (time budget, pattern input);
 * caught by the caller, which refuses the record with this message.
 */
export class ValidationLimitExceeded extends Error {
  override readonly name = 'ValidationLimitExceeded';
}

// Validation is synchronous, so one module-level deadline is the current validation's.
let deadline = Number.POSITIVE_INFINITY;

/** Runs `validate` with the budget armed; outside of it scans are unbounded (compile time). */
export function withValidationBudget<T>(validate: () => T): T {
  deadline = performance.now() + VALIDATION_BUDGET_MS;
  try {
    return validate();
  } finally {
    deadline = Number.POSITIVE_INFINITY;
  }
}

function checkBudget(): void {
  if (performance.now() > deadline) throw new ValidationLimitExceeded(`the record took longer than ${VALIDATION_BUDGET_MS} ms to check against the collection's schema`);
}

/** A tenant's pattern as RE2 compiles it (ECMAScript syntax translated), or why not. */
export function compileLinearPattern(pattern: string): { readonly test: (text: string) => boolean } {
  const engine = RE2JS();
  const re = engine.compile(engine.translateRegExp(pattern));
  return {
    test(text: string) {
      if (text.length > MAX_PATTERN_INPUT) throw new ValidationLimitExceeded(`a string checked by a schema pattern is longer than ${MAX_PATTERN_INPUT} characters`);
      checkBudget();
      return re.test(text);
    },
  };
}

/**
 * Ajv's `code.regExp` hook: every `pattern` and `patternProperties` regular expression is
 * compiled by RE2 (linear time in the input, no backtracking). Ajv calls it with the "u"
 * flag; RE2 matches code points anyway. `code` only names it in standalone code, unused here.
 */
export const re2Engine: RegExpEngine = Object.assign((pattern: string) => compileLinearPattern(pattern), { code: 're2js' });

/**
 * The longest value each string format is checked on; longer ones do not match. The
 * formats are ajv-formats' ("full" mode) V8 regular expressions and functions: linear
 * except `url` (quadratic on `http://a:::…`: 165 ms at 8,000 characters) but with up to
 * ~450 ns per character (`regex`, `date-time` splitting a string of "T"s), so each gets a
 * cap no valid value reaches: RFC limits (email 320, hostname 253), dates and times far
 * above their longest form, URLs at the 2,083 characters browsers accept (`url`) and the
 * 8,000 octets RFC 9110 asks URIs to support.
 */
const FORMAT_MAX_LENGTH: Readonly<Record<string, number>> = {
  date: 32,
  time: 64,
  'date-time': 128,
  'iso-time': 64,
  'iso-date-time': 128,
  duration: 128,
  uri: 8192,
  'uri-reference': 8192,
  'uri-template': 8192,
  url: 2083,
  email: 320,
  hostname: 253,
  ipv4: 15,
  ipv6: 64,
  regex: 1024,
  uuid: 45,
  'json-pointer': 8192,
  'json-pointer-uri-fragment': 8192,
  'relative-json-pointer': 8192,
};

type StringCheck = (text: string) => boolean;

const BASE64_CHAR = /^[A-Za-z0-9+/]*$/;

/**
 * RFC 4648 base64, in one linear pass (no length cap: base64 payloads are legitimately
 * large). ajv-formats' `byte` is a multiline regex that also accepts any text holding an
 * empty line, at ~110 ns per character.
 */
function isBase64(text: string): boolean {
  if (text.length % 4 !== 0) return false;
  const pad = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  return BASE64_CHAR.test(pad ? text.slice(0, -pad) : text);
}

function checkOf(def: unknown): StringCheck | undefined {
  if (def instanceof RegExp) return (text) => { def.lastIndex = 0; return def.test(text); };
  if (typeof def === 'function') return def as StringCheck;
  if (def && typeof def === 'object' && 'validate' in def) return checkOf((def as { validate: unknown }).validate);
  return undefined;
}

/** ajv-formats' formats with every string check capped in length and counted against the budget. */
export function boundedFormats(): Record<string, FormatDefinition<string> | FormatDefinition<number> | true> {
  const out: Record<string, FormatDefinition<string> | FormatDefinition<number> | true> = {};
  for (const [name, def] of Object.entries(fullFormats)) {
    const max = name === 'byte' ? Number.POSITIVE_INFINITY : FORMAT_MAX_LENGTH[name];
    const check = name === 'byte' ? isBase64 : checkOf(def);
    if (max === undefined || !check) {
      // Number formats (int32, …) and the always-valid ones (password, binary) scan nothing.
      out[name] = def as FormatDefinition<number> | true;
      continue;
    }
    const compare = typeof def === 'object' && def !== null && 'compare' in def ? (def as { compare: FormatDefinition<string>['compare'] }).compare : undefined;
    out[name] = {
      type: 'string',
      validate: (text: string) => {
        if (text.length > max) return false;
        checkBudget();
        return check(text);
      },
      ...(compare ? { compare } : {}),
    };
  }
  return out;
}

/**
 * `uniqueItems` in linear time. Ajv's own compares every pair with deep equality unless the
 * item type is a declared scalar: an array of 100,000 distinct items in a 1 MiB body is
 * 5·10⁹ comparisons. Canonical strings in a Set give the same answer in one pass.
 */
export const uniqueItemsKeyword: FuncKeywordDefinition = {
  keyword: 'uniqueItems',
  type: 'array',
  schemaType: 'boolean',
  errors: false,
  error: { message: 'must NOT have duplicate items' },
  // No budget check: one linear pass over the array, like parsing it, bounded by the body
  // limit (a wall-clock stop here would refuse large valid arrays on a busy machine).
  validate: (unique: boolean, data: unknown[]) => {
    if (!unique) return true;
    // Scalars are their own keys (a Set tells 1 from "1"); objects and arrays go by their
    // canonical text in a second set, so that no string can collide with one.
    const scalars = new Set<unknown>();
    const structured = new Set<string>();
    for (let i = 0; i < data.length; i++) {
      const item = data[i];
      const set: Set<unknown> = item !== null && typeof item === 'object' ? structured : scalars;
      const key = set === structured ? canonicalJson(item) : item;
      if (set.has(key)) return false;
      set.add(key);
    }
    return true;
  },
};
