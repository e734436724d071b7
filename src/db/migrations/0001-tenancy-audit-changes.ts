import { columnTypes, tenantPolicy, type Migration } from './types.js';

export const migration0001: Migration = {
  version: 1,
  name: 'tenancy-audit-changes',
  statements(dialect) {
    const t = columnTypes(dialect);
    const statements = [
      `CREATE TABLE tenants (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at ${t.ts} NOT NULL,
        updated_at ${t.ts} NOT NULL
      )`,
      `CREATE TABLE service_keys (
        id TEXT PRIMARY KEY,
        key_hash TEXT NOT NULL UNIQUE,
        created_at ${t.ts} NOT NULL
      )`,
      `CREATE TABLE users (
        tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        id TEXT NOT NULL,
        email TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at ${t.ts} NOT NULL,
        updated_at ${t.ts} NOT NULL,
        PRIMARY KEY (tenant_id, id),
        UNIQUE (tenant_id, email)
      )`,
      `CREATE TABLE sessions (
        tenant_id TEXT NOT NULL,
        id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        token_hash TEXT NOT NULL,
        created_at ${t.ts} NOT NULL,
        expires_at ${t.ts} NOT NULL,
        revoked_at ${t.ts},
        PRIMARY KEY (tenant_id, id),
        UNIQUE (tenant_id, token_hash),
        FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
      )`,
      `CREATE TABLE api_keys (
        tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        id TEXT NOT NULL,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        key_hash TEXT NOT NULL,
        prefix TEXT NOT NULL,
        created_at ${t.ts} NOT NULL,
        revoked_at ${t.ts},
        PRIMARY KEY (tenant_id, id),
        UNIQUE (tenant_id, key_hash)
      )`,
      `CREATE TABLE audit_log (
        tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        id TEXT NOT NULL,
        at ${t.ts} NOT NULL,
        actor_type TEXT NOT NULL,
        actor_id TEXT NOT NULL,
        action TEXT NOT NULL,
        resource_type TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        collection TEXT,
        request_id TEXT,
        details ${t.json},
        PRIMARY KEY (tenant_id, id)
      )`,
      `CREATE INDEX audit_log_tenant_at ON audit_log (tenant_id, at, id)`,
      `CREATE INDEX audit_log_tenant_resource ON audit_log (tenant_id, resource_type, resource_id)`,
      `CREATE TABLE changes (
        seq ${t.seq},
        tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        at ${t.ts} NOT NULL,
        resource_type TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        collection TEXT,
        action TEXT NOT NULL,
        version INTEGER,
        data ${t.json}
      )`,
      `CREATE INDEX changes_tenant_seq ON changes (tenant_id, seq)`,
      `CREATE TABLE idempotency_keys (
        tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        scope TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        status INTEGER NOT NULL,
        body ${t.json} NOT NULL,
        created_at ${t.ts} NOT NULL,
        PRIMARY KEY (tenant_id, key)
      )`,
    ];
    if (dialect === 'postgres') {
      for (const table of ['users', 'sessions', 'api_keys', 'audit_log', 'changes', 'idempotency_keys']) {
        statements.push(...tenantPolicy(table));
      }
    }
    return statements;
  },
};
