/**
 * The plans of the task listings and the subtree walk, on both dialects, as the store runs
 * them (PostgreSQL: the runtime role, RLS in force). 24,000 tasks in four branches of one
 * tenant: a branch's page filtered by status, assignee or label must be a search of the
 * matching index that stops after the page, and a subtree walk must search the children
 * index level by level, never read the table.
 *
 * Filters given together are served by one of their indexes (the label's, else the
 * status's), the others checked on the rows it yields: no index covers every combination,
 * and PostgreSQL picks among the plans by its estimates, so only single filters are pinned.
 */
import { CompiledQuery, sql } from 'kysely';
import { beforeAll, expect, it } from 'vitest';
import type { TenantContext } from '../../src/core/context.js';
import { uuidv7 } from '../../src/core/ids.js';
import { listQuery } from '../../src/modules/tasks/list-query.js';
import { evenRanks } from '../../src/modules/tasks/rank.js';
import { subtreeQuery } from '../../src/modules/tasks/tree.js';
import { forEachBackend, openTestDb, useTestStore } from '../helpers/backends.js';
import { newTenant } from '../helpers/fixtures.js';

const MAIN_TASKS = 20_000;
const OTHER_TASKS = 1_000;
const STATUSES = ['todo', 'in_progress', 'blocked', 'review', 'done', 'cancelled'];

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  'Rows Removed by Filter'?: number;
  Plans?: PlanNode[];
}
const nodes = (plan: PlanNode): PlanNode[] => [plan, ...(plan.Plans ?? []).flatMap(nodes)];
const rowsRead = (plan: PlanNode[]) => plan.filter((n) => /Scan/.test(n['Node Type'])).reduce((sum, n) => sum + (n['Actual Rows'] + (n['Rows Removed by Filter'] ?? 0)) * n['Actual Loops'], 0);

