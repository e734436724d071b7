import { Sqlite } from '../../src/db/sqlite-driver.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { uuidv7 } from '../../src/core/ids.js';
import type { Database } from '../../src/db/database.js';
import { sql } from 'kysely';
import { createMigratedTestDatabase, forEachBackend, openTestDb, type TestDatabase } from '../helpers/backends.js';

// Write transactions under concurrency. On SQLite they are group-committed (src/db/group-commit.ts):
// many share one COMMIT, each in its own savepoint. The guarantees below hold on every backend.
forEachBackend('write transactions', (backend) => {
  let database: TestDatabase;
  let db: Database;
  beforeAll(async () => {
    database = await createMigratedTestDatabase(backend);
    db = openTestDb(database);
  });
  afterAll(async () => {
    await db.close();
    await database.drop();
  });

  const now = () => new Date().toISOString();
  const insertTenant = (name: string) => (trx: Parameters<Parameters<Database['inSystem']>[0]>[0]) =>
    trx.insertInto('tenants').values({ id: uuidv7(), name, version: 1, created_at: now(), updated_at: now() }).execute();
  // `tenants` is visible to the system context only (RLS, migration 0003 on PostgreSQL).
  const names = async (prefix: string) =>
    (await db.inSystem((trx) => trx.selectFrom('tenants').select('name').where('name', 'like', `${prefix}%`).execute(), { readOnly: true })).map((r) => r.name).sort();

  it('of concurrent transactions, a failing one is rolled back alone and the others commit', async () => {
    const results = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) =>
        db.inSystem(async (trx) => {
          await insertTenant(`wt1-${String(i).padStart(2, '0')}`)(trx);
          if (i % 5 === 2) {
            await insertTenant(`wt1-${String(i).padStart(2, '0')}-partial`)(trx);
            throw new Error(`unit ${i} fails after writing`);
          }
          return i;
        }),
      ),
    );
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [i] : []));
    expect(failed).toEqual([2, 7, 12, 17, 22, 27, 32, 37]);
    for (const i of failed) expect(String((results[i] as PromiseRejectedResult).reason)).toContain(`unit ${i} fails`);
    const expected = Array.from({ length: 40 }, (_, i) => i).filter((i) => i % 5 !== 2).map((i) => `wt1-${String(i).padStart(2, '0')}`);
    expect(await names('wt1-')).toEqual(expected);
  });

  it('a transaction that breaks a constraint fails alone; the others in flight commit', async () => {
    const id = uuidv7();
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) =>
        db.inSystem((trx) => trx.insertInto('tenants').values({ id: i === 4 || i === 6 ? id : uuidv7(), name: `wt2-${i}`, version: 1, created_at: now(), updated_at: now() }).execute()),
      ),
    );
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
    expect((await names('wt2-')).length).toBe(9);
  });

  it('each transaction sees the writes of those committed or batched before it', async () => {
    const counterId = uuidv7();
    await db.inSystem(insertTenant('wt3-counter'));
    await db.inSystem((trx) => trx.updateTable('tenants').set({ id: counterId }).where('name', '=', 'wt3-counter').execute());
    // 30 read-modify-write increments at once: exact only if each sees the previous one.
    await Promise.all(
      Array.from({ length: 30 }, () =>
        db.inSystem(async (trx) => {
          const query = trx.selectFrom('tenants').select('version').where('id', '=', counterId);
          // PostgreSQL (read committed) needs the row lock; SQLite has one writer.
          const row = await (backend.dialect === 'postgres' ? query.forUpdate() : query).executeTakeFirstOrThrow();
          await trx.updateTable('tenants').set({ version: Number(row.version) + 1 }).where('id', '=', counterId).execute();
        }),
      ),
    );
    const row = await db.inSystem((trx) => trx.selectFrom('tenants').select('version').where('id', '=', counterId).executeTakeFirstOrThrow(), { readOnly: true });
    expect(Number(row.version)).toBe(31);
  });

  it('a long run of concurrent transactions lets the event loop turn while it runs', async () => {
    // 60 transactions of ~0.5 ms of CPU each: one SQLite batch ran them all in one turn of the
    // event loop, during which no connection was accepted. A timer due at once must fire
    // while they are still running.
    let ran = 0;
    let ranWhenTimerFired = -1;
    const timer = new Promise<void>((resolve) =>
      setTimeout(() => {
        ranWhenTimerFired = ran;
        resolve();
      }, 0),
    );
    await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        db.inSystem(async (trx) => {
          await insertTenant(`wt-turn-${String(i).padStart(2, '0')}`)(trx);
          const until = performance.now() + 0.5;
          while (performance.now() < until) {
            // a unit's own CPU work
          }
          ran += 1;
        }),
      ),
    );
    await timer;
    expect(ranWhenTimerFired).toBeLessThan(60);
    expect((await names('wt-turn-')).length).toBe(60);
  });

  it('a write submitted just before close is answered; one after close fails, never hangs', async () => {
    const own = openTestDb(database);
    const before = own.inSystem(insertTenant('wt5-before'));
    const closing = own.close();
    await expect(before).resolves.toBeDefined();
    await closing;
    await expect(own.inSystem(insertTenant('wt5-after'))).rejects.toThrow();
    expect(await names('wt5-')).toEqual(['wt5-before']);
  });

  if (backend.dialect === 'sqlite') {
    it('when SQLite aborts the whole transaction, only the member that caused it fails; the others run again', async () => {
      await sql.raw(`create trigger wt6_abort before insert on tenants when new.name = 'wt6-abort' begin select raise(rollback, 'aborted by trigger'); end`).execute(db.kysely);
      try {
        const shared = uuidv7();
        const insert = (id: string, name: string) => db.inSystem((trx) => trx.insertInto('tenants').values({ id, name, version: 1, created_at: now(), updated_at: now() }).execute());
        // a and b want the same id: b's conflict is real once a commits, whatever the abort undid.
        const results = await Promise.allSettled([insert(shared, 'wt6-a'), insert(shared, 'wt6-b'), insert(uuidv7(), 'wt6-abort'), insert(uuidv7(), 'wt6-d')]);
        expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
        expect(String((results[2] as PromiseRejectedResult).reason)).toContain('aborted by trigger');
        expect(await names('wt6-')).toEqual(['wt6-a', 'wt6-d']);
      } finally {
        await sql.raw('drop trigger wt6_abort').execute(db.kysely);
      }
    });


    it('a burst of concurrent transactions shares a few COMMITs (group commit), and each is answered after its COMMIT', async () => {
      // data_version changes once per commit made by another connection.
      const observer = new Sqlite(database.name, { readonly: true });
      try {
        const version = () => observer.pragma('data_version', { simple: true }) as number;
        const before = version();
        const seen: number[] = [];
        await Promise.all(
          Array.from({ length: 100 }, (_, i) =>
            db.inSystem(insertTenant(`wt4-${i}`)).then(() => {
              // Answered only once the row is visible to another connection: committed.
              seen.push((observer.prepare('select count(*) as n from tenants where name = ?').get(`wt4-${i}`) as { n: number }).n);
            }),
          ),
        );
        const commits = version() - before;
        expect(seen).toEqual(Array.from({ length: 100 }, () => 1));
        expect(commits).toBeGreaterThanOrEqual(1);
        expect(commits).toBeLessThanOrEqual(5);
      } finally {
        observer.close();
      }
    });
  }
});
