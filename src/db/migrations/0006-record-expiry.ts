import { columnTypes, type Migration } from './types.js';
import { RUNTIME_GROUP_ROLE } from './runtime-role.js';

/**
 * Record expiry (docs/architecture.md, "Expiry"): a record's `expires_at` (null: never) and a
 * collection's default TTL in seconds (null: none); and a collection's end-user field (below).
 *
 * Expired records are hidden by every read (a condition on `expires_at` against the server's
 * clock, the clock that also wrote it) and deleted by the store's sweep. The sweep finds the
 * due rows of one tenant through the partial index (tenant_id, expires_at); records without an
 * expiry are not in it, so it costs nothing to writes that set none.
 *
 * PostgreSQL: the view of migration 0005 gets the column (`*` was expanded when it was made;
 * CREATE OR REPLACE VIEW may only add columns at the end, and keeps its owner and grants). The
 * expiry condition stays in the queries rather than the view, so that both dialects compare
 * with one clock, the server's. The sweeper, as the runtime role, sees one tenant's records at
 * a time under RLS: `agentstore_expiry_due_tenants` (SECURITY DEFINER, owned by the migrating
 * role, which reads all records through migration 0005's SELECT policy) tells it which tenants
 * have due records, and nothing else about them. It walks the distinct tenants of the partial
 * index (a skip scan: one index probe per tenant with expiring records, never their rows) and
 * keeps those with a due record (one more probe each).
 */
export const DUE_TENANTS_SQL = (now: string, after: string, limit: string) => `
  WITH RECURSIVE t(tenant_id) AS (
    SELECT (SELECT r.tenant_id FROM records r WHERE r.expires_at IS NOT NULL AND r.tenant_id > ${after} ORDER BY r.tenant_id LIMIT 1)
    UNION ALL
    SELECT (SELECT r.tenant_id FROM records r WHERE r.expires_at IS NOT NULL AND r.tenant_id > t.tenant_id ORDER BY r.tenant_id LIMIT 1)
    FROM t WHERE t.tenant_id IS NOT NULL
  )
  SELECT t.tenant_id FROM t
  WHERE t.tenant_id IS NOT NULL
    AND EXISTS (SELECT 1 FROM records r WHERE r.tenant_id = t.tenant_id AND r.expires_at <= ${now})
  LIMIT ${limit}`;

export const migration0006: Migration = {
  version: 6,
  name: 'record-expiry',
  statements(dialect) {
    const t = columnTypes(dialect);
    const statements = [
      `ALTER TABLE records ADD COLUMN expires_at ${t.ts}`,
      `ALTER TABLE collections ADD COLUMN ttl_seconds INTEGER`,
      `CREATE INDEX records_expiry ON records (tenant_id, expires_at) WHERE expires_at IS NOT NULL`,
      // A collection's declared end-user field (`PUT /v1/collections/{c} {"endUserField": …}`): the
      // data path holding the id of the end user a record belongs to, for erasing an end user
      // (src/modules/end-users). Null: the collection holds no end user's data, as far as it says.
      `ALTER TABLE collections ADD COLUMN end_user_field TEXT`,
    ];
    if (dialect === 'sqlite') return statements;
    return [
      ...statements,
      `CREATE OR REPLACE VIEW tenant_records AS SELECT * FROM records WHERE tenant_id = current_setting('app.tenant_id', true)`,
      `CREATE FUNCTION agentstore_expiry_due_tenants(p_now timestamptz, p_after text, p_limit integer) RETURNS SETOF text
      LANGUAGE sql STABLE SECURITY DEFINER AS $fn$${DUE_TENANTS_SQL('p_now', 'p_after', 'least(greatest(p_limit, 1), 1000)')}
      $fn$`,
      // As for migration 0003's functions: "records" must resolve to this schema's table.
      `DO $$ BEGIN
        EXECUTE format('ALTER FUNCTION agentstore_expiry_due_tenants(timestamptz, text, integer) SET search_path = %I, pg_temp', current_schema());
      END $$`,
      `REVOKE ALL ON FUNCTION agentstore_expiry_due_tenants(timestamptz, text, integer) FROM PUBLIC`,
      `GRANT EXECUTE ON FUNCTION agentstore_expiry_due_tenants(timestamptz, text, integer) TO ${RUNTIME_GROUP_ROLE}`,
    ];
  },
};
