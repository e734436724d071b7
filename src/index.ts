export { createStore, openStore, resolveStoreConfig, type Store, type StoreOptions } from './store.js';
export { loadConfig, describeBackends } from './config/env.js';
export type { Config, StoreConfig, ServerConfig, DatabaseConfig, JwtConfig, StorageConfig } from './config/config.js';
export { AgentstoreError, isAgentstoreError, type ErrorCode, type FieldError } from './core/errors.js';
export { systemContext, type TenantContext, type Role, type Actor, type ActorType } from './core/context.js';
export type { Page } from './core/cursor.js';
export type { Tenant, User, ApiKey, CreatedApiKey, Session } from './modules/tenancy/types.js';
export type { Principal, Identity } from './modules/tenancy/auth-service.js';
export type {
  Collection,
  StoredRecord,
  JsonObject,
  ListRecordsOptions,
  GetRecordOptions,
  CountRecordsOptions,
  AggregateOptions,
  AggregateResult,
  AggregateGroup,
  GroupKey,
  MetricName,
  Precondition,
  CreateRecordResult,
  UpsertRecordResult,
} from './modules/collections/types.js';
export type { BulkLine, BulkMode, BulkOptions, BulkResult } from './modules/collections/bulk.js';
export type { ExpiryOptions } from './modules/collections/expiry.js';
export type { EndUserEraser, EndUserErasure, EndUsersService } from './modules/end-users/service.js';
export type { ExpirySweeper, ExpirySweepStats } from './modules/collections/expiry-sweep.js';
export type { BatchOperation, BatchOutcome, BatchResult } from './modules/batch/service.js';
export type { Counter } from './modules/counters/service.js';
export type { AgentsService } from './modules/agents/service.js';
export type { RotationOptions } from './modules/agents/rotation.js';
export type {
  Agent,
  AgentFields,
  AgentInput,
  AgentPatch,
  AgentStatus,
  AgentVersion,
  AgentVersionAction,
  AgentVersionSummary,
  AgentSecretInfo,
  ListAgentsOptions,
  RevealedSecret,
  RotationReport,
} from './modules/agents/types.js';
export type { EncryptionKey, EncryptionKeys } from './core/secret-box.js';
export type { Project, Branch } from './modules/projects/rows.js';
export type { ProjectsService, ProjectInput, ProjectPatch, DeleteOptions } from './modules/projects/projects-service.js';
export type { BranchesService, BranchInput, BranchPatch } from './modules/projects/branches-service.js';
export type { Task } from './modules/tasks/rows.js';
export type { TaskStatus } from './modules/tasks/fields.js';
export { TASK_STATUSES, TRANSITIONS } from './modules/tasks/fields.js';
export type { TasksService, TaskInput, TaskPatch, TaskFilter, Subtasks } from './modules/tasks/service.js';
export type { MoveInput } from './modules/tasks/move.js';
export type { ContextService, ContextTarget, ResolveTarget, ContextDocument, ResolvedContext } from './modules/context/service.js';
export type { ContextLevel } from './modules/context/merge.js';
export type { AuditEntry, AuditQuery } from './modules/audit/service.js';
export type { ChangeEvent, ChangeQuery } from './modules/changes/service.js';
export type { SchemaStatus, MigrationStatus } from './db/migrator.js';
export type {
  Conversation,
  ConversationInput,
  ConversationQuery,
  ConversationStatus,
  ConversationsService,
  Message,
  MessageInput,
  MessageEdit,
  MessageQuery,
  MessageRole,
  MessageContent,
  MessagePart,
  TokenUsage,
  AppendResult,
  SearchQuery,
  SearchHit,
} from './modules/conversations/types.js';
export type { MemoryBlock, MemoryBlockInput, MemoryBlockScope, MemoryBlockWrite, MemoryBlocksService } from './modules/memory-blocks/service.js';
