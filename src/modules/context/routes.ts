import { Type } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { parseIfNoneMatch, setEtag, tenantOf, withProblems, type Api, type RouteDeps } from '../../server/route-kit.js';
import { IdParams, Nullable, ifMatchOf } from '../projects/route-schemas.js';
import type { JsonObject } from '../projects/fields.js';
import { CONTEXT_LEVELS, type ContextLevel } from './merge.js';
import type { ContextDocument, ContextTarget } from './service.js';

const Level = Type.Unsafe<ContextLevel>({ type: 'string', enum: [...CONTEXT_LEVELS] });
const Data = Type.Record(Type.String(), Type.Unknown(), { description: 'any JSON object (at most 256 KiB)' });
const DocumentSchema = Type.Object(
  { level: Level, id: Nullable(Type.String()), data: Data, version: Type.Integer(), updatedAt: Type.String({ format: 'date-time' }) },
  { $id: 'ContextDocument' },
);
const ResolvedSchema = Type.Object(
  {
    context: Data,
    sources: Type.Record(Type.String(), Level, { description: 'for each top-level key, the nearest level that set it' }),
  },
  { $id: 'ResolvedContext' },
);
const Preconditions = Type.Object({ 'if-match': Type.Optional(Type.String({ maxLength: 64 })), 'if-none-match': Type.Optional(Type.String({ maxLength: 64 })) });
const tags = ['context'];

const sent = (reply: FastifyReply, document: ContextDocument) => {
  setEtag(reply, document.version);
  return document;
};

export async function contextRoutes(app: Api, { store }: RouteDeps): Promise<void> {
  const context = store.context;

  /** GET, PUT and PATCH of one level's document at `path`. */
  const documentRoutes = <P extends boolean>(path: string, withId: P, targetOf: (params: { id: string }) => ContextTarget, what: string) => {
    const params = withId ? { params: IdParams } : {};
    app.get(path, { schema: { tags, summary: `Get the context document of ${what}`, ...params, response: withProblems({ 200: DocumentSchema }) } }, async (req, reply) =>
      sent(reply, await context.get(tenantOf(req), targetOf(req.params as { id: string }))),
    );
    app.put(
      path,
      { schema: { tags, summary: `Replace the context document of ${what} (If-Match; If-None-Match: * writes only a first one)`, ...params, headers: Preconditions, body: Data, response: withProblems({ 200: DocumentSchema, 201: DocumentSchema }) } },
      async (req, reply) => {
        const ifNoneMatch = parseIfNoneMatch(req.headers['if-none-match']);
        const { document, created } = await context.put(tenantOf(req), targetOf(req.params as { id: string }), req.body as JsonObject, {
          ...ifMatchOf(req.headers['if-match']),
          ...(ifNoneMatch ? { ifNoneMatch } : {}),
        });
        return reply.status(created ? 201 : 200).send(sent(reply, document));
      },
    );
    app.patch(
      path,
      { schema: { tags, summary: `Change the context document of ${what} with a JSON merge patch (RFC 7396)`, ...params, headers: Preconditions, body: Data, response: withProblems({ 200: DocumentSchema }) } },
      async (req, reply) => sent(reply, await context.patch(tenantOf(req), targetOf(req.params as { id: string }), req.body as JsonObject, ifMatchOf(req.headers['if-match']))),
    );
  };

  documentRoutes('/v1/context/global', false, () => ({ level: 'global' }), 'the tenant (the global level)');
  for (const [level, plural] of [['project', 'projects'], ['branch', 'branches'], ['task', 'tasks']] as const) {
    documentRoutes(`/v1/${plural}/:id/context`, true, (p) => ({ level, id: p.id }), `a ${level}`);
    app.get(
      `/v1/${plural}/:id/context/resolved`,
      { schema: { tags, summary: `The ${level}'s context merged down from the global level: nearest wins, objects merge, arrays replace`, params: IdParams, response: withProblems({ 200: ResolvedSchema }) } },
      (req) => context.resolve(tenantOf(req), { level, id: (req.params as { id: string }).id }),
    );
  }
}
