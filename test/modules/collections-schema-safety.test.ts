/**
 * Tenants' JSON Schemas cannot crash the process, bypass validation, leak across tenants
 * or stall the shared event loop: what is refused when a schema is set (400 on `schema`,
 * nothing stored), and what a record costs to check against what is accepted.
 */
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { forEachBackend, useTestStore } from '../helpers/backends.js';
import { expectError, newTenant, snapshotCounts } from '../helpers/fixtures.js';

/** Runs `action` and returns how long it held the (single) thread, in ms, with its outcome. */
async function timed<T>(action: () => Promise<T>): Promise<{ ms: number; result: PromiseSettledResult<T> }> {
  const start = performance.now();
  const [result] = await Promise.allSettled([action()]);
  return { ms: performance.now() - start, result: result! };
}

const REFUSED_SCHEMAS: Record<string, Record<string, unknown>> = {
  '$async at the top': { $async: true, type: 'object', required: ['x'] },
  '$async in $defs, reached by $ref': { $defs: { a: { $async: true, required: ['x'] } }, properties: { p: { $ref: '#/$defs/a' } } },
  '$async in allOf': { allOf: [{ $async: true }] },
  '$async in a property': { properties: { p: { $async: 1 } } },
  '$id (registered on a shared instance)': { $id: 'https://example.com/tenant-schema', type: 'object' },
  'a nested $id': { properties: { a: { $id: 'https://example.com/nested' } } },
  'a remote $ref': { $ref: 'https://json-schema.org/draft/2020-12/schema' },
  'a $ref with a malformed escape': { $ref: '#/%E0%A4%A' },
  'another $schema': { $schema: 'http://json-schema.org/draft-07/schema#' },
  'a backreference': { properties: { s: { type: 'string', pattern: '^(a)\\1$' } } },
  'a lookahead in patternProperties': { patternProperties: { '^(?=x)': { type: 'string' } } },
  'an in-place $ref loop': { anyOf: [{ type: 'string' }, { $ref: '#' }] },
  'exponential recursion': { allOf: [{ items: { $ref: '#' } }, { items: { $ref: '#' } }] },
  'exponential $defs': {
    $defs: Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`d${i}`, { allOf: [{ $ref: `#/$defs/d${i + 1}` }, { $ref: `#/$defs/d${i + 1}` }] }])),
    $ref: '#/$defs/d0',
  },
  'nesting deeper than 32': ((): Record<string, unknown> => {
    let s: Record<string, unknown> = { type: 'string' };
    for (let i = 0; i < 40; i++) s = { properties: { a: s } };
    return s;
  })(),
  'more than 500 sub-schemas': { properties: Object.fromEntries(Array.from({ length: 510 }, (_, i) => [`p${i}`, {}])) },
};

