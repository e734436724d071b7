import path from 'node:path';
import type { Role } from '../core/context.js';
import type { EncryptionKeys } from '../core/secret-box.js';

export type DatabaseConfig =
  | { readonly kind: 'sqlite'; readonly file: string; readonly url: string }
  | { readonly kind: 'postgres'; readonly url: string };

export interface JwtConfig {
  /** HS256 shared secret (Supabase: the project's JWT secret). */
  readonly secret?: string;
  /** Or a JWKS URL for asymmetric keys. */
  readonly jwksUrl?: string;
  readonly issuer?: string;
  readonly audience?: string;
  /** Dotted path of the claim naming the tenant, e.g. `app_metadata.tenant_id`. */
  readonly tenantClaim: string;
  readonly userClaim: string;
  readonly roleClaim: string;
  readonly defaultRole: Role;
  /** Refuse tokens without `exp` (default true). Without it, a token's `iat` bounds its age instead. */
  readonly requireExp?: boolean;
  /** Leeway for `exp`, `nbf` and `iat` against this server's clock, in seconds (default 30, at most 600). */
  readonly clockSkewSeconds?: number;
  /** The longest accepted `exp - iat` (or `exp - now` without `iat`), in seconds (default 86400). */
  readonly maxLifetimeSeconds?: number;
}

/**
 * The timing rules when the configuration leaves them out. 24 h covers what the common
 * issuers hand out by default (Supabase and Firebase 1 h, Auth0 access tokens 24 h, Clerk
 * 60 s) while a stolen token stays useful for a day at most; 30 s of skew is far more
 * than NTP-synchronised clocks drift, and little enough not to extend a token noticeably.
 */
export const JWT_TIMING_DEFAULTS = { requireExp: true, clockSkewSeconds: 30, maxLifetimeSeconds: 24 * 3600 } as const;

/**
 * Claims the token's own user can write: Supabase copies `user_metadata` (set by the user
 * through `auth.updateUser`) into its JWTs. A tenant or role read from there would let
 * anyone who can sign up choose their tenant and make themselves owner.
 */
export function isUserEditableClaim(path: string): boolean {
  return /^(user_metadata|raw_user_meta_data)(\.|$)/.test(path);
}

/**
 * Bounds on what one tenant's requests cost the others. Every declared index is a partial
 * index on the one shared records table, and every tenant's insert pays for all of them
 * (docs/architecture.md, "Declared indexes"), hence a cap over all tenants as well.
 */
export interface TenantLimits {
  /** Collections one tenant may have (defined, or created by a first record write). */
  readonly collections: number;
  /** Declared indexes over all of one tenant's collections. */
  readonly declaredIndexes: number;
  /** Declared indexes in the whole database, over all tenants. */
  readonly declaredIndexesTotal: number;
}

export const DEFAULT_TENANT_LIMITS: TenantLimits = { collections: 100, declaredIndexes: 32, declaredIndexesTotal: 256 };

/**
 * Where file bytes live (src/ports/blob-store.ts): a directory on the local disk, or a bucket
 * of any S3-compatible store (AWS S3, MinIO, Cloudflare R2, Supabase Storage's S3 endpoint).
 * docs/operations.md, "File storage", lists the variables and worked settings.
 */
export type StorageConfig =
  | {
      readonly kind: 'local';
      /** Absolute; default `<dataDir>/files`. */
      readonly dir: string;
      /** The largest upload, in bytes (MAX_UPLOAD_SIZE_MB, default 100 MiB). */
      readonly maxUploadBytes: number;
      /** Origin (and optional path) of a CDN in front of public files, without a trailing `/`. */
      readonly publicBaseUrl?: string;
    }
  | {
      readonly kind: 's3';
      readonly bucket: string;
      readonly region: string;
      /** Absent: AWS S3's own endpoint for the region. */
      readonly endpoint?: string;
      readonly forcePathStyle: boolean;
      /** Both or neither; neither: the AWS SDK's default credential chain (instance role, profile). */
      readonly accessKeyId?: string;
      readonly secretAccessKey?: string;
      readonly sessionToken?: string;
      readonly serverSideEncryption?: 'AES256' | 'aws:kms';
      /** Only with `serverSideEncryption: 'aws:kms'`. */
      readonly kmsKeyId?: string;
      /** Keys are stored under it: normalised to no leading `/` and one trailing `/` (`agentstore/`). */
      readonly prefix?: string;
      readonly maxUploadBytes: number;
      readonly publicBaseUrl?: string;
    };

