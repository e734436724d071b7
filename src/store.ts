import { createLazyBlobStore } from './adapters/blob-store/lazy.js';
import { LOCAL_DISK_CAPABILITIES, createLocalDiskBlobStore } from './adapters/blob-store/local-disk.js';
import { createRetryingBlobStore } from './adapters/blob-store/retrying.js';
import { createLocalEventBus } from './adapters/event-bus/local.js';
import { createMemoryRateLimiter } from './adapters/rate-limiter/memory.js';
import type { StorageConfig, StoreConfig } from './config/config.js';
import { describeBackends, loadConfig, type Env } from './config/env.js';
import { createDatabase, type Database } from './db/database.js';
import { checkPrivileges } from './db/privileges.js';
import { AgentstoreError } from './core/errors.js';
import { assertSchemaCurrent, migrateUp, migrationStatus, type SchemaStatus } from './db/migrator.js';
import { createUnitOfWorkRunner } from './db/unit-of-work.js';
import { followExternalChanges, type ExternalChanges } from './db/external-changes.js';
import { createAuditService, type AuditService } from './modules/audit/service.js';
import { createChangesService, type ChangesService } from './modules/changes/service.js';
import { createBatchService, type BatchOperation, type BatchOutcome } from './modules/batch/service.js';
import { createExpirySweeper, type ExpirySweeper } from './modules/collections/expiry-sweep.js';
import { createIndexBuilds } from './modules/collections/index-builds.js';
import { createRecordsEraser } from './modules/collections/end-user-eraser.js';
import { createConversationsEraser, createMemoryBlocksEraser } from './modules/conversations/end-user-eraser.js';
import { createEndUsersService, type EndUsersService } from './modules/end-users/service.js';
import { createRecordWrites } from './modules/collections/record-writes.js';
import { createCollectionsService, type CollectionsService } from './modules/collections/service.js';
import { createCountersService, type CountersService } from './modules/counters/service.js';
import { createConversationsService } from './modules/conversations/service.js';
import type { ConversationsService } from './modules/conversations/types.js';
import { createMemoryBlocksService, type MemoryBlocksService } from './modules/memory-blocks/service.js';
import { createAgentsService, type AgentsService } from './modules/agents/service.js';
import { createContextService, type ContextService } from './modules/context/service.js';
import { createBranchesService, type BranchesService } from './modules/projects/branches-service.js';
import { createProjectsService, type ProjectsService } from './modules/projects/projects-service.js';
import { createTasksService, type TasksService } from './modules/tasks/service.js';
import { createApiKeysService, type ApiKeysService } from './modules/tenancy/api-keys-service.js';
import { createAuthService, type AuthService } from './modules/tenancy/auth-service.js';
import { createTenantsService, type TenantsService } from './modules/tenancy/tenants-service.js';
import { createUsersService, type UsersService } from './modules/tenancy/users-service.js';
import type { BlobStore } from './ports/blob-store.js';
import { attachBlobStore } from './store-blobs.js';
import type { EventBus } from './ports/event-bus.js';
import type { RateLimiter } from './ports/rate-limiter.js';
import type { TenantContext } from './core/context.js';

