/**
 * Atomic batches: up to 100 writes to records and counters in one unit of work, all or
 * nothing. Each operation is the single route's own write function (record-writes.ts,
 * counters' `incrementIn`), run one after another in the batch's unit, so each sees what the
 * ones before it wrote (create then patch one id works), and their changes reach the change
 * feed in operation order with one commit. Every operation is checked (role, names, ids, data)
 * before the unit opens; the first one that fails, then or while writing, is the batch's
 * answer, with its index (`failedIndex`) and its fields named as pointers into the batch
 * (`/operations/3/data/x`), and nothing is written.
 */
import { AgentstoreError, isAgentstoreError, type FieldError } from '../../core/errors.js';
import type { TenantContext } from '../../core/context.js';
import { isUniqueViolation } from '../../db/errors.js';
import { idempotentRequest, rememberIdempotent, replayIdempotent } from '../../db/idempotency.js';
import type { UnitOfWork, UnitOfWorkRunner } from '../../db/unit-of-work.js';
import { checkCreate, checkDelete, checkPatch, checkPut, indexLimitError, type RecordWrites } from '../collections/record-writes.js';
import type { ExpiryOptions } from '../collections/expiry.js';
import type { JsonObject, Precondition, StoredRecord } from '../collections/types.js';
import { checkIncrement, incrementIn, type Counter } from '../counters/service.js';

export const MAX_BATCH_OPERATIONS = 100;

/** `ttl` or `expiresAt` on create, replace and patch: as the single routes' query parameters. */
export type BatchOperation =
  | ({ readonly op: 'create'; readonly collection: string; readonly id?: string; readonly data: JsonObject } & ExpiryOptions)
  /** PUT: replaces the record, or creates it when it does not exist and `ifMatch` is not given. */
  | ({ readonly op: 'replace'; readonly collection: string; readonly id: string; readonly data: JsonObject; readonly ifMatch?: Precondition } & ExpiryOptions)
  /** A JSON merge patch (RFC 7396), as PATCH; the record keeps its expiry unless one is given. */
  | ({ readonly op: 'patch'; readonly collection: string; readonly id: string; readonly data: JsonObject; readonly ifMatch?: Precondition } & ExpiryOptions)
  | { readonly op: 'delete'; readonly collection: string; readonly id: string; readonly ifMatch?: Precondition }
  | { readonly op: 'increment'; readonly counter: string; readonly by?: number };

/** One result per operation, in order; `status` is what the single route would have answered. */
export type BatchResult =
  | { readonly op: 'create' | 'replace' | 'patch'; readonly status: 200 | 201; readonly record: StoredRecord }
  | { readonly op: 'delete'; readonly status: 204; readonly collection: string; readonly id: string; readonly version: number }
  | { readonly op: 'increment'; readonly status: 200; readonly counter: Counter };

export interface BatchOutcome {
  readonly results: BatchResult[];
  /** True when an Idempotency-Key matched an earlier batch and its results were returned. */
  readonly replayed: boolean;
}

export interface BatchService {
  run(ctx: TenantContext, operations: readonly BatchOperation[], options?: { idempotencyKey?: string }): Promise<BatchOutcome>;
}

const MEMBERS: Readonly<Record<BatchOperation['op'], readonly string[]>> = {
  create: ['op', 'collection', 'id', 'data', 'ttl', 'expiresAt'],
  replace: ['op', 'collection', 'id', 'data', 'ifMatch', 'ttl', 'expiresAt'],
  patch: ['op', 'collection', 'id', 'data', 'ifMatch', 'ttl', 'expiresAt'],
  delete: ['op', 'collection', 'id', 'ifMatch'],
  increment: ['op', 'counter', 'by'],
};

// The names a single route's checks give their fields, as members of an operation.
const MEMBER_OF_FIELD: ReadonlyMap<string, string> = new Map([
  ['collection', 'collection'],
  ['id', 'id'],
  ['if-match', 'ifMatch'],
  ['name', 'counter'],
  ['body', 'data'],
  ['/by', 'by'],
]);

/** A single route's field name as a pointer into the batch body: `/data/x` of operation 3 is `/operations/3/data/x`. */
function fieldInBatch(index: number, field: string): string {
  const member = MEMBER_OF_FIELD.get(field);
  if (member !== undefined) return `/operations/${index}/${member}`;
  return field.startsWith('/') ? `/operations/${index}${field}` : field;
}

/**
 * The failure of operation `index` as the batch's: its code (so its status), its fields named
 * in the batch, and `failedIndex`. Errors that are not the operation's fault (a transient
 * database error the unit retries, an internal one) pass unchanged.
 */
export function failedOperation(index: number, error: unknown): unknown {
  const own = indexLimitError(error) ?? error;
  if (!isAgentstoreError(own)) return own;
  const errors: FieldError[] | undefined = own.context.errors?.map((e) => ({ field: fieldInBatch(index, e.field), message: e.message }));
  // Messages of field errors start with the field's name ("collection: must be ..."): the
  // batch's name says which operation; other messages are prefixed with it.
  const first = own.context.errors?.[0];
  const message =
    first && errors?.[0] && own.message.startsWith(`${first.field}: `) && errors[0].field !== first.field
      ? `${errors[0].field}: ${own.message.slice(first.field.length + 2)}`
      : `operation ${index}: ${own.message}`;
  const { currentVersion, retryAfter } = own.context;
  return new AgentstoreError(
    own.code,
    message,
    { ...(errors ? { errors } : {}), failedIndex: index, ...(currentVersion !== undefined ? { currentVersion } : {}), ...(retryAfter !== undefined ? { retryAfter } : {}) },
    { cause: own },
  );
}

