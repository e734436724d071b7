/**
 * Small helpers shared by the domain suites: tenants and contexts, error assertions, and
 * raw row counts for unit-of-work checks.
 */
import { sql } from 'kysely';
import { expect } from 'vitest';
import { systemContext, type Role, type TenantContext, type Actor } from '../../src/core/context.js';
import { isAgentstoreError, type AgentstoreError, type ErrorCode } from '../../src/core/errors.js';
import type { Store } from '../../src/store.js';
import type { Tenant } from '../../src/modules/tenancy/types.js';
import type { TENANT_TABLES } from '../../src/db/schema.js';

let tenantCounter = 0;

/** A new tenant and an owner-level system context for it. Each test should make its own. */
export async function newTenant(store: Store, name = `tenant-${++tenantCounter}`): Promise<{ tenant: Tenant; ctx: TenantContext }> {
  const tenant = await store.tenants.create({ name });
  return { tenant, ctx: systemContext(tenant.id) };
}

/** A context with `role` in the tenant of `base` (a context or a tenant id). */
export function asRole(base: TenantContext | string, role: Role, actor: Actor = { type: 'api_key', id: `test-${role}` }): TenantContext {
  const tenantId = typeof base === 'string' ? base : base.tenantId;
  return { tenantId, role, actor };
}

export interface ExpectedError {
  /** A field named in `context.errors` (for validation errors). */
  readonly field?: string;
  readonly message?: RegExp;
}

/**
 * Awaits `action` and asserts it fails with an AgentstoreError of `code`; returns the
 * error for further checks. Fails the test when it succeeds or throws anything else.
 */
export async function expectError(
  action: Promise<unknown> | (() => Promise<unknown>),
  code: ErrorCode,
  expected: ExpectedError = {},
): Promise<AgentstoreError> {
  let outcome: { ok: true; value: unknown } | { ok: false; error: unknown };
  try {
    outcome = { ok: true, value: await (typeof action === 'function' ? action() : action) };
  } catch (error) {
    outcome = { ok: false, error };
  }
  if (outcome.ok) {
    expect.fail(`expected ${code}, but it succeeded with ${JSON.stringify(outcome.value)?.slice(0, 300)}`);
  }
  const error = outcome.error;
  if (!isAgentstoreError(error)) {
    expect.fail(`expected ${code}, got a non-agentstore error: ${String((error as Error)?.stack ?? error)}`);
  }
  expect(error.code, error.message).toBe(code);
  if (expected.field !== undefined) {
    const fields = (error.context.errors ?? []).map((e) => e.field);
    expect(fields, error.message).toContain(expected.field);
  }
  if (expected.message) expect(error.message).toMatch(expected.message);
  return error;
}

export type TenantTable = (typeof TENANT_TABLES)[number];

/** Rows of one tenant in a tenant table, read under that tenant's RLS context. */
export async function countRows(store: Store, table: TenantTable, tenantId: string): Promise<number> {
  return store.internals.db.inTenant(
    tenantId,
    async (trx) => {
      const { rows } = await sql<{ n: number | string }>`select count(*) as n from ${sql.table(table)} where tenant_id = ${tenantId}`.execute(trx);
      return Number(rows[0]?.n ?? 0);
    },
    { readOnly: true },
  );
}

/** Audit, change-log and record counts of a tenant: compare before/after a mutation. */
export async function snapshotCounts(store: Store, tenantId: string): Promise<{ audit: number; changes: number; records: number; collections: number }> {
  const [audit, changes, records, collections] = await Promise.all([
    countRows(store, 'audit_log', tenantId),
    countRows(store, 'changes', tenantId),
    countRows(store, 'records', tenantId),
    countRows(store, 'collections', tenantId),
  ]);
  return { audit, changes, records, collections };
}

/** Deterministic pseudo-random numbers (mulberry32), so a failing data set can be replayed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Encryption keys for agent secrets in tests (AGENTSTORE_ENCRYPTION_KEY's format). Not
 * secrets: fixed so that a store reopened on the same database decrypts what it wrote.
 */
export const TEST_ENCRYPTION_KEY = `test-1:${Buffer.alloc(32, 1).toString('base64')}`;
export const TEST_ENCRYPTION_KEY_2 = `test-2:${Buffer.alloc(32, 2).toString('base64')}`;
