/**
 * What the server's PostgreSQL role may do, table by table. The server connects as a login
 * role that is a member of this group role; it owns nothing, so it cannot change a policy,
 * disable row-level security, or run DDL. TRUNCATE (which skips RLS), REFERENCES and
 * TRIGGER are never granted.
 */
export const RUNTIME_GROUP_ROLE = 'agentstore_runtime';

const DML = 'SELECT, INSERT, UPDATE, DELETE';

/** The grants of migration 0003, per table that existed then. */
export const RUNTIME_TABLE_PRIVILEGES: Readonly<Record<string, string>> = {
  // Read to check the schema version at start and for /ready; only the owner migrates.
  schema_migrations: 'SELECT',
  tenants: 'SELECT, INSERT, UPDATE',
  service_keys: 'SELECT, INSERT',
  users: DML,
  sessions: DML,
  api_keys: DML,
  audit_log: DML,
  changes: DML,
  idempotency_keys: DML,
  collections: DML,
  records: DML,
  counters: DML,
};

export function runtimeGrants(): string[] {
  return [
    ...Object.entries(RUNTIME_TABLE_PRIVILEGES).map(([table, privileges]) => `GRANT ${privileges} ON ${table} TO ${RUNTIME_GROUP_ROLE}`),
    // Tables a later migration creates (as the same owner) get plain DML without each
    // migration having to remember it; one that needs less revokes it in its own text.
    `DO $$ BEGIN EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT ${DML} ON TABLES TO ${RUNTIME_GROUP_ROLE}', current_schema()); END $$`,
  ];
}
