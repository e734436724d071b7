import { sql } from 'kysely';
import { AgentstoreError } from '../../core/errors.js';
import { requireRole, type TenantContext } from '../../core/context.js';
import { afterKey, pageSize, toPage, type Page } from '../../core/cursor.js';
import { toIso } from '../../db/dialect.js';
import type { CountersTable } from '../../db/schema.js';
import type { UnitOfWork, UnitOfWorkRunner } from '../../db/unit-of-work.js';

export interface Counter {
  readonly name: string;
  readonly value: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface CountersService {
  /** Adds `by` (default 1, may be negative) atomically; creates the counter at 0 first. */
  increment(ctx: TenantContext, name: string, by?: number): Promise<Counter>;
  get(ctx: TenantContext, name: string): Promise<Counter>;
  reset(ctx: TenantContext, name: string, value?: number): Promise<Counter>;
  list(ctx: TenantContext, options?: { limit?: number; cursor?: string }): Promise<Page<Counter>>;
}

const COUNTER_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$/;

export function validateCounterName(name: string): string {
  if (!COUNTER_NAME.test(name)) throw AgentstoreError.invalidField('name', 'must be 1-128 characters of letters, digits, _ . : -');
  return name;
}

function validateAmount(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw AgentstoreError.invalidField(field, 'must be an integer between -(2^53-1) and 2^53-1');
  return value;
}

function toCounter(row: CountersTable): Counter {
  return { name: row.name, value: Number(row.value), createdAt: toIso(row.created_at), updatedAt: toIso(row.updated_at) };
}

export interface IncrementInput {
  readonly name: string;
  readonly by: number;
}

/** The role, the name and the amount of an increment, checked before any unit opens. */
export function checkIncrement(ctx: TenantContext, name: string, by: unknown = 1): IncrementInput {
  requireRole(ctx, 'member');
  validateCounterName(name);
  return { name, by: validateAmount(by, '/by') };
}

/**
 * An increment inside the unit `w` (a single route's, or a batch's). One upsert statement:
 * the database serialises concurrent increments on the row, so none is lost and each caller
 * sees the value its own increment produced.
 */
export async function incrementIn(w: UnitOfWork, input: IncrementInput): Promise<Counter> {
  const { name, by } = input;
  const row = await w.trx
    .insertInto('counters')
    .values({ tenant_id: w.ctx.tenantId, name, value: by, created_at: w.now, updated_at: w.now })
    .onConflict((oc) => oc.columns(['tenant_id', 'name']).doUpdateSet({ value: sql`counters.value + excluded.value`, updated_at: w.now }))
    .returningAll()
    .executeTakeFirstOrThrow();
  const counter = toCounter(row);
  if (!Number.isSafeInteger(counter.value)) throw AgentstoreError.invalidField('/by', 'the counter would leave the safe integer range');
  await w.record({ action: 'increment', resourceType: 'counter', resourceId: name, data: counter, details: { by } });
  return counter;
}

export function createCountersService(deps: { uow: UnitOfWorkRunner }): CountersService {
  const { uow } = deps;
  return {
    async increment(ctx, name, by = 1) {
      const input = checkIncrement(ctx, name, by);
      return uow.write(ctx, (w) => incrementIn(w, input));
    },

    async get(ctx, name) {
      requireRole(ctx, 'viewer');
      validateCounterName(name);
      const row = await uow.read(ctx, (trx) => trx.selectFrom('counters').selectAll().where('tenant_id', '=', ctx.tenantId).where('name', '=', name).executeTakeFirst());
      if (!row) throw AgentstoreError.notFound('counter');
      return toCounter(row);
    },

    async reset(ctx, name, value = 0) {
      requireRole(ctx, 'member');
      validateCounterName(name);
      validateAmount(value, '/value');
      return uow.write(ctx, async (w) => {
        const row = await w.trx
          .insertInto('counters')
          .values({ tenant_id: ctx.tenantId, name, value, created_at: w.now, updated_at: w.now })
          .onConflict((oc) => oc.columns(['tenant_id', 'name']).doUpdateSet({ value, updated_at: w.now }))
          .returningAll()
          .executeTakeFirstOrThrow();
        const counter = toCounter(row);
        await w.record({ action: 'reset', resourceType: 'counter', resourceId: name, data: counter });
        return counter;
      });
    },

    async list(ctx, options = {}) {
      requireRole(ctx, 'viewer');
      const limit = pageSize(options.limit);
      const after = afterKey('counters', options.cursor);
      const rows = await uow.read(ctx, (trx) => {
        let q = trx.selectFrom('counters').selectAll().where('tenant_id', '=', ctx.tenantId).orderBy('name').limit(limit + 1);
        if (after !== undefined) q = q.where('name', '>', after);
        return q.execute();
      });
      return toPage(rows, limit, toCounter, (item) => [item.name], 'counters');
    },
  };
}
