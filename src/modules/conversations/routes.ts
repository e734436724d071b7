import { Type } from '@fastify/type-provider-typebox';
import { PageQuery, Timestamps, pageOf, parseIfMatch, setEtag, tenantOf, withProblems, type Api, type RouteDeps } from '../../server/route-kit.js';
import { AgentstoreError } from '../../core/errors.js';
import type { ConversationInput, MessageEdit, MessageInput } from './types.js';

// Bodies are checked field by field in the service (the same checks for the library), which
// names the wrong field as a JSON pointer; the schemas here document the shapes and refuse
// unknown top-level fields.
const Json = Type.Record(Type.String(), Type.Unknown());
const Ref = (description: string) => Type.String({ minLength: 1, maxLength: 256, description });
const Status = Type.Union([Type.Literal('active'), Type.Literal('archived')]);
const Role = Type.Union([Type.Literal('system'), Type.Literal('user'), Type.Literal('assistant'), Type.Literal('tool')]);
const Part = Type.Object({ type: Type.String({ description: 'text, reasoning, tool-<name>, dynamic-tool, file, source-url, source-document, step-start, data-<name>' }) }, {
  additionalProperties: true,
  description: 'a Vercel AI SDK UIMessage part',
});
const Content = Type.Union([Type.String(), Type.Array(Part, { maxItems: 1000 })], { description: 'plain text, or UIMessage parts' });
const Usage = Type.Record(Type.String(), Type.Unknown(), { description: 'token usage: inputTokens, outputTokens, totalTokens, reasoningTokens, cachedInputTokens' });

export const ConversationSchema = Type.Object(
  {
    id: Type.String(),
    agentId: Type.Union([Type.String(), Type.Null()]),
    endUserId: Type.Union([Type.String(), Type.Null()]),
    title: Type.Union([Type.String(), Type.Null()]),
    status: Status,
    metadata: Json,
    lastSeq: Type.Integer(),
    messageCount: Type.Integer(),
    parentId: Type.Union([Type.String(), Type.Null()]),
    forkSeq: Type.Union([Type.Integer(), Type.Null()]),
    version: Type.Integer(),
    ...Timestamps,
  },
  { $id: 'Conversation' },
);

export const MessageSchema = Type.Object(
  {
    conversationId: Type.String(),
    seq: Type.Integer(),
    clientId: Type.Union([Type.String(), Type.Null()]),
    role: Role,
    content: Content,
    model: Type.Union([Type.String(), Type.Null()]),
    usage: Type.Union([Usage, Type.Null()]),
    metadata: Type.Union([Json, Type.Null()]),
    version: Type.Integer(),
    ...Timestamps,
  },
  // No $id: a named schema may appear once per response, and an append's 201 holds it twice (one, or a batch).
);

