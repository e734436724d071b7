import { AgentstoreError } from '../../core/errors.js';
import { unstorableText } from '../../core/text.js';
import { toTimestamp } from '../../core/time.js';

export const TASK_STATUSES = ['todo', 'in_progress', 'blocked', 'review', 'done', 'cancelled'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/**
 * The status changes a task may make (docs/api.md "Task status"). Work goes forward through
 * review to done, may block and unblock, and anything open may be cancelled; done and
 * cancelled tasks are reopened to `todo` (or done ones back to work). Setting the status a
 * task has is no change and always allowed.
 */
export const TRANSITIONS: Readonly<Record<TaskStatus, readonly TaskStatus[]>> = {
  todo: ['in_progress', 'blocked', 'done', 'cancelled'],
  in_progress: ['todo', 'blocked', 'review', 'done', 'cancelled'],
  blocked: ['todo', 'in_progress', 'cancelled'],
  review: ['in_progress', 'done', 'cancelled'],
  done: ['todo', 'in_progress'],
  cancelled: ['todo'],
};

export const TASK_LIMITS = {
  title: 500,
  labels: 20,
  label: 64,
  dependsOn: 50,
  priorityMax: 100,
  /** Levels of subtasks below a branch's top-level tasks (depth 0 … maxDepth). */
  maxDepth: 32,
  /** Tasks `subtasks` returns at most (then `truncated`). */
  subtree: 5000,
} as const;

export function validateStatus(value: unknown, field = '/status'): TaskStatus {
  if (typeof value !== 'string' || !(TASK_STATUSES as readonly string[]).includes(value)) throw AgentstoreError.invalidField(field, `must be one of ${TASK_STATUSES.join(', ')}`);
  return value as TaskStatus;
}

export function checkTransition(from: TaskStatus, to: TaskStatus): void {
  if (from === to || TRANSITIONS[from].includes(to)) return;
  throw new AgentstoreError('agentstore.conflict', `a task cannot go from ${from} to ${to}; from ${from} it may go to ${TRANSITIONS[from].join(', ')}`, {
    errors: [{ field: '/status', message: `cannot go from ${from} to ${to}` }],
    from,
    to,
    allowed: TRANSITIONS[from],
  });
}

/**
 * An assignee is an agent or a user of the tenant, as one prefixed string: `agent:<id>` or
 * `user:<id>`. One text column, so `?assignee=` is one index lookup; the id is not checked
 * against the agents or users tables (an agent may be registered elsewhere, or later).
 */
const ASSIGNEE = /^(agent|user):[A-Za-z0-9_][A-Za-z0-9_.:@-]{0,127}$/;

export function validateAssignee(value: unknown, field = '/assignee'): string {
  if (typeof value !== 'string' || !ASSIGNEE.test(value)) throw AgentstoreError.invalidField(field, 'must be "agent:<id>" or "user:<id>", the id 1-128 characters of letters, digits, _ . : @ -');
  return value;
}

// No control characters and no comma (a label is one query value).
const LABEL = /^[^\u0000-\u001f\u007f,]+$/;

export function validateLabel(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.trim().length === 0 || value.length > TASK_LIMITS.label || !LABEL.test(value) || unstorableText(value)) {
    throw AgentstoreError.invalidField(field, `must be 1-${TASK_LIMITS.label} characters, not blank, without control characters or commas`);
  }
  return value;
}

/** Distinct labels in the order given. */
export function validateLabels(value: unknown, field = '/labels'): string[] {
  if (!Array.isArray(value) || value.length > TASK_LIMITS.labels) throw AgentstoreError.invalidField(field, `must be an array of at most ${TASK_LIMITS.labels} labels`);
  const labels = value.map((label, i) => validateLabel(label, `${field}/${i}`));
  return [...new Set(labels)];
}

export function validatePriority(value: unknown, field = '/priority'): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > TASK_LIMITS.priorityMax) throw AgentstoreError.invalidField(field, `must be an integer from 0 to ${TASK_LIMITS.priorityMax}`);
  return value;
}

export function validateDue(value: unknown, field = '/dueAt'): string | null {
  return value === null ? null : toTimestamp(value, field);
}
