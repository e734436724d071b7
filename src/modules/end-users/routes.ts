import { Type } from '@fastify/type-provider-typebox';
import { tenantOf, withProblems, type Api, type RouteDeps } from '../../server/route-kit.js';
import { MAX_END_USER_ID } from './service.js';

const ErasureSchema = Type.Object(
  {
    subject: Type.String({ description: 'the end user as the audit log names it: a hash of the tenant and the id' }),
    counts: Type.Record(Type.String(), Type.Integer(), { description: 'items erased, per module (records, …)' }),
    total: Type.Integer(),
  },
  { $id: 'EndUserErasure' },
);

export async function endUserRoutes(app: Api, { store }: RouteDeps): Promise<void> {
  app.delete(
    '/v1/end-users/:endUserId',
    {
      schema: {
        tags: ['end-users'],
        summary: "Erase an end user: every module's data of that end user id, in batches; one audit entry with the counts (admin)",
        params: Type.Object({ endUserId: Type.String({ minLength: 1, maxLength: MAX_END_USER_ID }) }),
        response: withProblems({ 200: ErasureSchema }),
      },
    },
    (req) => store.endUsers.erase(tenantOf(req), req.params.endUserId),
  );
}
