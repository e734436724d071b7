import { Type } from '@fastify/type-provider-typebox';
import { PageQuery, Timestamps, pageOf, setEtag, tenantOf, withProblems, type Api, type RouteDeps } from '../../server/route-kit.js';
import { CascadeQuery, CreateHeaders, IdParams, IfMatchHeader, Metadata, Nullable, ifMatchOf, keyOf, sendCreated } from './route-schemas.js';

const ProjectSchema = Type.Object(
  { id: Type.String(), name: Type.String(), description: Nullable(Type.String()), metadata: Metadata, version: Type.Integer(), ...Timestamps },
  { $id: 'Project' },
);
const BranchSchema = Type.Object(
  { id: Type.String(), projectId: Type.String(), name: Type.String(), description: Nullable(Type.String()), metadata: Metadata, version: Type.Integer(), ...Timestamps },
  { $id: 'Branch' },
);
const fields = {
  name: Type.String({ minLength: 1, maxLength: 200 }),
  description: Type.Optional(Nullable(Type.String({ maxLength: 10_000 }))),
  metadata: Type.Optional(Metadata),
};
const CreateBody = Type.Object(fields, { additionalProperties: false });
const PatchBody = Type.Object({ ...fields, name: Type.Optional(fields.name) }, { additionalProperties: false });

export async function projectRoutes(app: Api, { store }: RouteDeps): Promise<void> {
  const projects = store.projects;
  const branches = store.branches;
  let tags = ['projects'];

  app.post(
    '/v1/projects',
    { schema: { tags, summary: 'Create a project', headers: CreateHeaders, body: CreateBody, response: withProblems({ 201: ProjectSchema }) } },
    async (req, reply) => {
      const { project, replayed } = await projects.create(tenantOf(req), req.body, keyOf(req.headers['idempotency-key']));
      return sendCreated(reply, project, `/v1/projects/${project.id}`, replayed);
    },
  );
  app.get('/v1/projects', { schema: { tags, summary: 'List projects, oldest first', querystring: Type.Object(PageQuery, { additionalProperties: false }), response: withProblems({ 200: pageOf(ProjectSchema) }) } }, (req) =>
    projects.list(tenantOf(req), req.query),
  );
  app.get('/v1/projects/:id', { schema: { tags, summary: 'Get a project', params: IdParams, response: withProblems({ 200: ProjectSchema }) } }, async (req, reply) => {
    const project = await projects.get(tenantOf(req), req.params.id);
    setEtag(reply, project.version);
    return project;
  });
  app.patch(
    '/v1/projects/:id',
    { schema: { tags, summary: 'Change a project (metadata is replaced whole)', params: IdParams, headers: IfMatchHeader, body: PatchBody, response: withProblems({ 200: ProjectSchema }) } },
    async (req, reply) => {
      const project = await projects.update(tenantOf(req), req.params.id, req.body, ifMatchOf(req.headers['if-match']));
      setEtag(reply, project.version);
      return project;
    },
  );
  app.delete(
    '/v1/projects/:id',
    { schema: { tags, summary: 'Delete a project (with ?cascade=true, its branches and tasks too)', params: IdParams, headers: IfMatchHeader, querystring: CascadeQuery, response: withProblems({ 204: Type.Null() }) } },
    async (req, reply) => {
      await projects.delete(tenantOf(req), req.params.id, { ...ifMatchOf(req.headers['if-match']), cascade: req.query.cascade === true });
      return reply.status(204).send(null);
    },
  );

  tags = ['branches'];
  app.post(
    '/v1/projects/:id/branches',
    { schema: { tags, summary: 'Create a branch of a project (names are unique in the project)', params: IdParams, headers: CreateHeaders, body: CreateBody, response: withProblems({ 201: BranchSchema }) } },
    async (req, reply) => {
      const { branch, replayed } = await branches.create(tenantOf(req), req.params.id, req.body, keyOf(req.headers['idempotency-key']));
      return sendCreated(reply, branch, `/v1/branches/${branch.id}`, replayed);
    },
  );
  app.get(
    '/v1/projects/:id/branches',
    { schema: { tags, summary: "List a project's branches, oldest first", params: IdParams, querystring: Type.Object(PageQuery, { additionalProperties: false }), response: withProblems({ 200: pageOf(BranchSchema) }) } },
    (req) => branches.list(tenantOf(req), req.params.id, req.query),
  );
  app.get('/v1/branches/:id', { schema: { tags, summary: 'Get a branch', params: IdParams, response: withProblems({ 200: BranchSchema }) } }, async (req, reply) => {
    const branch = await branches.get(tenantOf(req), req.params.id);
    setEtag(reply, branch.version);
    return branch;
  });
  app.patch(
    '/v1/branches/:id',
    { schema: { tags, summary: 'Change a branch', params: IdParams, headers: IfMatchHeader, body: PatchBody, response: withProblems({ 200: BranchSchema }) } },
    async (req, reply) => {
      const branch = await branches.update(tenantOf(req), req.params.id, req.body, ifMatchOf(req.headers['if-match']));
      setEtag(reply, branch.version);
      return branch;
    },
  );
  app.delete(
    '/v1/branches/:id',
    { schema: { tags, summary: 'Delete a branch (with ?cascade=true, its tasks too)', params: IdParams, headers: IfMatchHeader, querystring: CascadeQuery, response: withProblems({ 204: Type.Null() }) } },
    async (req, reply) => {
      await branches.delete(tenantOf(req), req.params.id, { ...ifMatchOf(req.headers['if-match']), cascade: req.query.cascade === true });
      return reply.status(204).send(null);
    },
  );
}
