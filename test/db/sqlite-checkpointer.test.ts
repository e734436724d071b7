/**
 * WAL checkpoints off the event loop (src/db/sqlite-checkpointer.ts): committed pages reach
 * the database file through the worker's checkpoints, while the writer's own automatic
 * checkpoint (which runs inside a COMMIT, on the event loop) is moved out of the way.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, expect, it } from 'vitest';
import { sqliteDatabase } from '../../src/config/config.js';
import { createDatabase, type Database } from '../../src/db/database.js';
import { Sqlite } from '../../src/db/sqlite-driver.js';
import { WRITER_AUTOCHECKPOINT_PAGES } from '../../src/db/sqlite-checkpointer.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentstore-ckpt-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const KB = 1024;

async function open(name: string, checkpointIntervalMs: number): Promise<{ db: Database; file: string }> {
  const file = path.join(dir, name);
  const db = createDatabase({ database: sqliteDatabase(file), sqlite: { synchronous: 'full', busyTimeoutMs: 5000, scanWorkers: 1, scanTimeoutMs: 30_000, checkpointIntervalMs } });
  await db.runDdl(['create table t (n integer primary key, b blob)']);
  return { db, file };
}

/** ~1 MB in 50 commits: well under SQLite's default automatic checkpoint (1,000 pages, ~4 MB). */
async function writeAMegabyte(db: Database, from: number): Promise<void> {
  for (let i = 0; i < 50; i++) await db.inSystem((trx) => sql`insert into t (n, b) values (${from + i}, randomblob(${20 * KB}))`.execute(trx));
}

const size = (file: string) => fs.statSync(file).size;

async function until(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return check();
}

it('moves committed pages into the database file from the worker, and leaves the writer only a backstop', async () => {
  const { db, file } = await open('worker.db', 20);
  try {
    const start = size(file);
    await writeAMegabyte(db, 0);
    expect(await until(() => size(file) - start >= 900 * KB, 5000)).toBe(true);
    // The writer checkpoints itself only past the backstop, far above SQLite's default.
    const writer = db.kysely;
    const { rows } = await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(writer);
    expect(rows[0]?.wal_autocheckpoint).toBe(WRITER_AUTOCHECKPOINT_PAGES);
  } finally {
    await db.close();
  }
  // The writer closed last: its final checkpoint emptied and removed the WAL.
  expect(fs.existsSync(`${file}-wal`)).toBe(false);
  const check = new Sqlite(file, { readonly: true });
  expect((check.prepare('select count(*) as n from t').get() as { n: number }).n).toBe(50);
  check.close();
});

it('without the worker (interval 0), the same commits stay in the WAL until SQLite checkpoints itself', async () => {
  const { db, file } = await open('automatic.db', 0);
  try {
    const start = size(file);
    await writeAMegabyte(db, 0);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(size(file) - start).toBeLessThan(100 * KB);
    expect(size(`${file}-wal`)).toBeGreaterThan(900 * KB);
  } finally {
    await db.close();
  }
});

it('a reader holding an old snapshot only delays the checkpoint, which catches up once it ends', async () => {
  const { db, file } = await open('reader.db', 20);
  const reader = new Sqlite(file, { readonly: true });
  try {
    const start = size(file);
    reader.exec('begin');
    expect((reader.prepare('select count(*) as n from t').get() as { n: number }).n).toBe(0);
    await writeAMegabyte(db, 0);
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Still the snapshot of before the writes, whose pages the checkpoint must not overwrite.
    expect((reader.prepare('select count(*) as n from t').get() as { n: number }).n).toBe(0);
    expect(size(file) - start).toBeLessThan(100 * KB);
    reader.exec('commit');
    await writeAMegabyte(db, 1000);
    expect(await until(() => size(file) - start >= 1800 * KB, 5000)).toBe(true);
    expect((reader.prepare('select count(*) as n from t').get() as { n: number }).n).toBe(100);
  } finally {
    reader.close();
    await db.close();
  }
});
