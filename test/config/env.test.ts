import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeBackends, loadConfig, type Env } from '../../src/config/env.js';
import { refused } from './refused.js';


describe('loadConfig', () => {
  it('loads the defaults from an empty environment', () => {
    const config = loadConfig({});
    expect(config.store.database.kind).toBe('sqlite');
    expect(config.server).toMatchObject({ host: '127.0.0.1', port: 8787, loopBudgetMs: 2, bulkMaxLineBytes: 1024 * 1024, bulkMaxLines: 1_000_000 });
  });

  it("a bulk load's line limit follows the body limit unless it is set", () => {
    expect(loadConfig({ AGENTSTORE_MAX_BODY_BYTES: '4096' }).server.bulkMaxLineBytes).toBe(4096);
    expect(loadConfig({ AGENTSTORE_MAX_BODY_BYTES: '4096', AGENTSTORE_BULK_MAX_LINE_BYTES: '65536', AGENTSTORE_BULK_MAX_LINES: '10' }).server).toMatchObject({ bulkMaxLineBytes: 65536, bulkMaxLines: 10 });
  });

  // Every validated variable, with a value it must refuse: the error names that variable.
  const cases: Array<[string, string]> = [
    ['PORT', '70000'],
    ['PORT', '0x1F90'],
    ['PORT', '8e3'],
    ['AGENTSTORE_PG_POOL_MAX', '0'],
    ['AGENTSTORE_PG_STATEMENT_TIMEOUT_MS', '10'],
    ['AGENTSTORE_SQLITE_SYNCHRONOUS', 'off'],
    ['AGENTSTORE_SQLITE_BUSY_TIMEOUT_MS', '-1'],
    ['AGENTSTORE_SQLITE_SCAN_WORKERS', '0'],
    ['AGENTSTORE_EVENTS_MAX_STREAMS_PER_TENANT', '0'],
    ['AGENTSTORE_SQLITE_SCAN_TIMEOUT_MS', '50'],
    ['AGENTSTORE_SESSION_TTL_SECONDS', '5'],
    ['AGENTSTORE_LOGIN_MAX_PER_ACCOUNT', '0'],
    ['AGENTSTORE_LOGIN_MAX_PER_ADDRESS', 'many'],
    ['AGENTSTORE_LOGIN_WINDOW_SECONDS', '1.5'],
    ['AGENTSTORE_MAX_BODY_BYTES', '10'],
    ['AGENTSTORE_BULK_MAX_LINE_BYTES', '10'],
    ['AGENTSTORE_BULK_MAX_LINES', '0'],
    ['AGENTSTORE_LOG_LEVEL', 'loud'],
    ['AGENTSTORE_TRUST_PROXY', 'maybe'],
    ['AGENTSTORE_MIGRATE_ON_START', 'sometimes'],
    ['AGENTSTORE_LOOP_BUDGET_MS', '5000'],
    ['AGENTSTORE_EVENTS_HEARTBEAT_MS', '10'],
    ['AGENTSTORE_SERVICE_KEY', 'short'],
    ['AGENTSTORE_JWT_SECRET', 'too short'],
    ['SUPABASE_JWT_SECRET', 'too short'],
    ['AGENTSTORE_JWT_JWKS_URL', 'ftp://example.com/jwks'],
    ['DATABASE_URL', 'mysql://x@y/z'],
    ['DATABASE_URL', 'postgres://'],
    ['DATABASE_URL', 'postgres://u@db.example.com/app?sslmode=sometimes'],
    ['DATABASE_URL', 'postgres://u@db.example.com/app?sslmode=verify-full&sslrootcert=/no/such/ca.pem'],
    ['SUPABASE_DB_URL', 'mysql://x@y/z'],
  ];
  it.each(cases)('%s=%s is refused, naming the variable', (name, value) => {
    expect(refused({ [name]: value })).toBe(name);
  });

  it('the JWT role default must be a role; a secret and a JWKS URL together are refused', () => {
    expect(refused({ AGENTSTORE_JWT_SECRET: 'x'.repeat(32), AGENTSTORE_JWT_DEFAULT_ROLE: 'root' })).toBe('AGENTSTORE_JWT_DEFAULT_ROLE');
    expect(refused({ AGENTSTORE_JWT_SECRET: 'x'.repeat(32), AGENTSTORE_JWT_JWKS_URL: 'https://example.com/jwks' })).toBe('AGENTSTORE_JWT_JWKS_URL');
  });

  it('accepts the sslmodes libpq has, and a readable sslrootcert', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentstore-env-'));
    const ca = path.join(dir, 'ca.pem');
    fs.writeFileSync(ca, '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n');
    try {
      for (const mode of ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']) {
        expect(refused({ DATABASE_URL: `postgres://u@db.example.com/app?sslmode=${mode}&sslrootcert=${encodeURIComponent(ca)}` }), mode).toBeUndefined();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the start log shows no secret: the database password, a JWT secret, a JWKS URL query', () => {
    const lines = (env: Env) => describeBackends(loadConfig(env).store).join('\n');
    const pg = lines({ DATABASE_URL: 'postgres://app:s3cret-pw@db.example.com/app?sslmode=require&password=other-pw' });
    expect(pg).not.toMatch(/s3cret-pw|other-pw/);
    expect(pg).toContain('db.example.com');
    expect(lines({ AGENTSTORE_JWT_SECRET: 'j'.repeat(40) })).not.toContain('j'.repeat(40));
    const jwks = lines({ AGENTSTORE_JWT_JWKS_URL: 'https://auth.example.com/jwks.json?apikey=k3y-value' });
    expect(jwks).toContain('https://auth.example.com/jwks.json');
    expect(jwks).not.toContain('k3y-value');
  });
});
