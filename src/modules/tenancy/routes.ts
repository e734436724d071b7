import { Type } from '@fastify/type-provider-typebox';
import type { Role, TenantContext } from '../../core/context.js';
import { AgentstoreError } from '../../core/errors.js';
import { PageQuery, Timestamps, emptyBodyAsObject, pageOf, tenantOf, withProblems, type Api, type RouteDeps } from '../../server/route-kit.js';
import { DEFAULT_API_KEY_ROLE } from './role-rules.js';

const RoleSchema = Type.Union([Type.Literal('owner'), Type.Literal('admin'), Type.Literal('member'), Type.Literal('viewer')]);
const TenantSchema = Type.Object({ id: Type.String(), name: Type.String(), version: Type.Integer(), ...Timestamps }, { $id: 'Tenant' });
const UserSchema = Type.Object({ id: Type.String(), email: Type.String(), role: RoleSchema, version: Type.Integer(), ...Timestamps }, { $id: 'User' });
const ApiKeyFields = {
  id: Type.String(),
  name: Type.String(),
  role: RoleSchema,
  prefix: Type.String({ description: 'recognisable start and end of the key' }),
  createdAt: Type.String({ format: 'date-time' }),
  revokedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
};
const ApiKeySchema = Type.Object(ApiKeyFields, { $id: 'ApiKey' });
const CreatedApiKeySchema = Type.Object({ ...ApiKeyFields, key: Type.String({ description: 'the secret, shown this once' }) });
const NewApiKey = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    role: Type.Optional(Type.Union(RoleSchema.anyOf, { default: DEFAULT_API_KEY_ROLE, description: 'at most the caller\'s own role' })),
  },
  { additionalProperties: false },
);
const NewUser = Type.Object(
  { email: Type.String({ minLength: 3, maxLength: 320 }), password: Type.String({ minLength: 8, maxLength: 256 }), role: RoleSchema },
  { additionalProperties: false },
);
const IdParams = Type.Object({ id: Type.String({ maxLength: 64 }) });
const TenantParams = Type.Object({ tenantId: Type.String({ maxLength: 64 }) });
const service = { auth: 'service' as const };

/** The service key acts as the owner of the tenant it manages. */
function serviceContext(tenantId: string, requestId: string): TenantContext {
  return { tenantId, actor: { type: 'service', id: 'service-key' }, role: 'owner', requestId };
}

