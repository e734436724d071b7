import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@fastify/type-provider-typebox';
import { AgentstoreError, isAgentstoreError, type FieldError } from '../core/errors.js';
import { pointerSegment } from '../core/json.js';
import { bearer } from './auth.js';

/** RFC 9457 problem details, as every error of the API is rendered. */
export const ProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    instance: Type.String(),
    code: Type.String(),
    requestId: Type.String(),
    errors: Type.Optional(Type.Array(Type.Object({ field: Type.String(), message: Type.String() }))),
    failedIndex: Type.Optional(Type.Integer({ description: 'POST /v1/batch: the index of the operation that failed' })),
    currentVersion: Type.Optional(Type.Integer({ description: 'POST /v1/batch, a 412: the version the record is at' })),
    cycle: Type.Optional(Type.Array(Type.String(), { description: 'a refused task dependency: the ids of the cycle it would close, from the task back to itself' })),
    path: Type.Optional(Type.Array(Type.String(), { description: 'a refused task move: the ids from the task down to the parent asked for' })),
    from: Type.Optional(Type.String({ description: 'a refused status change: the status the task has' })),
    to: Type.Optional(Type.String({ description: 'a refused status change: the status asked for' })),
  },
  { $id: 'Problem', description: 'RFC 9457 problem details' },
);

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  code: string;
  requestId: string;
  errors?: FieldError[];
  failedIndex?: number;
  currentVersion?: number;
  cycle?: string[];
  path?: string[];
  from?: string;
  to?: string;
}

const isIdList = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** The extension members (RFC 9457 §3.2) an error's context may carry for the client. */
function extensions(problem: Problem, context: AgentstoreError['context']): void {
  if (isIdList(context.cycle)) problem.cycle = context.cycle;
  if (isIdList(context.path)) problem.path = context.path;
  if (typeof context.from === 'string') problem.from = context.from;
  if (typeof context.to === 'string') problem.to = context.to;
}

const titles: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  416: 'Range Not Satisfiable',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

interface AjvIssue {
  instancePath?: string;
  message?: string;
  keyword?: string;
  params?: { additionalProperty?: string; missingProperty?: string };
}

/**
 * The one convention of `errors[].field` (docs/api.md "Errors"): a path, query or header
 * parameter by the name the client sent (`id`, `limit`, `if-match`), a member of the JSON
 * body by a JSON pointer into the body (`/name`, `/indexes/2`; a record's data fields as
 * `/data/…`), and the body as a whole as `body`. The services name their fields the same way.
 */
export function fieldName(part: 'body' | 'querystring' | 'params' | 'headers', pointer: string): string {
  if (part === 'body') return pointer === '' ? 'body' : pointer;
  const first = pointer.split('/')[1];
  // The part as a whole (not an object, say): named by the part.
  if (first === undefined) return part === 'querystring' ? 'query' : part;
  return first.replaceAll('~1', '/').replaceAll('~0', '~');
}

/** Fastify's schema errors -> one field error each, named by the convention above. */
export function validationErrors(error: FastifyError): FieldError[] {
  const context = (error as { validationContext?: string }).validationContext;
  const part = context === 'querystring' || context === 'params' || context === 'headers' ? context : 'body';
  return ((error.validation ?? []) as AjvIssue[]).map((issue) => {
    const pointer = issue.instancePath ?? '';
    if (issue.keyword === 'additionalProperties' && issue.params?.additionalProperty) {
      return { field: fieldName(part, `${pointer}/${pointerSegment(issue.params.additionalProperty)}`), message: 'is not a known field' };
    }
    if (issue.keyword === 'required' && issue.params?.missingProperty) {
      return { field: fieldName(part, `${pointer}/${pointerSegment(issue.params.missingProperty)}`), message: 'is required' };
    }
    return { field: fieldName(part, pointer), message: issue.message ?? 'is invalid' };
  });
}

function fastifyCodeToProblem(error: FastifyError): { status: number; code: string; detail: string } | undefined {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { status: 400, code: 'agentstore.validation', detail: 'the request body is not valid JSON' };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status: 400, code: 'agentstore.validation', detail: 'the request body is empty; send a JSON document' };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, code: 'agentstore.payload_too_large', detail: 'the request body is larger than the server accepts' };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, code: 'agentstore.validation', detail: 'unsupported content type; send application/json' };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { status: 400, code: 'agentstore.validation', detail: 'the Content-Length does not match the body' };
    default:
      return undefined;
  }
}

