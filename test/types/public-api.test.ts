import { describe, expectTypeOf, it } from 'vitest';
import type { ContextDocument, ResolvedContext, Subtasks, Task, TaskStatus, Project, Branch } from '../../src/index.js';
import type { Agent, AgentVersion, AgentVersionSummary, RevealedSecret, RotationReport, AgentstoreError, AggregateResult, BatchOperation, BatchOutcome, BatchResult, BulkLine, BulkResult, ChangeEvent, Counter, GetRecordOptions, GroupKey, Page, Store, StoredRecord, TenantContext, UpsertRecordResult } from '../../src/index.js';
import type { AppendResult, Conversation, MemoryBlock, Message, MessageContent, MessageInput, MessagePart, SearchHit } from '../../src/index.js';
import type { EndUserEraser, EndUserErasure, ExpiryOptions } from '../../src/index.js';
import type { StorageConfig, StoreConfig } from '../../src/index.js';
import { createStore, isAgentstoreError, systemContext } from '../../src/index.js';

// Compiled by `npm run typecheck`: the public surface keeps its shape and stays free of `any`.
describe('public types', () => {
  it('createStore returns a Store whose methods take a tenant context', () => {
    expectTypeOf(createStore).returns.resolves.toEqualTypeOf<Store>();
    expectTypeOf(systemContext).returns.toEqualTypeOf<TenantContext>();
    expectTypeOf<Store['collections']['get']>().parameters.toEqualTypeOf<[TenantContext, string, string, GetRecordOptions?]>();
    expectTypeOf<Store['collections']['get']>().returns.resolves.toEqualTypeOf<StoredRecord>();
    expectTypeOf<Store['collections']['list']>().returns.resolves.toEqualTypeOf<Page<StoredRecord>>();
    expectTypeOf<Store['collections']['count']>().returns.resolves.toEqualTypeOf<number>();
    expectTypeOf<Store['collections']['aggregate']>().returns.resolves.toEqualTypeOf<AggregateResult>();
    expectTypeOf<Store['counters']['increment']>().returns.resolves.toEqualTypeOf<Counter>();
    expectTypeOf<Store['changes']['read']>().returns.resolves.toEqualTypeOf<ChangeEvent[]>();
  });

  it('file storage settings are typed', () => {
    expectTypeOf<StoreConfig['storage']>().toEqualTypeOf<StorageConfig>();
    expectTypeOf<Extract<StorageConfig, { kind: 's3' }>['bucket']>().toEqualTypeOf<string>();
    expectTypeOf<Extract<StorageConfig, { kind: 'local' }>['dir']>().toEqualTypeOf<string>();
  });

  it('batches, upserts and bulk loads are typed', () => {
    expectTypeOf<Store['batch']>().parameters.toEqualTypeOf<[TenantContext, readonly BatchOperation[], { idempotencyKey?: string }?]>();
    expectTypeOf<Store['batch']>().returns.resolves.toEqualTypeOf<BatchOutcome>();
    expectTypeOf<BatchOutcome['results']>().toEqualTypeOf<BatchResult[]>();
    expectTypeOf<Extract<BatchResult, { op: 'increment' }>['counter']>().toEqualTypeOf<Counter>();
    expectTypeOf<Extract<BatchOperation, { op: 'create' }>['data'][string]>().toBeUnknown();
    expectTypeOf<Store['collections']['upsert']>().returns.resolves.toEqualTypeOf<UpsertRecordResult>();
    expectTypeOf<Store['collections']['bulk']>().returns.toEqualTypeOf<AsyncIterable<BulkResult>>();
    expectTypeOf<BulkLine['data'][string]>().not.toBeAny();
    expectTypeOf<Extract<BulkResult, { status: 'failed' }>['error']>().toEqualTypeOf<AgentstoreError>();
  });

  it('agents, their versions and secrets are typed', () => {
    expectTypeOf<Store['agents']['get']>().parameters.toEqualTypeOf<[TenantContext, string]>();
    expectTypeOf<Store['agents']['get']>().returns.resolves.toEqualTypeOf<Agent>();
    expectTypeOf<Store['agents']['list']>().returns.resolves.toEqualTypeOf<Page<Agent>>();
    expectTypeOf<Store['agents']['listVersions']>().returns.resolves.toEqualTypeOf<Page<AgentVersionSummary>>();
    expectTypeOf<Store['agents']['getVersion']>().returns.resolves.toEqualTypeOf<AgentVersion>();
    expectTypeOf<Store['agents']['revealSecret']>().returns.resolves.toEqualTypeOf<RevealedSecret>();
    expectTypeOf<Store['agents']['rotateSecrets']>().returns.resolves.toEqualTypeOf<RotationReport>();
    expectTypeOf<Agent['config'][string]>().toBeUnknown();
    expectTypeOf<Agent['status']>().toEqualTypeOf<'active' | 'paused' | 'archived'>();
  });

  it('projects, branches, tasks and context are typed', () => {
    expectTypeOf<Store['projects']['create']>().returns.resolves.toEqualTypeOf<{ project: Project; replayed: boolean }>();
    expectTypeOf<Store['branches']['get']>().returns.resolves.toEqualTypeOf<Branch>();
    expectTypeOf<Store['tasks']['move']>().returns.resolves.toEqualTypeOf<Task>();
    expectTypeOf<Store['tasks']['subtasks']>().returns.resolves.toEqualTypeOf<Subtasks>();
    expectTypeOf<Task['status']>().toEqualTypeOf<TaskStatus>();
    expectTypeOf<Task['metadata'][string]>().toBeUnknown();
    expectTypeOf<Store['context']['get']>().returns.resolves.toEqualTypeOf<ContextDocument>();
    expectTypeOf<Store['context']['resolve']>().returns.resolves.toEqualTypeOf<ResolvedContext>();
    expectTypeOf<ResolvedContext['sources'][string]>().toEqualTypeOf<'global' | 'project' | 'branch' | 'task'>();
    expectTypeOf<ResolvedContext['context'][string]>().not.toBeAny();
  });

  it('record data is unknown JSON, never any', () => {
    expectTypeOf<StoredRecord['data'][string]>().toBeUnknown();
    expectTypeOf<StoredRecord['data'][string]>().not.toBeAny();
    expectTypeOf<ChangeEvent['data']>().not.toBeAny();
    expectTypeOf<AggregateResult['groups'][number]['key'][string]>().toEqualTypeOf<GroupKey>();
    expectTypeOf<AggregateResult['groups'][number]['metrics']['sum:amount']>().toEqualTypeOf<number | null | undefined>();
  });

  it('expiry and end-user erasure are typed', () => {
    expectTypeOf<StoredRecord['expiresAt']>().toEqualTypeOf<string | undefined>();
    expectTypeOf<Parameters<Store['collections']['create']>[3]>().toEqualTypeOf<({ id?: string; idempotencyKey?: string } & ExpiryOptions) | undefined>();
    expectTypeOf<ExpiryOptions>().toEqualTypeOf<{ readonly ttl?: number; readonly expiresAt?: string }>();
    expectTypeOf<Store['endUsers']['erase']>().parameters.toEqualTypeOf<[TenantContext, string]>();
    expectTypeOf<Store['endUsers']['erase']>().returns.resolves.toEqualTypeOf<EndUserErasure>();
    expectTypeOf<Store['endUsers']['register']>().parameters.toEqualTypeOf<[EndUserEraser]>();
    expectTypeOf<EndUserEraser['eraseBatch']>().returns.resolves.toEqualTypeOf<number>();
  });

  it('conversations and memory blocks are typed', () => {
    expectTypeOf<Store['conversations']['append']>().parameters.toEqualTypeOf<[TenantContext, string, MessageInput]>();
    expectTypeOf<Store['conversations']['append']>().returns.resolves.toEqualTypeOf<{ message: Message; replayed: boolean }>();
    expectTypeOf<Store['conversations']['appendMany']>().returns.resolves.toEqualTypeOf<AppendResult>();
    expectTypeOf<Store['conversations']['last']>().returns.resolves.toEqualTypeOf<Message[]>();
    expectTypeOf<Store['conversations']['after']>().returns.resolves.toEqualTypeOf<Page<Message>>();
    expectTypeOf<Store['conversations']['fork']>().returns.resolves.toEqualTypeOf<{ conversation: Conversation; replayed: boolean }>();
    expectTypeOf<Store['conversations']['search']>().returns.resolves.toEqualTypeOf<{ items: SearchHit[] }>();
    expectTypeOf<Message['content']>().toEqualTypeOf<MessageContent>();
    expectTypeOf<Extract<MessagePart, { type: 'text' }>['text']>().toEqualTypeOf<string>();
    expectTypeOf<Message['metadata']>().not.toBeAny();
    expectTypeOf<Store['memoryBlocks']['put']>().returns.resolves.toEqualTypeOf<{ block: MemoryBlock; created: boolean }>();
    expectTypeOf<Store['memoryBlocks']['list']>().returns.resolves.toEqualTypeOf<Page<MemoryBlock>>();
  });

  it('errors are narrowed by code', () => {
    const error: unknown = new Error('x');
    if (isAgentstoreError(error, 'agentstore.not_found')) expectTypeOf(error).toEqualTypeOf<AgentstoreError>();
    expectTypeOf<AgentstoreError['code']>().toEqualTypeOf<import('../../src/index.js').ErrorCode>();
  });
});