/** An operation checked, bound to its write. */
type Prepared = (w: UnitOfWork) => Promise<BatchResult>;

function member(op: Record<string, unknown>, name: string, kind: 'string' | 'object'): unknown {
  const value = op[name];
  if (value === undefined) throw AgentstoreError.invalidField(`/${name}`, 'is required');
  if (kind === 'string' && typeof value !== 'string') throw AgentstoreError.invalidField(`/${name}`, 'must be a string');
  return value;
}

function precondition(value: unknown): Precondition | undefined {
  if (value === undefined || value === '*') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  throw AgentstoreError.invalidField('/ifMatch', 'must be a version number (the ETag without its quotes) or "*"');
}

/** Checks one operation (its fields named as in an operation object) and binds its write. */
function prepare(ctx: TenantContext, writes: RecordWrites, op: Record<string, unknown>): Prepared {
  const kind = op.op;
  if (typeof kind !== 'string' || !Object.hasOwn(MEMBERS, kind)) {
    throw AgentstoreError.invalidField('/op', `must be one of ${Object.keys(MEMBERS).join(', ')}`);
  }
  const allowed = MEMBERS[kind as BatchOperation['op']];
  for (const key of Object.keys(op)) if (!allowed.includes(key)) throw AgentstoreError.invalidField(`/${key}`, `is not a member of a ${kind} operation`);
  if (kind === 'increment') {
    const input = checkIncrement(ctx, member(op, 'counter', 'string') as string, op.by ?? 1);
    return async (w) => ({ op: kind, status: 200, counter: await incrementIn(w, input) });
  }
  const collection = member(op, 'collection', 'string') as string;
  const ifMatch = precondition(op.ifMatch);
  // Named as members of the operation (fieldInBatch prefixes the operation's place).
  const expiry = { ttl: op.ttl, expiresAt: op.expiresAt, fields: { ttl: '/ttl', expiresAt: '/expiresAt' } };
  switch (kind) {
    case 'create': {
      if (op.id !== undefined && typeof op.id !== 'string') throw AgentstoreError.invalidField('/id', 'must be a string');
      const input = checkCreate(ctx, collection, member(op, 'data', 'object'), op.id, expiry);
      return async (w) => ({ op: kind, status: 201, record: await writes.create(w, input) });
    }
    case 'replace': {
      const input = checkPut(ctx, collection, member(op, 'id', 'string') as string, member(op, 'data', 'object'), { ...(ifMatch !== undefined ? { ifMatch } : {}), createIfMissing: true }, expiry);
      return async (w) => {
        const { record, created } = await writes.put(w, input);
        return { op: kind, status: created ? 201 : 200, record };
      };
    }
    case 'patch': {
      const input = checkPatch(ctx, collection, member(op, 'id', 'string') as string, member(op, 'data', 'object'), ifMatch, expiry);
      return async (w) => ({ op: kind, status: 200, record: await writes.patch(w, input) });
    }
    default: {
      const input = checkDelete(ctx, collection, member(op, 'id', 'string') as string, ifMatch);
      return async (w) => ({ op: 'delete', status: 204, collection: input.collection, id: input.id, version: (await writes.remove(w, input)).version });
    }
  }
}

export function createBatchService(deps: { uow: UnitOfWorkRunner; writes: RecordWrites }): BatchService {
  const { uow, writes } = deps;
  return {
    async run(ctx, operations, options = {}) {
      if (!Array.isArray(operations) || operations.length === 0 || operations.length > MAX_BATCH_OPERATIONS) {
        throw AgentstoreError.invalidField('/operations', `must hold 1 to ${MAX_BATCH_OPERATIONS} operations`);
      }
      const prepared = operations.map((op: unknown, index) => {
        if (typeof op !== 'object' || op === null || Array.isArray(op)) {
          throw new AgentstoreError('agentstore.validation', `/operations/${index}: must be an object`, { errors: [{ field: `/operations/${index}`, message: 'must be an object' }], failedIndex: index });
        }
        try {
          return prepare(ctx, writes, op as Record<string, unknown>);
        } catch (error) {
          throw failedOperation(index, error);
        }
      });
      const keyed = idempotentRequest(options.idempotencyKey, 'batch', JSON.stringify(operations));
      if (keyed) {
        const replay = await replayIdempotent<BatchResult[]>(uow, ctx, keyed);
        if (replay) return { results: replay, replayed: true };
      }
      try {
        const results = await uow.write(ctx, async (w) => {
          const out: BatchResult[] = [];
          for (const [index, write] of prepared.entries()) {
            try {
              out.push(await write(w));
            } catch (error) {
              throw failedOperation(index, error);
            }
          }
          if (keyed) await rememberIdempotent(w, keyed, 200, out);
          return out;
        });
        return { results, replayed: false };
      } catch (error) {
        // A concurrent batch with the same Idempotency-Key committed first: its results are the answer.
        if (keyed && isUniqueViolation(error)) {
          const replay = await replayIdempotent<BatchResult[]>(uow, ctx, keyed);
          if (replay) return { results: replay, replayed: true };
        }
        throw error;
      }
    },
  };
}