/** The members of a problem that do not depend on the request: a bulk load's failed lines carry these. */
export function problemDetails(status: number, code: string, detail: string, errors?: readonly FieldError[]): Pick<Problem, 'type' | 'title' | 'status' | 'detail' | 'code' | 'errors'> {
  return {
    type: `urn:agentstore:problem:${code.replace(/^agentstore\./, '')}`,
    title: titles[status] ?? 'Error',
    status,
    detail,
    code,
    ...(errors && errors.length > 0 ? { errors: [...errors] } : {}),
  };
}

export function renderProblem(request: FastifyRequest, status: number, code: string, detail: string, errors?: readonly FieldError[]): Problem {
  const details = problemDetails(status, code, detail, errors);
  // The members in their documented order (docs/api.md shows a problem).
  return {
    type: details.type,
    title: details.title,
    status,
    detail,
    instance: request.url.split('?')[0] ?? request.url,
    code,
    requestId: String(request.id),
    ...(details.errors ? { errors: details.errors } : {}),
  };
}

const REALM = 'Bearer realm="agentstore"';

/**
 * The challenge of a 401 (RFC 9110 §11.6.1 requires one): the Bearer scheme (RFC 6750 §3),
 * with `error="invalid_token"` when the request sent a credential to a route that takes one
 * and it was refused (unknown, revoked, expired, a JWT check failed). Without a credential,
 * with one in another scheme (`Basic …`) or a malformed Authorization header, and on the
 * login route (its credential is the body's password), the challenge carries no error code,
 * as §3.1 says for a request that lacks authentication information.
 */
export function authChallenge(request: FastifyRequest): string {
  if (request.routeOptions.config?.auth === 'none') return REALM;
  let token: string | undefined;
  try {
    token = bearer(request);
  } catch {
    token = undefined;
  }
  return token === undefined ? REALM : `${REALM}, error="invalid_token"`;
}

/** Every problem response goes through here, so every 401 carries its challenge. */
export function sendProblem(reply: FastifyReply, problem: Problem, retryAfter?: number): FastifyReply {
  if (retryAfter !== undefined) void reply.header('retry-after', String(Math.max(1, Math.ceil(retryAfter))));
  if (problem.status === 401) void reply.header('www-authenticate', authChallenge(reply.request));
  return reply.status(problem.status).type('application/problem+json').send(problem);
}

export function errorHandler(error: FastifyError | AgentstoreError | Error, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (isAgentstoreError(error)) {
    if (error.status >= 500) request.log.warn({ err: error, cause: error.cause }, error.message);
    const current = error.context.currentVersion;
    const failedIndex = error.context.failedIndex;
    const problem = renderProblem(request, error.status, error.code, error.message, error.context.errors);
    extensions(problem, error.context);
    if (typeof failedIndex === 'number') {
      // A batch's failure: the operation's index, and a 412's version in the body, since an
      // ETag would describe the batch's URL, not the operation's record.
      problem.failedIndex = failedIndex;
      if (typeof current === 'number' && Number.isSafeInteger(current)) problem.currentVersion = current;
    } else if (typeof current === 'number' && Number.isSafeInteger(current)) {
      // A 412 tells the version it failed against, as ETag (the format of every other ETag).
      void reply.header('etag', `"${current}"`);
    }
    return sendProblem(reply, problem, error.context.retryAfter ?? (error.status === 503 && error.code !== 'agentstore.not_configured' ? 1 : undefined));
  }
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) {
    const errors = validationErrors(fastifyError);
    const first = errors[0];
    return sendProblem(reply, renderProblem(request, 400, 'agentstore.validation', first ? `${first.field}: ${first.message}` : 'invalid request', errors));
  }
  const mapped = fastifyCodeToProblem(fastifyError);
  if (mapped) return sendProblem(reply, renderProblem(request, mapped.status, mapped.code, mapped.detail));
  const status = fastifyError.statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    return sendProblem(reply, renderProblem(request, status, 'agentstore.validation', fastifyError.message));
  }
  request.log.error({ err: error }, 'unhandled error');
  return sendProblem(reply, renderProblem(request, 500, 'agentstore.internal', 'an internal error occurred; the request id identifies it in the logs'));
}
