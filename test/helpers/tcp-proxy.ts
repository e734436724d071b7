/**
 * A TCP proxy between a store and its PostgreSQL (or pgbouncer) that a test can take down:
 * the database becomes unreachable for real (connections cut, new ones accepted and destroyed
 * at once) while the database itself, and every client not behind the proxy, go on.
 */
import net from 'node:net';
import type { StoreOptions } from '../../src/store.js';
import { createMigratedTestDatabase, openTestStore, type Backend, type TestDatabase, type TestStore } from './backends.js';

export interface TcpProxy {
  readonly port: number;
  /** down: every open connection is cut and new ones are accepted then destroyed. */
  setDown(down: boolean): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let down = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    if (down) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    setDown(value) {
      down = value;
      if (down) for (const s of sockets) s.destroy();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** `url` with its host and port replaced by the proxy's. */
function viaProxy(url: string, proxy: TcpProxy): string {
  const parsed = new URL(url);
  parsed.hostname = '127.0.0.1';
  parsed.port = String(proxy.port);
  return parsed.toString();
}

/** The host and port a database URL points at, as `startTcpProxy` takes them. */
function targetOf(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname, port: Number(parsed.port || 5432) };
}

export interface StoreBehindProxy {
  /** The migrated database; `database.url` reaches it directly, as another instance would. */
  readonly database: TestDatabase;
  readonly proxy: TcpProxy;
  /** A store that reaches the database only through the proxy (it migrates as the owner, directly). */
  readonly test: TestStore;
  /** Brings the proxy up, closes the store and the proxy, drops the database. Close an app over the store first. */
  close(): Promise<void>;
}

/** A migrated throw-away database on a PostgreSQL backend, and a store that reaches it through a proxy the test can take down. */
export async function openStoreBehindProxy(backend: Backend, store: StoreOptions = {}): Promise<StoreBehindProxy> {
  const database = await createMigratedTestDatabase(backend);
  let proxy: TcpProxy | undefined;
  try {
    proxy = await startTcpProxy(targetOf(database.url));
    const behind = proxy;
    const test = await openTestStore(backend, { database: { ...database, url: viaProxy(database.url, behind) }, store });
    return {
      database,
      proxy: behind,
      test,
      async close() {
        behind.setDown(false);
        await test.close();
        await behind.close();
        await database.drop();
      },
    };
  } catch (error) {
    await proxy?.close();
    await database.drop().catch(() => undefined);
    throw error;
  }
}
