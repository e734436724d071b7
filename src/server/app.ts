import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { ServerConfig } from '../config/config.js';
import { requestId } from '../core/ids.js';
import { agentRoutes } from '../modules/agents/routes.js';
import { auditRoutes } from '../modules/audit/routes.js';
import { changeRoutes } from '../modules/changes/routes.js';
import { batchRoutes } from '../modules/batch/routes.js';
import { bulkRoutes } from '../modules/collections/bulk-routes.js';
import { collectionRoutes } from '../modules/collections/routes.js';
import { counterRoutes } from '../modules/counters/routes.js';
import { conversationRoutes } from '../modules/conversations/routes.js';
import { memoryBlockRoutes } from '../modules/memory-blocks/routes.js';
import { endUserRoutes } from '../modules/end-users/routes.js';
import { contextRoutes } from '../modules/context/routes.js';
import { projectRoutes } from '../modules/projects/routes.js';
import { taskRoutes } from '../modules/tasks/routes.js';
import { tenancyRoutes } from '../modules/tenancy/routes.js';
import type { Store } from '../store.js';
import { createAdmission, type Abandonment } from './admission.js';
import { registerAuth, requireAuthUnder } from './auth.js';
import { createClientErrorHandler, type ClientErrorDeps } from './client-errors.js';
import { registerMetrics, type AppMetrics } from './metrics.js';
import { ProblemSchema, errorHandler, renderProblem, sendProblem } from './problem.js';
import type { Api } from './route-kit.js';
import { refuseUnstorableText } from './text-parts.js';

