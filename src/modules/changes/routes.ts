import type { ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { Type } from '@fastify/type-provider-typebox';
import { AgentstoreError, isAgentstoreError } from '../../core/errors.js';
import { bearer } from '../../server/auth.js';
import { tenantOf, withProblems, type Api, type RouteDeps } from '../../server/route-kit.js';
import { COLLECTION_NAME } from '../collections/validation.js';
import { checkResourceTypes } from './service.js';
import { write } from './sse-write.js';

const ChangeSchema = Type.Object(
  {
    seq: Type.Integer(),
    at: Type.String({ format: 'date-time' }),
    type: Type.String(),
    resourceType: Type.String(),
    action: Type.String(),
    resourceId: Type.String(),
    collection: Type.Union([Type.String(), Type.Null()]),
    version: Type.Union([Type.Integer(), Type.Null()]),
    data: Type.Unknown(),
  },
  { $id: 'Change' },
);

const FeedQuery = {
  types: Type.Optional(Type.String({ maxLength: 512, description: 'comma-separated resource types, e.g. record,counter' })),
  // A name no collection can have is a mistake to report, not a filter that matches nothing.
  collection: Type.Optional(Type.String({ maxLength: 64, pattern: COLLECTION_NAME.source })),
};

const SHUTDOWN_GRACE_MS = 2_000;
// Events per read: a bound on what one read holds in memory (records may be up to the body
// limit each), and the size of a catch-up step.
const BATCH = 100;

function parseTypes(types: string | undefined): string[] | undefined {
  if (types === undefined) return undefined;
  const list = types.split(',').map((t) => t.trim()).filter(Boolean);
  if (list.some((t) => !/^[a-z_]{1,32}$/.test(t))) throw AgentstoreError.invalidField('types', 'comma-separated resource types such as record,counter');
  // Here too, not only in the service: the event stream answers 200 before its first read.
  checkResourceTypes(list);
  return list;
}

function parseSeq(value: string | undefined, field: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^\d{1,15}$/.test(value)) throw AgentstoreError.invalidField(field, 'must be a change sequence number');
  return Number(value);
}

export interface ChangeRouteOptions {
  readonly heartbeatMs: number;
  /** Open event streams one tenant may hold on this server; past it, 429. */
  readonly maxStreamsPerTenant: number;
}

