import { Type } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { parseIfMatch, setEtag } from '../../server/route-kit.js';
import type { Precondition } from './fields.js';

/** Schemas the project, branch, task and context routes share. */
export const Metadata = Type.Record(Type.String(), Type.Unknown(), { description: 'any JSON object (at most 16 KiB)' });
export const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()]);
export const IdParams = Type.Object({ id: Type.String({ maxLength: 64, description: 'an id this API returned' }) });
export const IfMatchHeader = Type.Object({ 'if-match': Type.Optional(Type.String({ maxLength: 64 })) });
export const CreateHeaders = Type.Object({ 'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 255 })) });
export const CascadeQuery = Type.Object(
  { cascade: Type.Optional(Type.Boolean({ description: 'delete everything below too (else 409 when there is anything)' })) },
  { additionalProperties: false },
);

/** The If-Match header as a service option. */
export const ifMatchOf = (header: string | undefined): { ifMatch?: Precondition } => {
  const ifMatch = parseIfMatch(header);
  return ifMatch === undefined ? {} : { ifMatch };
};


/** The Idempotency-Key header as a service option. */
export const keyOf = (header: string | undefined): { idempotencyKey?: string } => (header ? { idempotencyKey: header } : {});

/** A create's 201: the row with its ETag and location, marked when an idempotency key replayed it. */
export function sendCreated<T extends { id: string; version: number }>(reply: FastifyReply, row: T, location: string, replayed: boolean): FastifyReply {
  setEtag(reply, row.version);
  void reply.header('location', location);
  if (replayed) void reply.header('idempotent-replayed', 'true');
  return reply.status(201).send(row);
}
