import { Type } from '@fastify/type-provider-typebox';
import { PageQuery, pageOf, tenantOf, withProblems, type Api, type RouteDeps } from '../../server/route-kit.js';

const AuditEntrySchema = Type.Object(
  {
    id: Type.String(),
    at: Type.String({ format: 'date-time' }),
    actor: Type.Object({ type: Type.String(), id: Type.String() }),
    action: Type.String(),
    resourceType: Type.String(),
    resourceId: Type.String(),
    collection: Type.Union([Type.String(), Type.Null()]),
    requestId: Type.Union([Type.String(), Type.Null()]),
    details: Type.Unknown(),
  },
  { $id: 'AuditEntry' },
);

export async function auditRoutes(app: Api, { store }: RouteDeps): Promise<void> {
  app.get(
    '/v1/audit',
    {
      schema: {
        tags: ['audit'],
        summary: 'The audit log, newest first (admin)',
        querystring: Type.Object(
          {
            actorId: Type.Optional(Type.String({ maxLength: 256 })),
            actorType: Type.Optional(Type.String({ maxLength: 32 })),
            action: Type.Optional(Type.String({ maxLength: 128, description: 'e.g. record.create' })),
            resourceType: Type.Optional(Type.String({ maxLength: 64 })),
            resourceId: Type.Optional(Type.String({ maxLength: 256 })),
            from: Type.Optional(Type.String({ format: 'date-time', description: 'inclusive' })),
            to: Type.Optional(Type.String({ format: 'date-time', description: 'exclusive' })),
            ...PageQuery,
          },
          { additionalProperties: false },
        ),
        response: withProblems({ 200: pageOf(AuditEntrySchema) }),
      },
    },
    (req) => store.audit.list(tenantOf(req), req.query),
  );
}