const messageFields = {
  role: Role,
  content: Content,
  clientId: Type.Optional(Type.String({ minLength: 1, maxLength: 255, description: 'your id for the message (a UIMessage id): appending it again returns the stored one' })),
  model: Type.Optional(Type.String({ maxLength: 256 })),
  usage: Type.Optional(Usage),
  metadata: Type.Optional(Json),
};
const MessageBody = Type.Object(messageFields, { additionalProperties: false });
const ConversationBody = Type.Object(
  {
    agentId: Type.Optional(Type.Union([Ref('the agent it belongs to'), Type.Null()])),
    endUserId: Type.Optional(Type.Union([Ref("your platform's user id"), Type.Null()])),
    title: Type.Optional(Type.Union([Type.String({ maxLength: 512 }), Type.Null()])),
    status: Type.Optional(Status),
    metadata: Type.Optional(Json),
  },
  { additionalProperties: false },
);
const Id = Type.Object({ id: Type.String({ maxLength: 64 }) });
const SeqParams = Type.Object({ id: Type.String({ maxLength: 64 }), seq: Type.Integer({ minimum: 1 }) });
const IfMatch = Type.Object({ 'if-match': Type.Optional(Type.String({ maxLength: 64 })) });
const Idempotency = Type.Object({ 'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 255 })) });
const Seq = (description: string) => Type.Optional(Type.Integer({ minimum: 0, description }));
const NoQuery = Type.Object({}, { additionalProperties: false });
const tags = ['conversations'];

const location = (id: string) => `/v1/conversations/${id}`;

export async function conversationRoutes(app: Api, { store }: RouteDeps): Promise<void> {
  const svc = store.conversations;

  app.post(
    '/v1/conversations',
    { schema: { tags, summary: 'Create a conversation', headers: Idempotency, body: ConversationBody, response: withProblems({ 201: ConversationSchema }) } },
    async (req, reply) => {
      const key = req.headers['idempotency-key'];
      const { conversation, replayed } = await svc.create(tenantOf(req), req.body as ConversationInput, key ? { idempotencyKey: key } : {});
      setEtag(reply, conversation.version);
      void reply.header('location', location(conversation.id));
      if (replayed) void reply.header('idempotent-replayed', 'true');
      return reply.status(201).send(conversation);
    },
  );

  app.get(
    '/v1/conversations',
    {
      schema: {
        tags,
        summary: 'List conversations, newest first',
        querystring: Type.Object({ agentId: Type.Optional(Ref('only this agent')), endUserId: Type.Optional(Ref('only this end user')), status: Type.Optional(Status), ...PageQuery }, { additionalProperties: false }),
        response: withProblems({ 200: pageOf(ConversationSchema) }),
      },
    },
    (req) => svc.list(tenantOf(req), req.query),
  );

  app.get('/v1/conversations/:id', { schema: { tags, summary: 'Get a conversation', params: Id, querystring: NoQuery, response: withProblems({ 200: ConversationSchema }) } }, async (req, reply) => {
    const conversation = await svc.get(tenantOf(req), req.params.id);
    setEtag(reply, conversation.version);
    return conversation;
  });

  app.patch(
    '/v1/conversations/:id',
    { schema: { tags, summary: 'Change a conversation (title, status, metadata, agentId, endUserId)', params: Id, headers: IfMatch, body: ConversationBody, response: withProblems({ 200: ConversationSchema }) } },
    async (req, reply) => {
      const ifMatch = parseIfMatch(req.headers['if-match']);
      const conversation = await svc.update(tenantOf(req), req.params.id, req.body as ConversationInput, ifMatch === undefined ? {} : { ifMatch });
      setEtag(reply, conversation.version);
      return conversation;
    },
  );

  app.delete(
    '/v1/conversations/:id',
    { schema: { tags, summary: 'Delete a conversation and its messages', params: Id, headers: IfMatch, response: withProblems({ 204: Type.Null() }) } },
    async (req, reply) => {
      const ifMatch = parseIfMatch(req.headers['if-match']);
      await svc.remove(tenantOf(req), req.params.id, ifMatch === undefined ? {} : { ifMatch });
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/v1/conversations/:id/messages',
    {
      schema: {
        tags,
        summary: 'Append a message, or {messages: [...]} (up to 100) atomically; each gets the next seq',
        params: Id,
        // One message, or {messages}: one object schema (a union's errors would name no field).
        body: Type.Object(
          {
            ...messageFields,
            role: Type.Optional(Role),
            content: Type.Optional(Content),
            messages: Type.Optional(Type.Array(MessageBody, { minItems: 1, maxItems: 100, description: 'a batch instead of one message' })),
          },
          { additionalProperties: false },
        ),
        response: withProblems({
          200: MessageSchema,
          201: Type.Union([MessageSchema, Type.Object({ items: Type.Array(MessageSchema), replayed: Type.Array(Type.Boolean()) })]),
        }),
      },
    },
    async (req, reply) => {
      const { messages, ...one } = req.body as MessageInput & { messages?: MessageInput[] };
      if (messages !== undefined) {
        const extra = Object.keys(one)[0];
        if (extra !== undefined) throw AgentstoreError.invalidField(`/${extra}`, 'a batch is {messages} alone: put the field on each message');
        return reply.status(201).send(await svc.appendMany(tenantOf(req), req.params.id, messages));
      }
      const { message, replayed } = await svc.append(tenantOf(req), req.params.id, one);
      setEtag(reply, message.version);
      // A client id appended before: the stored message, nothing written.
      if (replayed) return reply.header('idempotent-replayed', 'true').status(200).send(message);
      return reply.status(201).send(message);
    },
  );

  app.get(
    '/v1/conversations/:id/messages',
    {
      schema: {
        tags,
        summary: 'Read messages in ascending seq: ?last=N, ?after=SEQ&limit=N, ?before=SEQ&limit=N (default: from the first)',
        params: Id,
        querystring: Type.Object(
          {
            last: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, description: 'the last N messages' })),
            after: Seq('messages after this seq'),
            before: Seq('the newest messages before this seq'),
            ...PageQuery,
          },
          { additionalProperties: false },
        ),
        response: withProblems({ 200: pageOf(MessageSchema) }),
      },
    },
    (req) => svc.messages(tenantOf(req), req.params.id, req.query),
  );

  app.get('/v1/conversations/:id/messages/:seq', { schema: { tags, summary: 'Get one message', params: SeqParams, querystring: NoQuery, response: withProblems({ 200: MessageSchema }) } }, async (req, reply) => {
    const message = await svc.getMessage(tenantOf(req), req.params.id, req.params.seq);
    setEtag(reply, message.version);
    return message;
  });

  app.patch(
    '/v1/conversations/:id/messages/:seq',
    {
      schema: {
        tags,
        summary: 'Edit a message (content, model, usage, metadata); its seq stays',
        params: SeqParams,
        headers: IfMatch,
        body: Type.Object(
          { content: Type.Optional(Content), model: Type.Optional(Type.Union([Type.String({ maxLength: 256 }), Type.Null()])), usage: Type.Optional(Type.Union([Usage, Type.Null()])), metadata: Type.Optional(Type.Union([Json, Type.Null()])) },
          { additionalProperties: false },
        ),
        response: withProblems({ 200: MessageSchema }),
      },
    },
    async (req, reply) => {
      const ifMatch = parseIfMatch(req.headers['if-match']);
      const message = await svc.editMessage(tenantOf(req), req.params.id, req.params.seq, req.body as MessageEdit, ifMatch === undefined ? {} : { ifMatch });
      setEtag(reply, message.version);
      return message;
    },
  );

  app.delete(
    '/v1/conversations/:id/messages/:seq',
    { schema: { tags, summary: 'Delete a message (its seq is never reused)', params: SeqParams, headers: IfMatch, response: withProblems({ 204: Type.Null() }) } },
    async (req, reply) => {
      const ifMatch = parseIfMatch(req.headers['if-match']);
      await svc.deleteMessage(tenantOf(req), req.params.id, req.params.seq, ifMatch === undefined ? {} : { ifMatch });
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/v1/conversations/:id/fork',
    {
      schema: {
        tags,
        summary: 'Fork: a new conversation whose history is a copy of this one up to atSeq',
        params: Id,
        headers: Idempotency,
        body: Type.Object({ atSeq: Type.Integer({ minimum: 1 }), title: Type.Optional(Type.Union([Type.String({ maxLength: 512 }), Type.Null()])), metadata: Type.Optional(Json) }, { additionalProperties: false }),
        response: withProblems({ 201: ConversationSchema }),
      },
    },
    async (req, reply) => {
      const key = req.headers['idempotency-key'];
      const { conversation, replayed } = await svc.fork(tenantOf(req), req.params.id, req.body, key ? { idempotencyKey: key } : {});
      setEtag(reply, conversation.version);
      void reply.header('location', location(conversation.id));
      if (replayed) void reply.header('idempotent-replayed', 'true');
      return reply.status(201).send(conversation);
    },
  );

  app.get(
    '/v1/messages/search',
    {
      schema: {
        tags,
        summary: "Keyword search over the tenant's messages, best match first",
        querystring: Type.Object(
          {
            q: Type.String({ minLength: 1, maxLength: 512, description: 'words to find (all of them)' }),
            agentId: Type.Optional(Ref('only conversations of this agent')),
            endUserId: Type.Optional(Ref('only conversations of this end user')),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'hits (default 20)' })),
          },
          { additionalProperties: false },
        ),
        response: withProblems({
          200: Type.Object({
            items: Type.Array(Type.Object({ conversationId: Type.String(), seq: Type.Integer(), role: Role, text: Type.String(), createdAt: Type.String({ format: 'date-time' }), score: Type.Number() })),
          }),
        }),
      },
    },
    (req) => svc.search(tenantOf(req), req.query),
  );
}
