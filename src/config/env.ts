import path from 'node:path';
import { AgentstoreError } from '../core/errors.js';
import { ROLES, type Role } from '../core/context.js';
import { DEFAULT_TENANT_LIMITS, JWT_TIMING_DEFAULTS, defaultSqliteFile, isUserEditableClaim, sqliteDatabase, type Config, type DatabaseConfig, type JwtConfig } from './config.js';
import { sqliteDriverVersion } from '../db/sqlite-driver.js';
import { sslFromUrl } from '../db/postgres-connection.js';
import { ENCRYPTION_KEY_VARIABLE, OLD_ENCRYPTION_KEYS_VARIABLE, describeKeys, parseEncryptionKeys } from '../core/secret-box.js';
import { boolean, integer, oneOf, pick, type Env } from './env-values.js';
import { describeStorage, storageConfig } from './storage-env.js';

export type { Env } from './env-values.js';

export function parseDatabaseUrl(url: string, dataDir: string, variable = 'DATABASE_URL'): DatabaseConfig {
  if (/^postgres(ql)?:\/\//i.test(url)) {
    let parsed: URL;
    try {
      parsed = new URL(url);
      if (!parsed.hostname && !parsed.searchParams.get('host')) throw new Error('no host');
    } catch {
      throw AgentstoreError.config(variable, 'is not a valid postgres:// URL');
    }
    // The TLS settings are read here (sslmode's value, the sslrootcert file) so that a wrong
    // one stops the start naming the variable, not later as a bare error from the pool.
    try {
      sslFromUrl(parsed);
    } catch (error) {
      throw AgentstoreError.config(variable, error instanceof Error ? error.message : String(error));
    }
    return { kind: 'postgres', url };
  }
  if (url === 'sqlite::memory:' || url === ':memory:') return sqliteDatabase(':memory:');
  const sqlite = /^(sqlite:|file:)(.+)$/i.exec(url);
  if (sqlite?.[2]) {
    const file = sqlite[2].replace(/^\/\/(?=\/)/, '');
    return sqliteDatabase(path.resolve(dataDir, file));
  }
  throw AgentstoreError.config(variable, 'must start with postgres://, postgresql://, sqlite: or file:');
}

function jwtConfig(env: Env): JwtConfig | undefined {
  // Read before the early return, so that a wrong value is refused even while no issuer is set.
  const timing = {
    requireExp: boolean(env, 'AGENTSTORE_JWT_REQUIRE_EXP', JWT_TIMING_DEFAULTS.requireExp),
    clockSkewSeconds: integer(env, 'AGENTSTORE_JWT_CLOCK_SKEW_SECONDS', JWT_TIMING_DEFAULTS.clockSkewSeconds, 0, 600),
    maxLifetimeSeconds: integer(env, 'AGENTSTORE_JWT_MAX_LIFETIME_SECONDS', JWT_TIMING_DEFAULTS.maxLifetimeSeconds, 60, 365 * 24 * 3600),
  };
  const secret = pick(env, 'AGENTSTORE_JWT_SECRET', 'SUPABASE_JWT_SECRET');
  const jwks = pick(env, 'AGENTSTORE_JWT_JWKS_URL');
  if (!secret && !jwks) return undefined;
  if (secret && jwks) {
    throw AgentstoreError.config('AGENTSTORE_JWT_JWKS_URL', 'set either a JWT secret or a JWKS URL, not both');
  }
  if (secret && secret.value.length < 32) {
    throw AgentstoreError.config(secret.name, 'must be at least 32 characters');
  }
  if (jwks) {
    try {
      const u = new URL(jwks.value);
      if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error('scheme');
    } catch {
      throw AgentstoreError.config(jwks.name, 'must be an http(s) URL');
    }
  }
  const claims = {
    tenantClaim: pick(env, 'AGENTSTORE_JWT_TENANT_CLAIM')?.value ?? 'tenant_id',
    userClaim: pick(env, 'AGENTSTORE_JWT_USER_CLAIM')?.value ?? 'sub',
    roleClaim: pick(env, 'AGENTSTORE_JWT_ROLE_CLAIM')?.value ?? 'agentstore_role',
  };
  for (const [variable, path] of [['AGENTSTORE_JWT_TENANT_CLAIM', claims.tenantClaim], ['AGENTSTORE_JWT_ROLE_CLAIM', claims.roleClaim]] as const) {
    if (isUserEditableClaim(path)) throw AgentstoreError.config(variable, `${path} is written by the token's own user: use app_metadata.…`);
  }
  const issuer = pick(env, 'AGENTSTORE_JWT_ISSUER')?.value;
  const audience = pick(env, 'AGENTSTORE_JWT_AUDIENCE')?.value;
  return {
    ...(secret ? { secret: secret.value } : {}),
    ...(jwks ? { jwksUrl: jwks.value } : {}),
    ...(issuer ? { issuer } : {}),
    ...(audience ? { audience } : {}),
    ...claims,
    defaultRole: oneOf<Role>(env, 'AGENTSTORE_JWT_DEFAULT_ROLE', ROLES, 'member'),
    ...timing,
  };
}

