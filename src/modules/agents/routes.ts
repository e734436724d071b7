import { Type, type TSchema } from '@fastify/type-provider-typebox';
import { PageQuery, Timestamps, emptyBodyAsObject, pageOf, parseIfMatch, setEtag, tenantOf, withProblems, type Api, type RouteDeps } from '../../server/route-kit.js';
import type { AgentInput, AgentPatch } from './types.js';
import { MAX_SECRET_BYTES, MAX_TAGS, MAX_TOOLS } from './validation.js';

const Obj = (description: string) => Type.Record(Type.String(), Type.Unknown(), { description });
const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
const Status = Type.Union([Type.Literal('active'), Type.Literal('paused'), Type.Literal('archived')]);

// The service checks the same bounds (validation.ts) for library callers.
const FIELDS = {
  name: Type.String({ minLength: 1, maxLength: 200 }),
  description: Nullable(Type.String({ maxLength: 10_000 })),
  industry: Nullable(Type.String({ maxLength: 200 })),
  model: Nullable(Type.String({ maxLength: 200, description: 'e.g. gpt-4.1, claude-sonnet-4' })),
  provider: Nullable(Type.String({ maxLength: 100, description: 'e.g. openai, anthropic' })),
  modelSettings: Obj('model and provider settings: temperature, max tokens, base URL ...'),
  systemPrompt: Nullable(Type.String({ maxLength: 200_000 })),
  tools: Type.Array(Type.Unknown(), { maxItems: MAX_TOOLS, description: 'tool definitions, any JSON' }),
  config: Obj("the agent's configuration: any JSON object"),
  status: Status,
  tags: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: MAX_TAGS }),
  metadata: Obj('any JSON object'),
};
const AgentFieldsSchema = Type.Object(FIELDS, { $id: 'AgentFields' });
export const AgentSchema = Type.Object({ id: Type.String(), version: Type.Integer(), ...Timestamps, ...FIELDS }, { $id: 'Agent' });
const { name, ...optional } = FIELDS;
const CreateBody = Type.Object(
  { name, ...Object.fromEntries(Object.entries(optional).map(([key, schema]) => [key, Type.Optional(schema)])) },
  { additionalProperties: false },
);
const PatchBody = Type.Object(
  Object.fromEntries(Object.entries(FIELDS).map(([key, schema]) => [key, Type.Optional(key === 'name' || key === 'status' ? schema : Type.Union([schema, Type.Null()]))])),
  { additionalProperties: false, description: 'a JSON merge patch (RFC 7396): objects merge, arrays replace, null clears a field' },
);
const VersionSummarySchema = Type.Object(
  {
    agentId: Type.String(),
    version: Type.Integer(),
    action: Type.Union([Type.Literal('create'), Type.Literal('update'), Type.Literal('rollback')]),
    changed: Type.Array(Type.String(), { description: 'the top-level fields this version changed' }),
    actor: Type.Object({ type: Type.String(), id: Type.String() }),
    requestId: Nullable(Type.String()),
    rolledBackFrom: Nullable(Type.Integer()),
    createdAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'AgentVersionSummary' },
);
const VersionSchema = Type.Object({ ...VersionSummarySchema.properties, agent: AgentFieldsSchema }, { $id: 'AgentVersion' });
const SecretSchema = Type.Object({ name: Type.String(), keyId: Type.String(), ...Timestamps }, { $id: 'AgentSecret' });

const Id = Type.String({ maxLength: 64 });
const IdParams = Type.Object({ id: Id });
const VersionParams = Type.Object({ id: Id, n: Type.Integer({ minimum: 1, maximum: 2 ** 31 - 1 }) });
const SecretParams = Type.Object({ id: Id, name: Type.String({ maxLength: 128 }) });
const IfMatch = Type.Object({ 'if-match': Type.Optional(Type.String({ maxLength: 64 })) });
const NoQuery = Type.Object({}, { additionalProperties: false });
const tags = ['agents'];

const ifMatchOf = (header: string | undefined) => {
  const ifMatch = parseIfMatch(header);
  return ifMatch === undefined ? {} : { ifMatch };
};

