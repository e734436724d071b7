import { Type } from '@fastify/type-provider-typebox';
import { PageQuery, Timestamps, pageOf, parseIfMatch, parseIfNoneMatch, setEtag, tenantOf, withProblems, type Api, type RouteDeps } from '../../server/route-kit.js';
import { MAX_TTL_SECONDS } from './expiry.js';
import type { JsonObject } from './types.js';

const Data = Type.Record(Type.String(), Type.Unknown(), { description: 'the record: any JSON object' });
export const RecordSchema = Type.Object(
  {
    id: Type.String(),
    version: Type.Integer(),
    ...Timestamps,
    expiresAt: Type.Optional(Type.String({ format: 'date-time', description: 'when the record expires; absent when it never does' })),
    data: Data,
  },
  { $id: 'Record' },
);
const CollectionSchema = Type.Object(
  {
    name: Type.String(),
    schema: Type.Union([Data, Type.Null()]),
    indexes: Type.Array(Type.String()),
    ttlSeconds: Type.Union([Type.Integer(), Type.Null()], { description: 'the TTL of records written without an expiry of their own, or null' }),
    endUserField: Type.Union([Type.String(), Type.Null()], { description: "the data field holding a record's end-user id (erased by DELETE /v1/end-users/{id}), or null" }),
    version: Type.Integer(),
    ...Timestamps,
  },
  { $id: 'Collection' },
);
const CollectionParams = Type.Object({ collection: Type.String({ maxLength: 64 }) });
const RecordParams = Type.Object({ collection: Type.String({ maxLength: 64 }), id: Type.String({ maxLength: 128 }) });
const IfMatch = Type.Object({ 'if-match': Type.Optional(Type.String({ maxLength: 64 })) });
/** When the written record expires: one of the two (default: the collection's ttlSeconds, else never; PATCH: unchanged). */
const ExpiryQuery = Type.Object(
  {
    ttl: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_TTL_SECONDS, description: 'seconds from now until the record expires' })),
    expiresAt: Type.Optional(Type.String({ maxLength: 64, description: 'when the record expires, an RFC 3339 timestamp in the future' })),
  },
  { additionalProperties: false },
);
const Filter = Type.String({ maxLength: 8192, description: 'JSON filter, e.g. {"status":"open","priority":{"gte":2}}' });
const Fields = Type.String({ maxLength: 2048, description: 'comma-separated data fields to return, e.g. title,owner.id (the record attributes always come)' });
const GroupKey = Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()]);
const AggregateSchema = Type.Object(
  {
    groups: Type.Array(
      Type.Object({
        key: Type.Record(Type.String(), GroupKey, { description: 'the groupBy fields and their values' }),
        count: Type.Integer(),
        metrics: Type.Record(Type.String(), Type.Union([Type.Number(), Type.Null()]), { description: 'each metric asked for, e.g. "sum:amount"' }),
      }),
    ),
    truncated: Type.Boolean({ description: 'more groups exist than limit returned' }),
  },
  { $id: 'Aggregate' },
);
const tags = ['records'];

const recordLocation = (collection: string, id: string) => `/v1/collections/${encodeURIComponent(collection)}/records/${encodeURIComponent(id)}`;