forEachBackend('tasks: listing and subtree plans', (backend) => {
  const t = useTestStore(backend);
  let ctx: TenantContext;
  let main: string;
  let root: string;
  const now = '2026-01-01T00:00:00.000Z';

  beforeAll(async () => {
    ({ ctx } = await newTenant(t.store));
    const project = (await t.store.projects.create(ctx, { name: 'planned' })).project;
    const branches: string[] = [];
    for (let b = 0; b < 4; b++) branches.push((await t.store.branches.create(ctx, project.id, { name: `b${b}` })).branch.id);
    main = branches[0] as string;
    await t.store.internals.db.inTenant(ctx.tenantId, async (trx) => {
      for (const [b, branchId] of branches.entries()) {
        const n = b === 0 ? MAIN_TASKS : OTHER_TASKS;
        const ranks = evenRanks(n);
        for (let start = 0; start < n; start += 400) {
          const tasks = [];
          const labels = [];
          for (let i = start; i < Math.min(n, start + 400); i++) {
            const id = uuidv7();
            // 1 task in 1,000 is assigned to "rare" and labelled "rare"; status by i % 6.
            const assignee = i % 1000 === 7 ? 'agent:rare' : `agent:a${i % 20}`;
            const label = i % 1000 === 7 ? 'rare' : `l${i % 10}`;
            tasks.push({ tenant_id: ctx.tenantId, id, branch_id: branchId, parent_id: null, depth: 0, rank: ranks[i] as string, title: `t${i}`, status: STATUSES[i % 6] as string, priority: 0, assignee, labels: JSON.stringify([label, 'all']), metadata: '{}', version: 1, created_at: now, updated_at: now });
            labels.push({ tenant_id: ctx.tenantId, task_id: id, label, branch_id: branchId }, { tenant_id: ctx.tenantId, task_id: id, label: 'all', branch_id: branchId });
          }
          await trx.insertInto('tasks').values(tasks).execute();
          await trx.insertInto('task_labels').values(labels).execute();
        }
      }
    });
    // A subtree of 3 levels (1 + 10 + 100 tasks) under a new top-level task of the main branch.
    root = (await t.store.tasks.create(ctx, main, { title: 'root' })).task.id;
    await t.store.internals.db.inTenant(ctx.tenantId, async (trx) => {
      const ranks = evenRanks(10);
      const rows = [];
      for (let a = 0; a < 10; a++) {
        const child = uuidv7();
        rows.push({ tenant_id: ctx.tenantId, id: child, branch_id: main, parent_id: root, depth: 1, rank: ranks[a] as string, title: `c${a}`, status: 'todo', priority: 0, labels: '[]', metadata: '{}', version: 1, created_at: now, updated_at: now });
        for (let b = 0; b < 10; b++) rows.push({ tenant_id: ctx.tenantId, id: uuidv7(), branch_id: main, parent_id: child, depth: 2, rank: ranks[b] as string, title: `c${a}.${b}`, status: 'todo', priority: 0, labels: '[]', metadata: '{}', version: 1, created_at: now, updated_at: now });
      }
      await trx.insertInto('tasks').values(rows).execute();
    });
    // As the owner: the runtime role may not ANALYZE.
    const owner = openTestDb(t.database);
    try {
      await sql`analyze`.execute(owner.kysely);
    } finally {
      await owner.close();
    }
  });

  const filters = () => [
    // Unfiltered, the branch holds most of the tenant's tasks: the primary key in id order serves as well.
    { status: undefined, assignee: undefined, label: undefined, index: /^tasks_branch$|^tasks_pkey$|USING INDEX (tasks_branch|sqlite_autoindex_tasks_1) / },
    { status: 'blocked', assignee: undefined, label: undefined, index: /tasks_branch_status/ },
    { status: undefined, assignee: 'agent:rare', label: undefined, index: /tasks_branch_assignee/ },
    { status: undefined, assignee: undefined, label: 'rare', index: /task_labels_branch/ },
    { status: undefined, assignee: undefined, label: 'all', index: /task_labels_branch/ },
  ];

  if (backend.dialect === 'postgres') {
    const explain = (query: { sql: string; parameters: readonly unknown[] }) =>
      t.store.internals.db.inTenant(
        ctx.tenantId,
        async (trx) => {
          const result = await trx.executeQuery<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(CompiledQuery.raw(`explain (analyze, format json) ${query.sql}`, [...query.parameters]));
          return nodes((result.rows[0]?.['QUERY PLAN'][0] as { Plan: PlanNode }).Plan);
        },
        { readOnly: true },
      );

    it('a branch page, filtered or not, searches its index in id order and stops after the page', async () => {
      for (const f of filters()) {
        const where = JSON.stringify(f);
        const plan = await explain(listQuery(t.store.internals.db.kysely, ctx.tenantId, main, { ...f, after: undefined }, 51).compile());
        const types = plan.map((n) => n['Node Type']);
        expect(types, where).not.toContain('Seq Scan');
        expect(types, where).not.toContain('Sort');
        expect(plan.some((n) => f.index.test(n['Index Name'] ?? '')), `${where}: ${plan.map((n) => n['Index Name']).join(',')}`).toBe(true);
        expect(rowsRead(plan), where).toBeLessThan(400);
      }
    });

    it('a subtree walk searches the children index and reads only the subtree', async () => {
      const query = subtreeQuery('postgres', ctx.tenantId, root, 5001).compile(t.store.internals.db.kysely);
      const plan = await explain(query);
      expect(plan.filter((n) => n['Relation Name'] === 'tasks').map((n) => n['Node Type'])).not.toContain('Seq Scan');
      expect(plan.some((n) => n['Index Name'] === 'tasks_children')).toBe(true);
      expect(rowsRead(plan)).toBeLessThan(1000);
      expect((await t.store.tasks.subtasks(ctx, root)).items).toHaveLength(110);
    });
  } else {
    const explain = (query: { sql: string; parameters: readonly unknown[] }) =>
      t.store.internals.db.inTenant(
        ctx.tenantId,
        async (trx) => (await trx.executeQuery<{ detail: string }>(CompiledQuery.raw(`explain query plan ${query.sql}`, [...query.parameters]))).rows.map((r) => r.detail),
        { readOnly: true },
      );

    it('a branch page, filtered or not, searches its index in id order (no table scan, no sort)', async () => {
      for (const f of filters()) {
        const plan = await explain(listQuery(t.store.internals.db.kysely, ctx.tenantId, main, { ...f, after: undefined }, 51).compile());
        const where = `${JSON.stringify(f)}: ${plan.join(' | ')}`;
        expect(plan.some((d) => /^SCAN (t|l|tasks|task_labels)\b/.test(d)), where).toBe(false);
        expect(plan.some((d) => /TEMP B-TREE/.test(d)), where).toBe(false);
        expect(plan.some((d) => f.index.test(d)), where).toBe(true);
      }
    });

    it('a subtree walk searches the children index', async () => {
      const plan = await explain(subtreeQuery('sqlite', ctx.tenantId, root, 5001).compile(t.store.internals.db.kysely));
      const where = plan.join(' | ');
      expect(plan.some((d) => /^SCAN (t|tasks)\b/.test(d)), where).toBe(false);
      expect(plan.some((d) => /tasks_children/.test(d)), where).toBe(true);
      expect((await t.store.tasks.subtasks(ctx, root)).items).toHaveLength(110);
    });
  }
});
