/** One import for suites: `import { forEachBackend, useTestStore, newTenant, expectError } from '../helpers/index.js'`. */
export {
  BACKENDS,
  backendAvailability,
  createMigratedTestDatabase,
  createTestDatabase,
  forEachBackend,
  openTestDb,
  openTestStore,
  useTestStore,
  type Backend,
  type BackendName,
  type ForEachBackendOptions,
  type TestDatabase,
  type TestDatabaseOptions,
  type TestStore,
  type TestStoreOptions,
} from './backends.js';
export { asRole, countRows, expectError, newTenant, seededRandom, snapshotCounts, type ExpectedError, type TenantTable } from './fixtures.js';
export { APP_ROLE, PG_ADMIN_URL } from './pg-admin.js';
