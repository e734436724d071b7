/**
 * In-process conversation-memory workload, a child of bench/conversations.ts: 1,000
 * conversations loaded level by level to the message counts of CONV_LEVELS, and at every
 * level, for each SQLite synchronous setting (PostgreSQL: one), several interleaved runs of:
 *
 *   turn       append a user and an assistant message (one unit of work: `appendMany`), then
 *              read the last 20; closed loops with 1 and 32 outstanding turns
 *   last-20    the read alone, 1 outstanding
 *
 * for the store and for raw driver loops doing the same SQL, one transaction per turn:
 *
 *   raw        `UPDATE conversations … RETURNING last_seq`, the two message rows, COMMIT, then
 *              the last-20 select, on the store's tables (same pragmas / the runtime role)
 *   raw+log    the same plus the rows the unit of work adds: one audit row for the append,
 *              the change_heads bump and a change row per message
 *
 * Sends `{type:'result', payload}` over IPC.
 */
import pg from 'pg';
import type BetterSqlite3 from 'better-sqlite3';
import { systemContext } from '../src/core/context.js';
import { uuidv7 } from '../src/core/ids.js';
import { Sqlite } from '../src/db/sqlite-driver.js';
import { createStore, type Store } from '../src/store.js';
import type { MessageInput } from '../src/modules/conversations/types.js';
import { closedLoop, median, type Sample } from './lib/stats.js';

export interface ConvInprocRow {
  readonly level: number;
  readonly synchronous: 'full' | 'normal';
  readonly system: 'agentstore' | 'raw' | 'raw+log';
  readonly workload: 'turn' | 'last-20';
  readonly concurrency: number;
  /** Medians over the runs: turns (or reads) per second, and milliseconds. */
  readonly opsPerSec: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
  readonly runs: readonly Sample[];
}

export interface ConvInprocResult {
  readonly conversations: readonly string[];
  readonly rows: readonly ConvInprocRow[];
  /** Seconds the preload to each level took (appendMany, 100 messages per unit). */
  readonly preloadSeconds: Record<number, number>;
}

const env = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};
const url = env('CONV_URL');
const backend = url.startsWith('postgres') ? 'postgres' : 'sqlite';
const tenantId = env('CONV_TENANT');
const levels = env('CONV_LEVELS').split(',').map(Number);
const conversationCount = Number(process.env.CONV_CONVERSATIONS ?? 1000);
const durationMs = Number(process.env.CONV_DURATION_S ?? 2) * 1000;
const runs = Number(process.env.CONV_RUNS ?? 3);
const syncs: Array<'full' | 'normal'> = backend === 'sqlite' ? ['full', 'normal'] : ['full'];
const ctx = systemContext(tenantId);

// ~200 bytes of text per message, as a short chat turn; the same in every system measured.
const TEXT = 'The quick brown fox jumps over the lazy dog. '.repeat(4).trim();
const userMessage: MessageInput = { role: 'user', content: TEXT };
const assistantMessage: MessageInput = { role: 'assistant', content: TEXT, model: 'bench-model', usage: { inputTokens: 40, outputTokens: 50 } };

const open = (synchronous: 'full' | 'normal') => createStore({ databaseUrl: url, migrateOnStart: false, sqlite: { synchronous } });

let conversations: string[] = [];
const pick = () => conversations[Math.floor(Math.random() * conversations.length)] as string;
let messages = 0;

async function preload(store: Store, target: number): Promise<void> {
  // Spread evenly over the conversations, up to 100 per unit.
  const per = Math.max(1, Math.min(100, Math.ceil((target - messages) / conversations.length)));
  let c = 0;
  while (messages < target) {
    const n = Math.min(per, target - messages);
    const batch = Array.from({ length: n }, (_, i) => (i % 2 === 0 ? userMessage : assistantMessage));
    await store.conversations.appendMany(ctx, conversations[c++ % conversations.length] as string, batch);
    messages += n;
  }
}

interface Raw {
  turn(conversation: string): Promise<void>;
  last20(conversation: string): Promise<unknown>;
  close(): Promise<void>;
}

const MESSAGE_COLS = 'tenant_id, conversation_id, seq, client_id, role, content, text, model, usage, metadata, version, created_at, updated_at';
const AUDIT_COLS = 'tenant_id, id, at, actor_type, actor_id, action, resource_type, resource_id, collection, request_id, details';
const CHANGE_COLS = 'tenant_id, at, resource_type, resource_id, collection, action, version, data';
const placeholders = (rows: number, width: number, dollar: boolean) =>
  Array.from({ length: rows }, (_, r) => `(${Array.from({ length: width }, (_, c) => (dollar ? `$${r * width + c + 1}` : '?')).join(', ')})`).join(', ');