export interface StoreConfig {
  readonly dataDir: string;
  readonly database: DatabaseConfig;
  /** Apply pending migrations when the store opens. */
  readonly migrateOnStart: boolean;
  /**
   * PostgreSQL: where migrations run, as the role that owns the tables (and may run DDL),
   * when that is not the server's own role. Unset: migrations use `database`.
   */
  readonly migrateDatabase?: DatabaseConfig;
  /**
   * PostgreSQL: refuse to start when the server's role could step around row-level
   * security (superuser, BYPASSRLS, or owner of the tables); otherwise only warn.
   */
  readonly requireRls: boolean;
  /**
   * The largest conversation message, as JSON bytes of all its fields (a batch of them may
   * hold four times this); larger is 413 and nothing is written.
   */
  readonly maxMessageBytes: number;
  /** Per-tenant bounds on what costs every tenant (declared indexes sit on the one shared records table). */
  readonly tenantLimits: TenantLimits;
  /**
   * The keys agent secrets are encrypted with (AGENTSTORE_ENCRYPTION_KEY and
   * AGENTSTORE_ENCRYPTION_KEYS_OLD, src/core/secret-box.ts); without them secret writes and
   * reveals are refused and everything else works. Never logged.
   */
  readonly encryption?: EncryptionKeys;
  /**
   * How often the store deletes expired records, in ms (0: never; expired records are
   * invisible to reads either way, the sweep frees their space and emits their deletes).
   */
  readonly expirySweepIntervalMs: number;
  /** File storage: local disk under the data dir by default (STORAGE_BACKEND and the S3_* variables). */
  readonly storage: StorageConfig;
  readonly postgres: {
    readonly poolMax: number;
    readonly statementTimeoutMs: number;
    readonly applicationName: string;
  };
  readonly sqlite: {
    readonly synchronous: 'full' | 'normal';
    readonly busyTimeoutMs: number;
    /** Worker threads that run scans (listings no index serves) off the event loop. */
    readonly scanWorkers: number;
    /** A scan running longer is cancelled with 503, as PostgreSQL's statement timeout does. */
    readonly scanTimeoutMs: number;
    /**
     * How often a worker thread checkpoints the WAL after commits, in ms (src/db/sqlite-checkpointer.ts).
     * 0 leaves checkpoints to SQLite's automatic one, inside the commits on the event loop.
     */
    readonly checkpointIntervalMs: number;
  };
  readonly auth: {
    readonly serviceKey?: string;
    readonly sessionTtlSeconds: number;
    readonly loginMaxPerAccount: number;
    readonly loginMaxPerAddress: number;
    readonly loginWindowSeconds: number;
    readonly jwt?: JwtConfig;
  };
}

export interface ServerConfig {
  readonly host: string;
  readonly port: number;
  readonly bodyLimitBytes: number;
  readonly logLevel: string;
  readonly trustProxy: boolean;
  /**
   * Request work per event-loop turn before further requests queue, in ms (0: off); keeps
   * connections being accepted under load (src/server/admission.ts).
   */
  readonly loopBudgetMs: number;
  /** A comment line on an event stream that wrote nothing for this long, in ms (proxies close idle streams). */
  readonly eventsHeartbeatMs: number;
  /** Open event streams one tenant may hold on one server (429 past it). */
  readonly eventsMaxStreamsPerTenant: number;
  /** A bulk load's longest line, in bytes (a longer one fails alone, 413); default the body limit. */
  readonly bulkMaxLineBytes: number;
  /** A bulk load's most lines per call (the next one fails with 413 and the load ends). */
  readonly bulkMaxLines: number;
}

export interface Config {
  readonly store: StoreConfig;
  readonly server: ServerConfig;
}

export function sqliteDatabase(file: string): DatabaseConfig {
  return { kind: 'sqlite', file, url: file === ':memory:' ? 'sqlite::memory:' : `sqlite:${file}` };
}

export function defaultSqliteFile(dataDir: string): string {
  return path.join(dataDir, 'agentstore.db');
}

export function defaultFilesDir(dataDir: string): string {
  return path.join(dataDir, 'files');
}
