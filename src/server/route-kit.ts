import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault } from 'fastify';
import { Type, type TSchema, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { TenantContext } from '../core/context.js';
import { AgentstoreError } from '../core/errors.js';
import type { Principal } from '../modules/tenancy/auth-service.js';
import type { Store } from '../store.js';

export type AuthMode = 'tenant' | 'service' | 'none';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Which credential a route takes; default `tenant`. */
    auth?: AuthMode;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export type Api = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, TypeBoxTypeProvider>;

export interface RouteDeps {
  readonly store: Store;
}

/** The tenant context of an authenticated tenant request (the auth hook guarantees it). */
export function tenantOf(request: FastifyRequest): TenantContext {
  const principal = request.principal;
  if (principal?.kind !== 'tenant') throw AgentstoreError.unauthenticated();
  const { tenantId, actor, role } = principal.ctx;
  return { tenantId, actor, role, requestId: String(request.id) };
}

const ProblemRef = Type.Unsafe<unknown>({ $ref: 'Problem#' });

/** Adds the problem+json error responses every route can give, for OpenAPI. */
export function withProblems<T extends Record<string, TSchema>>(responses: T): T & { '4xx': TSchema; '5xx': TSchema } {
  return { ...responses, '4xx': ProblemRef, '5xx': ProblemRef };
}

export const PageQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, description: 'page size (default 50)' })),
  cursor: Type.Optional(Type.String({ maxLength: 4096, description: 'nextCursor of the previous page' })),
};

export function pageOf<T extends TSchema>(item: T) {
  return Type.Object({ items: Type.Array(item), nextCursor: Type.Union([Type.String(), Type.Null()]) });
}

export const Timestamps = {
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
};

/** A route's own hooks of one kind, as an array (Fastify takes a function or an array). */
/**
 * A preValidation hook for POST routes whose body is optional: no body at all (or `null`) is
 * validated as `{}`, so the body schema can refuse unknown fields without refusing a bare POST.
 */
export async function emptyBodyAsObject(req: FastifyRequest): Promise<void> {
  if (req.body === undefined || req.body === null) req.body = {};
}

export function routeHooks<T>(hooks: T | T[] | undefined): T[] {
  return hooks === undefined ? [] : Array.isArray(hooks) ? hooks : [hooks];
}

export function setEtag(reply: FastifyReply, version: number): void {
  void reply.header('etag', `"${version}"`);
}

/** `If-Match: "3"` -> 3, `*` -> '*', absent -> undefined. Weak tags never match (RFC 9110 strong comparison). */
export function parseIfMatch(header: string | undefined): number | '*' | undefined {
  if (header === undefined) return undefined;
  const value = header.trim();
  if (value === '*') return '*';
  const match = /^"(\d{1,15})"$/.exec(value);
  if (!match?.[1]) throw AgentstoreError.invalidField('if-match', 'must be an ETag returned by this API, such as "3", or *');
  return Number(match[1]);
}

/**
 * `If-None-Match: *` -> '*', absent -> undefined. On a write only `*` (create only) has a use:
 * a list of ETags would make a PUT replace any version but those, which no client needs.
 */
export function parseIfNoneMatch(header: string | undefined): '*' | undefined {
  if (header === undefined) return undefined;
  if (header.trim() === '*') return '*';
  throw AgentstoreError.invalidField('if-none-match', 'only * is supported: create the record only if it does not exist');
}
