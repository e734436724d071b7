/**
 * A conversation with 100,000 messages: deleting it or forking it must not hold the SQLite
 * writer's event loop for seconds (the unit runs off the loop, `offLoop`), and both stay one
 * unit of work: everything or nothing, the FTS index included.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemContext } from '../../src/core/context.js';
import { Sqlite } from '../../src/db/sqlite-driver.js';
import { openStore, resolveStoreConfig, type Store } from '../../src/store.js';
import { longestStall } from '../helpers/loop-meter.js';

const MESSAGES = 100_000;

describe('a long conversation on SQLite', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agentstore-history-'));
  const file = path.join(dir, 'db.sqlite');
  let store: Store;
  let tenantId: string;
  let conversationId: string;

  beforeAll(async () => {
    store = await openStore(resolveStoreConfig({ databaseUrl: `sqlite:${file}`, dataDir: dir, migrateOnStart: true }, {}));
    tenantId = (await store.tenants.create({ name: 'long' })).id;
    conversationId = (await store.conversations.create(systemContext(tenantId), { title: 'long' })).conversation.id;
    // Written straight into the file (the FTS triggers run): 100,000 appends through the API take minutes.
    const raw = new Sqlite(file);
    const insert = raw.prepare("insert into messages (tenant_id, conversation_id, seq, role, content, text, version, created_at, updated_at) values (?, ?, ?, 'user', ?, ?, 1, ?, ?)");
    const now = new Date().toISOString();
    raw.transaction(() => {
      for (let seq = 1; seq <= MESSAGES; seq++) {
        const text = `message number ${seq} about ${seq % 2 ? 'odd' : 'even'} things`;
        insert.run(tenantId, conversationId, seq, JSON.stringify(text), text, now, now);
      }
      raw.prepare('update conversations set last_seq = ?, message_count = ? where id = ?').run(MESSAGES, MESSAGES, conversationId);
    })();
    raw.close();
  }, 180_000);
  /** What `sql` costs run synchronously on the main thread, rolled back: the stall it would be there. */
  const mainThreadMs = (text: string, ...params: unknown[]): number => {
    const direct = new Sqlite(file);
    // The copy's conversation need not exist: only the statement's cost is measured.
    direct.pragma('foreign_keys = OFF');
    try {
      direct.exec('begin');
      const t0 = performance.now();
      direct.prepare(text).run(...params);
      const ms = performance.now() - t0;
      direct.exec('rollback');
      return ms;
    } finally {
      direct.close();
    }
  };
  // Relative to how long the work took, as test/db/long-work.test.ts bounds a collection delete:
  // run on the loop, the stall would be all of it; on this shared 2-core machine the loop meter
  // also sees the scheduler's delays (the worker thread competes for the same cores), which grow
  // with the load as the work does.
  const bound = (tookMs: number) => Math.max(100, tookMs / 8);

  afterAll(async () => {
    await store?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the last 20 are the newest, whatever the length', async () => {
    const last = await store.conversations.last(systemContext(tenantId), conversationId, 20);
    expect(last.map((m) => m.seq)).toEqual(Array.from({ length: 20 }, (_, i) => MESSAGES - 19 + i));
  });

  it('a fork of the whole history copies it without holding the loop', async () => {
    const ctx = systemContext(tenantId);
    const syncMs = mainThreadMs(
      "insert into messages select tenant_id, 'copy', seq, client_id, role, content, text, model, usage, metadata, version, created_at, updated_at from messages where conversation_id = ?",
      conversationId,
    );
    expect(syncMs, 'the fixture must make the copy slow enough to see a stall').toBeGreaterThan(200);
    const { result, stallMs, tookMs } = await longestStall(() => store.conversations.fork(ctx, conversationId, { atSeq: MESSAGES }));
    expect(result.conversation.messageCount).toBe(MESSAGES);
    expect((await store.conversations.last(ctx, result.conversation.id, 2)).map((m) => m.seq)).toEqual([MESSAGES - 1, MESSAGES]);
    expect(stallMs).toBeLessThan(bound(tookMs));
    // The copies are searchable: the FTS triggers ran in the fork's unit.
    expect((await store.conversations.search(ctx, { q: `number ${MESSAGES}` })).items.map((h) => h.conversationId).sort()).toEqual([conversationId, result.conversation.id].sort());
  }, 120_000);

  it('deleting it removes every message and its index entries without holding the loop', async () => {
    const ctx = systemContext(tenantId);
    const syncMs = mainThreadMs('delete from messages where conversation_id = ?', conversationId);
    expect(syncMs, 'the fixture must make the delete slow enough to see a stall').toBeGreaterThan(200);
    const { stallMs, tookMs } = await longestStall(() => store.conversations.remove(ctx, conversationId));
    expect(stallMs).toBeLessThan(bound(tookMs));
    await expect(store.conversations.get(ctx, conversationId)).rejects.toMatchObject({ code: 'agentstore.not_found' });
    const raw = new Sqlite(file, { readonly: true });
    try {
      expect(raw.prepare('select count(*) as n from messages where conversation_id = ?').get(conversationId)).toEqual({ n: 0 });
    } finally {
      raw.close();
    }
    // Only the fork's copies are left to find.
    expect((await store.conversations.search(ctx, { q: 'number 5' })).items).toHaveLength(1);
  }, 120_000);
});
