import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    // Checks PostgreSQL, creates the agentstore_app role and starts one pgbouncer for the run.
    globalSetup: ['test/helpers/global-setup.ts', 'test/e2e/global-build.ts'],
    // The default output, then why suites were skipped (the default names no reason).
    reporters: ['default', './test/helpers/skip-reporter.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // PostgreSQL suites each make their own database, so files can run side by side;
    // two workers match this 2-core machine.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
