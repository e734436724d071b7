import { Type } from '@fastify/type-provider-typebox';
import type { FastifyError } from 'fastify';
import { AgentstoreError } from '../../core/errors.js';
import { validationErrors } from '../../server/problem.js';
import { MAX_TTL_SECONDS } from '../collections/expiry.js';
import { RecordSchema } from '../collections/routes.js';
import { CounterSchema } from '../counters/routes.js';
import { tenantOf, withProblems, type Api, type RouteDeps } from '../../server/route-kit.js';
import { MAX_BATCH_OPERATIONS, type BatchOperation } from './service.js';

// The members of every kind of operation in one object: the service checks which belong to
// which kind (and names a stray one), which a union schema would report only as "must match
// a schema in anyOf" for the whole operation.
const Operation = Type.Object(
  {
    op: Type.Union([Type.Literal('create'), Type.Literal('replace'), Type.Literal('patch'), Type.Literal('delete'), Type.Literal('increment')]),
    collection: Type.Optional(Type.String({ maxLength: 64 })),
    id: Type.Optional(Type.String({ maxLength: 128 })),
    data: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'create, replace: the record; patch: a JSON merge patch' })),
    ifMatch: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.Literal('*')], { description: 'the version the record must be at, or * (it must exist)' })),
    ttl: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_TTL_SECONDS, description: 'create, replace, patch: seconds until the record expires' })),
    expiresAt: Type.Optional(Type.String({ maxLength: 64, description: 'create, replace, patch: when the record expires (RFC 3339, in the future)' })),
    counter: Type.Optional(Type.String({ maxLength: 128, description: 'increment: the counter' })),
    by: Type.Optional(Type.Integer({ description: 'increment: default 1; may be negative' })),
  },
  { additionalProperties: false },
);

const Result = Type.Object({
  op: Type.String(),
  status: Type.Integer({ description: 'what the single route would have answered' }),
  record: Type.Optional(RecordSchema),
  counter: Type.Optional(CounterSchema),
  collection: Type.Optional(Type.String()),
  id: Type.Optional(Type.String()),
  version: Type.Optional(Type.Integer()),
});

function operationSchemaError(error: FastifyError): AgentstoreError {
  const errors = validationErrors(error);
  const first = errors[0] ?? { field: 'body', message: 'is invalid' };
  const index = /^\/operations\/(\d+)(\/|$)/.exec(first.field)?.[1];
  return new AgentstoreError('agentstore.validation', `${first.field}: ${first.message}`, { errors, ...(index !== undefined ? { failedIndex: Number(index) } : {}) });
}

export async function batchRoutes(app: Api, { store }: RouteDeps): Promise<void> {
  app.post(
    '/v1/batch',
    {
      // A schema error is the failure of the operation it is in, with its index, as the
      // service's own checks are: the handler turns it into one.
      attachValidation: true,
      schema: {
        tags: ['batch'],
        summary: `Up to ${MAX_BATCH_OPERATIONS} writes to records and counters, applied together or not at all`,
        headers: Type.Object({ 'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 255 })) }),
        body: Type.Object({ operations: Type.Array(Operation, { minItems: 1, maxItems: MAX_BATCH_OPERATIONS }) }, { additionalProperties: false }),
        response: withProblems({ 200: Type.Object({ results: Type.Array(Result) }) }),
      },
    },
    async (req, reply) => {
      if (req.validationError) throw operationSchemaError(req.validationError as FastifyError);
      const key = req.headers['idempotency-key'];
      const { results, replayed } = await store.batch(tenantOf(req), req.body.operations as BatchOperation[], key ? { idempotencyKey: key } : {});
      if (replayed) void reply.header('idempotent-replayed', 'true');
      return { results };
    },
  );
}
