import { AgentstoreError } from './errors.js';

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Why a string cannot be stored or compared alike on both backends, or undefined.
 * PostgreSQL's text and jsonb refuse U+0000 (22021 / 22P05) and cannot encode an unpaired
 * UTF-16 surrogate in UTF-8, while SQLite takes both: every text that reaches a query or a
 * row is held to this, so that both backends accept and refuse the same input.
 */
export function unstorableText(text: string): string | undefined {
  if (text.includes('\u0000')) return 'must not contain the NUL character (U+0000)';
  if (LONE_SURROGATE.test(text)) return 'must not contain unpaired UTF-16 surrogates';
  return undefined;
}

/** A text parameter of a request (a filter value, a name to look up): refused as a 400 on `field` when unstorable. */
export function assertText(value: unknown, field: string): string {
  if (typeof value !== 'string') throw AgentstoreError.invalidField(field, 'must be a string');
  const problem = unstorableText(value);
  if (problem) throw AgentstoreError.invalidField(field, problem);
  return value;
}
