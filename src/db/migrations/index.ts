import { migration0001 } from './0001-tenancy-audit-changes.js';
import { migration0002 } from './0002-collections-counters.js';
import { migration0003 } from './0003-least-privilege.js';
import { migration0004 } from './0004-change-positions.js';
import { migration0005 } from './0005-tenant-records-view.js';
import { migration0006 } from './0006-record-expiry.js';
import { migration0008 } from './0008-conversations.js';
import { migration0009 } from './0009-agents.js';
import { migration0010 } from './0010-projects-tasks.js';
import type { Migration } from './types.js';

/** Every migration, in order. Append only: an applied migration's text never changes. */
export const MIGRATIONS: readonly Migration[] = [migration0001, migration0002, migration0003, migration0004, migration0005, migration0006, migration0008, migration0009, migration0010];

export type { Migration } from './types.js';
