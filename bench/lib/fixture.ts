/**
 * Throw-away databases seeded for the benchmark: one tenant, a member API key, and the
 * collections `items` (no declared index) and `items_idx` (index on `status`) with the same
 * N records, plus `bench_new` / `bench_raw` that the create workloads write into.
 *
 * PostgreSQL runs as the unprivileged `agentstore_app` runtime role that owns nothing (the
 * test harness's role; migrations run as its owner role), so row-level security is in force
 * as in production.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { systemContext } from '../../src/core/context.js';
import { uuidv7 } from '../../src/core/ids.js';
import { toJsonColumn } from '../../src/db/dialect.js';
import { createStore } from '../../src/store.js';
import { appUrl, createPgDatabase, dropPgDatabase, ownerUrl } from '../../test/helpers/pg-admin.js';

export type BackendName = 'sqlite' | 'postgres';

export interface Fixture {
  readonly backend: BackendName;
  /** DATABASE_URL for the store (as agentstore_app on PostgreSQL). */
  readonly url: string;
  /** The SQLite file, for the raw better-sqlite3 baselines. */
  readonly sqliteFile?: string;
  readonly tenantId: string;
  readonly apiKey: string;
  /** Ids of the seeded records (the same ids in `items` and `items_idx`). */
  readonly ids: readonly string[];
  /** Ids of the seeded agents (as many as records), for the agents get-by-id workload. */
  readonly agentIds: readonly string[];
  drop(): Promise<void>;
}

export const STATUSES = ['open', 'closed', 'pending', 'archived'] as const;

export function recordId(i: number): string {
  return `r${String(i).padStart(6, '0')}`;
}

export function recordData(i: number): Record<string, unknown> {
  return { status: STATUSES[i % STATUSES.length], n: (i * 7919) % 10_000, title: `record ${i}`, tags: ['bench', `t${i % 10}`] };
}

/** An agent as a platform keeps one: a model, a short system prompt, two tools, tags. */
export function agentDoc(i: number): Record<string, unknown> {
  return {
    name: `Agent ${i}`,
    description: `bench agent ${i}`,
    industry: 'retail',
    model: 'gpt-4.1-mini',
    provider: 'openai',
    modelSettings: { temperature: 0.2 },
    systemPrompt: 'You are a helpful support agent. Answer briefly.',
    tools: [{ name: 'search', description: 'search the catalogue' }, { name: 'order_status' }],
    config: { escalateAfter: 3 },
    status: 'active',
    tags: ['bench', `t${i % 10}`],
    metadata: {},
  };
}

export async function createFixture(backend: BackendName, records: number): Promise<Fixture> {
  let url: string;
  let sqliteFile: string | undefined;
  let drop: () => Promise<void>;
  let owner: string | undefined;
  if (backend === 'sqlite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentstore-bench-'));
    sqliteFile = path.join(dir, 'bench.db');
    url = `sqlite:${sqliteFile}`;
    drop = async () => fs.rmSync(dir, { recursive: true, force: true });
  } else {
    const name = await createPgDatabase('agentstore_bench');
    url = appUrl(name);
    // Migrations (and ANALYZE) as the owner; the store as the runtime role, as in production.
    owner = ownerUrl(name);
    drop = () => dropPgDatabase(name);
  }
  const store = await createStore({ databaseUrl: url, migrateOnStart: true, ...(owner ? { migrateDatabaseUrl: owner } : {}) });
  try {
    const tenant = await store.tenants.create({ name: 'bench' });
    const ctx = systemContext(tenant.id);
    const key = await store.apiKeys.create(ctx, { name: 'bench', role: 'member' });
    await store.collections.define(ctx, 'items', {});
    await store.collections.define(ctx, 'items_idx', { indexes: ['status'] });
    await store.collections.define(ctx, 'bench_new', {});
    await store.collections.define(ctx, 'bench_raw', {});
    // Seeding goes straight to the table in one transaction: 2 x 10k unit-of-work writes
    // would take minutes and measure nothing we report.
    const base = Date.parse('2024-01-01T00:00:00Z');
    const ids: string[] = [];
    const agentIds: string[] = [];
    await store.internals.db.inTenant(tenant.id, async (trx) => {
      // Agents with their tags and first version, as create writes them.
      for (let start = 0; start < records; start += 500) {
        const agents = [];
        const tags = [];
        const versions = [];
        for (let i = start; i < Math.min(records, start + 500); i++) {
          const id = uuidv7();
          const at = new Date(base + i * 1000).toISOString();
          const doc = agentDoc(i);
          agentIds.push(id);
          const name = doc.name as string;
          agents.push({ tenant_id: tenant.id, id, name, name_key: name.toLowerCase(), status: 'active', version: 1, doc: toJsonColumn(doc), created_at: at, updated_at: at });
          for (const tag of doc.tags as string[]) tags.push({ tenant_id: tenant.id, tag, agent_id: id });
          versions.push({ tenant_id: tenant.id, agent_id: id, n: 1, action: 'create', doc: toJsonColumn(doc), changed: '[]', actor_type: 'system', actor_id: 'bench', request_id: null, rolled_back_from: null, created_at: at });
        }
        await trx.insertInto('agents').values(agents).execute();
        await trx.insertInto('agent_tags').values(tags).execute();
        await trx.insertInto('agent_versions').values(versions).execute();
      }
      for (const collection of ['items', 'items_idx']) {
        for (let start = 0; start < records; start += 500) {
          const rows = [];
          for (let i = start; i < Math.min(records, start + 500); i++) {
            const at = new Date(base + i * 1000).toISOString();
            rows.push({ tenant_id: tenant.id, collection, id: recordId(i), version: 1, data: toJsonColumn(recordData(i)), created_at: at, updated_at: at });
            if (collection === 'items') ids.push(recordId(i));
          }
          await trx.insertInto('records').values(rows).execute();
        }
      }
    });
    if (owner) {
      const client = new pg.Client({ connectionString: owner });
      await client.connect();
      await client.query('analyze records, agents, agent_tags, agent_versions').finally(() => client.end());
    } else {
      await sql.raw('analyze').execute(store.internals.db.kysely);
    }
    await store.close();
    return { backend, url, ...(sqliteFile ? { sqliteFile } : {}), tenantId: tenant.id, apiKey: key.key, ids, agentIds, drop };
  } catch (error) {
    await store.close().catch(() => undefined);
    await drop();
    throw error;
  }
}
