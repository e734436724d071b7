/**
 * The cost of one poll of src/db/sqlite-commit-watch.ts: a prepared `PRAGMA data_version` on
 * a WAL database's writer connection, against a prepared `SELECT 1` on the same connection as
 * the baseline (the least a statement costs through better-sqlite3), in interleaved rounds:
 *   node --import tsx bench/data-version.ts
 * Also checks what the watcher relies on: another connection's commit changes the value,
 * the connection's own commit does not.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Sqlite } from '../src/db/sqlite-driver.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentstore-data-version-'));
const file = path.join(dir, 'bench.db');
const writer = new Sqlite(file);
writer.pragma('journal_mode = WAL');
writer.exec('create table t (x integer)');
const other = new Sqlite(file);
const dataVersion = writer.prepare<[], number>('PRAGMA data_version').pluck();
const selectOne = writer.prepare<[], number>('SELECT 1').pluck();

const before = dataVersion.get();
writer.exec('insert into t values (1)');
const afterOwn = dataVersion.get();
other.exec('insert into t values (2)');
const afterOther = dataVersion.get();
console.log(`own commit changed it: ${afterOwn !== before}; another connection's commit changed it: ${afterOther !== afterOwn}`);

const CALLS = 200_000;
const time = (statement: { get(): unknown }): number => {
  const start = process.hrtime.bigint();
  for (let i = 0; i < CALLS; i++) statement.get();
  return Number(process.hrtime.bigint() - start) / CALLS;
};
for (let round = 1; round <= 3; round++) {
  const pragma = time(dataVersion);
  const baseline = time(selectOne);
  console.log(`round ${round}: PRAGMA data_version ${(pragma / 1000).toFixed(2)} µs/call, SELECT 1 ${(baseline / 1000).toFixed(2)} µs/call; at one poll per 25 ms: ${((pragma / 1000) * 40).toFixed(0)} µs of CPU per second`);
}
other.close();
writer.close();
fs.rmSync(dir, { recursive: true, force: true });
