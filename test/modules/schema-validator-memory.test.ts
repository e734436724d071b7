/**
 * Compiling schemas holds no memory once their validators are dropped: one shared Ajv
 * instance kept every compiled schema (its cache and its code scope) for the life of the
 * process, so each tenant's PUT of a new schema grew the heap for good.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { expect, it } from 'vitest';
import { compileSchema } from '../../src/modules/collections/schema-validator.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const heap = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};

/** A distinct schema of ~25 KB (200 properties). */
const schemaNumber = (n: number) => ({
  type: 'object',
  properties: Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`field_${i}`, { type: 'string', maxLength: 100 + i, description: `schema ${n}` }])),
});

it('compiling 300 distinct schemas leaves the heap where it was', () => {
  compileSchema(schemaNumber(-1));
  const before = heap();
  for (let n = 0; n < 300; n++) compileSchema(schemaNumber(n));
  const grownMiB = (heap() - before) / 1024 / 1024;
  expect(grownMiB).toBeLessThan(10);
}, 60_000);
