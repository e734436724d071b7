import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { createMigratedTestDatabase, type Backend, type TestDatabase } from '../helpers/index.js';
import { killChildren, type Env } from './process.js';

/**
 * The environment of a real server process for one backend, set up around the enclosing
 * describe: a temp data dir, the service key, and on PostgreSQL a migrated database the
 * server must not migrate itself. Children are killed after each test, and all is removed
 * afterwards. Read `.env` inside tests.
 */
export function useServerEnv(backend: Backend, name: string, serviceKey: string): { readonly env: Env } {
  const holder = { env: {} as Env };
  let dataDir = '';
  let database: TestDatabase | undefined;
  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `agentstore-e2e-${name}-`));
    holder.env = { AGENTSTORE_DATA_DIR: dataDir, AGENTSTORE_SERVICE_KEY: serviceKey };
    if (backend.dialect === 'postgres') {
      database = await createMigratedTestDatabase(backend);
      holder.env = { ...holder.env, DATABASE_URL: database.url, AGENTSTORE_MIGRATE_ON_START: 'false' };
    }
  });
  afterEach(killChildren);
  afterAll(async () => {
    await killChildren();
    await database?.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });
  return holder;
}
