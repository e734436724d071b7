import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { DatabaseConfig, StoreConfig } from '../../config/config.js';
import { AgentstoreError } from '../../core/errors.js';
import { createDatabase, type Database } from '../../db/database.js';
import { indexExpression } from './json-path.js';

/**
 * Where a declared index is built. CREATE INDEX reads the whole shared `records` table, so
 * a build inside a unit of work held, on SQLite, the event loop (every tenant's requests)
 * and, on PostgreSQL, a lock that stops every tenant's writes, for as long as it ran.
 *
 * - SQLite: on a worker thread, in the writer's turn (Database.runDdl): the loop and reads
 *   go on; writes wait their turn as behind any write.
 * - PostgreSQL with the owner's URL (AGENTSTORE_MIGRATE_DATABASE_URL): `CREATE INDEX
 *   CONCURRENTLY` as the owner over a short-lived connection: no tenant's writes wait.
 * - PostgreSQL as the runtime role alone: inside the unit of work through migration 0003's
 *   SECURITY DEFINER function (the runtime role may not run DDL, and CONCURRENTLY cannot run
 *   in a function): writes of every tenant wait for the build; `outside` is false.
 *
 * An index built outside is built before the unit of work that records it: a failed build
 * (a value too large to index) changes nothing, and a unit that fails after the build has
 * the indexes it created dropped again (`drop`).
 */
export interface IndexBuilds {
  readonly outside: boolean;
  /**
   * Runs a definition that builds indexes outside its unit of work, one at a time per store.
   * The limit on declared indexes over all tenants counts the indexes in the database, where
   * a concurrent definition's built but not yet recorded indexes would count against every
   * other; and two CONCURRENTLY builds on one table can deadlock each other (their waits
   * for older transactions include each other's).
   */
  serially<T>(work: () => Promise<T>): Promise<T>;
  /**
   * Builds the indexes of these paths that do not exist yet (and rebuilds one of an outdated
   * expression); returns the dotted fields of the indexes that did not exist before.
   */
  build(tenantId: string, collection: string, paths: readonly (readonly string[])[]): Promise<string[]>;
  /** Drops indexes `build` created; for a unit of work that failed after the build. */
  drop(tenantId: string, collection: string, fields: readonly string[]): Promise<void>;
}

/**
 * A declared index is partial to one tenant's collection: one tenant declaring an index
 * costs no other tenant anything, and cannot make another tenant's large values fail to
 * index. The name is a hash because tenant and collection do not fit PostgreSQL's 63
 * characters; migration 0003's functions compute the same name.
 */
export function indexName(tenantId: string, collection: string, field: string): string {
  return `records_f_${createHash('sha256').update(`${tenantId}\0${collection}\0${field}`).digest('hex').slice(0, 24)}`;
}

/** Tenant ids are UUIDs and collection names a quote-free alphabet (both validated), so they are safe as literals. */
function createIndexSql(dialect: Database['dialect'], tenantId: string, collection: string, segments: readonly string[], concurrently = false): string {
  const expression = dialect === 'sqlite' ? indexExpression('sqlite', segments) : `${indexExpression('postgres', segments).slice(0, -1)}::text[])`;
  return (
    `CREATE INDEX${concurrently ? ' CONCURRENTLY' : ''} IF NOT EXISTS ${indexName(tenantId, collection, segments.join('.'))} ON records (${expression}) ` +
    `WHERE tenant_id = '${tenantId}' AND collection = '${collection}'`
  );
}

export function createIndexBuilds(db: Database, owner: DatabaseConfig | undefined, postgres: StoreConfig['postgres'] | undefined): IndexBuilds {
  let tail: Promise<unknown> = Promise.resolve();
  const serially = <T>(work: () => Promise<T>): Promise<T> => {
    const run = tail.then(work, work);
    tail = run.catch(() => undefined);
    return run;
  };
  if (db.dialect === 'sqlite') return { serially, ...sqliteBuilds(db) };
  if (owner?.kind === 'postgres') return { serially, ...ownerBuilds(owner, postgres) };
  return { outside: false, serially, build: async () => [], drop: async () => undefined };
}

type Builds = Omit<IndexBuilds, 'serially'>;

