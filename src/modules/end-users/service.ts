/**
 * Erasing an end user: the registry of erasers, one per module that stores end users' data,
 * and the erasure that runs them all (docs/architecture.md, "Erasing an end user").
 *
 * An end user is the platform's own user, named by a free-text id (a conversation's
 * `endUserId`, a record's declared `endUserField`); agentstore has no table of them. Every
 * module that keeps data of an end user registers an eraser naming the tables it covers, and
 * test/modules/end-users.test.ts fails when a table with an end-user column (schema.ts,
 * END_USER_TABLES) is covered by none, so a module cannot be forgotten.
 *
 * An erasure runs each eraser's bounded batches until it reports nothing left, one unit of
 * work per batch with a turn of the event loop between them, so writers go in between; each
 * erased item leaves a delete in the change feed (consumers drop their copies) but no audit
 * entry of its own. The erasure as a whole leaves one audit entry: the counts per eraser, and
 * the end user named only by a hash (`resourceId`), never the id itself. It is idempotent: a
 * second erasure finds nothing and records counts of zero.
 */
import { createHash } from 'node:crypto';
import { AgentstoreError } from '../../core/errors.js';
import { requireRole, type TenantContext } from '../../core/context.js';
import { assertText } from '../../core/text.js';
import type { UnitOfWorkRunner } from '../../db/unit-of-work.js';

/** One module's part of an erasure. */
export interface EndUserEraser {
  /** The key of its count in the erasure's result and audit entry: `records`, `conversations` … */
  readonly name: string;
  /** The tables (schema.ts, END_USER_TABLES) whose end-user data it erases. */
  readonly tables: readonly string[];
  /**
   * Erases one bounded batch of the end user's data in the tenant, in a unit of work of its own
   * (its deletes recorded with `audit: false`), and resolves with how many items it removed:
   * 0 when nothing of the end user is left. Called until it returns 0.
   */
  eraseBatch(ctx: TenantContext, endUserId: string): Promise<number>;
}

export interface EndUserErasure {
  /** The end user as the audit entry names it: a hash of the tenant and the id. */
  readonly subject: string;
  /** Items erased, per eraser. */
  readonly counts: Readonly<Record<string, number>>;
  readonly total: number;
}

export interface EndUsersService {
  /** Registers a module's eraser. Names are unique; register before the store is used. */
  register(eraser: EndUserEraser): void;
  /** The registered erasers, in registration order. */
  erasers(): readonly EndUserEraser[];
  /** Deletes every item of this end user in the tenant (admin). */
  erase(ctx: TenantContext, endUserId: string): Promise<EndUserErasure>;
}

export const MAX_END_USER_ID = 256;

/** An end-user id as modules store it: 1-256 characters of storable text. */
export function validateEndUserId(value: unknown, field = 'endUserId'): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_END_USER_ID) {
    throw AgentstoreError.invalidField(field, `must be a string of 1 to ${MAX_END_USER_ID} characters`);
  }
  return assertText(value, field);
}

/** The end user as the audit log names it: the same id gives the same subject in a tenant, and the id cannot be read back from it. */
export function erasureSubject(tenantId: string, endUserId: string): string {
  return createHash('sha256').update(`${tenantId}\u0000${endUserId}`).digest('hex').slice(0, 32);
}

export function createEndUsersService(deps: { uow: UnitOfWorkRunner }): EndUsersService {
  const registered: EndUserEraser[] = [];
  return {
    register(eraser) {
      if (registered.some((e) => e.name === eraser.name)) throw new Error(`an end-user eraser named "${eraser.name}" is registered already`);
      registered.push(eraser);
    },
    erasers: () => [...registered],
    async erase(ctx, endUserId) {
      requireRole(ctx, 'admin');
      const id = validateEndUserId(endUserId);
      const counts: Record<string, number> = {};
      for (const eraser of registered) {
        let n = 0;
        for (;;) {
          const removed = await eraser.eraseBatch(ctx, id);
          if (removed === 0) break;
          n += removed;
          // Between batches: other requests (and the SQLite writer's other members) go first.
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
        counts[eraser.name] = n;
      }
      const subject = erasureSubject(ctx.tenantId, id);
      const total = Object.values(counts).reduce((sum, n) => sum + n, 0);
      await deps.uow.write(ctx, (w) => w.record({ action: 'erase', resourceType: 'end_user', resourceId: subject, data: null, details: { counts, total } }));
      return { subject, counts, total };
    },
  };
}
