import { Type } from '@fastify/type-provider-typebox';
import { PageQuery, Timestamps, emptyBodyAsObject, pageOf, tenantOf, withProblems, type Api, type RouteDeps } from '../../server/route-kit.js';

export const CounterSchema = Type.Object({ name: Type.String(), value: Type.Integer(), ...Timestamps }, { $id: 'Counter' });
const Params = Type.Object({ name: Type.String({ maxLength: 128 }) });
const tags = ['counters'];

export async function counterRoutes(app: Api, { store }: RouteDeps): Promise<void> {
  const svc = store.counters;

  app.get('/v1/counters', { schema: { tags, summary: 'List counters', querystring: Type.Object(PageQuery, { additionalProperties: false }), response: withProblems({ 200: pageOf(CounterSchema) }) } }, (req) =>
    svc.list(tenantOf(req), req.query),
  );

  app.get('/v1/counters/:name', { schema: { tags, summary: 'Read a counter', params: Params, response: withProblems({ 200: CounterSchema }) } }, (req) =>
    svc.get(tenantOf(req), req.params.name),
  );

  app.post(
    '/v1/counters/:name/increment',
    {
      // No body at all means "by 1".
      preValidation: emptyBodyAsObject,
      schema: {
        tags,
        summary: 'Add to a counter atomically (created at 0 on first use); returns the new value',
        params: Params,
        body: Type.Optional(Type.Object({ by: Type.Optional(Type.Integer({ description: 'default 1; may be negative' })) }, { additionalProperties: false })),
        response: withProblems({ 200: CounterSchema }),
      },
    },
    (req) => svc.increment(tenantOf(req), req.params.name, req.body?.by ?? 1),
  );

  app.post(
    '/v1/counters/:name/reset',
    {
      preValidation: emptyBodyAsObject,
      schema: {
        tags,
        summary: 'Set a counter (default 0)',
        params: Params,
        body: Type.Optional(Type.Object({ value: Type.Optional(Type.Integer()) }, { additionalProperties: false })),
        response: withProblems({ 200: CounterSchema }),
      },
    },
    (req) => svc.reset(tenantOf(req), req.params.name, req.body?.value ?? 0),
  );
}
