/**
 * PostgreSQL administration for the test harness: the admin URL, the unprivileged
 * application role every PostgreSQL test connects as, and throw-away databases.
 *
 * Tests never connect as the admin (a superuser bypasses row-level security, so a test
 * run as one would prove nothing about tenancy). They connect as `agentstore_app`, a
 * LOGIN role without SUPERUSER or BYPASSRLS that owns its test database: it runs the
 * migrations as owner, and FORCE ROW LEVEL SECURITY confines it all the same.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** Admin connection (a role that may CREATE ROLE / CREATE DATABASE). */
export const PG_ADMIN_URL = process.env.AGENTSTORE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export const APP_ROLE = 'agentstore_app';
/** Not a secret: test clusters only. Set so that the harness also works where md5/scram auth is on. */
export const APP_PASSWORD = 'agentstore_app';

/** SQLSTATEs of "someone else created it first" when parallel workers race on CREATE ROLE. */
const ALREADY_THERE = new Set(['42710', '23505', 'XX000']);

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Runs `fn` with a short-lived admin client. */
export async function withAdmin<T>(fn: (client: pg.Client) => Promise<T>, url = PG_ADMIN_URL): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Why PostgreSQL cannot be used, or undefined when it answers. */
export async function probePostgres(url = PG_ADMIN_URL): Promise<string | undefined> {
  try {
    await withAdmin((c) => c.query('select 1'), url);
    return undefined;
  } catch (error) {
    return `PostgreSQL at ${redact(url)} is unreachable (${(error as Error).message || errorCode(error) || 'connection failed'}); set AGENTSTORE_TEST_PG_URL`;
  }
}

/**
 * Creates the application role once; idempotent and safe when several workers (or several
 * vitest runs) race: the loser's duplicate_object / unique violation is ignored. A role
 * that exists with too many rights is corrected, since RLS tests would be meaningless.
 */
export async function ensureAppRole(client: pg.Client): Promise<void> {
  const existing = await client.query<{ rolsuper: boolean; rolbypassrls: boolean }>(
    'select rolsuper, rolbypassrls from pg_roles where rolname = $1',
    [APP_ROLE],
  );
  if (existing.rows.length === 0) {
    try {
      await client.query(`CREATE ROLE ${APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD '${APP_PASSWORD}'`);
    } catch (error) {
      if (!ALREADY_THERE.has(errorCode(error) ?? '')) throw error;
    }
    return;
  }
  const row = existing.rows[0];
  if (row && (row.rolsuper || row.rolbypassrls)) {
    await client.query(`ALTER ROLE ${APP_ROLE} NOSUPERUSER NOBYPASSRLS`);
  }
}

/** A fresh database owned by the application role; returns its name. */
export async function createPgDatabase(prefix = 'agentstore_test'): Promise<string> {
  const name = `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  await withAdmin(async (client) => {
    await ensureAppRole(client);
    await client.query(`CREATE DATABASE ${name} OWNER ${APP_ROLE}`);
  });
  return name;
}

/**
 * Drops a test database. FORCE (PostgreSQL 13+) ends connections still open to it, such
 * as pgbouncer's idle server connections, which would otherwise block the drop.
 */
export async function dropPgDatabase(name: string): Promise<void> {
  if (!/^[a-z0-9_]+$/.test(name)) throw new Error(`refusing to drop database "${name}"`);
  await withAdmin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
}

/** URL of `database` as the application role, on the admin URL's server or another host:port. */
export function appUrl(database: string, via?: { host: string; port: number }): string {
  const url = new URL(PG_ADMIN_URL);
  url.username = APP_ROLE;
  url.password = APP_PASSWORD;
  url.pathname = `/${database}`;
  if (via) {
    url.hostname = via.host;
    url.port = String(via.port);
  }
  return url.toString();
}

export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}
