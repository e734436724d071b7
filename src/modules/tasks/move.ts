import { AgentstoreError } from '../../core/errors.js';
import type { DialectName } from '../../db/dialect.js';
import type { UnitOfWork } from '../../db/unit-of-work.js';
import { checkVersion, onlyFields, validateId, type Precondition } from '../projects/fields.js';
import { TASK_LIMITS } from './fields.js';
import { placeAmong, type Placement } from './order.js';
import { loadTask } from './rows.js';
import { assertNotUnderItself, lockTenantTree, shiftDescendants, subtreeExtent } from './tree.js';

/**
 * Where a task goes. `parentId` (null: the branch's top level) and `branchId` default to
 * those of the anchor (`before` or `after`, a task that is to be its neighbour), else to the
 * parent's branch, else to where the task is; without an anchor it goes last.
 */
export interface MoveInput {
  readonly parentId?: string | null;
  readonly branchId?: string;
  readonly before?: string;
  readonly after?: string;
}

/** The move of task `id` inside the unit `w`; its subtree follows it. */
export async function moveIn(w: UnitOfWork, dialect: DialectName, id: string, input: MoveInput, ifMatch: Precondition | undefined): Promise<void> {
  if (typeof input !== 'object' || input === null) throw AgentstoreError.invalidField('body', 'must be an object');
  onlyFields(input, ['parentId', 'branchId', 'before', 'after']);
  if (input.before !== undefined && input.after !== undefined) throw AgentstoreError.invalidField('/after', 'give before or after, not both');
  const parentGiven = input.parentId !== undefined;
  const parentId = input.parentId === undefined || input.parentId === null ? null : validateId(input.parentId, '/parentId');
  const branchGiven = input.branchId !== undefined ? validateId(input.branchId, '/branchId') : undefined;
  const anchorField = input.before !== undefined ? '/before' : '/after';
  const anchorId = input.before ?? input.after;
  if (anchorId !== undefined) validateId(anchorId, anchorField);

  const { trx, ctx } = w;
  const tenantId = ctx.tenantId;
  // First, before any row lock: two moves that each put one task under the other would each
  // find no loop in their own snapshot and together detach both from the tree.
  await lockTenantTree(trx, dialect, tenantId);
  const task = await loadTask(trx, dialect, tenantId, id, true);
  checkVersion(Number(task.version), ifMatch, 'task');
  if (anchorId === id) throw AgentstoreError.invalidField(anchorField, 'is the task being moved');
  if (parentId === id) throw AgentstoreError.invalidField('/parentId', 'is the task being moved');

  const anchor = anchorId === undefined ? undefined : await loadTask(trx, dialect, tenantId, anchorId).catch(() => {
    throw AgentstoreError.invalidField(anchorField, 'is no task of this tenant');
  });
  const parent = parentId === null ? undefined : await loadTask(trx, dialect, tenantId, parentId).catch(() => {
    throw AgentstoreError.invalidField('/parentId', 'is no task of this tenant');
  });
  const targetParent = parentGiven ? parentId : anchor ? anchor.parent_id : task.parent_id;
  const targetBranch = branchGiven ?? parent?.branch_id ?? anchor?.branch_id ?? task.branch_id;

  if (parent && parent.branch_id !== targetBranch) throw AgentstoreError.invalidField('/parentId', 'is a task of another branch than branchId');
  if (anchor && (anchor.parent_id !== targetParent || anchor.branch_id !== targetBranch)) throw AgentstoreError.invalidField(anchorField, 'is not a sibling at the place the task moves to');
  if (branchGiven !== undefined && targetBranch !== task.branch_id) {
    const branch = await trx.selectFrom('branches').select('id').where('tenant_id', '=', tenantId).where('id', '=', branchGiven).executeTakeFirst();
    if (!branch) throw AgentstoreError.invalidField('/branchId', 'is no branch of this tenant');
  }
  if (targetParent !== null) await assertNotUnderItself(trx, tenantId, id, targetParent);

  // The new depth: under the parent asked for, else beside the anchor, else where it was.
  const depth = parent ? Number(parent.depth) + 1 : targetParent === null ? 0 : anchor ? Number(anchor.depth) : Number(task.depth);
  const delta = depth - Number(task.depth);
  const moved = targetBranch !== task.branch_id || delta !== 0;
  if (delta > 0) {
    const { maxDepth } = await subtreeExtent(trx, tenantId, id);
    if (maxDepth + delta > TASK_LIMITS.maxDepth) throw AgentstoreError.invalidField('/parentId', `subtasks nest at most ${TASK_LIMITS.maxDepth} levels; this move would go deeper`);
  }

  const placement: Placement = input.before !== undefined ? { before: anchorId as string } : input.after !== undefined ? { after: anchorId as string } : { end: true };
  const anchorRank = anchor ? async () => (await loadTask(trx, dialect, tenantId, anchor.id)).rank : undefined;
  const rank = await placeAmong(trx, dialect, { tenantId, branchId: targetBranch, parentId: targetParent }, id, placement, anchorRank);
  const version = Number(task.version) + 1;
  await trx
    .updateTable('tasks')
    .set({ branch_id: targetBranch, parent_id: targetParent, depth, rank, version, updated_at: w.now })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .execute();
  if (moved) await shiftDescendants(trx, tenantId, id, targetBranch, delta);
  await w.record({
    action: 'move',
    resourceType: 'task',
    resourceId: id,
    version,
    details: { from: { branchId: task.branch_id, parentId: task.parent_id }, to: { branchId: targetBranch, parentId: targetParent, rank } },
    data: { id, branchId: targetBranch, parentId: targetParent, depth, rank, version },
  });
}
