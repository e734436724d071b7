/**
 * PostgreSQL administration for the test harness: the admin URL, the two roles every
 * PostgreSQL test uses, and throw-away databases.
 *
 * Tests never connect as the admin (a superuser bypasses row-level security, so a test
 * run as one would prove nothing about tenancy). As in production (docs/operations.md,
 * "PostgreSQL roles"), two LOGIN roles, neither SUPERUSER nor BYPASSRLS:
 * - `agentstore_owner` owns each test database and runs the migrations: it owns the tables;
 * - `agentstore_app`, the role every store connects as, owns nothing: it is a member of the
 *   group role `agentstore_runtime` that migration 0003 grants DML to, and nothing else.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { RUNTIME_GROUP_ROLE } from '../../src/db/migrations/runtime-role.js';

/** Admin connection (a role that may CREATE ROLE / CREATE DATABASE). */
export const PG_ADMIN_URL = process.env.AGENTSTORE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** The runtime role: what every test store connects as. */
export const APP_ROLE = 'agentstore_app';
/** Not a secret: test clusters only. Set so that the harness also works where md5/scram auth is on. */
export const APP_PASSWORD = 'agentstore_app';
/** The owner role: owns each test database and its tables, runs migrations. */
export const OWNER_ROLE = 'agentstore_owner';
export const OWNER_PASSWORD = 'agentstore_owner';

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

/** Creates a role unless it exists; the loser of a race between workers ignores its error. */
async function createRole(client: pg.Client, name: string, options: string): Promise<void> {
  const existing = await client.query('select 1 from pg_roles where rolname = $1', [name]);
  if (existing.rows.length > 0) return;
  try {
    await client.query(`CREATE ROLE ${name} ${options}`);
  } catch (error) {
    if (!ALREADY_THERE.has(errorCode(error) ?? '')) throw error;
  }
}

/**
 * Creates the test roles once; idempotent and safe when several workers (or several vitest
 * runs) race. A role that exists with too many rights is corrected, since RLS tests would
 * be meaningless: neither may be superuser or BYPASSRLS, and the runtime role must not be a
 * member of the owner (it would then own the tables).
 */
export async function ensureTestRoles(client: pg.Client): Promise<void> {
  const plain = 'NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE';
  await createRole(client, RUNTIME_GROUP_ROLE, `NOLOGIN ${plain}`);
  await createRole(client, OWNER_ROLE, `LOGIN ${plain} PASSWORD '${OWNER_PASSWORD}'`);
  await createRole(client, APP_ROLE, `LOGIN ${plain} PASSWORD '${APP_PASSWORD}'`);
  // Each statement only when needed: concurrent ALTER ROLE / GRANT from parallel workers
  // fail with "tuple concurrently updated".
  const tooStrong = await client.query<{ rolname: string }>('select rolname from pg_roles where rolname = any($1) and (rolsuper or rolbypassrls)', [
    [RUNTIME_GROUP_ROLE, OWNER_ROLE, APP_ROLE],
  ]);
  for (const { rolname } of tooStrong.rows) await client.query(`ALTER ROLE ${rolname} NOSUPERUSER NOBYPASSRLS`);
  const isMember = async (group: string) =>
    (
      await client.query('select 1 from pg_auth_members m join pg_roles g on g.oid = m.roleid join pg_roles u on u.oid = m.member where g.rolname = $1 and u.rolname = $2', [
        group,
        APP_ROLE,
      ])
    ).rows.length > 0;
  if (await isMember(OWNER_ROLE)) await client.query(`REVOKE ${OWNER_ROLE} FROM ${APP_ROLE}`);
  if (!(await isMember(RUNTIME_GROUP_ROLE))) {
    try {
      await client.query(`GRANT ${RUNTIME_GROUP_ROLE} TO ${APP_ROLE}`);
    } catch (error) {
      if (!ALREADY_THERE.has(errorCode(error) ?? '')) throw error;
    }
  }
}

/** A fresh database owned by the owner role; returns its name. */
export async function createPgDatabase(prefix = 'agentstore_test'): Promise<string> {
  const name = `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  await withAdmin(async (client) => {
    await ensureTestRoles(client);
    await client.query(`CREATE DATABASE ${name} OWNER ${OWNER_ROLE}`);
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

/** URL of `database` as the runtime role, on the admin URL's server or another host:port. */
export function appUrl(database: string, via?: { host: string; port: number }): string {
  return roleUrl(APP_ROLE, APP_PASSWORD, database, via);
}

/** URL of `database` as the owner role (migrations and DDL). */
export function ownerUrl(database: string, via?: { host: string; port: number }): string {
  return roleUrl(OWNER_ROLE, OWNER_PASSWORD, database, via);
}

function roleUrl(role: string, password: string, database: string, via?: { host: string; port: number }): string {
  const url = new URL(PG_ADMIN_URL);
  url.username = role;
  url.password = password;
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
