/**
 * vitest globalSetup: runs once per `vitest run`, in the main process, before any worker.
 *
 * - checks that PostgreSQL answers and creates the test roles (owner, runtime: pg-admin.ts);
 * - starts one pgbouncer (transaction mode) for the whole run on a free port;
 * - hands the outcome to the test files through `provide('agentstoreBackends')`, which
 *   `test/helpers/backends.ts` reads with `inject`.
 *
 * Nothing here fails the run when a service is missing: the affected suites skip with the
 * reason, or fail with it under CI=true (see `forEachBackend`).
 */
import type { TestProject } from 'vitest/node';
import { selectedBackends, type ProvidedBackends } from './backend-names.js';
import { ensureTestRoles, probePostgres, withAdmin } from './pg-admin.js';
import { findPgbouncer, startPgbouncer, type RunningPgbouncer } from './pgbouncer.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const wanted = selectedBackends();
  let pgbouncer: RunningPgbouncer | undefined;
  const provided: { -readonly [K in keyof ProvidedBackends]: ProvidedBackends[K] } = {
    postgres: { available: false, reason: 'not selected by AGENTSTORE_TEST_BACKENDS' },
    pgbouncer: { available: false, reason: 'not selected by AGENTSTORE_TEST_BACKENDS' },
  };

  if (wanted.includes('postgres') || wanted.includes('pgbouncer')) {
    const unreachable = await probePostgres();
    if (unreachable) {
      provided.postgres = { available: false, reason: unreachable };
      provided.pgbouncer = { available: false, reason: unreachable };
    } else {
      await withAdmin(ensureTestRoles);
      if (wanted.includes('postgres')) provided.postgres = { available: true };
      if (wanted.includes('pgbouncer')) {
        const binary = findPgbouncer();
        if (!binary) {
          provided.pgbouncer = { available: false, reason: 'pgbouncer is not installed (apt-get install -y pgbouncer)' };
        } else {
          try {
            pgbouncer = await startPgbouncer(binary);
            provided.pgbouncer = { available: true, port: pgbouncer.port };
          } catch (error) {
            provided.pgbouncer = { available: false, reason: `pgbouncer failed to start: ${(error as Error).message}` };
          }
        }
      }
    }
  }

  project.provide('agentstoreBackends', provided);
  return async () => {
    await pgbouncer?.stop();
  };
}
