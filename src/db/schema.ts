import type { Generated } from 'kysely';

/**
 * Row types as the drivers return them. Timestamps are ISO text on SQLite and Date on
 * PostgreSQL, JSON is text on SQLite and parsed on PostgreSQL: services normalise through
 * `src/db/dialect.ts` and never look at a raw column directly.
 */
export type Timestamp = string | Date;
export type Json = unknown;

export interface SchemaMigrationsTable {
  version: number;
  name: string;
  checksum: string;
  applied_at: Timestamp;
}

export interface TenantsTable {
  id: string;
  name: string;
  version: number;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface ServiceKeysTable {
  id: string;
  key_hash: string;
  created_at: Timestamp;
}

export interface UsersTable {
  tenant_id: string;
  id: string;
  email: string;
  password_hash: string;
  role: string;
  version: number;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface SessionsTable {
  tenant_id: string;
  id: string;
  user_id: string;
  token_hash: string;
  created_at: Timestamp;
  expires_at: Timestamp;
  revoked_at: Timestamp | null;
}

export interface ApiKeysTable {
  tenant_id: string;
  id: string;
  name: string;
  role: string;
  key_hash: string;
  prefix: string;
  created_at: Timestamp;
  revoked_at: Timestamp | null;
}

export interface AuditLogTable {
  tenant_id: string;
  id: string;
  at: Timestamp;
  actor_type: string;
  actor_id: string;
  action: string;
  resource_type: string;
  resource_id: string;
  collection: string | null;
  request_id: string | null;
  details: Json | null;
}

export interface ChangesTable {
  /** Database-wide order (the key); never shown to a tenant. */
  seq: Generated<number>;
  tenant_id: string;
  /** The tenant's own position, 1, 2, 3 … without gaps: the API's `seq`. */
  tenant_seq: number;
  at: Timestamp;
  resource_type: string;
  resource_id: string;
  collection: string | null;
  action: string;
  version: number | null;
  data: Json | null;
}

/** The last `changes.tenant_seq` of each tenant; its row lock orders the tenant's writers. */
export interface ChangeHeadsTable {
  tenant_id: string;
  seq: number;
}

export interface IdempotencyKeysTable {
  tenant_id: string;
  key: string;
  scope: string;
  request_hash: string;
  status: number;
  body: Json;
  created_at: Timestamp;
}

export interface CollectionsTable {
  tenant_id: string;
  name: string;
  schema: Json | null;
  indexes: Json;
  /** The default TTL of the collection's records, in seconds (migration 0006); null: none. */
  ttl_seconds: number | null;
  /** The data path holding the id of the end user a record belongs to (migration 0006); null: none declared. */
  end_user_field: string | null;
  version: number;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface RecordsTable {
  tenant_id: string;
  collection: string;
  id: string;
  version: number;
  data: Json;
  created_at: Timestamp;
  updated_at: Timestamp;
  /** When the record expires (migration 0006): hidden from every read from then on, swept later. Null: never. */
  expires_at: Timestamp | null;
}

export interface CountersTable {
  tenant_id: string;
  name: string;
  value: number;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface ConversationsTable {
  tenant_id: string;
  id: string;
  agent_id: string | null;
  end_user_id: string | null;
  title: string | null;
  status: string;
  metadata: Json;
  /** The last seq handed out (deleted messages keep theirs): the next append takes last_seq + 1. */
  last_seq: number;
  message_count: number;
  parent_id: string | null;
  fork_seq: number | null;
  version: number;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface MessagesTable {
  tenant_id: string;
  conversation_id: string;
  seq: number;
  client_id: string | null;
  role: string;
  /** A JSON string (plain text) or an array of UIMessage parts. */
  content: Json;
  /** The searchable text: the content's text, or its text parts joined. */
  text: string;
  model: string | null;
  usage: Json | null;
  metadata: Json | null;
  version: number;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface MemoryBlocksTable {
  tenant_id: string;
  /** '' when the block is not scoped to an agent. */
  agent_id: string;
  /** '' when the block is not scoped to an end user. */
  end_user_id: string;
  label: string;
  value: string;
  char_limit: number;
  description: string | null;
  version: number;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface AgentsTable {
  tenant_id: string;
  id: string;
  name: string;
  /** The name lowercased, for name-prefix listings (migration 0009). */
  name_key: string;
  status: string;
  version: number;
  /** The agent's fields as one JSON object (name and status included). */
  doc: Json;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface AgentTagsTable {
  tenant_id: string;
  tag: string;
  agent_id: string;
}

export interface AgentVersionsTable {
  tenant_id: string;
  agent_id: string;
  n: number;
  action: string;
  doc: Json;
  changed: Json;
  actor_type: string;
  actor_id: string;
  request_id: string | null;
  rolled_back_from: number | null;
  created_at: Timestamp;
}

export interface AgentSecretsTable {
  tenant_id: string;
  agent_id: string;
  name: string;
  key_id: string;
  nonce: string;
  ciphertext: string;
  auth_tag: string;
  created_at: Timestamp;
  updated_at: Timestamp;
}

/** A project, branch or task row's context document: its own version, apart from the row's. */
interface ContextColumns {
  context: Json | null;
  context_version: Generated<number>;
  context_updated_at: Timestamp | null;
}

export interface ProjectsTable extends ContextColumns {
  tenant_id: string;
  id: string;
  name: string;
  description: string | null;
  metadata: Json;
  version: number;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface BranchesTable extends ContextColumns {
  tenant_id: string;
  id: string;
  project_id: string;
  name: string;
  description: string | null;
  metadata: Json;
  version: number;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface TasksTable extends ContextColumns {
  tenant_id: string;
  id: string;
  branch_id: string;
  parent_id: string | null;
  /** 0 for a branch's top-level tasks. */
  depth: number;
  /** Fractional index key among its siblings (src/modules/tasks/rank.ts). */
  rank: string;
  title: string;
  description: string | null;
  status: string;
  priority: number;
  assignee: string | null;
  labels: Json;
  due_at: Timestamp | null;
  metadata: Json;
  version: number;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface TaskLabelsTable {
  tenant_id: string;
  task_id: string;
  label: string;
  branch_id: string;
}

export interface TaskDependenciesTable {
  tenant_id: string;
  task_id: string;
  depends_on_id: string;
  created_at: Timestamp;
}

export interface ContextGlobalTable {
  tenant_id: string;
  data: Json;
  version: number;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface DB {
  schema_migrations: SchemaMigrationsTable;
  tenants: TenantsTable;
  service_keys: ServiceKeysTable;
  users: UsersTable;
  sessions: SessionsTable;
  api_keys: ApiKeysTable;
  audit_log: AuditLogTable;
  changes: ChangesTable;
  change_heads: ChangeHeadsTable;
  idempotency_keys: IdempotencyKeysTable;
  collections: CollectionsTable;
  records: RecordsTable;
  /**
   * PostgreSQL only (migration 0005): `records` of the transaction's tenant, read with the
   * view owner's rights so that declared indexes serve filters. Reads only.
   */
  tenant_records: RecordsTable;
  counters: CountersTable;
  conversations: ConversationsTable;
  messages: MessagesTable;
  /** PostgreSQL only (migration 0008): `messages` of the transaction's tenant, for full-text search under RLS. Reads only. */
  tenant_messages: MessagesTable;
  memory_blocks: MemoryBlocksTable;
  agents: AgentsTable;
  agent_tags: AgentTagsTable;
  agent_versions: AgentVersionsTable;
  agent_secrets: AgentSecretsTable;
  projects: ProjectsTable;
  branches: BranchesTable;
  tasks: TasksTable;
  task_labels: TaskLabelsTable;
  task_dependencies: TaskDependenciesTable;
  context_global: ContextGlobalTable;
}

/**
 * Tables that hold end users' data, each covered by a registered eraser (src/modules/end-users;
 * test/modules/end-users.test.ts checks both): every table with an `end_user_id` column (the
 * convention for a module's end-user column: conversations, memory_blocks), `messages`, whose
 * end user is their conversation's, and `records`, whose end user is the data field a
 * collection declares (`end_user_field`).
 */
export const END_USER_TABLES = ['records', 'conversations', 'memory_blocks', 'messages'] as const;

/** Tables whose rows belong to one tenant: `tenant_id` leads their keys and RLS guards them. */
export const TENANT_TABLES = [
  'users',
  'sessions',
  'api_keys',
  'audit_log',
  'changes',
  'change_heads',
  'idempotency_keys',
  'collections',
  'records',
  'counters',
  'conversations',
  'messages',
  'memory_blocks',
  'agents',
  'agent_tags',
  'agent_versions',
  'agent_secrets',
  'projects',
  'branches',
  'tasks',
  'task_labels',
  'task_dependencies',
  'context_global',
] as const;
