import { fromJsonColumn, toIso } from '../../db/dialect.js';
import type { BranchesTable, ProjectsTable } from '../../db/schema.js';
import type { JsonObject } from './fields.js';

export interface Project {
  readonly id: string;
  readonly name: string;
  readonly description: string | null;
  readonly metadata: JsonObject;
  readonly version: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface Branch {
  readonly id: string;
  readonly projectId: string;
  readonly name: string;
  readonly description: string | null;
  readonly metadata: JsonObject;
  readonly version: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** The columns of a listing or a read: the context document stays in the row unread. */
export const PROJECT_COLUMNS = ['id', 'name', 'description', 'metadata', 'version', 'created_at', 'updated_at'] as const;
export const BRANCH_COLUMNS = ['id', 'project_id', 'name', 'description', 'metadata', 'version', 'created_at', 'updated_at'] as const;

export type ProjectRow = Pick<ProjectsTable, (typeof PROJECT_COLUMNS)[number]>;
export type BranchRow = Pick<BranchesTable, (typeof BRANCH_COLUMNS)[number]>;

export function toProject(row: ProjectRow): Project {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    metadata: fromJsonColumn<JsonObject>(row.metadata),
    version: Number(row.version),
    createdAt: toIso(row.created_at),
    updatedAt: toIso(row.updated_at),
  };
}

export function toBranch(row: BranchRow): Branch {
  return {
    id: row.id,
    projectId: row.project_id,
    name: row.name,
    description: row.description,
    metadata: fromJsonColumn<JsonObject>(row.metadata),
    version: Number(row.version),
    createdAt: toIso(row.created_at),
    updatedAt: toIso(row.updated_at),
  };
}
