import type { Migration } from './types.js';
import { RUNTIME_GROUP_ROLE, runtimeGrants } from './runtime-role.js';

/**
 * PostgreSQL least privilege (design goal 10). The role that migrates owns every table; the
 * server runs as a login role that is a member of `agentstore_runtime`, owns nothing, and
 * has only the DML below. Index DDL for declared indexes, which only an owner may run, goes
 * through two SECURITY DEFINER functions that build nothing but a validated partial index
 * of the calling tenant's own collection.
 *
 * SQLite has no roles: nothing to do there.
 */

// The alphabets of src/modules/collections/validation.ts (COLLECTION_NAME) and
// json-path.ts (SEGMENT, MAX_DEPTH) and of a UUID (core/ids.ts), repeated here because the
// function must not trust its caller: a test checks that both sides agree.
export const SQL_COLLECTION_NAME = '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$';
export const SQL_PATH_SEGMENT = '^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$';
export const SQL_MAX_DEPTH = 8;
const SQL_UUID = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';

/**
 * The shared body of both functions: checks the current tenant, the collection and the
 * path, and computes the index name exactly as `indexName()` in collections/service.ts does
 * (sha256 of tenant NUL collection NUL dotted path, first 24 hex digits). The tenant is
 * never a parameter: a caller can only ever name indexes of the tenant it is acting for.
 */
const CHECK_AND_NAME = `
  v_tenant text := current_setting('app.tenant_id', true);
  v_name text;
  v_expr text;
  v_existing oid;
BEGIN
  IF v_tenant IS NULL OR v_tenant !~ '${SQL_UUID}' THEN
    RAISE EXCEPTION 'agentstore: declared-index DDL needs a tenant context' USING ERRCODE = '42501';
  END IF;
  IF p_collection IS NULL OR p_collection !~ '${SQL_COLLECTION_NAME}' THEN
    RAISE EXCEPTION 'agentstore: invalid collection name' USING ERRCODE = '22023';
  END IF;
  IF p_path IS NULL OR array_ndims(p_path) IS DISTINCT FROM 1 OR cardinality(p_path) > ${SQL_MAX_DEPTH}
     OR EXISTS (SELECT 1 FROM unnest(p_path) AS s WHERE s IS NULL OR s !~ '${SQL_PATH_SEGMENT}') THEN
    RAISE EXCEPTION 'agentstore: invalid field path' USING ERRCODE = '22023';
  END IF;
  v_name := 'records_f_' || left(encode(sha256(
    convert_to(v_tenant, 'UTF8') || decode('00', 'hex') || convert_to(p_collection, 'UTF8') || decode('00', 'hex') ||
    convert_to(array_to_string(p_path, '.'), 'UTF8')), 'hex'), 24);`;

