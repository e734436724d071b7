/**
 * One tenant's long work must not hold the event loop for the others: scans (listings whose
 * filter or sort no index serves) run off it, end at a timeout with 503 on both dialects and are
 * admitted fairly across tenants; deleting a big collection lets the loop turn.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemContext } from '../../src/core/context.js';
import { isAgentstoreError } from '../../src/core/errors.js';
import { createFairGate } from '../../src/db/fair-gate.js';
import { Sqlite } from '../../src/db/sqlite-driver.js';
import { openStore, resolveStoreConfig, type Store } from '../../src/store.js';
import { forEachBackend, useTestStore } from '../helpers/backends.js';
import { longestStall } from '../helpers/loop-meter.js';


describe('a scan on SQLite runs off the event loop', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentstore-scan-'));
  const file = path.join(dir, 'db.sqlite');
  let store: Store;
  let tenantId: string;
  const ROWS = 200_000;

  beforeAll(async () => {
    store = await openStore(resolveStoreConfig({ databaseUrl: `sqlite:${file}`, dataDir: dir, migrateOnStart: true, sqlite: { scanTimeoutMs: 60_000 } }, {}));
    tenantId = (await store.tenants.create({ name: 'big' })).id;
    await store.collections.create(systemContext(tenantId), 'items', { n: 0 });
    // Rows written straight into the file: 200,000 records through the API would take minutes.
    const raw = new Sqlite(file);
    const insert = raw.prepare("insert into records (tenant_id, collection, id, version, data, created_at, updated_at) values (?, 'items', ?, 1, ?, ?, ?)");
    const now = new Date().toISOString();
    raw.transaction(() => {
      for (let i = 0; i < ROWS; i++) insert.run(tenantId, `r${i}`, JSON.stringify({ n: (i * 7919) % ROWS, pad: 'x'.repeat(64) }), now, now);
    })();
    raw.close();
  }, 120_000);
  afterAll(async () => {
    await store?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** What a statement costs run synchronously on the main thread, as every read did before. */
  const mainThreadMs = (text: string): number => {
    const direct = new Sqlite(file, { readonly: true });
    const t0 = performance.now();
    direct.prepare(text).all(tenantId);
    const ms = performance.now() - t0;
    direct.close();
    return ms;
  };

  it('a sort by a data field of 200,000 records holds the loop far less than the same read on the main thread', async () => {
    const ctx = systemContext(tenantId);
    const syncMs = mainThreadMs("select id from records where tenant_id = ? and collection = 'items' order by json_extract(data, '$.n') desc limit 3");
    expect(syncMs, 'the fixture must make the read slow enough to see a stall').toBeGreaterThan(80);

    const { result, stallMs } = await longestStall(() => store.collections.list(ctx, 'items', { sort: '-n', limit: 3 }));
    expect(result.items.map((r) => r.data.n)).toEqual([ROWS - 1, ROWS - 2, ROWS - 3]);
    expect(stallMs).toBeLessThan(Math.max(40, syncMs / 2));
  });

  it('a filter that matches nothing scans off the loop too, and other requests are answered meanwhile', async () => {
    const ctx = systemContext(tenantId);
    const other = await store.tenants.create({ name: 'small' });
    const octx = systemContext(other.id);
    const { record } = await store.collections.create(octx, 'notes', { x: 1 });
    let answeredDuringScan = 0;
    const scan = store.collections.list(ctx, 'items', { filter: { pad: 'nothing like it' } });
    let done = false;
    void scan.finally(() => (done = true));
    while (!done) {
      await store.collections.get(octx, 'notes', record.id);
      if (!done) answeredDuringScan++;
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    expect((await scan).items).toEqual([]);
    expect(answeredDuringScan).toBeGreaterThan(5);
  });

  it('declaring an index on 200,000 records builds it off the loop, and other tenants read meanwhile', async () => {
    const ctx = systemContext(tenantId);
    // What the build costs on the main thread, as it ran before (inside the unit of work).
    // The faster of two, so that a cold first build does not make the bound loose.
    const direct = new Sqlite(file);
    let syncMs = Infinity;
    for (let i = 0; i < 2; i++) {
      const t0 = performance.now();
      direct.exec(`create index probe_n on records (json_extract(data, '$.pad')) where tenant_id = '${tenantId}' and collection = 'items'`);
      syncMs = Math.min(syncMs, performance.now() - t0);
      direct.exec('drop index probe_n');
    }
    direct.close();
    expect(syncMs, 'the fixture must make the build slow enough to see a stall').toBeGreaterThan(50);

    const other = await store.tenants.create({ name: 'reader' });
    const octx = systemContext(other.id);
    const { record } = await store.collections.create(octx, 'notes', { x: 1 });
    let answered = 0;
    let done = false;
    const { result, stallMs } = await longestStall(async () => {
      const define = store.collections.define(ctx, 'items', { indexes: ['pad'] }).finally(() => (done = true));
      while (!done) {
        await store.collections.get(octx, 'notes', record.id);
        if (!done) answered++;
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      return define;
    });
    expect(result.indexes).toEqual(['pad']);
    expect(stallMs).toBeLessThan(Math.max(40, syncMs / 2));
    expect(answered).toBeGreaterThan(3);
    // The index is there (test/modules/collections-plan.test.ts shows such an index serving its filter).
    const check = new Sqlite(file, { readonly: true });
    const indexes = check.prepare(`select sql from sqlite_master where type = 'index' and name like 'records_f_%'`).all() as { sql: string }[];
    check.close();
    expect(indexes.map((i) => i.sql)).toEqual([expect.stringContaining(`json_extract(data, '$."pad"')`)]);
  });

  it('counts and aggregates of 200,000 records are scans too: the loop stays free', async () => {
    const ctx = systemContext(tenantId);
    // What a count costs on the main thread, as the bound for both (an aggregate costs more).
    const syncMs = mainThreadMs("select count(*) from records where tenant_id = ? and collection = 'items' and json_extract(data, '$.n') >= 100");
    expect(syncMs, 'the fixture must make the count slow enough to see a stall').toBeGreaterThan(50);
    const counted = await longestStall(() => store.collections.count(ctx, 'items', { filter: { n: { gte: 100 } } }));
    expect(counted.result).toBe(ROWS - 100);
    expect(counted.stallMs).toBeLessThan(Math.max(40, syncMs / 2));
    const grouped = await longestStall(() => store.collections.aggregate(ctx, 'items', { groupBy: 'pad', metrics: 'sum:n,max:n' }));
    expect(grouped.result.groups.map((g) => [g.count, g.metrics['max:n']])).toEqual([
      // The first record, { n: 0 }, has no pad: the null group.
      [1, 0],
      [ROWS, ROWS - 1],
    ]);
    expect(grouped.stallMs).toBeLessThan(Math.max(40, syncMs / 2));
  });

  it('a scan past the timeout is a 503 at once, and the next scan gets a fresh worker', async () => {
    const quick = await openStore(resolveStoreConfig({ databaseUrl: `sqlite:${file}`, dataDir: dir, migrateOnStart: false, sqlite: { scanTimeoutMs: 100, scanWorkers: 1 } }, {}));
    try {
      const ctx = systemContext(tenantId);
      const started = performance.now();
      const error = await quick.collections.list(ctx, 'items', { sort: 'n', filter: { pad: { contains: 'y' } } }).catch((e: unknown) => e);
      expect(isAgentstoreError(error, 'agentstore.unavailable')).toBe(true);
      expect((error as Error).message).toMatch(/ran longer than 100 ms/);
      expect((error as { context: { retryAfter?: number } }).context.retryAfter).toBeGreaterThan(0);
      expect(performance.now() - started).toBeLessThan(1000);
      // The abandoned worker still finishes its statement. With one worker, scans are refused
      // until it has (the bound on threads still burning a core), then run again.
      const small = systemContext((await quick.tenants.create({ name: 'after' })).id);
      await quick.collections.create(small, 'few', { k: 1 });
      const refused = await quick.collections.list(small, 'few', { filter: { k: 1 } }).catch((e: unknown) => e);
      expect(isAgentstoreError(refused, 'agentstore.unavailable')).toBe(true);
      expect((refused as Error).message).toMatch(/still being cancelled/);
      let page;
      for (let i = 0; i < 400 && !page; i++) {
        page = await quick.collections.list(small, 'few', { filter: { k: 1 } }).catch((e: unknown) => {
          if (!isAgentstoreError(e, 'agentstore.unavailable')) throw e;
          return undefined;
        });
        if (!page) await new Promise((resolve) => setTimeout(resolve, 25));
      }
      expect(page?.items.map((r) => r.data.k)).toEqual([1]);
    } finally {
      await quick.close();
    }
  }, 30_000);

  // Last: it deletes the fixture.
  it('deleting a collection of 200,000 records runs off the loop, COMMIT included, and removes them all at once', async () => {
    const ctx = systemContext(tenantId);
    // On the main thread a single DELETE held the loop for the whole deletion, and the chunked
    // one still for its COMMIT (~1 ms per 1,000 records deleted here).
    const { stallMs, tookMs } = await longestStall(() => store.collections.deleteCollection(ctx, 'items'));
    expect(tookMs, 'the fixture must make the deletion slow enough to see a stall').toBeGreaterThan(300);
    expect(stallMs).toBeLessThan(Math.max(50, tookMs / 10));
    expect((await store.collections.list(ctx, 'items', { limit: 1 })).items).toEqual([]);
    const entry = (await store.audit.list(ctx, { limit: 1 })).items[0];
    expect(entry, JSON.stringify(entry)).toMatchObject({ resourceType: 'collection', resourceId: 'items', action: 'collection.delete', details: { records: ROWS + 1 } });
  }, 60_000);
});

