/**
 * A declared index's CREATE INDEX locks the shared records table against every writer. Queued
 * behind a long transaction, it would hold every tenant's later writes behind it (PostgreSQL
 * grants locks in order), so the index functions give up after their lock_timeout with a 503.
 */
import pg from 'pg';
import { expect, it } from 'vitest';
import { isAgentstoreError } from '../../src/core/errors.js';
import { forEachBackend, newTenant, useTestStore } from '../helpers/index.js';

forEachBackend(
  'declared-index DDL behind a long transaction',
  (backend) => {
    const t = useTestStore(backend);

    it('gives up after 2 s with a 503 and Retry-After, changes nothing, and succeeds once the table is free', async () => {
      const { ctx } = await newTenant(t.store);
      await t.store.collections.create(ctx, 'busy', { a: 1 });
      // Another tenant's open write transaction: it holds the table's ROW EXCLUSIVE lock.
      const other = await newTenant(t.store);
      await t.store.collections.create(other.ctx, 'x', { id: 'held' });
      const holder = new pg.Client({ connectionString: t.database.directUrl });
      await holder.connect();
      try {
        await holder.query('begin');
        await holder.query("select set_config('app.tenant_id', $1, true)", [other.ctx.tenantId]);
        await holder.query("update records set updated_at = now() where tenant_id = $1 and collection = 'x'", [other.ctx.tenantId]);
        const started = Date.now();
        const error = await t.store.collections.define(ctx, 'busy', { indexes: ['a'] }).catch((e: unknown) => e);
        expect(isAgentstoreError(error, 'agentstore.unavailable'), String(error)).toBe(true);
        expect((error as { context: { retryAfter?: number } }).context.retryAfter).toBeGreaterThan(0);
        expect(Date.now() - started).toBeLessThan(10_000);
        expect((await t.store.collections.getCollection(ctx, 'busy')).indexes).toEqual([]);
      } finally {
        await holder.query('rollback').catch(() => undefined);
        await holder.end();
      }
      expect((await t.store.collections.define(ctx, 'busy', { indexes: ['a'] })).indexes).toEqual(['a']);
    }, 30_000);
  },
  { only: ['postgres', 'pgbouncer'] },
);