export const migration0003: Migration = {
  version: 3,
  name: 'least-privilege',
  statements(dialect) {
    if (dialect === 'sqlite') return [];
    return [
      // The group role the server's login role is made a member of. Created here when the
      // migrating role may (CREATEROLE); an operator without that right creates it first.
      `DO $$
      BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${RUNTIME_GROUP_ROLE}') THEN
          BEGIN
            CREATE ROLE ${RUNTIME_GROUP_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
          EXCEPTION
            -- Another database of this cluster migrating at the same moment created it.
            WHEN duplicate_object OR unique_violation THEN NULL;
            WHEN insufficient_privilege THEN
              RAISE EXCEPTION 'agentstore: the role ${RUNTIME_GROUP_ROLE} does not exist and % may not create it', current_user
                USING HINT = 'as an administrator: CREATE ROLE ${RUNTIME_GROUP_ROLE} NOLOGIN; then run agentstore migrate up again';
          END;
        END IF;
      END $$`,
      // The schema: usage, never CREATE.
      `DO $$ BEGIN EXECUTE format('GRANT USAGE ON SCHEMA %I TO ${RUNTIME_GROUP_ROLE}', current_schema()); END $$`,
      ...runtimeGrants(),
      // tenants: a tenant context sees its own row only; listing and creating tenants is the
      // system context (app.system = on, set by Database.inSystem).
      `ALTER TABLE tenants ENABLE ROW LEVEL SECURITY`,
      `ALTER TABLE tenants FORCE ROW LEVEL SECURITY`,
      `CREATE POLICY tenants_visibility ON tenants ` +
        `USING (id = current_setting('app.tenant_id', true) OR current_setting('app.system', true) = 'on') ` +
        `WITH CHECK (id = current_setting('app.tenant_id', true) OR current_setting('app.system', true) = 'on')`,
      // service_keys: the system context only; no tenant statement ever sees a key hash.
      `ALTER TABLE service_keys ENABLE ROW LEVEL SECURITY`,
      `ALTER TABLE service_keys FORCE ROW LEVEL SECURITY`,
      `CREATE POLICY service_keys_system ON service_keys ` +
        `USING (current_setting('app.system', true) = 'on') WITH CHECK (current_setting('app.system', true) = 'on')`,
      `CREATE FUNCTION agentstore_create_record_index(p_collection text, p_path text[]) RETURNS void
      LANGUAGE plpgsql SECURITY DEFINER AS $fn$
      DECLARE${CHECK_AND_NAME}
        -- p_path::text is the array literal ({a,b}, {"NULL"}); the planner matches an index by
        -- the value of the text[] constant, so a query's '{a,b}' and '{"a","b"}' both use it.
        v_expr := format('(data #> %L::text[])', p_path::text);
        -- An index of this name built on another expression is rebuilt: before quoting, a
        -- segment NULL was written '{NULL}', an SQL NULL element, and such an index never served.
        SELECT c.oid INTO v_existing FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relname = v_name AND n.nspname = current_schema() AND c.relkind = 'i';
        IF v_existing IS NOT NULL AND pg_get_indexdef(v_existing, 1, true) IS DISTINCT FROM v_expr THEN
          EXECUTE format('DROP INDEX %I', v_name);
        END IF;
        EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON records (%s) WHERE tenant_id = %L AND collection = %L',
          v_name, v_expr, v_tenant, p_collection);
      END $fn$`,
      `CREATE FUNCTION agentstore_drop_record_index(p_collection text, p_path text[]) RETURNS void
      LANGUAGE plpgsql SECURITY DEFINER AS $fn$
      DECLARE${CHECK_AND_NAME}
        EXECUTE format('DROP INDEX IF EXISTS %I', v_name);
      END $fn$`,
      // A SECURITY DEFINER function with the caller's search_path could be made to resolve
      // "records" to a table of the caller's; fixed to this schema (pg_temp last).
      `DO $$ BEGIN
        EXECUTE format('ALTER FUNCTION agentstore_create_record_index(text, text[]) SET search_path = %I, pg_temp', current_schema());
        EXECUTE format('ALTER FUNCTION agentstore_drop_record_index(text, text[]) SET search_path = %I, pg_temp', current_schema());
      END $$`,
      // CREATE and DROP INDEX take a lock on the shared records table that conflicts with every
      // writer. Waiting for it behind a long transaction would queue every tenant's writes behind
      // the DDL (PostgreSQL grants locks in order): after 2 s it gives up (55P03, a 503) instead.
      `ALTER FUNCTION agentstore_create_record_index(text, text[]) SET lock_timeout = '2s'`,
      `ALTER FUNCTION agentstore_drop_record_index(text, text[]) SET lock_timeout = '2s'`,
      `REVOKE ALL ON FUNCTION agentstore_create_record_index(text, text[]) FROM PUBLIC`,
      `REVOKE ALL ON FUNCTION agentstore_drop_record_index(text, text[]) FROM PUBLIC`,
      `GRANT EXECUTE ON FUNCTION agentstore_create_record_index(text, text[]) TO ${RUNTIME_GROUP_ROLE}`,
      `GRANT EXECUTE ON FUNCTION agentstore_drop_record_index(text, text[]) TO ${RUNTIME_GROUP_ROLE}`,
    ];
  },
};
