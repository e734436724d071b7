import type { Migration } from './types.js';
import { RUNTIME_GROUP_ROLE } from './runtime-role.js';

/**
 * PostgreSQL: a view through which the server's role reads records with declared indexes
 * usable (docs/architecture.md, "Declared indexes under row-level security").
 *
 * Under RLS, PostgreSQL evaluates a query's own conditions after the policy's unless they are
 * LEAKPROOF, and it uses only LEAKPROOF ones as index conditions. No jsonb operator is
 * (`#>`, `=`, `<`, `@>` ...), and only a superuser may mark a function LEAKPROOF, which managed
 * services (RDS, Supabase, Neon) do not grant. So a declared expression index served a
 * filtered query only through its partial predicate: the whole collection, 126 ms where the
 * index search takes 0.8 ms (100,000 records of the tenant's collection, 400,000 in all).
 *
 * `tenant_records` is `records` restricted to `app.tenant_id`, the RLS policy's own
 * condition. It belongs to the migrating role, and a view reads its table with its owner's
 * rights: a SELECT-only policy lets that role read all of `records`, so inside the view there
 * is no policy condition to order behind, and the tenant condition is an ordinary one, which
 * the planner combines with the query's (the tenant equality becomes the partial index's
 * predicate and the jsonb condition its index search).
 *
 * What stays: the server's role still reaches `records` itself only through RLS (every write
 * and point read); through the view it sees only the tenant of `app.tenant_id`, nothing
 * without one (the system context included), and it may only SELECT from it. What changes:
 * inside the view a condition may be evaluated on other tenants' rows before the tenant
 * condition. The queries the server sends there are compiled from the filter language and
 * use built-in operators that raise no error from a row's value; a role that runs SQL of its
 * own can set `app.tenant_id` anyway (docs/operations.md). The migrating role reads every
 * tenant's records now, as it could by switching FORCE off.
 *
 * A migration that adds a column to `records` must add it to the view too
 * (`CREATE OR REPLACE VIEW` with the new column last): `*` is expanded when a view is made.
 *
 * SQLite has no RLS: queries read `records` directly.
 */
export const migration0005: Migration = {
  version: 5,
  name: 'tenant-records-view',
  statements(dialect) {
    if (dialect === 'sqlite') return [];
    return [
      // Not security_barrier: a barrier would put the tenant condition back before the query's.
      `CREATE VIEW tenant_records AS SELECT * FROM records WHERE tenant_id = current_setting('app.tenant_id', true)`,
      // The view's owner (this role) reads all of records, for SELECT only; writes stay under
      // the tenant policy for every role.
      `DO $$ BEGIN EXECUTE format('CREATE POLICY records_view_read ON records FOR SELECT TO %I USING (true)', current_user); END $$`,
      // The default privileges of migration 0003 granted DML on it: reads only.
      `REVOKE ALL ON tenant_records FROM ${RUNTIME_GROUP_ROLE}`,
      `GRANT SELECT ON tenant_records TO ${RUNTIME_GROUP_ROLE}`,
    ];
  },
};
