import { Type } from '@fastify/type-provider-typebox';
import { PageQuery, Timestamps, pageOf, setEtag, tenantOf, withProblems, type Api, type RouteDeps } from '../../server/route-kit.js';
import { CascadeQuery, CreateHeaders, IdParams, IfMatchHeader, Metadata, Nullable, ifMatchOf, keyOf, sendCreated } from '../projects/route-schemas.js';
import { TASK_LIMITS, TASK_STATUSES, type TaskStatus } from './fields.js';

const Status = Type.Unsafe<TaskStatus>({ type: 'string', enum: [...TASK_STATUSES], description: 'todo | in_progress | blocked | review | done | cancelled' });
const Assignee = Type.String({ maxLength: 134, description: 'agent:<id> or user:<id>' });
const Label = Type.String({ minLength: 1, maxLength: TASK_LIMITS.label });
const Id = Type.String({ maxLength: 64 });

export const TaskSchema = Type.Object(
  {
    id: Type.String(),
    branchId: Type.String(),
    parentId: Nullable(Type.String()),
    depth: Type.Integer({ description: '0 for a top-level task of the branch' }),
    rank: Type.String({ description: 'its place among its siblings, in byte order' }),
    title: Type.String(),
    description: Nullable(Type.String()),
    status: Status,
    priority: Type.Integer(),
    assignee: Nullable(Type.String()),
    labels: Type.Array(Type.String()),
    dueAt: Nullable(Type.String({ format: 'date-time' })),
    metadata: Metadata,
    dependsOn: Type.Array(Type.String(), { description: 'ids of the tasks this one depends on' }),
    version: Type.Integer(),
    ...Timestamps,
  },
  { $id: 'Task' },
);

const fields = {
  title: Type.String({ minLength: 1, maxLength: TASK_LIMITS.title }),
  description: Type.Optional(Nullable(Type.String({ maxLength: 10_000 }))),
  status: Type.Optional(Status),
  priority: Type.Optional(Type.Integer({ minimum: 0, maximum: TASK_LIMITS.priorityMax, description: '0-100, default 0' })),
  assignee: Type.Optional(Nullable(Assignee)),
  labels: Type.Optional(Type.Array(Label, { maxItems: TASK_LIMITS.labels })),
  dueAt: Type.Optional(Nullable(Type.String({ maxLength: 64, description: 'RFC 3339 timestamp' }))),
  metadata: Type.Optional(Metadata),
};
const CreateBody = Type.Object(
  {
    ...fields,
    parentId: Type.Optional(Nullable(Id)),
    dependsOn: Type.Optional(Type.Array(Id, { maxItems: TASK_LIMITS.dependsOn })),
  },
  { additionalProperties: false },
);
const PatchBody = Type.Object({ ...fields, title: Type.Optional(fields.title) }, { additionalProperties: false });
const MoveBody = Type.Object(
  {
    parentId: Type.Optional(Nullable(Id)),
    branchId: Type.Optional(Id),
    before: Type.Optional(Id),
    after: Type.Optional(Id),
  },
  { additionalProperties: false },
);
const ListQuery = Type.Object(
  { status: Type.Optional(Status), assignee: Type.Optional(Assignee), label: Type.Optional(Label), ...PageQuery },
  { additionalProperties: false },
);
const SubtasksSchema = Type.Object({ items: Type.Array(TaskSchema), truncated: Type.Boolean({ description: `more than ${TASK_LIMITS.subtree} subtasks: the deepest were left out` }) });
const tags = ['tasks'];

export async function taskRoutes(app: Api, { store }: RouteDeps): Promise<void> {
  const tasks = store.tasks;

  app.post(
    '/v1/branches/:id/tasks',
    { schema: { tags, summary: 'Create a task in a branch (last among its siblings)', params: IdParams, headers: CreateHeaders, body: CreateBody, response: withProblems({ 201: TaskSchema }) } },
    async (req, reply) => {
      const { task, replayed } = await tasks.create(tenantOf(req), req.params.id, req.body, keyOf(req.headers['idempotency-key']));
      return sendCreated(reply, task, `/v1/tasks/${task.id}`, replayed);
    },
  );
  app.get(
    '/v1/branches/:id/tasks',
    { schema: { tags, summary: "List a branch's tasks (every level), oldest first, by status, assignee and label", params: IdParams, querystring: ListQuery, response: withProblems({ 200: pageOf(TaskSchema) }) } },
    (req) => tasks.list(tenantOf(req), req.params.id, req.query),
  );
  app.get('/v1/tasks/:id', { schema: { tags, summary: 'Get a task', params: IdParams, response: withProblems({ 200: TaskSchema }) } }, async (req, reply) => {
    const task = await tasks.get(tenantOf(req), req.params.id);
    setEtag(reply, task.version);
    return task;
  });
  app.patch(
    '/v1/tasks/:id',
    { schema: { tags, summary: 'Change a task (a status change must be an allowed transition)', params: IdParams, headers: IfMatchHeader, body: PatchBody, response: withProblems({ 200: TaskSchema }) } },
    async (req, reply) => {
      const task = await tasks.update(tenantOf(req), req.params.id, req.body, ifMatchOf(req.headers['if-match']));
      setEtag(reply, task.version);
      return task;
    },
  );
  app.delete(
    '/v1/tasks/:id',
    { schema: { tags, summary: 'Delete a task (with ?cascade=true, its subtasks too)', params: IdParams, headers: IfMatchHeader, querystring: CascadeQuery, response: withProblems({ 204: Type.Null() }) } },
    async (req, reply) => {
      await tasks.delete(tenantOf(req), req.params.id, { ...ifMatchOf(req.headers['if-match']), cascade: req.query.cascade === true });
      return reply.status(204).send(null);
    },
  );
  app.post(
    '/v1/tasks/:id/move',
    {
      schema: {
        tags,
        summary: 'Move a task (and its subtree): before or after a sibling, under another parent, to another branch',
        params: IdParams,
        headers: IfMatchHeader,
        body: MoveBody,
        response: withProblems({ 200: TaskSchema }),
      },
    },
    async (req, reply) => {
      const task = await tasks.move(tenantOf(req), req.params.id, req.body, ifMatchOf(req.headers['if-match']));
      setEtag(reply, task.version);
      return task;
    },
  );
  app.get(
    '/v1/tasks/:id/subtasks',
    { schema: { tags, summary: "The task's whole subtree, depth-first, siblings in order", params: IdParams, response: withProblems({ 200: SubtasksSchema }) } },
    (req) => tasks.subtasks(tenantOf(req), req.params.id),
  );
  app.post(
    '/v1/tasks/:id/dependencies',
    {
      schema: {
        tags,
        summary: 'Make the task depend on another (409 naming the cycle it would close)',
        params: IdParams,
        body: Type.Object({ taskId: Id }, { additionalProperties: false }),
        response: withProblems({ 200: TaskSchema }),
      },
    },
    async (req, reply) => {
      const task = await tasks.addDependency(tenantOf(req), req.params.id, req.body.taskId);
      setEtag(reply, task.version);
      return task;
    },
  );
  app.delete(
    '/v1/tasks/:id/dependencies/:dependsOnId',
    { schema: { tags, summary: 'Remove a dependency', params: Type.Object({ id: Id, dependsOnId: Id }), response: withProblems({ 200: TaskSchema }) } },
    async (req, reply) => {
      const task = await tasks.removeDependency(tenantOf(req), req.params.id, req.params.dependsOnId);
      setEtag(reply, task.version);
      return task;
    },
  );
}