export async function tenancyRoutes(app: Api, { store }: RouteDeps): Promise<void> {
  // --- service key: tenants and their first credentials -------------------------------
  app.post(
    '/v1/tenants',
    { config: service, schema: { tags: ['tenants'], summary: 'Create a tenant (service key)', body: Type.Object({ name: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false }), response: withProblems({ 201: TenantSchema }) } },
    async (req, reply) => reply.status(201).send(await store.tenants.create(req.body)),
  );
  app.get('/v1/tenants', { config: service, schema: { tags: ['tenants'], summary: 'List tenants (service key)', querystring: Type.Object(PageQuery, { additionalProperties: false }), response: withProblems({ 200: pageOf(TenantSchema) }) } }, (req) =>
    store.tenants.list(req.query),
  );
  app.get('/v1/tenants/:tenantId', { config: service, schema: { tags: ['tenants'], summary: 'Get a tenant (service key)', params: TenantParams, response: withProblems({ 200: TenantSchema }) } }, (req) =>
    store.tenants.get(req.params.tenantId),
  );
  app.post(
    '/v1/tenants/:tenantId/api-keys',
    { config: service, schema: { tags: ['tenants'], summary: "Create a tenant's API key (service key)", params: TenantParams, body: NewApiKey, response: withProblems({ 201: CreatedApiKeySchema }) } },
    async (req, reply) => {
      await store.tenants.assertExists(req.params.tenantId);
      return reply.status(201).send(await store.apiKeys.create(serviceContext(req.params.tenantId, String(req.id)), req.body));
    },
  );
  app.post(
    '/v1/tenants/:tenantId/users',
    { config: service, schema: { tags: ['tenants'], summary: "Create a tenant's user, e.g. its first owner (service key)", params: TenantParams, body: NewUser, response: withProblems({ 201: UserSchema }) } },
    async (req, reply) => {
      await store.tenants.assertExists(req.params.tenantId);
      return reply.status(201).send(await store.users.create(serviceContext(req.params.tenantId, String(req.id)), req.body));
    },
  );

  // --- sessions ------------------------------------------------------------------------
  app.post(
    '/v1/auth/login',
    {
      config: { auth: 'none' },
      schema: {
        tags: ['auth'],
        summary: 'Log in with email and password; returns a bearer session token',
        body: Type.Object({ tenantId: Type.String({ maxLength: 64 }), email: Type.String({ maxLength: 320 }), password: Type.String({ maxLength: 256 }) }, { additionalProperties: false }),
        response: withProblems({ 200: Type.Object({ token: Type.String(), expiresAt: Type.String({ format: 'date-time' }), tenantId: Type.String(), user: UserSchema }) }),
      },
    },
    (req) => store.auth.login(req.body, req.ip),
  );
  app.get(
    '/v1/auth/me',
    {
      schema: {
        tags: ['auth'],
        summary: 'Who the credential belongs to',
        response: withProblems({
          200: Type.Object({ tenantId: Type.String(), role: RoleSchema, actor: Type.Object({ type: Type.String(), id: Type.String() }), user: Type.Union([UserSchema, Type.Null()]) }),
        }),
      },
    },
    (req) => store.auth.me(tenantOf(req)),
  );
  // No options: a body, if any, is an empty object, so that `{"all": true}` is told it does
  // nothing instead of being ignored.
  const LogoutBody = Type.Object({}, { additionalProperties: false });
  app.post('/v1/auth/logout', { preValidation: emptyBodyAsObject, schema: { tags: ['auth'], summary: 'End the current session', body: LogoutBody, response: withProblems({ 204: Type.Null() }) } }, async (req, reply) => {
    const principal = req.principal;
    await store.auth.logout(tenantOf(req), principal?.kind === 'tenant' ? principal.sessionId : undefined);
    return reply.status(204).send(null);
  });

  // --- a tenant's own users and keys (admin) -------------------------------------------
  app.post('/v1/users', { schema: { tags: ['users'], summary: 'Create a user (admin)', body: NewUser, response: withProblems({ 201: UserSchema }) } }, async (req, reply) =>
    reply.status(201).send(await store.users.create(tenantOf(req), req.body)),
  );
  app.get('/v1/users', { schema: { tags: ['users'], summary: 'List users (admin)', querystring: Type.Object(PageQuery, { additionalProperties: false }), response: withProblems({ 200: pageOf(UserSchema) }) } }, (req) =>
    store.users.list(tenantOf(req), req.query),
  );
  app.get('/v1/users/:id', { schema: { tags: ['users'], summary: 'Get a user (admin)', params: IdParams, response: withProblems({ 200: UserSchema }) } }, (req) =>
    store.users.get(tenantOf(req), req.params.id),
  );
  app.patch(
    '/v1/users/:id',
    {
      schema: {
        tags: ['users'],
        summary: "Change a user's role or password (admin)",
        params: IdParams,
        body: Type.Object({ role: Type.Optional(RoleSchema), password: Type.Optional(Type.String({ minLength: 8, maxLength: 256 })) }, { additionalProperties: false }),
        response: withProblems({ 200: UserSchema }),
      },
    },
    (req) => {
      const body = req.body as { role?: Role; password?: string };
      if (body.role === undefined && body.password === undefined) throw AgentstoreError.invalidField('body', 'give a role or a password');
      return store.users.update(tenantOf(req), req.params.id, body);
    },
  );
  app.delete('/v1/users/:id', { schema: { tags: ['users'], summary: 'Delete a user (admin)', params: IdParams, response: withProblems({ 204: Type.Null() }) } }, async (req, reply) => {
    await store.users.delete(tenantOf(req), req.params.id);
    return reply.status(204).send(null);
  });

  app.post('/v1/api-keys', { schema: { tags: ['api-keys'], summary: 'Create an API key (admin); the secret is returned once', body: NewApiKey, response: withProblems({ 201: CreatedApiKeySchema }) } }, async (req, reply) =>
    reply.status(201).send(await store.apiKeys.create(tenantOf(req), req.body)),
  );
  app.get('/v1/api-keys', { schema: { tags: ['api-keys'], summary: 'List API keys (admin)', querystring: Type.Object(PageQuery, { additionalProperties: false }), response: withProblems({ 200: pageOf(ApiKeySchema) }) } }, (req) =>
    store.apiKeys.list(tenantOf(req), req.query),
  );
  app.get('/v1/api-keys/:id', { schema: { tags: ['api-keys'], summary: 'Get an API key (admin)', params: IdParams, response: withProblems({ 200: ApiKeySchema }) } }, (req) =>
    store.apiKeys.get(tenantOf(req), req.params.id),
  );
  app.delete('/v1/api-keys/:id', { schema: { tags: ['api-keys'], summary: 'Revoke an API key (admin)', params: IdParams, response: withProblems({ 200: ApiKeySchema }) } }, (req) =>
    store.apiKeys.revoke(tenantOf(req), req.params.id),
  );
}
