import { sql } from 'kysely';
import type { Database } from './database.js';
import { RUNTIME_TABLE_PRIVILEGES } from './migrations/runtime-role.js';

/** What the server's own database role could do around row-level security. */
export interface PrivilegeReport {
  readonly role: string | null;
  /** One sentence per way the role can step around RLS; empty when it cannot. */
  readonly warnings: readonly string[];
}

const ISOLATION = "tenant isolation then rests on the application's filters alone";

/**
 * PostgreSQL: whether the connected role is a superuser, has BYPASSRLS, or owns (or may act
 * as the owner of) agentstore's tables; an owner can `ALTER TABLE ... NO FORCE ROW LEVEL
 * SECURITY` or drop a policy. SQLite has no roles and no RLS: nothing to report.
 */
export async function checkPrivileges(db: Database): Promise<PrivilegeReport> {
  if (db.dialect !== 'postgres') return { role: null, warnings: [] };
  const tables = Object.keys(RUNTIME_TABLE_PRIVILEGES);
  const { rows } = await sql<{ role: string; rolsuper: boolean; rolbypassrls: boolean; owned: string[] | null }>`
    select current_user as role, r.rolsuper, r.rolbypassrls,
      (select array_agg(c.relname::text order by c.relname) from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = current_schema() and c.relkind in ('r', 'p') and c.relname = any(${tables}::text[])
          and pg_has_role(current_user, c.relowner, 'MEMBER')) as owned
    from pg_roles r where r.rolname = current_user`.execute(db.kysely);
  const row = rows[0];
  if (!row) return { role: null, warnings: [] };
  const warnings: string[] = [];
  if (row.rolsuper) warnings.push(`the database role "${row.role}" is a superuser: row-level security does not apply to it, so ${ISOLATION}`);
  else if (row.rolbypassrls) warnings.push(`the database role "${row.role}" has BYPASSRLS: row-level security does not apply to it, so ${ISOLATION}`);
  // A superuser is a member of every role: the first warning says all there is.
  if (!row.rolsuper && row.owned && row.owned.length > 0) {
    warnings.push(
      `the database role "${row.role}" owns (or is a member of the owner of) ${row.owned.length} of agentstore's tables (${row.owned.slice(0, 3).join(', ')}${row.owned.length > 3 ? ', ...' : ''}): ` +
        `it could turn row-level security off, so ${ISOLATION}; run the server as a role that owns nothing (docs/operations.md, "PostgreSQL roles")`,
    );
  }
  return { role: row.role, warnings };
}
