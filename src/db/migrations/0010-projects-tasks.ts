import { columnTypes, tenantPolicy, type Migration } from './types.js';

/**
 * Projects, their branches, the tasks of a branch (a tree by `parent_id`, ordered among
 * siblings by `rank`), task labels and dependencies, and the context documents of every
 * level: a project's, branch's and task's live in its own row (`context`, with its own
 * version), the tenant's global one in `context_global`. So a resolve is one statement of
 * key lookups, and deleting a row takes its context with it.
 *
 * Deletes cascade through foreign keys (project -> branches -> tasks -> subtasks, labels,
 * dependencies): the service decides whether a delete may cascade, the database does it in
 * the one statement.
 *
 * `rank` is compared byte by byte (COLLATE "C" on PostgreSQL, SQLite's BINARY default): a
 * fractional index key orders by code unit, which a linguistic collation would not.
 * Siblings' ranks are unique per (tenant, branch, parent); the root level has no parent,
 * hence `coalesce(parent_id, '')`, since a unique index lets NULLs repeat.
 */
export const migration0010: Migration = {
  version: 10,
  name: 'projects-tasks',
  statements(dialect) {
    const t = columnTypes(dialect);
    const binary = dialect === 'postgres' ? ' COLLATE "C"' : '';
    const context = `context ${t.json},
        context_version INTEGER NOT NULL DEFAULT 0,
        context_updated_at ${t.ts}`;
    const statements = [
      `CREATE TABLE projects (
        tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        id TEXT NOT NULL,
        name TEXT NOT NULL,
        description TEXT,
        metadata ${t.json} NOT NULL,
        version INTEGER NOT NULL,
        ${context},
        created_at ${t.ts} NOT NULL,
        updated_at ${t.ts} NOT NULL,
        PRIMARY KEY (tenant_id, id)
      )`,
      `CREATE TABLE branches (
        tenant_id TEXT NOT NULL,
        id TEXT NOT NULL,
        project_id TEXT NOT NULL,
        name TEXT NOT NULL,
        description TEXT,
        metadata ${t.json} NOT NULL,
        version INTEGER NOT NULL,
        ${context},
        created_at ${t.ts} NOT NULL,
        updated_at ${t.ts} NOT NULL,
        PRIMARY KEY (tenant_id, id),
        FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id) ON DELETE CASCADE
      )`,
      // Serves the project's branch listing (by id) and the foreign key's cascade.
      `CREATE INDEX branches_project ON branches (tenant_id, project_id, id)`,
      `CREATE UNIQUE INDEX branches_name ON branches (tenant_id, project_id, name)`,
      `CREATE TABLE tasks (
        tenant_id TEXT NOT NULL,
        id TEXT NOT NULL,
        branch_id TEXT NOT NULL,
        parent_id TEXT,
        depth INTEGER NOT NULL,
        rank TEXT${binary} NOT NULL,
        title TEXT NOT NULL,
        description TEXT,
        status TEXT NOT NULL,
        priority INTEGER NOT NULL,
        assignee TEXT,
        labels ${t.json} NOT NULL,
        due_at ${t.ts},
        metadata ${t.json} NOT NULL,
        version INTEGER NOT NULL,
        ${context},
        created_at ${t.ts} NOT NULL,
        updated_at ${t.ts} NOT NULL,
        PRIMARY KEY (tenant_id, id),
        FOREIGN KEY (tenant_id, branch_id) REFERENCES branches (tenant_id, id) ON DELETE CASCADE,
        FOREIGN KEY (tenant_id, parent_id) REFERENCES tasks (tenant_id, id) ON DELETE CASCADE
      )`,
      `CREATE UNIQUE INDEX tasks_sibling_rank ON tasks (tenant_id, branch_id, (coalesce(parent_id, '')), rank)`,
      // A task's children in order: the subtree walk, and the parent key's cascade.
      `CREATE INDEX tasks_children ON tasks (tenant_id, parent_id, rank)`,
      `CREATE INDEX tasks_branch ON tasks (tenant_id, branch_id, id)`,
      `CREATE INDEX tasks_branch_status ON tasks (tenant_id, branch_id, status, id)`,
      `CREATE INDEX tasks_branch_assignee ON tasks (tenant_id, branch_id, assignee, id)`,
      // A task's labels, one row each, so that ?label= is an index lookup; `branch_id` is the
      // task's, kept in step when the task moves.
      `CREATE TABLE task_labels (
        tenant_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        label TEXT NOT NULL,
        branch_id TEXT NOT NULL,
        PRIMARY KEY (tenant_id, task_id, label),
        FOREIGN KEY (tenant_id, task_id) REFERENCES tasks (tenant_id, id) ON DELETE CASCADE
      )`,
      `CREATE INDEX task_labels_branch ON task_labels (tenant_id, branch_id, label, task_id)`,
      `CREATE TABLE task_dependencies (
        tenant_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        depends_on_id TEXT NOT NULL,
        created_at ${t.ts} NOT NULL,
        PRIMARY KEY (tenant_id, task_id, depends_on_id),
        FOREIGN KEY (tenant_id, task_id) REFERENCES tasks (tenant_id, id) ON DELETE CASCADE,
        FOREIGN KEY (tenant_id, depends_on_id) REFERENCES tasks (tenant_id, id) ON DELETE CASCADE
      )`,
      `CREATE INDEX task_dependencies_target ON task_dependencies (tenant_id, depends_on_id)`,
      `CREATE TABLE context_global (
        tenant_id TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
        data ${t.json} NOT NULL,
        version INTEGER NOT NULL,
        created_at ${t.ts} NOT NULL,
        updated_at ${t.ts} NOT NULL
      )`,
    ];
    if (dialect === 'postgres') {
      for (const table of ['projects', 'branches', 'tasks', 'task_labels', 'task_dependencies', 'context_global']) statements.push(...tenantPolicy(table));
    }
    return statements;
  },
};
