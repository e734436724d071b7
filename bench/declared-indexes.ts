/**
 * What other tenants' declared indexes cost one tenant's writes. Every declared index is a
 * partial index on the one shared `records` table, so each insert of any tenant checks the
 * predicate of every one of them (SQLite), or at least plans past them (PostgreSQL).
 *
 * One sequential writer (no load): an unrelated tenant creates records in a collection
 * without indexes, with 0 declared indexes in the database, with one tenant at the
 * per-tenant limit (32), with the database at its default cap (256: 8 tenants at their
 * limit), and with 40 tenants at their limit (1,280, past the cap, which is lifted here).
 * Prints median and p99 per create.
 *
 *   node --import tsx bench/declared-indexes.ts [sqlite|postgres] [creates]
 *
 * PostgreSQL uses the test harness's roles (test/helpers/pg-admin.ts) on a throw-away database.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { DEFAULT_TENANT_LIMITS } from '../src/config/config.js';
import { systemContext, type TenantContext } from '../src/core/context.js';
import { createStore, type Store } from '../src/store.js';
import { appUrl, createPgDatabase, dropPgDatabase, ownerUrl, withAdmin, ensureTestRoles } from '../test/helpers/pg-admin.js';

const backend = process.argv[2] === 'postgres' ? 'postgres' : 'sqlite';
const creates = Number(process.argv[3] ?? 300);
const PER_COLLECTION = 16;
// The database-wide cap lifted, so that the bench can go past it.
const LIFTED = { declaredIndexesTotal: 100_000 };

async function open(): Promise<{ store: Store; drop: () => Promise<void> }> {
  if (backend === 'sqlite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentstore-ddl-'));
    const store = await createStore({ databaseUrl: `sqlite:${path.join(dir, 'db.sqlite')}`, migrateOnStart: true, tenantLimits: LIFTED });
    return { store, drop: async () => fs.rmSync(dir, { recursive: true, force: true }) };
  }
  await withAdmin(ensureTestRoles);
  const name = await createPgDatabase('agentstore_ddl');
  const store = await createStore({ databaseUrl: appUrl(name), migrateDatabaseUrl: ownerUrl(name), migrateOnStart: true, tenantLimits: LIFTED });
  return { store, drop: () => dropPgDatabase(name) };
}

/** Declares `DEFAULT_TENANT_LIMITS.declaredIndexes` indexes for a new tenant, 16 per collection. */
async function fillTenant(store: Store, label: string): Promise<void> {
  const tenant = await store.tenants.create({ name: label });
  const ctx = systemContext(tenant.id);
  const total = DEFAULT_TENANT_LIMITS.declaredIndexes;
  for (let c = 0; c * PER_COLLECTION < total; c++) {
    const fields = Array.from({ length: Math.min(PER_COLLECTION, total - c * PER_COLLECTION) }, (_, i) => `f${i}`);
    await store.collections.define(ctx, `ix${c}`, { indexes: fields });
  }
}

async function measure(store: Store, ctx: TenantContext, round: string): Promise<{ median: number; p99: number }> {
  // Warm-up: the first write after DDL re-prepares its statements.
  for (let i = 0; i < 20; i++) await store.collections.create(ctx, 'plain', { warm: i, round });
  const times: number[] = [];
  for (let i = 0; i < creates; i++) {
    const start = performance.now();
    await store.collections.create(ctx, 'plain', { n: i, round, title: `record ${i}` });
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(times.length / 2)] as number, p99: times[Math.floor(times.length * 0.99)] as number };
}

const { store, drop } = await open();
try {
  const unrelated = systemContext((await store.tenants.create({ name: 'unrelated' })).id);
  const rows: string[] = [];
  const report = async (label: string, tenantsAtLimit: number) => {
    const { median, p99 } = await measure(store, unrelated, label);
    rows.push(`| ${backend} | ${tenantsAtLimit} | ${tenantsAtLimit * DEFAULT_TENANT_LIMITS.declaredIndexes} | ${median.toFixed(3)} | ${p99.toFixed(3)} |`);
  };
  let filled = 0;
  for (const tenants of [0, 1, 8, 40]) {
    while (filled < tenants) await fillTenant(store, `full-${filled++}`);
    await report(`${tenants}`, tenants);
  }
  process.stdout.write(`| backend | tenants at the limit | declared indexes | create median ms | create p99 ms |\n|---|---|---|---|---|\n${rows.join('\n')}\n`);
} finally {
  await store.close();
  await drop();
}
