import { sql } from 'kysely';
import type { Executor } from '../../db/database.js';
import type { DialectName } from '../../db/dialect.js';

// About 6 ms of SQLite work per chunk here: short enough that the event loop turns often.
const CHUNK = 500;

/**
 * Deletes every record of one tenant's collection, in the caller's transaction, and returns
 * how many there were. On SQLite a single DELETE of 200,000 records held the event loop for
 * 2.3 s (better-sqlite3 is synchronous), so it deletes in chunks and lets the loop turn between
 * them: the transaction stays open across the turns (only the group committer writes, and reads
 * use other connections), so the deletion is still all-or-nothing. The COMMIT still runs on the
 * loop and writes every changed page: ~180 ms for 200,000 records here. PostgreSQL does not hold
 * the loop: one statement.
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
