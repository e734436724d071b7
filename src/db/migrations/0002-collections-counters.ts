import { columnTypes, tenantPolicy, type Migration } from './types.js';

export const migration0002: Migration = {
  version: 2,
  name: 'collections-counters',
  statements(dialect) {
    const t = columnTypes(dialect);
    const statements = [
      `CREATE TABLE collections (
        tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        schema ${t.json},
        indexes ${t.json} NOT NULL,
        version INTEGER NOT NULL,
        created_at ${t.ts} NOT NULL,
        updated_at ${t.ts} NOT NULL,
        PRIMARY KEY (tenant_id, name)
      )`,
      `CREATE TABLE records (
        tenant_id TEXT NOT NULL,
        collection TEXT NOT NULL,
        id TEXT NOT NULL,
        version INTEGER NOT NULL,
        data ${t.json} NOT NULL,
        created_at ${t.ts} NOT NULL,
        updated_at ${t.ts} NOT NULL,
        PRIMARY KEY (tenant_id, collection, id),
        FOREIGN KEY (tenant_id, collection) REFERENCES collections (tenant_id, name) ON DELETE CASCADE
      )`,
      `CREATE INDEX records_created ON records (tenant_id, collection, created_at, id)`,
      `CREATE INDEX records_updated ON records (tenant_id, collection, updated_at, id)`,
      `CREATE TABLE counters (
        tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        value ${t.bigint} NOT NULL,
        created_at ${t.ts} NOT NULL,
        updated_at ${t.ts} NOT NULL,
        PRIMARY KEY (tenant_id, name)
      )`,
    ];
    if (dialect === 'postgres') {
      for (const table of ['collections', 'records', 'counters']) statements.push(...tenantPolicy(table));
    }
    return statements;
  },
};