/**
 * Environment -> typed configuration. Throws an AgentstoreError naming the first wrong
 * variable, so that a bad deployment fails at start with a message an operator can act on.
 */
export function loadConfig(env: Env = process.env): Config {
  const dataDir = path.resolve(pick(env, 'AGENTSTORE_DATA_DIR')?.value ?? './data');
  const dbUrl = pick(env, 'DATABASE_URL', 'SUPABASE_DB_URL');
  const database = dbUrl
    ? parseDatabaseUrl(dbUrl.value, dataDir, dbUrl.name)
    : sqliteDatabase(defaultSqliteFile(dataDir));
  const migrateUrl = pick(env, 'AGENTSTORE_MIGRATE_DATABASE_URL');
  const migrateDatabase = migrateUrl ? parseDatabaseUrl(migrateUrl.value, dataDir, migrateUrl.name) : undefined;
  // SQLite has no roles: a second URL there could only migrate another file.
  if (migrateDatabase && (migrateDatabase.kind !== 'postgres' || database.kind !== 'postgres')) {
    throw AgentstoreError.config('AGENTSTORE_MIGRATE_DATABASE_URL', 'is for PostgreSQL only: a postgres:// URL, with DATABASE_URL on PostgreSQL too');
  }
  const serviceKey = pick(env, 'AGENTSTORE_SERVICE_KEY')?.value;
  if (serviceKey !== undefined && serviceKey.length < 24) {
    throw AgentstoreError.config('AGENTSTORE_SERVICE_KEY', 'must be at least 24 characters');
  }
  const jwt = jwtConfig(env);
  const encryption = parseEncryptionKeys(pick(env, ENCRYPTION_KEY_VARIABLE)?.value, pick(env, OLD_ENCRYPTION_KEYS_VARIABLE)?.value);
  const bodyLimitBytes = integer(env, 'AGENTSTORE_MAX_BODY_BYTES', 1024 * 1024, 1024, 1024 * 1024 * 1024);
  return {
    store: {
      dataDir,
      database,
      migrateOnStart: boolean(env, 'AGENTSTORE_MIGRATE_ON_START', database.kind === 'sqlite'),
      ...(migrateDatabase ? { migrateDatabase } : {}),
      requireRls: boolean(env, 'AGENTSTORE_REQUIRE_RLS', false),
      maxMessageBytes: integer(env, 'AGENTSTORE_MAX_MESSAGE_BYTES', 256 * 1024, 1024, 64 * 1024 * 1024),
      ...(encryption ? { encryption } : {}),
      storage: storageConfig(env, dataDir),
      tenantLimits: {
        collections: integer(env, 'AGENTSTORE_MAX_COLLECTIONS_PER_TENANT', DEFAULT_TENANT_LIMITS.collections, 1, 100_000),
        declaredIndexes: integer(env, 'AGENTSTORE_MAX_INDEXES_PER_TENANT', DEFAULT_TENANT_LIMITS.declaredIndexes, 0, 10_000),
        declaredIndexesTotal: integer(env, 'AGENTSTORE_MAX_DECLARED_INDEXES', DEFAULT_TENANT_LIMITS.declaredIndexesTotal, 0, 100_000),
      },
      expirySweepIntervalMs: integer(env, 'AGENTSTORE_EXPIRY_SWEEP_INTERVAL_MS', 5000, 0, 86_400_000),
      postgres: {
        poolMax: integer(env, 'AGENTSTORE_PG_POOL_MAX', 10, 1, 1000),
        statementTimeoutMs: integer(env, 'AGENTSTORE_PG_STATEMENT_TIMEOUT_MS', 30_000, 100, 3_600_000),
        applicationName: 'agentstore',
      },
      sqlite: {
        synchronous: oneOf(env, 'AGENTSTORE_SQLITE_SYNCHRONOUS', ['full', 'normal'] as const, 'full'),
        busyTimeoutMs: integer(env, 'AGENTSTORE_SQLITE_BUSY_TIMEOUT_MS', 5000, 0, 600_000),
        scanWorkers: integer(env, 'AGENTSTORE_SQLITE_SCAN_WORKERS', 2, 1, 64),
        scanTimeoutMs: integer(env, 'AGENTSTORE_SQLITE_SCAN_TIMEOUT_MS', 30_000, 100, 3_600_000),
        checkpointIntervalMs: integer(env, 'AGENTSTORE_SQLITE_CHECKPOINT_INTERVAL_MS', 100, 0, 60_000),
      },
      auth: {
        ...(serviceKey ? { serviceKey } : {}),
        sessionTtlSeconds: integer(env, 'AGENTSTORE_SESSION_TTL_SECONDS', 7 * 24 * 3600, 60, 365 * 24 * 3600),
        loginMaxPerAccount: integer(env, 'AGENTSTORE_LOGIN_MAX_PER_ACCOUNT', 10, 1, 100_000),
        loginMaxPerAddress: integer(env, 'AGENTSTORE_LOGIN_MAX_PER_ADDRESS', 50, 1, 1_000_000),
        loginWindowSeconds: integer(env, 'AGENTSTORE_LOGIN_WINDOW_SECONDS', 15 * 60, 1, 86_400),
        ...(jwt ? { jwt } : {}),
      },
    },
    server: {
      host: pick(env, 'HOST', 'AGENTSTORE_HOST')?.value ?? '127.0.0.1',
      port: integer(env, 'PORT', 8787, 0, 65535),
      bodyLimitBytes,
      logLevel: oneOf(env, 'AGENTSTORE_LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info'),
      trustProxy: boolean(env, 'AGENTSTORE_TRUST_PROXY', false),
      loopBudgetMs: integer(env, 'AGENTSTORE_LOOP_BUDGET_MS', 2, 0, 1000),
      eventsHeartbeatMs: integer(env, 'AGENTSTORE_EVENTS_HEARTBEAT_MS', 15_000, 100, 600_000),
      eventsMaxStreamsPerTenant: integer(env, 'AGENTSTORE_EVENTS_MAX_STREAMS_PER_TENANT', 256, 1, 1_000_000),
      bulkMaxLineBytes: integer(env, 'AGENTSTORE_BULK_MAX_LINE_BYTES', bodyLimitBytes, 64, 1024 * 1024 * 1024),
      bulkMaxLines: integer(env, 'AGENTSTORE_BULK_MAX_LINES', 1_000_000, 1, 1_000_000_000),
    },
  };
}

