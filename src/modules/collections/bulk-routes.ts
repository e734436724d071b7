import { Readable } from 'node:stream';
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger } from 'fastify';
import { AgentstoreError } from '../../core/errors.js';
import { ndjsonLines } from '../../server/ndjson.js';
import { problemDetails } from '../../server/problem.js';
import { tenantOf, withProblems, type Api, type RouteDeps } from '../../server/route-kit.js';
import type { BulkLine, BulkResult } from './bulk.js';

export interface BulkRouteOptions {
  /** A line's most bytes (a longer one fails alone). */
  readonly maxLineBytes: number;
  /** A call's most lines. */
  readonly maxLines: number;
}

const Params = Type.Object({ collection: Type.String({ maxLength: 64 }) });
const Query = Type.Object(
  { mode: Type.Optional(Type.Union([Type.Literal('create'), Type.Literal('upsert')], { description: 'the mode of lines that name none (default create)' })) },
  { additionalProperties: false },
);
// Results are written once per turn of the event loop, as they become ready together (a
// chunk's at once), not one write per line; and at the latest at this size.
const WRITE_BYTES = 64 * 1024;

function resultLine(result: BulkResult): string {
  if (result.status !== 'failed') return `${JSON.stringify(result)}\n`;
  const { error } = result;
  const problem = problemDetails(error.status, error.code, error.message, error.context.errors);
  return `${JSON.stringify({ line: result.line, ...(result.id !== undefined ? { id: result.id } : {}), status: 'failed', error: problem })}\n`;
}

/** The response: a line per result, then `{"summary": …}`; a failure that ends the load early is an `{"error": …}` line instead. */
async function* render(results: AsyncIterable<BulkResult>, log: FastifyBaseLogger): AsyncGenerator<string> {
  const summary = { lines: 0, created: 0, updated: 0, unchanged: 0, failed: 0 };
  const iterator = results[Symbol.asyncIterator]();
  const later = Symbol('later');
  let buffered = '';
  try {
    let next = iterator.next();
    for (;;) {
      // With text waiting, what is not ready before the loop's next turn goes in a later write.
      const step = buffered === '' ? await next : await Promise.race([next, new Promise<typeof later>((resolve) => setImmediate(resolve, later))]);
      if (step === later) {
        yield buffered;
        buffered = '';
        continue;
      }
      if (step.done) break;
      summary.lines++;
      summary[step.value.status]++;
      buffered += resultLine(step.value);
      next = iterator.next();
      if (buffered.length >= WRITE_BYTES) {
        yield buffered;
        buffered = '';
      }
    }
    yield `${buffered}${JSON.stringify({ summary })}\n`;
  } catch (error) {
    // The lines written so far stand (their chunks committed); the client sees no summary.
    log.error({ err: error }, 'bulk load ended by an error');
    const problem = problemDetails(500, 'agentstore.internal', 'the load ended early by an internal error; the lines answered above were written, send the rest again');
    yield `${buffered}${JSON.stringify({ error: problem })}\n`;
  }
}

export async function bulkRoutes(app: Api, { store }: RouteDeps, options: BulkRouteOptions): Promise<void> {
  // A scope of its own: here the body is NDJSON only, handed over as the request stream and
  // read line by line by the load (never buffered: a load may be far larger than memory).
  // Any other content type is a 415.
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('application/x-ndjson', (_request, payload, done) => done(null, payload));
    scope.addContentTypeParser('*', (_request, _payload, done) =>
      done(Object.assign(new Error('unsupported content type; send application/x-ndjson, one JSON object per line'), { statusCode: 415 })),
    );
    scope.withTypeProvider<TypeBoxTypeProvider>().post(
      // `::` is a literal colon in a Fastify path.
      '/v1/collections/:collection/records::bulk',
      {
        schema: {
          tags: ['records'],
          summary: 'Create or upsert many records: NDJSON in, NDJSON out, one result per line',
          description:
            'Body: application/x-ndjson, one {"id"?, "data", "mode"?: "create"|"upsert", "ttl"? | "expiresAt"?} per line. Response (200, application/x-ndjson): ' +
            'one {"line", "id", "status": "created"|"updated"|"unchanged", "version"} or {"line", "id"?, "status": "failed", "error": problem} per line, in order, ' +
            'then {"summary": {"lines", "created", "updated", "unchanged", "failed"}}.',
          params: Params,
          querystring: Query,
          response: withProblems({ 200: Type.String({ description: 'NDJSON results' }) }),
        },
      },
      async (req, reply) => {
        const ctx = tenantOf(req);
        if (!(req.body instanceof Readable)) throw AgentstoreError.invalidField('body', 'send the records as application/x-ndjson, one {"id"?, "data", "mode"?} per line');
        // Lines as parsed, unchecked: the load checks every line as it checks a library caller's.
        const lines = ndjsonLines(req.body, options.maxLineBytes) as AsyncIterable<BulkLine | AgentstoreError>;
        const results = store.collections.bulk(ctx, req.params.collection, lines, {
          maxLines: options.maxLines,
          ...(req.query.mode ? { mode: req.query.mode } : {}),
        });
        // A load the line limit ended leaves the rest of the body unread: the connection is
        // closed after the answer instead of reading (and dropping) what may be gigabytes.
        reply.raw.once('finish', () => {
          if (!req.raw.complete) req.raw.destroy();
        });
        // Streamed with backpressure: the next chunk is read and written only once the client
        // has taken the results before it.
        return reply.type('application/x-ndjson; charset=utf-8').send(Readable.from(render(results, req.log)));
      },
    );
  });
}