function sqliteBuilds(db: Database): Builds {
  return {
    outside: true,
    async build(tenantId, collection, paths) {
      const wanted = paths.map((segments) => ({ segments, name: indexName(tenantId, collection, segments.join('.')) }));
      if (wanted.length === 0) return [];
      const existing = await db.inSystem(
        async (trx) =>
          new Map(
            (
              await sql<{ name: string; sql: string }>`select name, sql from sqlite_master where type = 'index' and tbl_name = 'records' and name in (${sql.join(wanted.map((w) => w.name))})`.execute(trx)
            ).rows.map((row) => [row.name, row.sql]),
          ),
        { readOnly: true },
      );
      // A path with numeric segments got another expression when array indexes came
      // (json-path.ts): an index of its name built on the old one never serves, and is rebuilt.
      const stale = wanted.filter((w) => existing.has(w.name) && !existing.get(w.name)?.includes(indexExpression('sqlite', w.segments)));
      const missing = wanted.filter((w) => !existing.has(w.name) || stale.includes(w));
      if (missing.length > 0) {
        await db.runDdl([...stale.map((w) => `DROP INDEX ${w.name}`), ...missing.map((w) => createIndexSql('sqlite', tenantId, collection, w.segments))]);
      }
      // A rebuilt index was counted and recorded before: only the new ones are this call's.
      return missing.filter((w) => !stale.includes(w)).map((w) => w.segments.join('.'));
    },
    async drop(tenantId, collection, fields) {
      if (fields.length > 0) await db.runDdl(fields.map((field) => `DROP INDEX IF EXISTS ${indexName(tenantId, collection, field)}`));
    },
  };
}

function ownerBuilds(owner: DatabaseConfig, postgres: StoreConfig['postgres'] | undefined): Builds {
  // A connection of its own per call: builds are rare, and the server keeps no owner
  // connection open between them.
  const withOwner = async <T>(fn: (db: Database) => Promise<T>): Promise<T> => {
    const db = createDatabase({ database: owner, ...(postgres ? { postgres: { ...postgres, poolMax: 1 } } : {}) });
    try {
      return await fn(db);
    } finally {
      await db.close();
    }
  };
  const dropConcurrently = (db: Database, name: string) => db.runDdl([`DROP INDEX CONCURRENTLY IF EXISTS ${name}`]);
  return {
    outside: true,
    build: (tenantId, collection, paths) =>
      withOwner(async (db) => {
        const created: string[] = [];
        for (const segments of paths) {
          const name = indexName(tenantId, collection, segments.join('.'));
          // The expression compared as migration 0003's function writes it; an index of this
          // name on another expression (built before paths were quoted), or left invalid by a
          // build that failed or was cut off, is dropped and built again.
          const { rows } = await sql<{ valid: boolean; same: boolean }>`
            select i.indisvalid as valid, pg_get_indexdef(c.oid, 1, true) = format('(data #> %L::text[])', ${[...segments]}::text[]::text) as same
            from pg_class c join pg_namespace n on n.oid = c.relnamespace join pg_index i on i.indexrelid = c.oid
            where c.relname = ${name} and n.nspname = current_schema()`.execute(db.kysely);
          const found = rows[0];
          if (found?.valid && found.same) continue;
          if (found) await dropConcurrently(db, name);
          for (let attempt = 1; ; attempt++) {
            try {
              await db.runDdl([createIndexSql('postgres', tenantId, collection, segments, true)]);
              break;
            } catch (error) {
              // A failed CONCURRENTLY build leaves an invalid index behind.
              await dropConcurrently(db, name).catch(() => undefined);
              const code = (error as { code?: unknown } | null)?.code;
              // Another instance's build on the same table: one of the two is chosen to fail.
              if (code === '40P01' && attempt < 3) continue;
              if (code === '57014') {
                throw AgentstoreError.unavailable(
                  `building the index of "${segments.join('.')}" did not finish within the statement timeout (AGENTSTORE_PG_STATEMENT_TIMEOUT_MS); it also waits for transactions open on records to end`,
                  error,
                );
              }
              throw error;
            }
          }
          if (!found) created.push(segments.join('.'));
        }
        return created;
      }),
    drop: (tenantId, collection, fields) =>
      fields.length === 0
        ? Promise.resolve()
        : withOwner(async (db) => {
            for (const field of fields) await dropConcurrently(db, indexName(tenantId, collection, field));
          }),
  };
}
