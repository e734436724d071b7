import type { FastifyBaseLogger } from 'fastify';

/**
 * What the server process does with an error nothing caught. Installed by `agentstore
 * serve` only: a library user's process keeps its own policy (createStore() installs none).
 *
 * - An unhandled promise rejection is logged and the process keeps serving. Node 20 would
 *   exit (`--unhandled-rejections=throw`), so one stray promise in one request, which any
 *   tenant might provoke, would drop every tenant's connections. A rejection carries no
 *   half-done synchronous state: the request it belonged to has failed or will time out.
 * - An uncaught exception is logged and the process exits with status 1. It unwound a
 *   synchronous call stack half-way, so in-memory state (pools, caches, transactions in
 *   flight) may be inconsistent; the supervisor (systemd, Kubernetes) restarts a clean one.
 *   Committed data is safe: SQLite WAL and PostgreSQL recover on their own.
 */
export function installProcessPolicy(log: FastifyBaseLogger): void {
  process.on('unhandledRejection', (reason) => {
    log.error({ err: reason, event: 'unhandledRejection' }, 'unhandled promise rejection (the process keeps running)');
  });
  process.on('uncaughtException', (error, origin) => {
    log.fatal({ err: error, event: origin }, 'uncaught exception: exiting, state may be inconsistent');
    process.exit(1);
  });
}
