/**
 * The one error type of agentstore. Every failure that reaches a caller is an
 * AgentstoreError with a stable `code`; the HTTP layer maps the code to a status and
 * renders RFC 9457 problem+json. Check errors by code (`isAgentstoreError(e, 'agentstore.not_found')`),
 * not by `instanceof`, so that two copies of the package still agree.
 */

export type ErrorCode =
  | 'agentstore.validation'
  | 'agentstore.not_found'
  | 'agentstore.conflict'
  | 'agentstore.precondition_failed'
  | 'agentstore.unauthenticated'
  | 'agentstore.forbidden'
  | 'agentstore.payload_too_large'
  | 'agentstore.range_not_satisfiable'
  | 'agentstore.rate_limited'
  | 'agentstore.unavailable'
  | 'agentstore.schema_mismatch'
  | 'agentstore.config'
  | 'agentstore.not_configured'
  | 'agentstore.internal';

/** One wrong field of a request, and what is wrong with it. */
export interface FieldError {
  /**
   * A path, query or header parameter by the name the client sent (`id`, `limit`,
   * `if-match`); a member of the JSON body (or of a library call's input object) by a JSON
   * pointer (`/name`, `/indexes/2`, a record's data as `/data/priority`); `body` for the body
   * as a whole. docs/api.md "Errors"; src/server/problem.ts renders schema errors the same way.
   */
  readonly field: string;
  readonly message: string;
}

export interface ErrorContext {
  readonly errors?: readonly FieldError[];
  /** Seconds a client should wait before retrying (rate limits, unavailable backends). */
  readonly retryAfter?: number;
  /** A failed precondition's resource version now: the HTTP layer sends it as the ETag. */
  readonly currentVersion?: number;
  readonly [key: string]: unknown;
}

export const statusByCode: Readonly<Record<ErrorCode, number>> = {
  'agentstore.validation': 400,
  'agentstore.unauthenticated': 401,
  'agentstore.forbidden': 403,
  'agentstore.not_found': 404,
  'agentstore.conflict': 409,
  'agentstore.precondition_failed': 412,
  'agentstore.payload_too_large': 413,
  'agentstore.range_not_satisfiable': 416,
  'agentstore.rate_limited': 429,
  'agentstore.internal': 500,
  'agentstore.unavailable': 503,
  'agentstore.schema_mismatch': 503,
  'agentstore.config': 500,
  // A feature whose setting the operator has not made (an encryption key): retrying cannot help
  // until they do, so it is no `unavailable`, and no fault of the request either.
  'agentstore.not_configured': 503,
};

export class AgentstoreError extends Error {
  override readonly name = 'AgentstoreError';
  readonly code: ErrorCode;
  readonly context: ErrorContext;

  constructor(code: ErrorCode, message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.context = context;
  }

  get status(): number {
    return statusByCode[this.code];
  }

  static validation(message: string, errors: readonly FieldError[] = []): AgentstoreError {
    return new AgentstoreError('agentstore.validation', message, { errors });
  }

  static invalidField(field: string, message: string): AgentstoreError {
    return new AgentstoreError('agentstore.validation', `${field}: ${message}`, { errors: [{ field, message }] });
  }

  static notFound(resource: string): AgentstoreError {
    return new AgentstoreError('agentstore.not_found', `${resource} not found`);
  }

  static conflict(message: string): AgentstoreError {
    return new AgentstoreError('agentstore.conflict', message);
  }

  /**
   * `currentVersion`: the version the resource is at, when known, so that the client can
   * retry against it without another read (the 412 carries it as ETag).
   */
  static preconditionFailed(message: string, currentVersion?: number): AgentstoreError {
    return new AgentstoreError('agentstore.precondition_failed', message, currentVersion === undefined ? {} : { currentVersion });
  }

  static unauthenticated(message = 'authentication required'): AgentstoreError {
    return new AgentstoreError('agentstore.unauthenticated', message);
  }

  static forbidden(message: string): AgentstoreError {
    return new AgentstoreError('agentstore.forbidden', message);
  }

  static rateLimited(retryAfter: number): AgentstoreError {
    return new AgentstoreError('agentstore.rate_limited', 'too many attempts, try again later', { retryAfter });
  }

  static unavailable(message: string, cause?: unknown, retryAfter = 1): AgentstoreError {
    return new AgentstoreError('agentstore.unavailable', message, { retryAfter }, { cause });
  }

  /** A feature that needs `variable` set, asked for while it is not: 503 naming the variable. */
  static notConfigured(variable: string, message: string): AgentstoreError {
    return new AgentstoreError('agentstore.not_configured', `${message}: set ${variable}`, { variable });
  }

  static config(variable: string, message: string): AgentstoreError {
    return new AgentstoreError('agentstore.config', `${variable}: ${message}`, { variable });
  }
}

export function isAgentstoreError(error: unknown, code?: ErrorCode): error is AgentstoreError {
  if (typeof error !== 'object' || error === null) return false;
  const candidate = error as { name?: unknown; code?: unknown };
  if (candidate.name !== 'AgentstoreError' || typeof candidate.code !== 'string') return false;
  return code === undefined || candidate.code === code;
}
