import fs from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import type { StoreConfig } from '../config/config.js';

const SSL_PARAMS = ['sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'ssl', 'uselibpqcompat'];

/**
 * libpq's sslmode, honoured the way libpq does it. pg's own URL parsing treats
 * `require` as `verify-full`, which rejects the certificates of poolers such as
 * Supabase's and Neon's when no CA file is given; libpq only encrypts for require.
 */
export function sslFromUrl(url: URL): false | ConnectionOptions {
  const mode = url.searchParams.get('sslmode') ?? (url.searchParams.get('ssl') === 'true' ? 'require' : 'disable');
  const rootCert = url.searchParams.get('sslrootcert');
  let ca: string | undefined;
  try {
    ca = rootCert ? fs.readFileSync(rootCert, 'utf8') : undefined;
  } catch (error) {
    throw new Error(`sslrootcert "${rootCert}" cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
  }
  switch (mode) {
    case 'disable':
    case 'allow':
    case 'prefer':
      return false;
    case 'require':
      // libpq: with a root cert present, require behaves like verify-ca.
      return ca ? { ca, rejectUnauthorized: true, checkServerIdentity: () => undefined } : { rejectUnauthorized: false };
    case 'verify-ca':
      return { ...(ca ? { ca } : {}), rejectUnauthorized: true, checkServerIdentity: () => undefined };
    case 'verify-full':
      return { ...(ca ? { ca } : {}), rejectUnauthorized: true };
    default:
      throw new Error(`sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full, got "${mode}"`);
  }
}

function parseInt8(value: string): number | string {
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : value;
}

export function postgresPoolConfig(url: string, options: StoreConfig['postgres']): pg.PoolConfig {
  const parsed = new URL(url);
  const ssl = sslFromUrl(parsed);
  for (const key of SSL_PARAMS) parsed.searchParams.delete(key);
  return {
    connectionString: parsed.toString(),
    ssl,
    max: options.poolMax,
    application_name: options.applicationName,
    // Short enough that an unreachable database becomes a 503 within seconds (3 attempts).
    connectionTimeoutMillis: 3_000,
    idleTimeoutMillis: 30_000,
    // Per-pool parsers instead of mutating pg's global registry, which the host
    // application may rely on.
    types: {
      getTypeParser: ((oid: number, format?: string) => {
        if (oid === 20) return parseInt8;
        return (pg.types.getTypeParser as (oid: number, format?: string) => unknown)(oid, format);
      }) as pg.CustomTypesConfig['getTypeParser'],
    },
  };
}