export async function agentRoutes(app: Api, { store }: RouteDeps): Promise<void> {
  const svc = store.agents;

  app.post(
    '/v1/agents',
    {
      schema: {
        tags,
        summary: 'Create an agent (version 1)',
        headers: Type.Object({ 'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 255 })) }),
        body: CreateBody,
        response: withProblems({ 201: AgentSchema }),
      },
    },
    async (req, reply) => {
      const key = req.headers['idempotency-key'];
      const { agent, replayed } = await svc.create(tenantOf(req), req.body as AgentInput, key ? { idempotencyKey: key } : {});
      setEtag(reply, agent.version);
      void reply.header('location', `/v1/agents/${agent.id}`);
      if (replayed) void reply.header('idempotent-replayed', 'true');
      return reply.status(201).send(agent);
    },
  );

  app.get(
    '/v1/agents',
    {
      schema: {
        tags,
        summary: 'List agents: by status, tag, name prefix or substring; keyset pagination',
        querystring: Type.Object(
          {
            status: Type.Optional(Status),
            tag: Type.Optional(Type.String({ maxLength: 64 })),
            q: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'matched against the name, case-insensitively' })),
            match: Type.Optional(Type.Union([Type.Literal('prefix'), Type.Literal('substring')], { description: 'how q matches (default prefix, ordered by name)' })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, description: 'page size (default 50)' })),
            cursor: PageQuery.cursor,
          },
          { additionalProperties: false },
        ),
        response: withProblems({ 200: pageOf(AgentSchema) }),
      },
    },
    (req) => svc.list(tenantOf(req), req.query),
  );

  app.get('/v1/agents/:id', { schema: { tags, summary: 'Get an agent', params: IdParams, querystring: NoQuery, response: withProblems({ 200: AgentSchema }) } }, async (req, reply) => {
    // As the records' get: the stored document is sent as it is, without a parse and a
    // re-serialisation (AgentSchema still documents the shape).
    const { version, json } = await svc.getJson(tenantOf(req), req.params.id);
    setEtag(reply, version);
    return reply.type('application/json; charset=utf-8').send(json);
  });

  app.patch(
    '/v1/agents/:id',
    { schema: { tags, summary: 'Update an agent with a JSON merge patch; writes the next version', params: IdParams, headers: IfMatch, body: PatchBody, response: withProblems({ 200: AgentSchema }) } },
    async (req, reply) => {
      const agent = await svc.patch(tenantOf(req), req.params.id, req.body as AgentPatch, ifMatchOf(req.headers['if-match']));
      setEtag(reply, agent.version);
      return agent;
    },
  );

  app.delete(
    '/v1/agents/:id',
    { schema: { tags, summary: 'Delete an agent with its versions and secrets', params: IdParams, headers: IfMatch, response: withProblems({ 204: Type.Null() }) } },
    async (req, reply) => {
      await svc.delete(tenantOf(req), req.params.id, ifMatchOf(req.headers['if-match']));
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/v1/agents/:id/versions',
    {
      schema: {
        tags,
        summary: "An agent's versions, newest first (who changed which fields)",
        params: IdParams,
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: withProblems({ 200: pageOf(VersionSummarySchema) }),
      },
    },
    (req) => svc.listVersions(tenantOf(req), req.params.id, req.query),
  );

  app.get('/v1/agents/:id/versions/:n', { schema: { tags, summary: 'One version of an agent, with its fields', params: VersionParams, querystring: NoQuery, response: withProblems({ 200: VersionSchema }) } }, (req) =>
    svc.getVersion(tenantOf(req), req.params.id, req.params.n),
  );

  app.post(
    '/v1/agents/:id/rollback',
    {
      schema: {
        tags,
        summary: 'Write a new version equal to an earlier one',
        params: IdParams,
        headers: IfMatch,
        body: Type.Object({ version: Type.Integer({ minimum: 1, maximum: 2 ** 31 - 1 }) }, { additionalProperties: false }),
        response: withProblems({ 200: AgentSchema }),
      },
    },
    async (req, reply) => {
      const agent = await svc.rollback(tenantOf(req), req.params.id, req.body.version, ifMatchOf(req.headers['if-match']));
      setEtag(reply, agent.version);
      return agent;
    },
  );

  app.get(
    '/v1/agents/:id/secrets',
    {
      schema: {
        tags,
        summary: "An agent's secrets: names and timestamps, never values",
        params: IdParams,
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: withProblems({ 200: pageOf(SecretSchema) }),
      },
    },
    (req) => svc.listSecrets(tenantOf(req), req.params.id, req.query),
  );

  app.put(
    '/v1/agents/:id/secrets/:name',
    {
      schema: {
        tags,
        summary: 'Store a secret, encrypted (admins; 503 when no encryption key is configured)',
        params: SecretParams,
        body: Type.Object({ value: Type.String({ minLength: 1, maxLength: MAX_SECRET_BYTES }) }, { additionalProperties: false }),
        response: withProblems({ 200: SecretSchema, 201: SecretSchema }),
      },
    },
    async (req, reply) => {
      const { secret, created } = await svc.setSecret(tenantOf(req), req.params.id, req.params.name, req.body.value);
      return reply.status(created ? 201 : 200).send(secret);
    },
  );

  app.delete('/v1/agents/:id/secrets/:name', { schema: { tags, summary: 'Delete a secret (admins)', params: SecretParams, response: withProblems({ 204: Type.Null() }) } }, async (req, reply) => {
    await svc.deleteSecret(tenantOf(req), req.params.id, req.params.name);
    return reply.status(204).send(null);
  });

  app.post(
    '/v1/agents/:id/secrets/:name/reveal',
    {
      preValidation: emptyBodyAsObject,
      schema: {
        tags,
        summary: "A secret's value (admins; audited)",
        params: SecretParams,
        body: Type.Optional(Type.Object({}, { additionalProperties: false })),
        response: withProblems({ 200: Type.Object({ name: Type.String(), value: Type.String(), updatedAt: Type.String({ format: 'date-time' }) }) }),
      },
    },
    async (req, reply) => {
      // Never cached anywhere between here and the caller.
      void reply.header('cache-control', 'no-store');
      return svc.revealSecret(tenantOf(req), req.params.id, req.params.name);
    },
  );
}
