import { expect, it } from 'vitest';
import { forEachBackend, useTestStore } from '../helpers/backends.js';
import { asRole, countRows, expectError, newTenant } from '../helpers/fixtures.js';

forEachBackend('memory blocks', (backend) => {
  const t = useTestStore(backend);
  const svc = () => t.store.memoryBlocks;

  it('PUT creates then replaces; scopes are separate blocks; get, list and delete', async () => {
    const { ctx } = await newTenant(t.store);
    const made = await svc().put(ctx, 'persona', { agentId: 'a1' }, { value: 'I am helpful', limit: 100, description: 'who I am' });
    expect(made).toMatchObject({ created: true, block: { label: 'persona', agentId: 'a1', endUserId: null, value: 'I am helpful', limit: 100, description: 'who I am', version: 1 } });
    const replaced = await svc().put(ctx, 'persona', { agentId: 'a1' }, { value: 'I am very helpful' });
    expect(replaced).toMatchObject({ created: false, block: { value: 'I am very helpful', limit: 100, description: 'who I am', version: 2 } });
    await svc().put(ctx, 'human', { agentId: 'a1', endUserId: 'u1' }, { value: 'likes tea' });
    await svc().put(ctx, 'human', { agentId: 'a1', endUserId: 'u2' }, { value: 'likes coffee' });
    await svc().put(ctx, 'human', { endUserId: 'u1' }, { value: 'shared about u1' });
    await svc().put(ctx, 'global', {}, { value: 'tenant-wide' });
    expect((await svc().get(ctx, 'human', { agentId: 'a1', endUserId: 'u2' })).value).toBe('likes coffee');
    expect((await svc().get(ctx, 'human', { endUserId: 'u1' })).value).toBe('shared about u1');
    await expectError(svc().get(ctx, 'human', { agentId: 'a1' }), 'agentstore.not_found');
    const labels = async (q = {}) => (await svc().list(ctx, q)).items.map((b) => `${b.agentId ?? '-'}/${b.endUserId ?? '-'}/${b.label}`);
    expect(await labels()).toEqual(['-/-/global', '-/u1/human', 'a1/-/persona', 'a1/u1/human', 'a1/u2/human']);
    expect(await labels({ agentId: 'a1' })).toEqual(['a1/-/persona', 'a1/u1/human', 'a1/u2/human']);
    expect(await labels({ endUserId: 'u1' })).toEqual(['-/u1/human', 'a1/u1/human']);
    const page = await svc().list(ctx, { limit: 2 });
    const rest = await svc().list(ctx, { limit: 10, cursor: page.nextCursor as string });
    expect([...page.items, ...rest.items].map((b) => b.value)).toHaveLength(5);
    await svc().remove(ctx, 'global');
    await expectError(svc().get(ctx, 'global'), 'agentstore.not_found');
    await expectError(svc().remove(ctx, 'global'), 'agentstore.not_found');
  });

  it('If-Match: two turns editing one block never lose an update', async () => {
    const { ctx } = await newTenant(t.store);
    const { block } = await svc().put(ctx, 'notes', {}, { value: 'v1' });
    const results = await Promise.allSettled([svc().put(ctx, 'notes', {}, { value: 'turn A' }, { ifMatch: block.version }), svc().put(ctx, 'notes', {}, { value: 'turn B' }, { ifMatch: block.version })]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect((failed.reason as { code: string }).code).toBe('agentstore.precondition_failed');
    expect((await svc().get(ctx, 'notes')).version).toBe(2);
    await expectError(svc().put(ctx, 'notes', {}, { value: 'x' }, { ifNoneMatch: '*' }), 'agentstore.precondition_failed');
    await expectError(svc().put(ctx, 'absent', {}, { value: 'x' }, { ifMatch: 1 }), 'agentstore.precondition_failed');
    await expectError(svc().remove(ctx, 'notes', {}, { ifMatch: 1 }), 'agentstore.precondition_failed');
    const first = await Promise.all([svc().put(ctx, 'race', {}, { value: 'a' }), svc().put(ctx, 'race', {}, { value: 'b' })]);
    expect(first.map((r) => r.created).sort()).toEqual([false, true]);
  });

  it('the character limit is enforced, naming the block; bad input is refused and writes nothing', async () => {
    const { ctx } = await newTenant(t.store);
    await svc().put(ctx, 'tiny', {}, { value: 'abc', limit: 5 });
    await expectError(svc().put(ctx, 'tiny', {}, { value: 'abcdef' }), 'agentstore.payload_too_large', { field: '/value', message: /"tiny" holds at most 5 characters/ });
    // Characters, not UTF-16 units: five emoji fit a limit of 5.
    await svc().put(ctx, 'tiny', {}, { value: '😀😀😀😀😀' });
    await expectError(svc().put(ctx, 'big', {}, { value: 'x'.repeat(5001) }), 'agentstore.payload_too_large', { field: '/value' });
    await expectError(svc().put(ctx, 'bad label', {}, { value: 'x' }), 'agentstore.validation', { field: 'label' });
    await expectError(svc().put(ctx, 'ok', { agentId: '' }, { value: 'x' }), 'agentstore.validation', { field: 'agentId' });
    await expectError(svc().put(ctx, 'ok', {}, { value: 5 as never }), 'agentstore.validation', { field: '/value' });
    await expectError(svc().put(ctx, 'ok', {}, { value: 'x', limit: 0 }), 'agentstore.validation', { field: '/limit' });
    await expectError(svc().put(asRole(ctx, 'viewer'), 'ok', {}, { value: 'x' }), 'agentstore.forbidden');
    expect(await countRows(t.store, 'memory_blocks', ctx.tenantId)).toBe(1);
  });
});