export async function changeRoutes(app: Api, { store }: RouteDeps, { heartbeatMs, maxStreamsPerTenant }: ChangeRouteOptions): Promise<void> {
  // A client that read nothing for this long is gone (or stuck): its stream is cut off.
  const stallMs = Math.max(30_000, 2 * heartbeatMs);
  interface Stream {
    readonly end: () => void;
    readonly ended: Promise<void>;
    readonly raw: ServerResponse;
  }
  const streams = new Set<Stream>();
  // Open streams by tenant, entries removed at zero: each stream is a connection and a read
  // per wake-up, so one tenant's thousands would be every tenant's load.
  const openByTenant = new Map<string, number>();
  let shuttingDown = false;
  // Fastify closes the connections that are idle when the server stops listening. A stream
  // still writing its last read at that moment would become an idle keep-alive connection
  // only later, and hold close() for Node's 5 s keep-alive timeout: wait for every stream to
  // end first, and end its connection with it. A client that stopped reading would hold the
  // wait for good: after a grace period its response is destroyed.
  app.addHook('preClose', async () => {
    shuttingDown = true;
    for (const stream of streams) stream.end();
    const all = Promise.all([...streams].map((s) => s.ended));
    const grace = sleep(SHUTDOWN_GRACE_MS, 'timeout' as const, { ref: false });
    if ((await Promise.race([all, grace])) === 'timeout') {
      for (const stream of streams) stream.raw.destroy();
      // Bounded too: the connections are gone either way.
      await Promise.race([all, sleep(SHUTDOWN_GRACE_MS, undefined, { ref: false })]);
    }
  });

  app.get(
    '/v1/changes',
    {
      schema: {
        tags: ['changes'],
        summary: 'Read the change log after a sequence number (polling alternative to /v1/events)',
        querystring: Type.Object({ after: Type.Optional(Type.Integer({ minimum: 0 })), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })), ...FeedQuery }, { additionalProperties: false }),
        response: withProblems({ 200: Type.Object({ items: Type.Array(ChangeSchema), lastSeq: Type.Integer() }) }),
      },
    },
    async (req) => {
      const after = req.query.after ?? 0;
      const types = parseTypes(req.query.types);
      return store.changes.poll(tenantOf(req), {
        after,
        ...(types ? { resourceTypes: types } : {}),
        ...(req.query.collection !== undefined ? { collection: req.query.collection } : {}),
        ...(req.query.limit !== undefined ? { limit: req.query.limit } : {}),
      });
    },
  );

  app.get(
    '/v1/events',
    {
      schema: {
        tags: ['changes'],
        summary: 'Server-Sent Events of the tenant’s changes; resume with Last-Event-ID',
        description:
          'Each event has `id` = change sequence, `event` = `<resourceType>.<action>`, `data` = the change as JSON. Without Last-Event-ID or `after`, the stream starts at the present.',
        querystring: Type.Object({ after: Type.Optional(Type.String({ maxLength: 16 })), ...FeedQuery }, { additionalProperties: false }),
        headers: Type.Object({ 'last-event-id': Type.Optional(Type.String({ maxLength: 32 })) }),
        response: withProblems({ 200: Type.String({ description: 'text/event-stream' }) }),
      },
    },
    async (req, reply) => {
      const ctx = tenantOf(req);
      // The credential is checked again while the stream lasts (below): a key revoked, a
      // session ended or a role lowered must not keep receiving changes.
      const token = bearer(req);
      const stillValid = async (): Promise<boolean> => {
        if (token === undefined) return false;
        let now;
        try {
          now = store.auth.cached(token) ?? (await store.auth.authenticate(token));
        } catch {
          // The check could not be made (the database unreachable): the next period tries again.
          return true;
        }
        return now?.kind === 'tenant' && now.ctx.tenantId === ctx.tenantId && now.ctx.role === ctx.role;
      };
      let checkedAt = Date.now();
      let checkedEpoch = store.auth.revocationEpoch();
      const types = parseTypes(req.query.types);
      const collection = req.query.collection;
      const fromId = parseSeq(req.headers['last-event-id'], 'last-event-id');
      const fromAfter = fromId === undefined ? parseSeq(req.query.after, 'after') : undefined;
      const headAtStart = await store.changes.head(ctx);
      // A position past the log's end is not one this log gave out (a restored or another
      // database): waiting would silently skip the changes below it once the log caught up.
      if ((fromId ?? fromAfter ?? 0) > headAtStart) {
        throw AgentstoreError.invalidField(fromId !== undefined ? 'last-event-id' : 'after', `is past the end of the change log (${headAtStart}): reconnect without it`);
      }
      let cursor = fromId ?? fromAfter ?? headAtStart;
      const filter = { ...(types ? { resourceTypes: types } : {}), ...(collection !== undefined ? { collection } : {}) };

      const open = openByTenant.get(ctx.tenantId) ?? 0;
      if (open >= maxStreamsPerTenant) {
        throw new AgentstoreError(
          'agentstore.rate_limited',
          `this tenant has ${open} open event streams, the most this server allows; close one, or poll /v1/changes`,
          { retryAfter: 5 },
        );
      }
      openByTenant.set(ctx.tenantId, open + 1);
      let counted = true;
      const uncount = () => {
        if (!counted) return;
        counted = false;
        const left = (openByTenant.get(ctx.tenantId) ?? 1) - 1;
        if (left > 0) openByTenant.set(ctx.tenantId, left);
        else openByTenant.delete(ctx.tenantId);
      };
      // Idempotent, and also on the response's close: nothing between here and the loop's
      // finally may leave the count behind.
      reply.raw.once('close', uncount);

      let closed = false;
      let wake: (() => void) | undefined;
      const end = () => {
        closed = true;
        wake?.();
      };
      let finished!: () => void;
      const raw = reply.raw;
      const stream: Stream = { end, ended: new Promise<void>((resolve) => (finished = resolve)), raw };
      streams.add(stream);
      // A request that reached this point after preClose ran: it ends at once.
      if (shuttingDown) end();
      // The response's close, not the request's: a GET's request 'close' fires once its (empty) body is read.
      raw.on('close', end);
      let unsubscribe: (() => void) | undefined;

      reply.hijack();
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
        'x-request-id': String(req.id),
      });
      // The client reconnects after this many ms; it then sends Last-Event-ID.
      raw.write('retry: 2000\n\n');
      let lastWrite = Date.now();
      try {
        // A commit at or below the cursor was read already: no read for it.
        unsubscribe = store.changes.onWake(ctx.tenantId, (wakeup) => {
          if (wakeup.seq > cursor) wake?.();
        });
        while (!closed) {
          // Also at the first wake-up after any revocation (the epoch moved). Another process's
          // revocation is out of the cache before the wake-up its own change brings
          // (src/db/external-changes.ts), so that stream ends at once; in this process `forget`
          // runs just after the commit whose wake-up may come first, and then the tenant's next
          // change or the heartbeat ends it.
          if (Date.now() - checkedAt >= heartbeatMs || store.auth.revocationEpoch() !== checkedEpoch) {
            checkedAt = Date.now();
            checkedEpoch = store.auth.revocationEpoch();
            // Ended, not answered 401: the stream's status is sent. EventSource reconnects
            // with Last-Event-ID, and that request gets the 401 (or the new role).
            if (!(await stillValid())) break;
          }
          // Subscribe before reading, so a commit landing between read and wait still wakes us.
          const woken = new Promise<void>((resolve) => (wake = resolve));
          // Some changes are not for this stream (its filter, or the role's): the page's lastSeq
          // moves past them too (changes.poll), or every wake-up would read them again.
          let page;
          try {
            page = await store.changes.poll(ctx, { after: cursor, limit: BATCH, ...filter });
          } catch (error) {
            if (!isAgentstoreError(error, 'agentstore.unavailable')) throw error;
            // The database is unreachable, or too many scans wait: the stream stays open and
            // reads again shortly, instead of ending and bringing its client back at once.
            const retryAfter = Number(error.context.retryAfter ?? 1);
            await sleep(retryAfter * 1000 * (0.5 + Math.random() / 2), undefined, { ref: false });
            if (!closed && Date.now() - lastWrite >= heartbeatMs) {
              await write(raw, ': keep-alive\n\n', stallMs);
              lastWrite = Date.now();
            }
            continue;
          }
          const { items: events, lastSeq } = page;
          for (const event of events) {
            if (closed) break;
            const pending = write(raw, `id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`, stallMs);
            if (pending) await pending;
            cursor = event.seq;
            lastWrite = Date.now();
          }
          if (events.length === BATCH || closed) continue;
          if (lastSeq > cursor) {
            // An id with no data moves the client's Last-Event-ID without an event (the SSE
            // spec sets the id before it drops an empty event).
            cursor = lastSeq;
            const pending = write(raw, `id: ${cursor}\n\n`, stallMs);
            if (pending) await pending;
            lastWrite = Date.now();
          }
          const ac = new AbortController();
          // Wake-ups that bring nothing for this stream must not hold back its keep-alive.
          await Promise.race([woken, sleep(Math.max(0, heartbeatMs - (Date.now() - lastWrite)), undefined, { signal: ac.signal }).catch(() => undefined)]);
          ac.abort();
          if (!closed && Date.now() - lastWrite >= heartbeatMs) {
            await write(raw, ': keep-alive\n\n', stallMs);
            lastWrite = Date.now();
          }
        }
      } catch (error) {
        req.log.warn({ err: error }, 'event stream ended by an error');
      } finally {
        unsubscribe?.();
        const settle = () => {
          streams.delete(stream);
          uncount();
          finished();
        };
        if (raw.destroyed) settle();
        else {
          const socket = raw.socket;
          raw.end(() => {
            if (shuttingDown) socket?.end();
            settle();
          });
          // The client can still go away before the end is flushed: 'close' without 'finish'.
          raw.once('close', settle);
        }
      }
    },
  );
}
