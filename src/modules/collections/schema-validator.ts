/**
 * Collections' JSON Schemas (draft 2020-12, Ajv): checked against the rules in
 * schema-rules.ts, compiled each in an Ajv instance of its own, and run on records with
 * the safeguards of schema-runtime.ts.
 */
import { createRequire } from 'node:module';
import type { Ajv2020, ValidateFunction } from 'ajv/dist/2020.js';
import type { formatLimitDefinition as FormatLimitDefinition } from 'ajv-formats/dist/limit.js';
import { LRUCache } from 'lru-cache';
import { AgentstoreError } from '../../core/errors.js';
import { checkSchemaRules, SCHEMA_LIMITS, valuesByDepth } from './schema-rules.js';
import { boundedFormats, re2Engine, uniqueItemsKeyword, ValidationLimitExceeded, withValidationBudget } from './schema-runtime.js';
import type { JsonObject } from './types.js';

// Ajv's 2020-12 build (and ajv-formats' limit keywords, which load Ajv) on the first schema,
// synchronously (CommonJS), as re2js in schema-runtime.ts: ~0.1 s of CPU at every start that
// the CLI's commands, which never see a schema, need not pay. The server has loaded Ajv's core
// for its routes by then, so its first schema waits ~10 ms for the rest, once.
let ajv: { Ajv2020: typeof Ajv2020; formatLimitDefinition: typeof FormatLimitDefinition } | undefined;
const ajvLib = () => {
  if (!ajv) {
    const require = createRequire(import.meta.url);
    ajv = {
      Ajv2020: (require('ajv/dist/2020.js') as { Ajv2020: typeof Ajv2020 }).Ajv2020,
      formatLimitDefinition: (require('ajv-formats/dist/limit.js') as { formatLimitDefinition: typeof FormatLimitDefinition }).formatLimitDefinition,
    };
  }
  return ajv;
};

// Only checks tenant schemas against the 2020-12 meta-schema: it never compiles or
// registers one, so it holds no tenant state. Made on first use: CLI commands that never
// see a schema do not pay for it.
let metaValidator: Ajv2020 | undefined;
let formats: ReturnType<typeof boundedFormats> | undefined;

/**
 * A fresh instance per schema: one shared Ajv keeps every compiled schema in its cache and
 * code scope for the life of the process (unbounded memory over tenants' redefinitions),
 * and registers ids globally. Creating one costs ~0.5 ms, paid on define and on a cache miss.
 */
function newAjv(): Ajv2020 {
  const { Ajv2020, formatLimitDefinition } = ajvLib();
  const instance = new Ajv2020({
    // Strict mode must stay off: besides refusing unknown keywords, its strictSchema check
    // runs every patternProperties pattern on V8's backtracking engine against the
    // property names, at compile time.
    strict: false,
    allErrors: false,
    meta: false,
    validateSchema: false,
    // Inlining copies a referenced schema into every place that refers to it: 1,000 refs to
    // one large $defs entry would generate megabytes of code. A call per $ref stays linear.
    inlineRefs: false,
    formats: (formats ??= boundedFormats()),
    // Ajv's optimizer passes over the generated code about halve its throughput for nothing
    // a record's check needs: compile time is the schema's cost on the shared loop.
    code: { regExp: re2Engine, optimize: false },
  });
  instance.addKeyword(formatLimitDefinition);
  instance.removeKeyword('uniqueItems');
  instance.addKeyword(uniqueItemsKeyword);
  return instance;
}

/** A compiled schema and the worst keyword work it can cost per data value at each depth. */
export interface CompiledSchema {
  readonly validate: ValidateFunction;
  readonly workByDepth: readonly number[];
}

/** Compiles a collection's schema, turning a bad or unsafe schema into a 400 on the `schema` field. */
export function compileSchema(schema: JsonObject): CompiledSchema {
  const workByDepth = checkSchemaRules(schema);
  const meta = (metaValidator ??= new (ajvLib().Ajv2020)({ strict: false, allErrors: false }));
  if (!meta.validateSchema(schema)) {
    throw AgentstoreError.invalidField('/schema', `is not a valid JSON Schema: ${meta.errorsText(meta.errors)}`);
  }
  try {
    return { validate: newAjv().compile(schema), workByDepth };
  } catch (error) {
    throw AgentstoreError.invalidField('/schema', `is not a valid JSON Schema: ${(error as Error).message}`);
  }
}

// Bounded by count and by the schemas' total text (a compiled validator is roughly
// proportional to its schema): 1,000 schemas of 64 KiB each would otherwise be ~1 GB.
const compiled = new LRUCache<string, CompiledSchema>({ max: 1000, maxSize: 16 * 1024 * 1024 });

export function validateAgainstSchema(cacheKey: string, schema: JsonObject, data: JsonObject): void {
  let entry = compiled.get(cacheKey);
  if (!entry) {
    entry = compileSchema(schema);
    compiled.set(cacheKey, entry, { size: JSON.stringify(schema).length });
  }
  const { validate, workByDepth } = entry;
  // Keyword work inside Ajv (allOf branches, $ref calls) runs without a budget check: bound
  // it before running, by the record's shape times the schema's worst case per value.
  const counts = valuesByDepth(data);
  const work = counts.reduce((sum, n, depth) => sum + n * (workByDepth[depth] ?? 0), 0);
  if (work > SCHEMA_LIMITS.recordWork) {
    const message = `the record has too many values for this collection's schema (up to ${work} keyword checks, at most ${SCHEMA_LIMITS.recordWork})`;
    throw AgentstoreError.validation(message, [{ field: '/data', message }]);
  }
  let valid: boolean | Promise<unknown>;
  try {
    valid = withValidationBudget(() => validate(data));
  } catch (error) {
    if (error instanceof ValidationLimitExceeded) throw AgentstoreError.validation(error.message, [{ field: '/data', message: error.message }]);
    throw error;
  }
  // Async schemas are refused when set; a promise here is a bug, and must fail the write
  // rather than let it commit unchecked.
  if (typeof valid !== 'boolean') {
    void Promise.resolve(valid).catch(() => undefined);
    throw new AgentstoreError('agentstore.internal', 'schema validation returned a promise');
  }
  if (!valid) {
    const errors = (validate.errors ?? []).map((e) => ({ field: `/data${e.instancePath}`, message: e.message ?? 'is invalid' }));
    throw AgentstoreError.validation(`the record does not match the collection's schema: ${errors[0]?.field ?? ''} ${errors[0]?.message ?? ''}`.trim(), errors);
  }
}
