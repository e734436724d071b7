import { sql } from 'kysely';
import type { Executor } from '../../db/database.js';
import type { DialectName } from '../../db/dialect.js';

// About 6 ms of SQLite work per chunk here: short enough that the event loop turns often.
const CHUNK = 500;

/**
 * Deletes every record of one tenant's collection, in the caller's transaction, and returns
 * how many there were. On SQLite the caller runs it off the event loop (`offLoop`: a worker
 * thread's connection, where a single DELETE of 200,000 records and its COMMIT took ~2.5 s);
 * an in-memory database has no such thread, so the deletion goes in chunks and lets the loop
 * turn between them, in the one transaction (only the group committer writes, and reads use
 * other connections), still all-or-nothing. PostgreSQL does not hold the loop: one statement.
 */
export async function deleteAllRecords(trx: Executor, dialect: DialectName, tenantId: string, collection: string): Promise<number> {
  if (dialect === 'postgres') {
    const removed = await trx.deleteFrom('records').where('tenant_id', '=', tenantId).where('collection', '=', collection).executeTakeFirst();
    return Number(removed.numDeletedRows);
  }
  let total = 0;
  for (;;) {
    const removed = await sql`delete from records where tenant_id = ${tenantId} and collection = ${collection} and id in (
      select id from records where tenant_id = ${tenantId} and collection = ${collection} limit ${CHUNK})`.execute(trx);
    const count = Number(removed.numAffectedRows ?? 0n);
    total += count;
    if (count < CHUNK) return total;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