export interface Store {
  readonly config: StoreConfig;
  readonly tenants: TenantsService;
  readonly users: UsersService;
  readonly apiKeys: ApiKeysService;
  readonly auth: AuthService;
  readonly collections: CollectionsService;
  readonly counters: CountersService;
  /** Conversations and their messages: append, read by seq, edit, fork, search. */
  readonly conversations: ConversationsService;
  /** Working memory: labelled text blocks with a character limit, per agent and end user. */
  readonly memoryBlocks: MemoryBlocksService;
  /** Agents, their versions and their encrypted secrets (docs/api.md, "Agents"). */
  readonly agents: AgentsService;
  readonly projects: ProjectsService;
  /** Branches of a project. */
  readonly branches: BranchesService;
  /** Tasks of a branch: subtasks, order among siblings, status, dependencies. */
  readonly tasks: TasksService;
  /** Context documents of the global, project, branch and task levels, and their resolution. */
  readonly context: ContextService;
  /**
   * Up to 100 writes to records and counters in one unit of work, all or nothing: a result per
   * operation, or the error of the first that failed (with `context.failedIndex`) and nothing
   * written. An `idempotencyKey` makes a retry return the first results.
   */
  batch(ctx: TenantContext, operations: readonly BatchOperation[], options?: { idempotencyKey?: string }): Promise<BatchOutcome>;
  readonly audit: AuditService;
  readonly changes: ChangesService;
  /**
   * Erasing an end user (`erase`), and the registry of the erasers that do it: a module that
   * stores end users' data registers one (`register`) for its tables.
   */
  readonly endUsers: EndUsersService;
  /** The generated service key when this start created one (print it once), else undefined. */
  readonly generatedServiceKey: string | undefined;
  /** Backends in use, one line each, secrets redacted. */
  describe(): string[];
  /**
   * Ways the database role can step around tenant isolation (PostgreSQL superuser,
   * BYPASSRLS, owner of the tables), found at open; logged by the server and shown by /ready.
   */
  readonly securityWarnings: readonly string[];
  /** Database reachable and schema current, and file storage answering its ping. */
  ready(): Promise<{
    ok: boolean;
    schema: SchemaStatus | null;
    error?: string;
    warnings: readonly string[];
    storage: { readonly backend: string; readonly ok: boolean; readonly error?: string };
  }>;
  /**
   * Low-level handles for the CLI, the server's metrics, and tests. `externalChanges`
   * follows other processes' commits to the same SQLite file (inert on PostgreSQL); `expiry`
   * is the background sweep of expired records (`expirySweepIntervalMs`), and sweeps on demand.
   * The file storage is `blobStoreOf(store)` (src/store-blobs.ts), kept off this type.
   */
  readonly internals: { readonly db: Database; readonly bus: EventBus; readonly externalChanges: ExternalChanges; readonly expiry: ExpirySweeper };
  close(): Promise<void>;
}

/** Options for `createStore`: any part of the configuration; the rest comes from the environment. */
export type StoreOptions = Partial<Omit<StoreConfig, 'postgres' | 'sqlite' | 'auth' | 'tenantLimits'>> & {
  readonly databaseUrl?: string;
  /** PostgreSQL: a URL as the role that owns the tables, for migrations (see `StoreConfig.migrateDatabase`). */
  readonly migrateDatabaseUrl?: string;
  readonly tenantLimits?: Partial<StoreConfig['tenantLimits']>;
  readonly postgres?: Partial<StoreConfig['postgres']>;
  readonly sqlite?: Partial<StoreConfig['sqlite']>;
  readonly auth?: Partial<StoreConfig['auth']>;
  /** The current key for agent secrets, in AGENTSTORE_ENCRYPTION_KEY's format (`<id>:<base64 of 32 bytes>`). */
  readonly encryptionKey?: string;
  /** Earlier keys, decrypt only, in AGENTSTORE_ENCRYPTION_KEYS_OLD's format (comma-separated). */
  readonly encryptionKeysOld?: string;
  /** Start the service-key bootstrap (the server does; a library user rarely needs it). */
  readonly bootstrapServiceKey?: boolean;
};

