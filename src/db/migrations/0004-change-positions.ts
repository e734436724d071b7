import { columnTypes, tenantPolicy, type Migration } from './types.js';

/**
 * A per-tenant position for the change log. `seq` was one sequence for the database, so the
 * gaps between a tenant's positions showed every other tenant's write volume. From here on
 * a tenant's changes are numbered by `tenant_seq`: its `change_heads` row is bumped in the
 * statement that inserts the changes, and the row lock that takes is held until COMMIT, so
 * within a tenant position order is commit order (it replaces the advisory lock) and there
 * are no gaps. `seq` stays as the table's key and a database-wide order.
 *
 * Existing rows keep their old `seq` as their position: every position a client holds
 * (Last-Event-ID, `after`) stays valid and means the same change. Their gaps predate the
 * migration and were visible to the tenant already; new positions continue from the
 * tenant's last one without gaps.
 */
export const migration0004: Migration = {
  version: 4,
  name: 'change-positions',
  statements(dialect) {
    const t = columnTypes(dialect);
    const heads = `CREATE TABLE change_heads (
        tenant_id TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
        seq ${t.bigint} NOT NULL
      )`;
    const backfillHeads = 'INSERT INTO change_heads (tenant_id, seq) SELECT tenant_id, max(tenant_seq) FROM changes GROUP BY tenant_id';
    if (dialect === 'sqlite') {
      return [
        // SQLite adds a NOT NULL column only with a default; every insert sets it.
        'ALTER TABLE changes ADD COLUMN tenant_seq INTEGER NOT NULL DEFAULT 0',
        'UPDATE changes SET tenant_seq = seq',
        'DROP INDEX changes_tenant_seq',
        'CREATE UNIQUE INDEX changes_tenant_position ON changes (tenant_id, tenant_seq)',
        heads,
        backfillHeads,
      ];
    }
    return [
      'ALTER TABLE changes ADD COLUMN tenant_seq bigint',
      // The backfill must see every tenant's rows: FORCE is lifted for the owner inside this
      // transaction only (the ALTER holds an exclusive lock on the table until COMMIT, so no
      // other statement ever runs against the table without it).
      'ALTER TABLE changes NO FORCE ROW LEVEL SECURITY',
      'UPDATE changes SET tenant_seq = seq',
      'ALTER TABLE changes ALTER COLUMN tenant_seq SET NOT NULL',
      'DROP INDEX changes_tenant_seq',
      'CREATE UNIQUE INDEX changes_tenant_position ON changes (tenant_id, tenant_seq)',
      heads,
      backfillHeads,
      'ALTER TABLE changes FORCE ROW LEVEL SECURITY',
      ...tenantPolicy('change_heads'),
    ];
  },
};
