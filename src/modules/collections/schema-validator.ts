import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { LRUCache } from 'lru-cache';
import { AgentstoreError } from '../../core/errors.js';
import type { JsonObject } from './types.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
const ajv = new Ajv2020({ allErrors: false, strict: false, validateSchema: true });
addFormats(ajv);
const compiled = new LRUCache<string, ValidateFunction>({ max: 1000 });

const MAX_SCHEMA_BYTES = 64 * 1024;

/** Compiles a collection's schema, turning a bad schema into a 400 on the `schema` field. */
export function compileSchema(schema: JsonObject): ValidateFunction {
  if (JSON.stringify(schema).length > MAX_SCHEMA_BYTES) throw AgentstoreError.invalidField('schema', `is larger than ${MAX_SCHEMA_BYTES} bytes`);
  try {
    return ajv.compile(schema);
  } catch (error) {
    throw AgentstoreError.invalidField('schema', `is not a valid JSON Schema: ${(error as Error).message}`);
  }
}

export function validateAgainstSchema(cacheKey: string, schema: JsonObject, data: JsonObject): void {
  let validate = compiled.get(cacheKey);
  if (!validate) {
    validate = compileSchema(schema);
    compiled.set(cacheKey, validate);
  }
  if (!validate(data)) {
    const errors = (validate.errors ?? []).map((e) => ({ field: `/data${e.instancePath}`, message: e.message ?? 'is invalid' }));
    throw AgentstoreError.validation(`the record does not match the collection's schema: ${errors[0]?.field ?? ''} ${errors[0]?.message ?? ''}`.trim(), errors);
  }
}