// `Env`, not `NodeJS.ProcessEnv`: the package's public types then need no @types/node.
export function resolveStoreConfig(options: StoreOptions = {}, env: Env = process.env): StoreConfig {
  const fromEnv = loadConfig({
    ...env,
    // So that the local file storage defaults to `<dataDir>/files` of the data dir given here.
    ...(options.dataDir ? { AGENTSTORE_DATA_DIR: options.dataDir } : {}),
    ...(options.databaseUrl ? { DATABASE_URL: options.databaseUrl } : {}),
    ...(options.migrateDatabaseUrl ? { AGENTSTORE_MIGRATE_DATABASE_URL: options.migrateDatabaseUrl } : {}),
    ...(options.encryptionKey ? { AGENTSTORE_ENCRYPTION_KEY: options.encryptionKey } : {}),
    ...(options.encryptionKeysOld ? { AGENTSTORE_ENCRYPTION_KEYS_OLD: options.encryptionKeysOld } : {}),
  }).store;
  const database = options.database ?? fromEnv.database;
  return {
    ...fromEnv,
    ...(options.dataDir ? { dataDir: options.dataDir } : {}),
    database,
    migrateOnStart: options.migrateOnStart ?? (options.databaseUrl || options.database ? database.kind === 'sqlite' : fromEnv.migrateOnStart),
    postgres: { ...fromEnv.postgres, ...options.postgres },
    sqlite: { ...fromEnv.sqlite, ...options.sqlite },
    auth: { ...fromEnv.auth, ...options.auth },
    ...(options.migrateDatabase ? { migrateDatabase: options.migrateDatabase } : {}),
    requireRls: options.requireRls ?? fromEnv.requireRls,
    maxMessageBytes: options.maxMessageBytes ?? fromEnv.maxMessageBytes,
    ...(options.encryption ? { encryption: options.encryption } : {}),
    storage: options.storage ?? fromEnv.storage,
    expirySweepIntervalMs: options.expirySweepIntervalMs ?? fromEnv.expirySweepIntervalMs,
    tenantLimits: { ...fromEnv.tenantLimits, ...options.tenantLimits },
  };
}

/**
 * Opens agentstore in-process: the same modules the HTTP server serves, as typed methods
 * taking an explicit tenant context. With no options it runs embedded (SQLite under
 * ./data) or on whatever the environment configures.
 */
export async function createStore(options: StoreOptions = {}): Promise<Store> {
  const config = resolveStoreConfig(options);
  return openStore(config, { bootstrapServiceKey: options.bootstrapServiceKey ?? false });
}

/**
 * Applies pending migrations: as the owner role over its own short-lived connection when
 * one is configured (the server's role may not run DDL), else on the store's database.
 */
async function migrateAsOwner(config: StoreConfig, db: Database): Promise<void> {
  if (!config.migrateDatabase) {
    await migrateUp(db);
    return;
  }
  const owner = createDatabase({ database: config.migrateDatabase, postgres: { ...config.postgres, poolMax: 1 }, sqlite: config.sqlite });
  try {
    await migrateUp(owner);
  } finally {
    await owner.close();
  }
}

/**
 * The file storage of `storage`, behind the retry layer. Opened on first use (see
 * adapters/blob-store/lazy.ts), so that opening a store creates no directory.
 */
function openBlobStore(storage: StorageConfig): BlobStore {
  switch (storage.kind) {
    case 'local':
      return createRetryingBlobStore(createLazyBlobStore({ name: 'local', capabilities: LOCAL_DISK_CAPABILITIES }, () => createLocalDiskBlobStore({ root: storage.dir })));
    case 's3':
      throw AgentstoreError.config('STORAGE_BACKEND', 's3 adapter not built yet');
  }
}

