import { loadConfig, describeBackends } from '../config/env.js';
import { buildApp } from '../server/app.js';
import { openStore } from '../store.js';
import { blobStoreOf } from '../store-blobs.js';
import { installProcessPolicy } from './process-policy.js';

/**
 * Starts the HTTP server. SIGTERM/SIGINT stop accepting connections, let in-flight
 * requests finish, end event streams, then close the database pool.
 */
export async function serve(): Promise<void> {
  const config = loadConfig();
  const store = await openStore(config.store, { bootstrapServiceKey: true });
  const app = await buildApp(store, { server: config.server });
  installProcessPolicy(app.log);
  for (const line of describeBackends(config.store)) app.log.info({ backend: line }, line);
  for (const warning of store.securityWarnings) app.log.warn({ security: warning }, warning);
  // Opens the file storage now (the local directory is made here) and says at once when it
  // cannot work; the server still starts, and /ready answers 503 until the storage does.
  const blobs = blobStoreOf(store);
  await blobs.ping().catch((error: unknown) => {
    app.log.error({ storage: blobs.name, err: error }, `file storage is not answering: ${(error as Error).message}`);
  });
  if (store.generatedServiceKey) {
    // Printed once, to stdout, outside the JSON log: only its hash is stored.
    process.stdout.write(
      `\nA service key was generated. Store it now; it is not shown again:\n\n  AGENTSTORE_SERVICE_KEY=${store.generatedServiceKey}\n\n`,
    );
  }
  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down');
    try {
      await app.close();
      await store.close();
    } finally {
      process.exit(0);
    }
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  // Node's default backlog (511) overflows under a burst of 1000 connections, and the
  // kernel then retries the dropped SYNs after 1, 3, 7 s: a multi-second tail for nothing.
  await app.listen({ host: config.server.host, port: config.server.port, backlog: 4096 });
}
