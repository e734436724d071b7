import type { UnitOfWork } from '../../db/unit-of-work.js';

/** A stored record found expired: what its delete change names. */
export interface ExpiredRow {
  readonly collection: string;
  readonly id: string;
  readonly version: number;
}

/**
 * Records the deletion of expired records in the unit: a delete change and an audit entry
 * each, as any delete, with `details.expired` saying why. The sweep and a write that finds an
 * expired record in its way emit the same.
 */
export async function recordExpired(w: UnitOfWork, rows: readonly ExpiredRow[]): Promise<void> {
  for (const row of rows) {
    await w.record({ action: 'delete', resourceType: 'record', resourceId: row.id, collection: row.collection, version: row.version, data: null, details: { expired: true } });
  }
}

/**
 * Deletes expired records of one collection that the unit holds (read `FOR UPDATE` on
 * PostgreSQL; SQLite's writer is single), and records their deletes.
 */
export async function removeExpired(w: UnitOfWork, collection: string, rows: readonly Omit<ExpiredRow, 'collection'>[]): Promise<void> {
  if (rows.length === 0) return;
  const removed = await w.trx
    .deleteFrom('records')
    .where('tenant_id', '=', w.ctx.tenantId)
    .where('collection', '=', collection)
    .where('id', 'in', rows.map((r) => r.id))
    .executeTakeFirst();
  // Locked rows cannot have gone meanwhile; if they did, the unit must not emit their deletes.
  if (Number(removed.numDeletedRows) !== rows.length) throw new Error('expired records changed under their lock');
  await recordExpired(w, rows.map((r) => ({ ...r, collection })));
}