forEachBackend('collections: schema safety', (backend) => {
  const t = useTestStore(backend);

  describe('refused when set, nothing stored', () => {
    for (const [what, schema] of Object.entries(REFUSED_SCHEMAS)) {
      it(what, async () => {
        const { ctx } = await newTenant(t.store);
        const before = await snapshotCounts(t.store, ctx.tenantId);
        await expectError(t.store.collections.define(ctx, 'c', { schema }), 'agentstore.validation', { field: '/schema' });
        expect(await snapshotCounts(t.store, ctx.tenantId)).toEqual(before);
      });
    }

    it('names the pattern RE2 cannot run', async () => {
      const { ctx } = await newTenant(t.store);
      const error = await expectError(t.store.collections.define(ctx, 'c', { schema: { properties: { s: { pattern: '(?<=a)b' } } } }), 'agentstore.validation', { field: '/schema' });
      expect(error.message).toContain('(?<=a)b');
      expect(error.message).toContain('/properties/s/pattern');
    });
  });

  it('an $async schema stored before this rule is refused at the write: nothing commits, nothing crashes', async () => {
    const { ctx } = await newTenant(t.store);
    await t.store.collections.define(ctx, 'legacy', { schema: { type: 'object' } });
    // As a database written by an older version would hold it.
    const db = t.store.internals.db;
    await db.inTenant(ctx.tenantId, (trx) =>
      sql`update collections set schema = ${JSON.stringify({ $async: true, type: 'object', required: ['x'] })} where tenant_id = ${ctx.tenantId} and name = 'legacy'`.execute(trx),
    );
    const before = await snapshotCounts(t.store, ctx.tenantId);
    await expectError(t.store.collections.create(ctx, 'legacy', { y: 1 }), 'agentstore.validation', { field: '/schema' });
    expect(await snapshotCounts(t.store, ctx.tenantId)).toEqual(before);
  });

  it("one tenant's schema cannot reach or collide with another's", async () => {
    const a = await newTenant(t.store);
    const b = await newTenant(t.store);
    const shared = { $id: 'https://example.com/shared', type: 'object', required: ['secret'] };
    await expectError(t.store.collections.define(a.ctx, 'c', { schema: shared }), 'agentstore.validation', { field: '/schema' });
    await expectError(t.store.collections.define(b.ctx, 'c', { schema: shared }), 'agentstore.validation', { field: '/schema' });
    await expectError(t.store.collections.define(b.ctx, 'd', { schema: { $ref: 'https://example.com/shared' } }), 'agentstore.validation', { field: '/schema' });
  });

  it('a catastrophic-backtracking pattern runs in linear time', async () => {
    const { ctx } = await newTenant(t.store);
    await t.store.collections.define(ctx, 'redos', { schema: { properties: { s: { type: 'string', pattern: '^(a+)+$' } } } });
    // 27 characters held V8's backtracking engine for 1.1 s; 30 for 44 s.
    const { ms, result } = await timed(() => t.store.collections.create(ctx, 'redos', { s: `${'a'.repeat(27)}!` }));
    expect(result.status).toBe('rejected');
    await expectError(Promise.reject((result as PromiseRejectedResult).reason), 'agentstore.validation', { field: '/data/s' });
    expect(ms).toBeLessThan(500);
    await t.store.collections.create(ctx, 'redos', { s: 'a'.repeat(10_000) });
  });

  it('uniqueItems is linear: 20,000 distinct objects, and duplicates found whatever their key order', async () => {
    const { ctx } = await newTenant(t.store);
    await t.store.collections.define(ctx, 'uniq', { schema: { properties: { list: { type: 'array', uniqueItems: true } } } });
    const list = Array.from({ length: 20_000 }, (_, i) => ({ n: i, tag: 'x' }));
    // Ajv's own pairwise check: 2·10⁸ deep comparisons, seconds.
    const { ms, result } = await timed(() => t.store.collections.create(ctx, 'uniq', { list }));
    expect(result.status, String((result as PromiseRejectedResult).reason)).toBe('fulfilled');
    // Linear is tens of ms; the pairwise check tens of seconds. Loose, for a busy machine.
    expect(ms).toBeLessThan(4000);
    await expectError(t.store.collections.create(ctx, 'uniq', { list: [{ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1 }] }), 'agentstore.validation', { field: '/data/list' });
    await expectError(t.store.collections.create(ctx, 'uniq', { list: [1, 2, 1] }), 'agentstore.validation', { field: '/data/list' });
    await t.store.collections.create(ctx, 'uniq', { list: [1, '1', [1], { 1: 1 }, null, true, 1.5] });
  });

  it('a record is refused when the schema could cost too much on that many values', async () => {
    const { ctx } = await newTenant(t.store);
    // 60 passing checks on each of 400,000 items: accepted before, ~0.5-1 s of one core.
    const schema = { properties: { v: { type: 'array', items: { allOf: Array.from({ length: 60 }, (_, i) => ({ minimum: -i })) } } } };
    await t.store.collections.define(ctx, 'heavy', { schema });
    await t.store.collections.create(ctx, 'heavy', { v: Array.from({ length: 1000 }, () => 0) });
    const before = await snapshotCounts(t.store, ctx.tenantId);
    const { ms, result } = await timed(() => t.store.collections.create(ctx, 'heavy', { v: Array.from({ length: 400_000 }, () => 0) }));
    await expectError(Promise.reject((result as PromiseRejectedResult).reason ?? new Error('it was accepted')), 'agentstore.validation', { field: '/data' });
    // Refused before it is checked; the time is the record's parsing and walks (loose: CI is busy).
    expect(ms).toBeLessThan(3000);
    expect(await snapshotCounts(t.store, ctx.tenantId)).toEqual(before);
  });

  it('a recursive schema that descends into the data (a tree) is accepted', async () => {
    const { ctx } = await newTenant(t.store);
    const tree = { type: 'object', required: ['name'], properties: { name: { type: 'string' }, children: { type: 'array', items: { $ref: '#' } } } };
    await t.store.collections.define(ctx, 'tree', { schema: tree });
    await t.store.collections.create(ctx, 'tree', { name: 'root', children: [{ name: 'a', children: [{ name: 'b' }] }] });
    await expectError(t.store.collections.create(ctx, 'tree', { name: 'root', children: [{ children: [] }] }), 'agentstore.validation', { field: '/data/children/0' });
  });
});