export interface AppOptions {
  readonly server?: Partial<ServerConfig>;
  /** A pino logger config or false; default: JSON logs at the configured level. */
  readonly logger?: boolean | Record<string, unknown>;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Builds the HTTP API over a store. The caller owns the store and closes it after the app. */
export async function buildApp(store: Store, options: AppOptions = {}): Promise<FastifyInstance> {
  const bodyLimitBytes = options.server?.bodyLimitBytes ?? 1024 * 1024;
  const server = {
    bodyLimitBytes,
    logLevel: 'info',
    trustProxy: false,
    loopBudgetMs: 2,
    eventsHeartbeatMs: 15_000,
    eventsMaxStreamsPerTenant: 256,
    bulkMaxLineBytes: bodyLimitBytes,
    bulkMaxLines: 1_000_000,
    ...options.server,
  };
  // Assigned right after the instance exists; the router's error callback below needs it.
  let metrics: AppMetrics | undefined;
  let refusedRequests: ClientErrorDeps | undefined;
  const app = Fastify({
    logger:
      options.logger === false
        ? false
        : {
            level: server.logLevel,
            redact: ['req.headers.authorization', 'req.headers["x-api-key"]'],
            ...(typeof options.logger === 'object' ? options.logger : {}),
          },
    bodyLimit: server.bodyLimitBytes,
    trustProxy: server.trustProxy,
    requestIdHeader: false,
    // A caller's X-Request-ID is kept when it is well formed, so logs join across services.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : requestId();
    },
    ajv: {
      // Unknown fields are an error, not silently dropped; query strings still coerce.
      customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false },
    },
    routerOptions: { maxParamLength: 512 },
    // Router errors (an over-long parameter, a malformed %-escape) skip the error handler
    // unless routed here, and would answer in Fastify's own JSON instead of problem+json.
    frameworkErrors: (error, request, reply) => {
      errorHandler(error, request, reply);
      metrics?.unmatched(request, reply);
    },
    clientErrorHandler: createClientErrorHandler(() => refusedRequests),
  }).withTypeProvider<TypeBoxTypeProvider>();
  // Node destroys the request of a connection that closed before its answer; such a request,
  // still queued, ends at its turn without running its handler (499 is nginx's "client
  // closed request"; nobody reads it), and is counted.
  const abandonment: Abandonment<FastifyReply> = {
    left: (reply) => reply.request.raw.destroyed,
    drop: (reply) => {
      metrics?.abandoned();
      void reply.code(499).send();
    },
  };
  const admission =
    server.loopBudgetMs > 0 ? createAdmission(server.loopBudgetMs, (error) => app.log.error({ err: error }, 'a queued request failed to proceed'), abandonment) : undefined;
  // Before any route: each route gets its metrics hook as it is added, and every /v1 route
  // that takes a credential must have got the auth hook by the time the app is ready.
  metrics = registerMetrics(app, store, admission ? { queuedRequests: () => admission.queued } : {});
  const guarded = requireAuthUnder(app, '/v1');
  const appMetrics = metrics;
  refusedRequests = { log: app.log, refused: appMetrics.refused };

  // JSON bodies arrive typed: coercing them (as Fastify does for every part) turned
  // {"by": true} into an increment of 1 and {"name": 5} into "5". Only the text parts
  // (query string, params, headers) coerce.
  const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
  const validators = {
    body: addFormats(new Ajv({ removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false })),
    text: addFormats(new Ajv({ removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false })),
  };
  app.setValidatorCompiler(({ schema, httpPart }) => refuseUnstorableText((httpPart === 'body' ? validators.body : validators.text).compile(schema)));
  app.addSchema(ProblemSchema);
  app.setErrorHandler((error: Parameters<typeof errorHandler>[0], request, reply) => {
    const sent = errorHandler(error, request, reply);
    // A request no route matched that failed before the not-found handler (body too large,
    // malformed JSON) is counted here; matched routes count themselves.
    if (request.is404) appMetrics.unmatched(request, reply);
    return sent;
  });
  app.setNotFoundHandler((request, reply) => {
    sendProblem(reply, renderProblem(request, 404, 'agentstore.not_found', `no route for ${request.method} ${request.url.split('?')[0]}`));
    appMetrics.unmatched(request, reply);
  });
  // First of all hooks: a queued request has cost only its parsing and routing.
  if (admission) app.addHook('onRequest', (_request, reply, done) => admission.admit(done, reply));
  app.addHook('onRequest', (request, reply, done) => {
    void reply.header('x-request-id', String(request.id));
    done();
  });
  // Only JSON bodies: Fastify would otherwise hand text/plain through as a string and the
  // caller would get a schema error instead of 415.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('application/merge-patch+json', { parseAs: 'string' }, app.getDefaultJsonParser('error', 'error'));

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'agentstore', version: '0.1.0', description: 'Storage backend for AI-agent platforms: collections, counters, conversations, memory blocks, audit, change feed, tenancy.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'API key, session token, service key or JWT' } } },
      security: [{ bearer: [] }],
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  app.get('/openapi.json', { schema: { hide: true } }, () => app.swagger());
  app.get('/health', { schema: { tags: ['operations'], summary: 'Liveness', security: [] } }, () => ({ status: 'ok' }));
  app.get('/ready', { schema: { tags: ['operations'], summary: 'Readiness: database reachable, schema current, file storage answering', security: [] } }, async (request, reply) => {
    const ready = await store.ready();
    // Ready, but an operator must see that tenant isolation rests on the filters alone.
    if (ready.ok) {
      return {
        status: 'ready',
        schemaVersion: ready.schema?.current ?? null,
        storage: { backend: ready.storage.backend, status: 'ok' },
        ...(ready.warnings.length > 0 ? { warnings: ready.warnings } : {}),
      };
    }
    return sendProblem(reply, renderProblem(request, 503, 'agentstore.unavailable', `not ready: ${ready.error ?? 'unknown'}`), 5);
  });
  app.get('/metrics', { schema: { tags: ['operations'], summary: 'Prometheus metrics', security: [] } }, async (_request, reply) => {
    void reply.type(appMetrics.contentType);
    return appMetrics.metrics();
  });

  // Everything under /v1 is authenticated; the auth hook lives in this scope only.
  await app.register(async (v1) => {
    const api = v1 as unknown as Api;
    registerAuth(v1, store, guarded);
    await tenancyRoutes(api, { store });
    await collectionRoutes(api, { store });
    await bulkRoutes(api, { store }, { maxLineBytes: server.bulkMaxLineBytes, maxLines: server.bulkMaxLines });
    await counterRoutes(api, { store });
    await conversationRoutes(api, { store });
    await memoryBlockRoutes(api, { store });
    await agentRoutes(api, { store });
    await projectRoutes(api, { store });
    await taskRoutes(api, { store });
    await contextRoutes(api, { store });
    await batchRoutes(api, { store });
    await endUserRoutes(api, { store });
    await auditRoutes(api, { store });
    await changeRoutes(api, { store }, { heartbeatMs: server.eventsHeartbeatMs, maxStreamsPerTenant: server.eventsMaxStreamsPerTenant });
  });
  return app;
}