/** The two message rows of a turn, as the store writes them (src/modules/conversations/rows.ts). */
function messageRows(conversation: string, firstSeq: number, now: string): unknown[] {
  const usage = JSON.stringify(assistantMessage.usage);
  return [
    tenantId, conversation, firstSeq, null, 'user', JSON.stringify(TEXT), TEXT, null, null, null, 1, now, now,
    tenantId, conversation, firstSeq + 1, null, 'assistant', JSON.stringify(TEXT), TEXT, 'bench-model', usage, null, 1, now, now,
  ];
}

/** The audit and change rows of the unit of work for the two messages (src/db/unit-of-work.ts). */
function logRows(conversation: string, firstSeq: number, now: string): { audit: unknown[]; changes: unknown[] } {
  // One audit row for the append (it names the seqs), a change row per message.
  const audit: unknown[] = [tenantId, uuidv7(), now, 'system', 'bench', 'conversation.append', 'conversation', conversation, null, null, `{"messages":2,"fromSeq":${firstSeq},"toSeq":${firstSeq + 1}}`];
  const changes: unknown[] = [];
  for (const seq of [firstSeq, firstSeq + 1]) {
    const id = `${conversation}/${seq}`;
    changes.push(tenantId, now, 'message', id, null, 'create', 1, `{"conversationId":"${conversation}","seq":${seq},"role":"user","content":${JSON.stringify(TEXT)},"version":1,"createdAt":"${now}","updatedAt":"${now}"}`);
  }
  return { audit, changes };
}