export async function openStore(config: StoreConfig, opts: { bootstrapServiceKey?: boolean; rateLimiter?: RateLimiter } = {}): Promise<Store> {
  // Before the database: a storage setting that cannot work stops the start with nothing to close.
  const blobs = openBlobStore(config.storage);
  const db = createDatabase({ database: config.database, postgres: config.postgres, sqlite: config.sqlite });
  let securityWarnings: readonly string[];
  try {
    if (config.migrateOnStart) await migrateAsOwner(config, db);
    else await assertSchemaCurrent(db);
    securityWarnings = (await checkPrivileges(db)).warnings;
    if (config.requireRls && db.dialect === 'sqlite') {
      throw AgentstoreError.config('AGENTSTORE_REQUIRE_RLS', 'refusing to start: SQLite has no row-level security; tenant isolation there is the application\'s filters alone');
    }
    if (config.requireRls && securityWarnings.length > 0) {
      throw AgentstoreError.config('AGENTSTORE_REQUIRE_RLS', `refusing to start: ${securityWarnings.join('; ')}`);
    }
  } catch (error) {
    await db.close();
    throw error;
  }
  const bus = createLocalEventBus();
  const uow = createUnitOfWorkRunner(db, bus);
  const tenants = createTenantsService({ db, uow });
  const auth = createAuthService({ db, uow, tenants, rateLimiter: opts.rateLimiter ?? createMemoryRateLimiter(), config: config.auth });
  // Another process's writes to the same SQLite file wake this one's event streams, and its
  // revocations reach this one's auth cache, within ~25-100 ms (docs/architecture.md,
  // "Several processes on one SQLite store").
  const externalChanges = await followExternalChanges({ db, bus, onCredentialChanges: (changes) => auth.invalidate(changes) }).catch(async (error: unknown) => {
    await db.close();
    throw error;
  });
  // One set of record writes for the collection routes and the batches: the same code path.
  const writes = createRecordWrites({ dialect: db.dialect, limits: config.tenantLimits });
  const batches = createBatchService({ uow, writes });
  const generatedServiceKey = opts.bootstrapServiceKey || config.auth.serviceKey ? await tenants.ensureServiceKey(config.auth.serviceKey) : undefined;
  // Expired records are invisible at once; this deletes them (and emits their deletes) later.
  const expiry = createExpirySweeper({ db, uow, intervalMs: config.expirySweepIntervalMs });
  // Every module that keeps end users' data registers its eraser here.
  const endUsers = createEndUsersService({ uow });
  endUsers.register(createRecordsEraser({ db, uow }));
  endUsers.register(createConversationsEraser({ db, uow }));
  endUsers.register(createMemoryBlocksEraser({ uow }));
  const store: Store = {
    config,
    tenants,
    users: createUsersService({ uow, onSessionsChanged: (hashes) => hashes.forEach((hash) => auth.forget(hash)) }),
    apiKeys: createApiKeysService({ uow, onRevoke: (hash) => auth.forget(hash) }),
    auth,
    collections: createCollectionsService({ db, uow, limits: config.tenantLimits, indexBuilds: createIndexBuilds(db, config.migrateDatabase, config.postgres), writes }),
    counters: createCountersService({ uow }),
    conversations: createConversationsService({ db, uow, maxMessageBytes: config.maxMessageBytes }),
    memoryBlocks: createMemoryBlocksService({ uow, dialect: db.dialect }),
    agents: createAgentsService({ db, uow, encryption: config.encryption }),
    projects: createProjectsService({ uow, dialect: db.dialect }),
    branches: createBranchesService({ uow, dialect: db.dialect }),
    tasks: createTasksService({ uow, dialect: db.dialect }),
    context: createContextService({ uow, dialect: db.dialect }),
    batch: (ctx, operations, options) => batches.run(ctx, operations, options),
    audit: createAuditService({ uow }),
    changes: createChangesService({ uow, bus, dialect: db.dialect }),
    endUsers,
    generatedServiceKey,
    describe: () => describeBackends(config),
    securityWarnings,
    async ready() {
      const warnings = securityWarnings;
      const storage: { backend: string; ok: boolean; error?: string } = await blobs.ping().then(
        () => ({ backend: blobs.name, ok: true }),
        (error: unknown) => ({ backend: blobs.name, ok: false, error: (error as Error).message }),
      );
      const notReady = (error: string, schema: SchemaStatus | null) => ({ ok: false, schema, error, warnings, storage });
      try {
        await db.ping();
        const schema = await migrationStatus(db);
        if (!schema.upToDate) return notReady('schema is not current', schema);
        if (!storage.ok) return notReady(`file storage (${storage.backend}): ${storage.error ?? 'unknown'}`, schema);
        return { ok: true, schema, warnings, storage };
      } catch (error) {
        return notReady((error as Error).message, null);
      }
    },
    internals: { db, bus, externalChanges, expiry },
    async close() {
      await expiry.close();
      await externalChanges.close();
      await bus.close();
      await blobs.close();
      await db.close();
    },
  };
  attachBlobStore(store, blobs);
  return store;
}