/** A URL with its password replaced, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const key of ['password', 'sslpassword']) if (u.searchParams.has(key)) u.searchParams.set(key, '***');
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
  }
}

/** A URL without its query string and credentials (a JWKS URL may carry an API key in either). */
function redactQuery(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}${u.search ? '?***' : ''}`;
  } catch {
    return '***';
  }
}

/** One line per chosen backend, secrets redacted: what an operator checks first. */
export function describeBackends(store: Config['store']): string[] {
  const db = store.database;
  const lines = [
    db.kind === 'sqlite'
      ? `database: sqlite ${db.file} (WAL, synchronous=${store.sqlite.synchronous}, better-sqlite3 ${sqliteDriverVersion})`
      : `database: postgres ${redactUrl(db.url)} (pool max ${store.postgres.poolMax}, statement timeout ${store.postgres.statementTimeoutMs} ms)`,
    `migrations: ${store.migrateOnStart ? 'applied at start' : 'checked at start (run `agentstore migrate up` to apply)'}${
      store.migrateDatabase?.kind === 'postgres' ? ` as ${redactUrl(store.migrateDatabase.url)}` : ''
    }`,
    'event bus: in-process (single instance)',
    describeStorage(store.storage),
    describeKeys(store.encryption),
  ];
  const jwt = store.auth.jwt;
  if (jwt) {
    const t = { ...JWT_TIMING_DEFAULTS, ...jwt };
    lines.push(
      `jwt: ${jwt.secret ? 'HS256 secret ***' : `JWKS ${redactQuery(jwt.jwksUrl ?? '')}`}, tenant claim ${jwt.tenantClaim}, ` +
        `exp ${t.requireExp ? 'required' : 'optional'}, clock skew ${t.clockSkewSeconds} s, max lifetime ${t.maxLifetimeSeconds} s`,
    );
  }
  return lines;
}