forEachBackend('statement timeout', (backend) => {
  const t = useTestStore(backend, { store: { postgres: { statementTimeoutMs: 200 }, sqlite: { scanTimeoutMs: 200 } } });
  it('a read past the statement timeout is a 503 naming the limit, not a driver error', async () => {
    const tenant = await t.store.tenants.create({ name: 'slow' });
    const slow =
      backend.dialect === 'postgres'
        ? sql`select pg_sleep(2)`
        : // A recursive count to 50 million: seconds of work in one statement.
          sql`with recursive c(x) as (select 1 union all select x + 1 from c where x < 50000000) select count(*) from c`;
    const error = await t.store.internals.db.inTenant(tenant.id, (trx) => slow.execute(trx), { readOnly: true, scan: true }).catch((e: unknown) => e);
    expect(isAgentstoreError(error, 'agentstore.unavailable')).toBe(true);
    expect((error as Error).message).toMatch(/ran longer than 200 ms/);
  }, 30_000);
});

describe('the scan gate', () => {
  const deferred = () => {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    return { promise, resolve };
  };

  it('takes waiting work round-robin by tenant, not in arrival order', async () => {
    const gate = createFairGate({ concurrency: 1, maxQueuedPerKey: 10, maxQueued: 100 });
    const order: string[] = [];
    const first = deferred();
    const runs = [gate.run('a', async () => { order.push('a0'); await first.promise; })];
    for (let i = 1; i <= 4; i++) runs.push(gate.run('a', async () => void order.push(`a${i}`)));
    runs.push(gate.run('b', async () => void order.push('b0')));
    runs.push(gate.run('c', async () => void order.push('c0')));
    first.resolve();
    await Promise.all(runs);
    expect(order).toEqual(['a0', 'a1', 'b0', 'c0', 'a2', 'a3', 'a4']);
  });

  it('refuses work past its queue bounds with 503, per tenant and in all', async () => {
    const gate = createFairGate({ concurrency: 1, maxQueuedPerKey: 2, maxQueued: 3 });
    const hold = deferred();
    const running = gate.run('a', () => hold.promise);
    const queued = [gate.run('a', async () => 1), gate.run('a', async () => 2)];
    const refused = await gate.run('a', async () => 3).catch((e: unknown) => e);
    expect(isAgentstoreError(refused, 'agentstore.unavailable')).toBe(true);
    queued.push(gate.run('b', async () => 4));
    const full = await gate.run('c', async () => 5).catch((e: unknown) => e);
    expect(isAgentstoreError(full, 'agentstore.unavailable')).toBe(true);
    expect(gate.queued).toBe(3);
    hold.resolve();
    await running;
    expect(await Promise.all(queued)).toEqual([1, 2, 4]);
    expect(gate.queued + gate.running).toBe(0);
  });

  it('a failing or throwing work item frees its turn', async () => {
    const gate = createFairGate({ concurrency: 1, maxQueuedPerKey: 5, maxQueued: 5 });
    const failed = gate.run('a', () => {
      throw new Error('boom');
    });
    await expect(failed).rejects.toThrow('boom');
    await expect(gate.run('a', async () => 'next')).resolves.toBe('next');
  });
});
