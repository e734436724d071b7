import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { forEachBackend, useTestStore } from '../helpers/backends.js';
import { asRole, expectError, newTenant } from '../helpers/fixtures.js';
import type { TenantContext } from '../../src/core/context.js';
import type { Store } from '../../src/store.js';

async function rowsOf(store: Store, ctx: TenantContext, table: 'agents' | 'agent_tags' | 'agent_versions' | 'agent_secrets'): Promise<number> {
  return store.internals.db.inTenant(
    ctx.tenantId,
    async (trx) => Number((await sql<{ n: number | string }>`select count(*) as n from ${sql.table(table)} where tenant_id = ${ctx.tenantId}`.execute(trx)).rows[0]?.n),
    { readOnly: true },
  );
}

forEachBackend('agents', (backend) => {
  const t = useTestStore(backend);

  it('creates an agent with defaults, and get returns it (also as JSON text)', async () => {
    const { ctx } = await newTenant(t.store);
    const { agent, replayed } = await t.store.agents.create(ctx, { name: 'Support bot', model: 'gpt-4.1', provider: 'openai', tags: ['support', 'support', 'tier-1'], tools: [{ name: 'search' }] });
    expect(replayed).toBe(false);
    expect(agent).toMatchObject({
      name: 'Support bot',
      version: 1,
      status: 'active',
      description: null,
      industry: null,
      systemPrompt: null,
      modelSettings: {},
      config: {},
      metadata: {},
      tags: ['support', 'tier-1'],
      tools: [{ name: 'search' }],
    });
    expect(await t.store.agents.get(ctx, agent.id)).toEqual(agent);
    const { version, json } = await t.store.agents.getJson(ctx, agent.id);
    expect(version).toBe(1);
    expect(JSON.parse(json)).toEqual(agent);
  });

  it('patch is a merge patch that writes the next version; If-Match is honoured', async () => {
    const { ctx } = await newTenant(t.store);
    const { agent } = await t.store.agents.create(ctx, { name: 'a', config: { retries: 2, nested: { x: 1, y: 2 } }, description: 'first' });
    const patched = await t.store.agents.patch(ctx, agent.id, { config: { nested: { y: null, z: 3 } }, description: null, status: 'paused' }, { ifMatch: 1 });
    expect(patched).toMatchObject({ version: 2, status: 'paused', description: null, config: { retries: 2, nested: { x: 1, z: 3 } } });
    const stale = await expectError(t.store.agents.patch(ctx, agent.id, { name: 'b' }, { ifMatch: 1 }), 'agentstore.precondition_failed');
    expect(stale.context.currentVersion).toBe(2);
    expect((await t.store.agents.get(ctx, agent.id)).name).toBe('a');
    await expectError(t.store.agents.patch(ctx, agent.id, { name: null }), 'agentstore.validation', { field: '/name' });
    await expectError(t.store.agents.patch(ctx, agent.id, { status: null }), 'agentstore.validation', { field: '/status' });
    await expectError(t.store.agents.patch(ctx, agent.id, { status: 'gone' as 'active' }), 'agentstore.validation', { field: '/status' });
    await expectError(t.store.agents.patch(ctx, agent.id, { zz: 1 } as never), 'agentstore.validation', { field: '/zz' });
    expect((await t.store.agents.get(ctx, agent.id)).version).toBe(2);
  });

  it('every change writes an immutable version: who, what changed, the full snapshot; rollback writes a new one', async () => {
    const { ctx } = await newTenant(t.store);
    const member = asRole(ctx, 'member', { type: 'api_key', id: 'key-7' });
    const { agent } = await t.store.agents.create(ctx, { name: 'v', systemPrompt: 'one' });
    await t.store.agents.patch(member, agent.id, { systemPrompt: 'two', tags: ['x'] });
    await t.store.agents.patch(ctx, agent.id, { systemPrompt: 'three' });
    const history = await t.store.agents.listVersions(ctx, agent.id);
    expect(history.items.map((v) => [v.version, v.action, v.changed])).toEqual([
      [3, 'update', ['systemPrompt']],
      [2, 'update', ['systemPrompt', 'tags']],
      [1, 'create', ['name', 'description', 'industry', 'model', 'provider', 'modelSettings', 'systemPrompt', 'tools', 'config', 'status', 'tags', 'metadata']],
    ]);
    expect(history.items[1]?.actor).toEqual({ type: 'api_key', id: 'key-7' });
    expect((await t.store.agents.getVersion(ctx, agent.id, 2)).agent).toMatchObject({ systemPrompt: 'two', tags: ['x'] });

    await expectError(t.store.agents.rollback(ctx, agent.id, 1, { ifMatch: 2 }), 'agentstore.precondition_failed');
    const rolled = await t.store.agents.rollback(ctx, agent.id, 1, { ifMatch: 3 });
    expect(rolled).toMatchObject({ version: 4, systemPrompt: 'one', tags: [] });
    const v4 = await t.store.agents.getVersion(ctx, agent.id, 4);
    expect(v4).toMatchObject({ action: 'rollback', rolledBackFrom: 1, changed: ['systemPrompt', 'tags'] });
    const { id: _id, version: _v, createdAt: _c, updatedAt: _u, ...fields } = rolled;
    expect(v4.agent).toEqual(fields);
    // The tag of version 2 is gone from the tag index too.
    expect((await t.store.agents.list(ctx, { tag: 'x' })).items).toEqual([]);
    await expectError(t.store.agents.rollback(ctx, agent.id, 9), 'agentstore.not_found', { field: '/version' });
    await expectError(t.store.agents.getVersion(ctx, agent.id, 9), 'agentstore.not_found');
    // Pages of the history, newest first.
    const first = await t.store.agents.listVersions(ctx, agent.id, { limit: 3 });
    const rest = await t.store.agents.listVersions(ctx, agent.id, { limit: 3, cursor: first.nextCursor ?? undefined });
    expect([...first.items, ...rest.items].map((v) => v.version)).toEqual([4, 3, 2, 1]);
    expect(rest.nextCursor).toBeNull();
  });

  it('the unit of work: a version row, an audit entry and a change event per write, atomically', async () => {
    const { ctx } = await newTenant(t.store);
    const { agent } = await t.store.agents.create(ctx, { name: 'u' });
    await t.store.agents.patch(ctx, agent.id, { model: 'm' });
    const changes = { items: await t.store.changes.read(ctx, { after: 0, resourceTypes: ['agent'] }) };
    expect(changes.items.map((c) => [c.action, c.resourceId, c.version])).toEqual([
      ['create', agent.id, 1],
      ['update', agent.id, 2],
    ]);
    const audit = await t.store.audit.list(ctx, { resourceId: agent.id });
    expect(audit.items.map((a) => a.action).sort()).toEqual(['agent.create', 'agent.update']);
    // A failing patch writes no version.
    await expectError(t.store.agents.patch(ctx, agent.id, { tags: ['bad tag'] }), 'agentstore.validation', { field: '/tags/0' });
    expect(await rowsOf(t.store, ctx, 'agent_versions')).toBe(2);
  });

  it('delete removes the agent with its versions, tags and secrets in one unit; If-Match honoured', async () => {
    const { ctx } = await newTenant(t.store);
    const { agent } = await t.store.agents.create(ctx, { name: 'd', tags: ['a', 'b'] });
    await t.store.agents.patch(ctx, agent.id, { model: 'x' });
    await expectError(t.store.agents.delete(ctx, agent.id, { ifMatch: 1 }), 'agentstore.precondition_failed');
    await t.store.agents.delete(ctx, agent.id, { ifMatch: 2 });
    for (const table of ['agents', 'agent_tags', 'agent_versions'] as const) expect(await rowsOf(t.store, ctx, table), table).toBe(0);
    await expectError(t.store.agents.get(ctx, agent.id), 'agentstore.not_found');
    await expectError(t.store.agents.listVersions(ctx, agent.id), 'agentstore.not_found');
    await expectError(t.store.agents.delete(ctx, agent.id), 'agentstore.not_found');
    const audit = await t.store.audit.list(ctx, { resourceId: agent.id, action: 'agent.delete' });
    expect(audit.items[0]?.details).toEqual({ versions: 2, secrets: 0 });
  });

  it('an idempotency key makes a retried create return the first agent and write nothing', async () => {
    const { ctx } = await newTenant(t.store);
    const first = await t.store.agents.create(ctx, { name: 'i' }, { idempotencyKey: 'k1' });
    const again = await t.store.agents.create(ctx, { name: 'i' }, { idempotencyKey: 'k1' });
    expect(again).toEqual({ agent: first.agent, replayed: true });
    await expectError(t.store.agents.create(ctx, { name: 'other' }, { idempotencyKey: 'k1' }), 'agentstore.conflict', { field: 'idempotency-key' });
    expect(await rowsOf(t.store, ctx, 'agents')).toBe(1);
    // Concurrent retries: one agent.
    const racing = await Promise.all(Array.from({ length: 5 }, () => t.store.agents.create(ctx, { name: 'race' }, { idempotencyKey: 'k2' })));
    expect(new Set(racing.map((r) => r.agent.id)).size).toBe(1);
    expect(await rowsOf(t.store, ctx, 'agents')).toBe(2);
  });

  it('lists by status, tag, name prefix and substring, with keyset pages', async () => {
    const { ctx } = await newTenant(t.store);
    const names = ['Alpha', 'alpine', 'Beta', 'ALPS', 'gamma-alp', 'delta'];
    const ids: Record<string, string> = {};
    for (const [i, name] of names.entries()) {
      const { agent } = await t.store.agents.create(ctx, { name, status: i % 2 === 0 ? 'active' : 'paused', tags: i < 3 ? ['sales'] : ['ops'] });
      ids[name] = agent.id;
    }
    const all = async (options: Parameters<Store['agents']['list']>[1]) => {
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await t.store.agents.list(ctx, { ...options, limit: 2, ...(cursor ? { cursor } : {}) });
        seen.push(...page.items.map((a) => a.name));
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      return seen;
    };
    expect(await all({})).toEqual(names);
    expect(await all({ status: 'paused' })).toEqual(['alpine', 'ALPS', 'delta']);
    expect(await all({ tag: 'sales' })).toEqual(['Alpha', 'alpine', 'Beta']);
    expect(await all({ tag: 'sales', status: 'active' })).toEqual(['Alpha', 'Beta']);
    // A prefix, case-insensitively, in name order.
    expect(await all({ q: 'ALP' })).toEqual(['Alpha', 'alpine', 'ALPS']);
    expect(await all({ q: 'alp', status: 'paused' })).toEqual(['alpine', 'ALPS']);
    expect(await all({ q: 'alp', match: 'substring' })).toEqual(['Alpha', 'alpine', 'ALPS', 'gamma-alp']);
    expect(await all({ q: 'alp', tag: 'ops' })).toEqual(['ALPS']);
    expect(await all({ q: '%' })).toEqual([]);
    expect(await all({ tag: 'none' })).toEqual([]);
    // A cursor belongs to its listing.
    const page = await t.store.agents.list(ctx, { status: 'paused', limit: 1 });
    await expectError(t.store.agents.list(ctx, { status: 'active', cursor: page.nextCursor ?? '' }), 'agentstore.validation', { field: 'cursor' });
    await expectError(t.store.agents.list(ctx, { status: 'gone' as 'active' }), 'agentstore.validation', { field: 'status' });
    await expectError(t.store.agents.list(ctx, { tag: 'a b' }), 'agentstore.validation', { field: 'tag' });
    await expectError(t.store.agents.list(ctx, { q: '' }), 'agentstore.validation', { field: 'q' });
    await expectError(t.store.agents.list(ctx, { q: 'a\u0000' }), 'agentstore.validation', { field: 'q' });
  });

  it('refuses bad input without writing, naming the field', async () => {
    const { ctx } = await newTenant(t.store);
    const bad: [unknown, string][] = [
      [{}, '/name'],
      [{ name: '' }, '/name'],
      [{ name: '   ' }, '/name'],
      [{ name: 5 }, '/name'],
      [{ name: 'x'.repeat(201) }, '/name'],
      [{ name: 'a', status: 'deleted' }, '/status'],
      [{ name: 'a', tags: 'x' }, '/tags'],
      [{ name: 'a', tags: ['ok', ''] }, '/tags/1'],
      [{ name: 'a', tags: Array.from({ length: 33 }, (_, i) => `t${i}`) }, '/tags'],
      [{ name: 'a', tools: {} }, '/tools'],
      [{ name: 'a', config: [] }, '/config'],
      [{ name: 'a', metadata: { k: 'a\u0000' } }, '/metadata/k'],
      [{ name: 'a', systemPrompt: 5 }, '/systemPrompt'],
      [{ name: 'a', unknown: 1 }, '/unknown'],
      [{ name: 'a\ud800' }, '/name'],
    ];
    for (const [input, field] of bad) await expectError(t.store.agents.create(ctx, input as never), 'agentstore.validation', { field });
    await expectError(t.store.agents.create(ctx, { name: 'big', systemPrompt: 'x'.repeat(150_000), metadata: { pad: 'y'.repeat(150_000) } }), 'agentstore.payload_too_large');
    for (const id of ['nope', "x'; drop table agents; --", '0190A0A0-0000-7000-8000-000000000001']) {
      await expectError(t.store.agents.get(ctx, id), 'agentstore.validation', { field: 'id' });
      await expectError(t.store.agents.patch(ctx, id, { name: 'x' }), 'agentstore.validation', { field: 'id' });
    }
    await expectError(t.store.agents.get(ctx, '0190a0a0-0000-7000-8000-000000000001'), 'agentstore.not_found');
    expect(await rowsOf(t.store, ctx, 'agents')).toBe(0);
  });

  it('roles: viewers read, members write, nobody else', async () => {
    const { ctx } = await newTenant(t.store);
    const { agent } = await t.store.agents.create(asRole(ctx, 'member'), { name: 'r' });
    const viewer = asRole(ctx, 'viewer');
    expect((await t.store.agents.get(viewer, agent.id)).id).toBe(agent.id);
    expect((await t.store.agents.list(viewer)).items).toHaveLength(1);
    expect((await t.store.agents.listVersions(viewer, agent.id)).items).toHaveLength(1);
    await expectError(t.store.agents.create(viewer, { name: 'x' }), 'agentstore.forbidden');
    await expectError(t.store.agents.patch(viewer, agent.id, { name: 'x' }), 'agentstore.forbidden');
    await expectError(t.store.agents.rollback(viewer, agent.id, 1), 'agentstore.forbidden');
    await expectError(t.store.agents.delete(viewer, agent.id), 'agentstore.forbidden');
  });

  describe('concurrency', () => {
    it('20 concurrent patches of one agent: versions 2..21, each once, none lost', async () => {
      const { ctx } = await newTenant(t.store);
      const { agent } = await t.store.agents.create(ctx, { name: 'c', metadata: {} });
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => t.store.agents.patch(ctx, agent.id, { metadata: { [`k${i}`]: i } })));
      expect(results.map((r) => r.version).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 2));
      const final = await t.store.agents.get(ctx, agent.id);
      expect(Object.keys(final.metadata)).toHaveLength(20);
      expect(await rowsOf(t.store, ctx, 'agent_versions')).toBe(21);
    });
  });
});