export async function collectionRoutes(app: Api, { store }: RouteDeps): Promise<void> {
  const svc = store.collections;

  app.get('/v1/collections', { schema: { tags, summary: 'List collections', querystring: Type.Object(PageQuery, { additionalProperties: false }), response: withProblems({ 200: pageOf(CollectionSchema) }) } }, (req) =>
    svc.listCollections(tenantOf(req), req.query),
  );

  app.get('/v1/collections/:collection', { schema: { tags, summary: 'Get a collection', params: CollectionParams, response: withProblems({ 200: CollectionSchema }) } }, (req) =>
    svc.getCollection(tenantOf(req), req.params.collection),
  );

  app.put(
    '/v1/collections/:collection',
    {
      schema: {
        tags,
        summary: 'Create or configure a collection: JSON Schema and indexed fields',
        params: CollectionParams,
        body: Type.Object(
          {
            schema: Type.Optional(Type.Union([Data, Type.Null()], { description: 'JSON Schema each record must satisfy, or null for none' })),
            indexes: Type.Optional(Type.Array(Type.String({ maxLength: 600 }), { maxItems: 16, description: 'data paths to index, e.g. "status" or "meta.priority"' })),
            ttlSeconds: Type.Optional(
              Type.Union([Type.Integer({ minimum: 1, maximum: MAX_TTL_SECONDS }), Type.Null()], { description: 'default TTL of records written without ttl or expiresAt, or null for none' }),
            ),
            endUserField: Type.Optional(
              Type.Union([Type.String({ maxLength: 600 }), Type.Null()], { description: 'the data field (one of indexes) that holds the end-user id, for DELETE /v1/end-users/{id}; null for none' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: withProblems({ 200: CollectionSchema }),
      },
    },
    (req) => svc.define(tenantOf(req), req.params.collection, req.body as { schema?: JsonObject | null; indexes?: string[]; ttlSeconds?: number | null; endUserField?: string | null }),
  );

  app.delete('/v1/collections/:collection', { schema: { tags, summary: 'Delete a collection and its records', params: CollectionParams, response: withProblems({ 204: Type.Null() }) } }, async (req, reply) => {
    await svc.deleteCollection(tenantOf(req), req.params.collection);
    return reply.status(204).send(null);
  });

  app.post(
    '/v1/collections/:collection/records',
    {
      schema: {
        tags,
        summary: 'Create a record (a top-level string "id" in the body is used as its id)',
        params: CollectionParams,
        querystring: ExpiryQuery,
        headers: Type.Object({ 'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 255 })) }),
        body: Data,
        response: withProblems({ 200: RecordSchema, 201: RecordSchema }),
      },
    },
    async (req, reply) => {
      const key = req.headers['idempotency-key'];
      const { record, replayed } = await svc.create(tenantOf(req), req.params.collection, req.body as JsonObject, { ...req.query, ...(key ? { idempotencyKey: key } : {}) });
      setEtag(reply, record.version);
      void reply.header('location', recordLocation(req.params.collection, record.id));
      if (replayed) void reply.header('idempotent-replayed', 'true');
      return reply.status(201).send(record);
    },
  );

  app.get(
    '/v1/collections/:collection/records',
    {
      schema: {
        tags,
        summary: 'Query records: filter, sort, keyset pagination',
        params: CollectionParams,
        querystring: Type.Object(
          {
            filter: Type.Optional(Filter),
            sort: Type.Optional(Type.String({ maxLength: 600, description: 'comma-separated fields, - for descending, e.g. -priority,createdAt' })),
            fields: Type.Optional(Fields),
            ...PageQuery,
          },
          { additionalProperties: false },
        ),
        response: withProblems({ 200: pageOf(RecordSchema) }),
      },
    },
    (req) => svc.list(tenantOf(req), req.params.collection, req.query),
  );

  // `::` is a literal colon in a Fastify path (`:` starts a parameter): /records:count.
  app.get(
    '/v1/collections/:collection/records::count',
    {
      schema: {
        tags,
        summary: 'Count the records that match a filter (exact)',
        params: CollectionParams,
        querystring: Type.Object({ filter: Type.Optional(Filter) }, { additionalProperties: false }),
        response: withProblems({ 200: Type.Object({ count: Type.Integer() }) }),
      },
    },
    async (req) => ({ count: await svc.count(tenantOf(req), req.params.collection, req.query) }),
  );

  app.get(
    '/v1/collections/:collection/records::aggregate',
    {
      schema: {
        tags,
        summary: 'Group records by up to two fields, with counts and sum/min/max/avg of numeric fields',
        params: CollectionParams,
        querystring: Type.Object(
          {
            filter: Type.Optional(Filter),
            groupBy: Type.Optional(Type.String({ maxLength: 600, description: 'up to 2 comma-separated data fields, e.g. status,region' })),
            metrics: Type.Optional(Type.String({ maxLength: 2048, description: 'up to 10 of sum:f, min:f, max:f, avg:f, e.g. sum:amount,avg:amount' })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'groups returned (default 1000); more set truncated' })),
          },
          { additionalProperties: false },
        ),
        response: withProblems({ 200: AggregateSchema }),
      },
    },
    (req) => svc.aggregate(tenantOf(req), req.params.collection, req.query),
  );

  app.get(
    '/v1/collections/:collection/records/:id',
    {
      schema: {
        tags,
        summary: 'Get a record',
        params: RecordParams,
        querystring: Type.Object({ fields: Type.Optional(Fields) }, { additionalProperties: false }),
        response: withProblems({ 200: RecordSchema }),
      },
    },
    async (req, reply) => {
      // The hottest route: the record is sent as the JSON text the store builds around the
      // stored data, skipping a parse and a re-serialization of it (RecordSchema still
      // documents the shape; Fastify sends JSON text as is). With `fields`, the ETag is still
      // the record's version.
      const { version, json } = await svc.getJson(tenantOf(req), req.params.collection, req.params.id, req.query);
      setEtag(reply, version);
      return reply.type('application/json; charset=utf-8').send(json);
    },
  );

  app.put(
    '/v1/collections/:collection/records/:id',
    {
      schema: {
        tags,
        summary: 'Replace a record, or create it when it does not exist (If-Match: replace only; If-None-Match: * create only)',
        params: RecordParams,
        querystring: ExpiryQuery,
        headers: Type.Object({ ...IfMatch.properties, 'if-none-match': Type.Optional(Type.String({ maxLength: 64 })) }),
        body: Data,
        response: withProblems({ 200: RecordSchema, 201: RecordSchema }),
      },
    },
    async (req, reply) => {
      const ifMatch = parseIfMatch(req.headers['if-match']);
      const ifNoneMatch = parseIfNoneMatch(req.headers['if-none-match']);
      const { record, created } = await svc.upsert(tenantOf(req), req.params.collection, req.params.id, req.body as JsonObject, {
        ...req.query,
        ...(ifMatch === undefined ? {} : { ifMatch }),
        ...(ifNoneMatch === undefined ? {} : { ifNoneMatch }),
      });
      setEtag(reply, record.version);
      if (!created) return record;
      void reply.header('location', recordLocation(req.params.collection, record.id));
      return reply.status(201).send(record);
    },
  );

  app.patch(
    '/v1/collections/:collection/records/:id',
    {
      schema: {
        tags,
        summary: 'Update a record with a JSON merge patch (RFC 7396)',
        params: RecordParams,
        querystring: ExpiryQuery,
        headers: IfMatch,
        body: Data,
        response: withProblems({ 200: RecordSchema }),
      },
    },
    async (req, reply) => {
      const ifMatch = parseIfMatch(req.headers['if-match']);
      const record = await svc.patch(tenantOf(req), req.params.collection, req.params.id, req.body as JsonObject, { ...req.query, ...(ifMatch === undefined ? {} : { ifMatch }) });
      setEtag(reply, record.version);
      return record;
    },
  );

  app.delete(
    '/v1/collections/:collection/records/:id',
    { schema: { tags, summary: 'Delete a record', params: RecordParams, headers: IfMatch, response: withProblems({ 204: Type.Null() }) } },
    async (req, reply) => {
      const ifMatch = parseIfMatch(req.headers['if-match']);
      await svc.delete(tenantOf(req), req.params.collection, req.params.id, ifMatch === undefined ? {} : { ifMatch });
      return reply.status(204).send(null);
    },
  );
}
