import { columnTypes, tenantPolicy, type Migration } from './types.js';

/**
 * Agents (issue 11, part 1): the agent row, its tags, its immutable versions and its
 * encrypted secrets. `tenant_id` leads every key and index.
 *
 * - `name_key` is the lowercased name (lowered in JavaScript, so both backends agree on
 *   Unicode), for a name-prefix listing as one index range. On PostgreSQL it is `COLLATE "C"`:
 *   byte order, as SQLite's BINARY, so the range `[q, q || U+10FFFF)` holds exactly the names
 *   that start with q whatever the database's collation.
 * - Tags are a child table (PostgreSQL could use a GIN index on an array, SQLite cannot): one
 *   listing by tag is a range of `agent_tags`' primary key joined to the agents by key.
 * - Versions and secrets reference their agent with ON DELETE CASCADE; the service deletes
 *   them explicitly in the agent's unit of work anyway (docs/api.md, "Agents").
 * - A secret is stored as AES-256-GCM: the key's id, the nonce, the ciphertext and the tag,
 *   base64 text (the same on both backends), never the value.
 */
export const migration0009: Migration = {
  version: 9,
  name: 'agents',
  statements(dialect) {
    const t = columnTypes(dialect);
    const binary = dialect === 'postgres' ? ' COLLATE "C"' : '';
    const statements = [
      `CREATE TABLE agents (
        tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        id TEXT NOT NULL,
        name TEXT NOT NULL,
        name_key TEXT${binary} NOT NULL,
        status TEXT NOT NULL,
        version INTEGER NOT NULL,
        doc ${t.json} NOT NULL,
        created_at ${t.ts} NOT NULL,
        updated_at ${t.ts} NOT NULL,
        PRIMARY KEY (tenant_id, id)
      )`,
      `CREATE INDEX agents_status ON agents (tenant_id, status, id)`,
      `CREATE INDEX agents_name ON agents (tenant_id, name_key, id)`,
      `CREATE TABLE agent_tags (
        tenant_id TEXT NOT NULL,
        tag TEXT${binary} NOT NULL,
        agent_id TEXT NOT NULL,
        PRIMARY KEY (tenant_id, tag, agent_id),
        FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, id) ON DELETE CASCADE
      )`,
      `CREATE INDEX agent_tags_agent ON agent_tags (tenant_id, agent_id)`,
      `CREATE TABLE agent_versions (
        tenant_id TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        n INTEGER NOT NULL,
        action TEXT NOT NULL,
        doc ${t.json} NOT NULL,
        changed ${t.json} NOT NULL,
        actor_type TEXT NOT NULL,
        actor_id TEXT NOT NULL,
        request_id TEXT,
        rolled_back_from INTEGER,
        created_at ${t.ts} NOT NULL,
        PRIMARY KEY (tenant_id, agent_id, n),
        FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, id) ON DELETE CASCADE
      )`,
      `CREATE TABLE agent_secrets (
        tenant_id TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        name TEXT NOT NULL,
        key_id TEXT NOT NULL,
        nonce TEXT NOT NULL,
        ciphertext TEXT NOT NULL,
        auth_tag TEXT NOT NULL,
        created_at ${t.ts} NOT NULL,
        updated_at ${t.ts} NOT NULL,
        PRIMARY KEY (tenant_id, agent_id, name),
        FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, id) ON DELETE CASCADE
      )`,
    ];
    if (dialect === 'postgres') {
      for (const table of ['agents', 'agent_tags', 'agent_versions', 'agent_secrets']) statements.push(...tenantPolicy(table));
    }
    return statements;
  },
};
