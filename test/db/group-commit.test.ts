/**
 * The SQLite writer's group commit: `exclusive` work runs in the writer's turn, outside its
 * transactions, after everything submitted before it and before everything after.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kysely, SqliteDialect, sql } from 'kysely';
import { afterAll, expect, it } from 'vitest';
import { createGroupCommitter } from '../../src/db/group-commit.js';
import { Sqlite } from '../../src/db/sqlite-driver.js';
import type { DB } from '../../src/db/schema.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentstore-gc-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

it('exclusive work waits for earlier batches to commit, runs alone with no transaction open, and later work waits for it', async () => {
  const file = path.join(dir, 'gc.db');
  const native = new Sqlite(file);
  native.pragma('journal_mode = WAL');
  native.exec('create table t (n integer)');
  const kysely = new Kysely<DB>({ dialect: new SqliteDialect({ database: native }) });
  const writes = createGroupCommitter(kysely, () => !native.inTransaction, () => false);
  const other = new Sqlite(file, { readonly: true });
  const order: string[] = [];
  const insert = (n: number) =>
    writes.submit(async (trx) => {
      await sql`insert into t (n) values (${n})`.execute(trx);
      order.push(`w${n}`);
    });
  const first = [insert(1), insert(2)];
  const alone = writes.exclusive(async () => {
    order.push('exclusive');
    // Committed, as another connection sees, and the writer holds no transaction.
    const seen = (other.prepare('select count(*) as n from t').get() as { n: number }).n;
    const open = native.inTransaction;
    await new Promise((resolve) => setTimeout(resolve, 50));
    order.push('exclusive done');
    return { seen, open };
  });
  const later = insert(3);
  await Promise.all([...first, later]);
  expect(await alone).toEqual({ seen: 2, open: false });
  expect(order).toEqual(['w1', 'w2', 'exclusive', 'exclusive done', 'w3']);
  // A failing exclusive job fails alone; the queue goes on.
  await expect(writes.exclusive(() => Promise.reject(new Error('no')))).rejects.toThrow('no');
  await insert(4);
  expect((other.prepare('select count(*) as n from t').get() as { n: number }).n).toBe(4);
  other.close();
  await writes.close();
  await kysely.destroy();
});
