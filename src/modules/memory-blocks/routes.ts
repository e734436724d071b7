import { Type } from '@fastify/type-provider-typebox';
import { PageQuery, Timestamps, pageOf, parseIfMatch, parseIfNoneMatch, setEtag, tenantOf, withProblems, type Api, type RouteDeps } from '../../server/route-kit.js';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
export const MemoryBlockSchema = Type.Object(
  {
    label: Type.String(),
    agentId: Nullable(Type.String()),
    endUserId: Nullable(Type.String()),
    value: Type.String(),
    limit: Type.Integer({ description: 'the most characters value may hold' }),
    description: Nullable(Type.String()),
    version: Type.Integer(),
    ...Timestamps,
  },
  { $id: 'MemoryBlock' },
);
const Scope = {
  agentId: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'the agent the block belongs to (none: not scoped to an agent)' })),
  endUserId: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'the end user the block belongs to (none: not scoped to one)' })),
};
const ScopeQuery = Type.Object(Scope, { additionalProperties: false });
const Label = Type.Object({ label: Type.String({ maxLength: 128 }) });
const tags = ['memory-blocks'];

export async function memoryBlockRoutes(app: Api, { store }: RouteDeps): Promise<void> {
  const svc = store.memoryBlocks;

  app.get(
    '/v1/memory-blocks',
    { schema: { tags, summary: 'List memory blocks (of one agent and/or end user when given)', querystring: Type.Object({ ...Scope, ...PageQuery }, { additionalProperties: false }), response: withProblems({ 200: pageOf(MemoryBlockSchema) }) } },
    (req) => svc.list(tenantOf(req), req.query),
  );

  app.get('/v1/memory-blocks/:label', { schema: { tags, summary: 'Read a memory block', params: Label, querystring: ScopeQuery, response: withProblems({ 200: MemoryBlockSchema }) } }, async (req, reply) => {
    const block = await svc.get(tenantOf(req), req.params.label, req.query);
    setEtag(reply, block.version);
    return block;
  });

  app.put(
    '/v1/memory-blocks/:label',
    {
      schema: {
        tags,
        summary: 'Create or replace a memory block (If-Match: replace that version only; If-None-Match: * create only)',
        params: Label,
        querystring: ScopeQuery,
        headers: Type.Object({ 'if-match': Type.Optional(Type.String({ maxLength: 64 })), 'if-none-match': Type.Optional(Type.String({ maxLength: 64 })) }),
        body: Type.Object(
          {
            value: Type.String({ description: 'the text, at most limit characters' }),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, description: 'character limit (default 5000 at create; kept on a replace that gives none)' })),
            description: Type.Optional(Nullable(Type.String({ maxLength: 2000 }))),
          },
          { additionalProperties: false },
        ),
        response: withProblems({ 200: MemoryBlockSchema, 201: MemoryBlockSchema }),
      },
    },
    async (req, reply) => {
      const ifMatch = parseIfMatch(req.headers['if-match']);
      const ifNoneMatch = parseIfNoneMatch(req.headers['if-none-match']);
      const { block, created } = await svc.put(tenantOf(req), req.params.label, req.query, req.body, {
        ...(ifMatch === undefined ? {} : { ifMatch }),
        ...(ifNoneMatch === undefined ? {} : { ifNoneMatch }),
      });
      setEtag(reply, block.version);
      return reply.status(created ? 201 : 200).send(block);
    },
  );

  app.delete(
    '/v1/memory-blocks/:label',
    { schema: { tags, summary: 'Delete a memory block', params: Label, querystring: ScopeQuery, headers: Type.Object({ 'if-match': Type.Optional(Type.String({ maxLength: 64 })) }), response: withProblems({ 204: Type.Null() }) } },
    async (req, reply) => {
      const ifMatch = parseIfMatch(req.headers['if-match']);
      await svc.remove(tenantOf(req), req.params.label, req.query, ifMatch === undefined ? {} : { ifMatch });
      return reply.status(204).send(null);
    },
  );
}
