import { RUNTIME_GROUP_ROLE } from './runtime-role.js';
import { columnTypes, tenantPolicy, type Migration } from './types.js';

/**
 * Conversation memory (issue 11 part 2): conversations, their messages, keyword search over
 * the messages, and memory blocks.
 *
 * Messages are keyed (tenant_id, conversation_id, seq): "the last N", "after seq" and "before
 * seq" are one range scan of the primary key whatever the table holds. `seq` is handed out
 * from the conversation's `last_seq`, taken by `UPDATE … RETURNING` in the appending unit:
 * on PostgreSQL that row lock serialises the appenders of one conversation (and only of
 * that one) until COMMIT; on SQLite the single writer does. A deleted message's seq stays
 * taken (`last_seq` never goes down).
 *
 * Search. SQLite: a contentless FTS5 table (`contentless_delete`, SQLite 3.43+) whose rowid
 * is the message's rowid, kept by triggers, so every write of a message updates it in the
 * same transaction. Its `scope` column holds one token per tenant (`t` + the tenant id's hex
 * digits): a query matches `scope : "t…" AND (terms)`, so FTS5 intersects the tenant's
 * posting list with the terms' instead of ranking every tenant's matches. PostgreSQL: a
 * generated tsvector column and a GIN index, read through the view `tenant_messages` for the
 * reason of migration 0005: `@@` is not LEAKPROOF, so under RLS it could never be an index
 * condition, and every search would read all of the tenant's messages.
 *
 * Memory blocks are unique by (tenant, agent, end user, label); an unscoped block stores ''
 * for its agent or end user, since a unique key treats NULLs as distinct.
 */
export const migration0008: Migration = {
  version: 8,
  name: 'conversations',
  statements(dialect) {
    const t = columnTypes(dialect);
    const statements = [
      `CREATE TABLE conversations (
        tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        id TEXT NOT NULL,
        agent_id TEXT,
        end_user_id TEXT,
        title TEXT,
        status TEXT NOT NULL,
        metadata ${t.json} NOT NULL,
        last_seq ${t.bigint} NOT NULL,
        message_count ${t.bigint} NOT NULL,
        parent_id TEXT,
        fork_seq ${t.bigint},
        version INTEGER NOT NULL,
        created_at ${t.ts} NOT NULL,
        updated_at ${t.ts} NOT NULL,
        PRIMARY KEY (tenant_id, id)
      )`,
      // Newest first, alone or with one filter: each an index read in order.
      `CREATE INDEX conversations_created ON conversations (tenant_id, created_at, id)`,
      `CREATE INDEX conversations_agent ON conversations (tenant_id, agent_id, created_at, id)`,
      `CREATE INDEX conversations_end_user ON conversations (tenant_id, end_user_id, created_at, id)`,
      `CREATE INDEX conversations_status ON conversations (tenant_id, status, created_at, id)`,
      `CREATE TABLE messages (
        tenant_id TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        seq ${t.bigint} NOT NULL,
        client_id TEXT,
        role TEXT NOT NULL,
        content ${t.json} NOT NULL,
        text TEXT NOT NULL,
        model TEXT,
        usage ${t.json},
        metadata ${t.json},
        version INTEGER NOT NULL,
        created_at ${t.ts} NOT NULL,
        updated_at ${t.ts} NOT NULL,
        ${dialect === 'postgres' ? "tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED," : ''}
        PRIMARY KEY (tenant_id, conversation_id, seq),
        FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id) ON DELETE CASCADE
      )`,
      `CREATE UNIQUE INDEX messages_client_id ON messages (tenant_id, conversation_id, client_id)`,
      `CREATE TABLE memory_blocks (
        tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        agent_id TEXT NOT NULL,
        end_user_id TEXT NOT NULL,
        label TEXT NOT NULL,
        value TEXT NOT NULL,
        char_limit INTEGER NOT NULL,
        description TEXT,
        version INTEGER NOT NULL,
        created_at ${t.ts} NOT NULL,
        updated_at ${t.ts} NOT NULL,
        PRIMARY KEY (tenant_id, agent_id, end_user_id, label)
      )`,
      `CREATE INDEX memory_blocks_end_user ON memory_blocks (tenant_id, end_user_id, agent_id, label)`,
    ];
    if (dialect === 'sqlite') {
      statements.push(
        `CREATE VIRTUAL TABLE messages_fts USING fts5(scope, text, content = '', contentless_delete = 1)`,
        `CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
          INSERT INTO messages_fts (rowid, scope, text) VALUES (new.rowid, 't' || replace(new.tenant_id, '-', ''), new.text);
        END`,
        `CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
          DELETE FROM messages_fts WHERE rowid = old.rowid;
        END`,
        `CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages BEGIN
          DELETE FROM messages_fts WHERE rowid = old.rowid;
          INSERT INTO messages_fts (rowid, scope, text) VALUES (new.rowid, 't' || replace(new.tenant_id, '-', ''), new.text);
        END`,
      );
      return statements;
    }
    statements.push(`CREATE INDEX messages_search ON messages USING gin (tsv)`);
    for (const table of ['conversations', 'messages', 'memory_blocks']) statements.push(...tenantPolicy(table));
    statements.push(
      // Not security_barrier, as tenant_records (0005): the tenant condition must combine with the search's.
      `CREATE VIEW tenant_messages AS SELECT * FROM messages WHERE tenant_id = current_setting('app.tenant_id', true)`,
      `DO $$ BEGIN EXECUTE format('CREATE POLICY messages_view_read ON messages FOR SELECT TO %I USING (true)', current_user); END $$`,
      `REVOKE ALL ON tenant_messages FROM ${RUNTIME_GROUP_ROLE}`,
      `GRANT SELECT ON tenant_messages TO ${RUNTIME_GROUP_ROLE}`,
    );
    return statements;
  },
};
