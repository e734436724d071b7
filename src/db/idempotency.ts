/**
 * Idempotency keys (`Idempotency-Key`): the first response of a keyed request is stored in
 * the unit of work that made it, so a retry with the same key and the same request gets that
 * response and writes nothing, and a retry with another request under the key is a 409. Keys
 * belong to the tenant and live 24 h; `scope` names the operation, so a key reused for
 * another kind of request is refused too.
 */
import { createHash } from 'node:crypto';
import type { TenantContext } from '../core/context.js';
import { AgentstoreError } from '../core/errors.js';
import { unstorableText } from '../core/text.js';
import { fromJsonColumn, toIso, toJsonColumn } from './dialect.js';
import { isUniqueViolation } from './errors.js';
import type { UnitOfWork, UnitOfWorkRunner } from './unit-of-work.js';

// Keys are remembered this long; a retry after that is a new request.
export const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;

export interface IdempotentRequest {
  readonly key: string;
  readonly scope: string;
  /** SHA-256 of the request, so that a replay is only ever of the same request. */
  readonly hash: string;
}

/** The keyed request, or undefined without a key. `request` is the text that identifies it. */
export function idempotentRequest(key: string | undefined, scope: string, request: string): IdempotentRequest | undefined {
  if (key === undefined) return undefined;
  if (key.length === 0 || key.length > 255 || unstorableText(key)) {
    throw AgentstoreError.invalidField('idempotency-key', 'must be 1-255 characters, without U+0000 or unpaired surrogates');
  }
  return { key, scope, hash: createHash('sha256').update(request).digest('hex') };
}

/** The stored response of an earlier request with this key, or undefined; 409 when the key was used for another request. */
export async function replayIdempotent<T>(uow: UnitOfWorkRunner, ctx: TenantContext, request: IdempotentRequest): Promise<T | undefined> {
  const row = await uow.read(ctx, (trx) =>
    trx.selectFrom('idempotency_keys').selectAll().where('tenant_id', '=', ctx.tenantId).where('key', '=', request.key).executeTakeFirst(),
  );
  if (!row || Date.parse(toIso(row.created_at)) < Date.now() - IDEMPOTENCY_TTL_MS) return undefined;
  if (row.scope !== request.scope || row.request_hash !== request.hash) {
    throw new AgentstoreError('agentstore.conflict', 'this Idempotency-Key was used for a different request', { errors: [{ field: 'idempotency-key', message: 'reused with a different request' }] });
  }
  return fromJsonColumn<T>(row.body);
}

/**
 * Stores the response in the unit that made it. A concurrent request with the same key makes
 * this insert fail on the key: the caller then replays the winner's response.
 */
export async function rememberIdempotent(w: UnitOfWork, request: IdempotentRequest, status: number, body: unknown): Promise<void> {
  // An expired key of the same name is replaced; a live one makes this insert fail.
  await w.trx
    .deleteFrom('idempotency_keys')
    .where('tenant_id', '=', w.ctx.tenantId)
    .where('key', '=', request.key)
    .where('created_at', '<', new Date(Date.now() - IDEMPOTENCY_TTL_MS).toISOString())
    .execute();
  await w.trx
    .insertInto('idempotency_keys')
    .values({ tenant_id: w.ctx.tenantId, key: request.key, scope: request.scope, request_hash: request.hash, status, body: toJsonColumn(body), created_at: w.now })
    .execute();
}

/**
 * A create under an optional key: the stored response when the key was used, else `write`
 * in one unit that also remembers its result (201). When a concurrent request with the same
 * key won (its key row made this unit fail on a unique key), that request's result.
 */
export async function createOnce<T>(uow: UnitOfWorkRunner, ctx: TenantContext, keyed: IdempotentRequest | undefined, write: (w: UnitOfWork) => Promise<T>, options?: { offLoop?: boolean }): Promise<{ value: T; replayed: boolean }> {
  if (keyed) {
    const replay = await replayIdempotent<T>(uow, ctx, keyed);
    if (replay !== undefined) return { value: replay, replayed: true };
  }
  try {
    const value = await uow.write(ctx, async (w) => {
      const result = await write(w);
      if (keyed) await rememberIdempotent(w, keyed, 201, result);
      return result;
    }, options);
    return { value, replayed: false };
  } catch (error) {
    if (keyed && isUniqueViolation(error)) {
      const replay = await replayIdempotent<T>(uow, ctx, keyed);
      if (replay !== undefined) return { value: replay, replayed: true };
    }
    throw error;
  }
}
