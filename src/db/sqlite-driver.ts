import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';

/**
 * The better-sqlite3 build this Node.js can run.
 *
 * better-sqlite3 12 is a V8 `ObjectWrap` addon. Built against Node 24.19 or later, it aborts
 * the process (`RemoveEnvironmentCleanupHook: Assertion failed: (env) != nullptr`) when the
 * garbage collector frees a statement while no Node environment is current
 * (nodejs/node#65446). Version 13 is a Node-API addon without that code path, but it needs
 * Node-API 10 (Node 22.14 and later) and crashes on Node 20. It is therefore an optional
 * dependency under the alias `better-sqlite3-napi`: npm skips it where its engines do not
 * match (Node 20), and it is used wherever Node-API 10 exists. The API is the same.
 */
export type SqliteDriver = typeof BetterSqlite3;

const require = createRequire(import.meta.url);

function load(): { driver: SqliteDriver; version: string; module: string } {
  if (Number(process.versions.napi) >= 10) {
    try {
      const driver = require('better-sqlite3-napi') as SqliteDriver;
      // Version 13 loads its native addon when the first database opens, not at require():
      // open one, so that a platform without a prebuilt binary falls back here, not later.
      new driver(':memory:').close();
      return { driver, version: (require('better-sqlite3-napi/package.json') as { version: string }).version, module: require.resolve('better-sqlite3-napi') };
    } catch {
      // Not installed (an install with --omit=optional) or no binary for this platform:
      // version 12, compiled on install, which works below Node 24.19.
    }
  }
  return {
    driver: require('better-sqlite3') as SqliteDriver,
    version: (require('better-sqlite3/package.json') as { version: string }).version,
    module: require.resolve('better-sqlite3'),
  };
}

const loaded = load();

/** The `Database` constructor of the chosen build. */
export const Sqlite: SqliteDriver = loaded.driver;

/** The chosen build's version, for the startup log. */
export const sqliteDriverVersion: string = loaded.version;

/** The path of the chosen build's module, for worker threads that open their own connections. */
export const sqliteDriverModule: string = loaded.module;