function rawSqlite(file: string, synchronous: 'full' | 'normal', log: boolean): Raw {
  // The store's pragmas (src/db/database.ts).
  const db: BetterSqlite3.Database = new Sqlite(file);
  db.pragma('busy_timeout = 5000');
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous}`);
  db.pragma('foreign_keys = ON');
  const bump = db.prepare<[string, string, string]>('update conversations set last_seq = last_seq + 2, message_count = message_count + 2, updated_at = ? where tenant_id = ? and id = ? returning last_seq');
  const insert = db.prepare(`insert into messages (${MESSAGE_COLS}) values ${placeholders(2, 13, false)}`);
  const audit = db.prepare(`insert into audit_log (${AUDIT_COLS}) values ${placeholders(1, 11, false)}`);
  // The tenant's change positions come from its change_heads row, as in the unit of work.
  const head = db.prepare<[string]>('insert into change_heads (tenant_id, seq) values (?, 2) on conflict (tenant_id) do update set seq = change_heads.seq + excluded.seq returning seq');
  const change = db.prepare(`insert into changes (${CHANGE_COLS}, tenant_seq) values ${placeholders(2, 9, false)}`);
  const select = db.prepare('select * from messages where tenant_id = ? and conversation_id = ? order by seq desc limit 20');
  const turn = db.transaction((conversation: string) => {
    const now = new Date().toISOString();
    const { last_seq } = bump.get(now, tenantId, conversation) as { last_seq: number };
    insert.run(...messageRows(conversation, last_seq - 1, now));
    if (log) {
      const rows = logRows(conversation, last_seq - 1, now);
      audit.run(...rows.audit);
      const { seq } = head.get(tenantId) as { seq: number };
      change.run(...rows.changes.slice(0, 8), seq - 1, ...rows.changes.slice(8), seq);
    }
  });
  return {
    async turn(conversation) {
      turn.immediate(conversation);
      select.all(tenantId, conversation);
    },
    async last20(conversation) {
      return select.all(tenantId, conversation).reverse();
    },
    async close() {
      db.close();
    },
  };
}

function rawPostgres(log: boolean): Raw {
  // The runtime role under RLS, the tenant set once per connection (the cheapest correct way).
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  pool.on('connect', (client) => void client.query("select set_config('app.tenant_id', $1, false)", [tenantId]));
  const insert = `insert into messages (${MESSAGE_COLS}) values ${placeholders(2, 13, true)}`;
  // One statement, as the unit of work sends it (src/db/unit-of-work.ts): the audit rows, the
  // tenant's change_heads bump (its row lock held to COMMIT) and the change rows.
  const shift = (text: string, by: number) => text.replace(/\$(\d+)/g, (_, n: string) => `$${Number(n) + by}`);
  const logStatement = `with a as (insert into audit_log (${AUDIT_COLS}) values ${placeholders(1, 11, true)}),
    head as (insert into change_heads (tenant_id, seq) values ($30, 2) on conflict (tenant_id) do update set seq = change_heads.seq + excluded.seq returning seq)
    insert into changes (tenant_id, tenant_seq, at, resource_type, resource_id, collection, action, version, data)
    select v.tenant_id, head.seq - 2 + v.ord, v.at::timestamptz, v.resource_type, v.resource_id, v.collection, v.action, v.version::integer, v.data::jsonb
    from head, (values ${shift(placeholders(2, 9, true), 11).replace(/\((\$\d+)/g, '($1::int')}) as v (ord, ${CHANGE_COLS})`;
  const select = 'select * from messages where tenant_id = $1 and conversation_id = $2 order by seq desc limit 20';
  return {
    async turn(conversation) {
      const client = await pool.connect();
      try {
        const now = new Date().toISOString();
        await client.query('begin');
        const { rows } = await client.query<{ last_seq: string }>(
          'update conversations set last_seq = last_seq + 2, message_count = message_count + 2, updated_at = $1 where tenant_id = $2 and id = $3 returning last_seq', [now, tenantId, conversation]);
        const first = Number(rows[0]?.last_seq) - 1;
        await client.query(insert, messageRows(conversation, first, now));
        if (log) {
          const logged = logRows(conversation, first, now);
          await client.query(logStatement, [...logged.audit, 1, ...logged.changes.slice(0, 8), 2, ...logged.changes.slice(8), tenantId]);
        }
        await client.query('commit');
        await client.query(select, [tenantId, conversation]);
      } catch (error) {
        await client.query('rollback').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },
    async last20(conversation) {
      return (await pool.query(select, [tenantId, conversation])).rows.reverse();
    },
    close: () => pool.end(),
  };
}

const result: ConvInprocRow[] = [];
const preloadSeconds: Record<number, number> = {};

function push(level: number, synchronous: 'full' | 'normal', system: ConvInprocRow['system'], workload: ConvInprocRow['workload'], concurrency: number, samples: Sample[]) {
  result.push({
    level, synchronous, system, workload, concurrency,
    opsPerSec: median(samples.map((s) => s.opsPerSec)), p50: median(samples.map((s) => s.p50)), p99: median(samples.map((s) => s.p99)),
    errors: samples.reduce((n, s) => n + s.errors, 0), runs: samples,
  });
}

{
  const store = await open('full');
  for (let i = 0; i < conversationCount; i++) {
    const { conversation } = await store.conversations.create(ctx, { title: `bench ${i}`, endUserId: `user-${i % 100}`, agentId: 'bench-agent' });
    conversations.push(conversation.id);
  }
  await store.close();
}

for (const level of levels) {
  {
    const store = await open('full');
    const start = performance.now();
    await preload(store, level);
    preloadSeconds[level] = (performance.now() - start) / 1000;
    await store.close();
  }
  for (const synchronous of syncs) {
    const store = await open(synchronous);
    const raws = {
      raw: backend === 'sqlite' ? rawSqlite(url.slice('sqlite:'.length), synchronous, false) : rawPostgres(false),
      'raw+log': backend === 'sqlite' ? rawSqlite(url.slice('sqlite:'.length), synchronous, true) : rawPostgres(true),
    };
    const systems: Array<{ name: ConvInprocRow['system']; turn: () => Promise<unknown>; last20: () => Promise<unknown> }> = [
      {
        name: 'agentstore',
        turn: async () => {
          const conversation = pick();
          await store.conversations.appendMany(ctx, conversation, [userMessage, assistantMessage]);
          await store.conversations.last(ctx, conversation, 20);
        },
        last20: () => store.conversations.last(ctx, pick(), 20),
      },
      { name: 'raw', turn: () => raws.raw.turn(pick()), last20: () => raws.raw.last20(pick()) },
      { name: 'raw+log', turn: () => raws['raw+log'].turn(pick()), last20: () => raws['raw+log'].last20(pick()) },
    ];
    const samples = new Map<string, Sample[]>();
    const add = (key: string, sample: Sample) => samples.set(key, [...(samples.get(key) ?? []), sample]);
    // Warm-up: statements prepared, pools filled, pages cached.
    for (const system of systems) await closedLoop(system.turn, 8, 300);
    for (let run = 0; run < runs; run++) {
      for (const system of systems) {
        for (const concurrency of [1, 32]) {
          const sample = await closedLoop(system.turn, concurrency, durationMs);
          messages += 2 * (sample.total - sample.errors);
          add(`${system.name}|turn|${concurrency}`, sample);
        }
        add(`${system.name}|last-20|1`, await closedLoop(system.last20, 1, durationMs));
      }
    }
    for (const [key, list] of samples) {
      const [system, workload, concurrency] = key.split('|') as [ConvInprocRow['system'], ConvInprocRow['workload'], string];
      push(level, synchronous, system, workload, Number(concurrency), list);
    }
    await raws.raw.close();
    await raws['raw+log'].close();
    await store.close();
  }
}

process.send?.({ type: 'result', payload: { conversations, rows: result, preloadSeconds } satisfies ConvInprocResult });
