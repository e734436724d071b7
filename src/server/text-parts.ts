import type { ValidateFunction } from 'ajv';

type ValidationContext = Parameters<ValidateFunction>[1];
import { unstorableText } from '../core/text.js';

// Deeper than this, the services refuse the value anyway (src/core/json.ts); the walk stops
// there so that a deeply nested body cannot exhaust the stack.
const MAX_DEPTH = 100;

function firstUnstorable(value: unknown, path: string, depth: number): { path: string; problem: string } | undefined {
  if (typeof value === 'string') {
    const problem = unstorableText(value);
    return problem ? { path, problem } : undefined;
  }
  if (typeof value !== 'object' || value === null || depth >= MAX_DEPTH) return undefined;
  for (const [key, item] of Object.entries(value)) {
    const keyProblem = unstorableText(key);
    if (keyProblem) return { path, problem: `has a field name that ${keyProblem}` };
    const found = firstUnstorable(item, `${path}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`, depth + 1);
    if (found) return found;
  }
  return undefined;
}

/**
 * Wraps the validator of a request part (query string, path parameters, headers, JSON
 * body): after the schema, any string or field name holding U+0000 or an unpaired surrogate
 * is a 400 on that field. One check for every route, so that no such text reaches
 * PostgreSQL, which refuses both (22021, a 500), while SQLite took them (a 200):
 * `GET /v1/audit?actorId=%00`, `POST /v1/tenants {"name":"a\u0000"}`. Services check
 * the text they store or query too (library callers); this is the HTTP edge's share.
 */
export function refuseUnstorableText(validate: ValidateFunction): ValidateFunction {
  const check = (data: unknown, context?: ValidationContext): data is unknown => {
    const valid = validate(data, context);
    if (!valid) {
      wrapped.errors = validate.errors ?? null;
      return false;
    }
    const found = firstUnstorable(data, '', 0);
    if (!found) {
      wrapped.errors = null;
      return true;
    }
    wrapped.errors = [{ instancePath: found.path, schemaPath: '#', keyword: 'text', params: {}, message: found.problem }];
    return false;
  };
  // schemaEnv too: Fastify passes the parent object to a validator that has one (an Ajv
  // one), so that it can coerce the root value.
  const wrapped: ValidateFunction = Object.assign(check, { schema: validate.schema, schemaEnv: validate.schemaEnv, errors: null });
  return wrapped;
}
