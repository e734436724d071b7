import type { FastifyInstance, FastifyReply, FastifyRequest, onResponseHookHandler, RouteOptions } from 'fastify';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Store } from '../store.js';
import { HttpMetrics, type RouteMetrics } from './http-metrics.js';
import { routeHooks } from './route-kit.js';

export interface AppMetrics {
  readonly contentType: string;
  /** Everything, in the Prometheus text format. */
  metrics(): Promise<string>;
  /** Records a request no route matched (the not-found handler calls it). */
  unmatched(request: FastifyRequest, reply: FastifyReply): void;
  /** Counts a queued request not run because its client left (src/server/admission.ts). */
  abandoned(): void;
  /** Counts a request Node's HTTP parser refused before Fastify saw it (src/server/client-errors.ts). */
  refused(status: number): void;
}

/**
 * Prometheus metrics on a registry of this app's own (not prom-client's global one), so
 * that several apps in one process (tests, embedding) do not collide. Process and pool
 * metrics come from prom-client; the per-request ones from HttpMetrics, through a hook each
 * route gets when it is added (call this before registering routes: only later routes are
 * counted).
 */
export function registerMetrics(app: FastifyInstance, store: Store, options: { queuedRequests?: () => number } = {}): AppMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'agentstore_' });
  const queuedRequests = options.queuedRequests ?? (() => 0);
  new Gauge({
    name: 'agentstore_http_queued_requests',
    help: 'Requests waiting for their turn because the event loop spent its per-turn budget (AGENTSTORE_LOOP_BUDGET_MS)',
    registers: [registry],
    collect() {
      this.set(queuedRequests());
    },
  });
  const abandoned = new Counter({
    name: 'agentstore_http_abandoned_requests_total',
    help: 'Queued requests not run because their client closed the connection before their turn',
    registers: [registry],
  });
  const refused = new Counter({
    name: 'agentstore_http_parser_refused_total',
    help: 'Requests refused by the HTTP parser before routing (malformed, head too large, too slow), by status',
    labelNames: ['status_code'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'agentstore_db_pool_connections',
    help: 'Database pool connections by state (SQLite: one connection)',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      const stats = store.internals.db.poolStats();
      this.set({ state: 'total' }, stats.total);
      this.set({ state: 'idle' }, stats.idle);
      this.set({ state: 'waiting' }, stats.waiting);
      this.set({ state: 'max' }, stats.max);
    },
  });

  new Counter({
    name: 'agentstore_external_changes_total',
    help: 'SQLite: commits of other processes to the same file seen by this one (catch_ups), wake-ups published for them, own commits not woken twice (own_skipped), duplicate wake-ups, credential changes passed to the auth cache, failed reads',
    labelNames: ['event'] as const,
    registers: [registry],
    collect() {
      const stats = store.internals.externalChanges.stats();
      this.reset();
      for (const [event, value] of [
        ['catch_ups', stats.catchUps],
        ['wakeups', stats.wakeups],
        ['own_skipped', stats.ownSkipped],
        ['duplicate_wakeups', stats.duplicateWakeups],
        ['credential_changes', stats.credentialChanges],
        ['failures', stats.failures],
      ] as const) {
        this.inc({ event }, value);
      }
    },
  });

  new Counter({
    name: 'agentstore_records_expired_total',
    help: 'Expired records deleted by this process\'s expiry sweeps (each with its delete change)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(store.internals.expiry.stats().expired);
    },
  });
  new Counter({
    name: 'agentstore_expiry_sweep_failures_total',
    help: 'Expiry sweeps that failed (the next interval tries again)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(store.internals.expiry.stats().failures);
    },
  });

  const http = new HttpMetrics();
  app.addHook('onRoute', (route: RouteOptions) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const byMethod = new Map<string, RouteMetrics>(methods.map((m) => [m, http.forRoute(m, route.url)]));
    const only = methods.length === 1 ? byMethod.get(methods[0] as string) : undefined;
    const hook: onResponseHookHandler = (request, reply, done) => {
      (only ?? byMethod.get(request.method))?.observe(reply.statusCode, reply.elapsedTime / 1000);
      done();
    };
    route.onResponse = [...routeHooks(route.onResponse), hook];
  });
  const unmatched = new Map<string, RouteMetrics>();

  return {
    contentType: registry.contentType,
    metrics: async () => `${await registry.metrics()}${http.render()}`,
    unmatched(request, reply) {
      let m = unmatched.get(request.method);
      if (!m) {
        m = http.forRoute(request.method, 'unmatched');
        unmatched.set(request.method, m);
      }
      m.observe(reply.statusCode, reply.elapsedTime / 1000);
    },
    abandoned: () => abandoned.inc(),
    refused: (status) => refused.inc({ status_code: String(status) }),
  };
}
