import type { FastifyInstance, FastifyRequest, onRequestHookHandler, RouteOptions } from 'fastify';
import { AgentstoreError } from '../core/errors.js';
import type { Principal } from '../modules/tenancy/auth-service.js';
import type { Store } from '../store.js';
import { routeHooks, type AuthMode } from './route-kit.js';

/** The request's credential (Authorization: Bearer, or X-API-Key), undefined when it sends none. */
export function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header) {
    const match = /^Bearer\s+(\S{1,4096})\s*$/i.exec(header);
    if (!match?.[1]) throw AgentstoreError.unauthenticated('the Authorization header must be "Bearer <token>"');
    return match[1];
  }
  const apiKey = request.headers['x-api-key'];
  return typeof apiKey === 'string' && apiKey.length > 0 && apiKey.length <= 4096 ? apiKey : undefined;
}

/**
 * Resolves the credential of every request to the routes added to this scope afterwards to
 * a principal, and enforces the kind the route asks for (`config.auth`). Roles are enforced
 * by the services, so the library and the HTTP API apply the same rules.
 *
 * Each route gets its own hook when it is added, with its mode fixed: reading the route's
 * config per request (`request.routeOptions`) builds a new options object every time.
 */
export function registerAuth(app: FastifyInstance, store: Store, guarded?: WeakSet<RouteOptions>): void {
  app.decorateRequest('principal', null);
  app.addHook('onRoute', (route: RouteOptions) => {
    const mode = authMode(route);
    if (mode === 'none') return;
    // First among the route's own hooks: none of them runs for an unauthenticated request.
    route.onRequest = [authHook(store, mode), ...routeHooks(route.onRequest)];
    guarded?.add(route);
  });
}

function authMode(route: RouteOptions): AuthMode {
  return (route.config as { auth?: AuthMode } | undefined)?.auth ?? 'tenant';
}

/**
 * Makes the app refuse to start if a route under `prefix` that takes a credential did not
 * get the auth hook: one added to the scope before `registerAuth`, or outside it. Call on the
 * root instance before any route; pass the returned set to `registerAuth`.
 */
export function requireAuthUnder(app: FastifyInstance, prefix: string): WeakSet<RouteOptions> {
  const guarded = new WeakSet<RouteOptions>();
  const routes: RouteOptions[] = [];
  app.addHook('onRoute', (route: RouteOptions) => {
    if (route.url === prefix || route.url.startsWith(`${prefix}/`)) routes.push(route);
  });
  app.addHook('onReady', (done) => {
    const open = routes.filter((route) => authMode(route) !== 'none' && !guarded.has(route));
    done(open.length === 0 ? undefined : new Error(`routes without the auth hook: ${open.map((r) => `${String(r.method)} ${r.url}`).join(', ')}`));
  });
  return guarded;
}

/**
 * A callback hook, not an async one: a cached credential (nearly every request) is
 * resolved without a promise.
 */
function authHook(store: Store, mode: Exclude<AuthMode, 'none'>): onRequestHookHandler {
  return (request, _reply, done) => {
    let token: string | undefined;
    try {
      token = bearer(request);
    } catch (error) {
      return done(error as Error);
    }
    if (!token) return done(AgentstoreError.unauthenticated('send a bearer token: Authorization: Bearer <token>'));
    const hit = store.auth.cached(token);
    if (hit) return done(admit(request, mode, hit));
    // verify, not authenticate: a refusal carries its reason (which JWT check failed) to the 401.
    store.auth.verify(token).then(
      (principal) => done(admit(request, mode, principal)),
      (error: unknown) => done(error as Error),
    );
  };
}

function admit(request: FastifyRequest, mode: AuthMode, principal: Principal | undefined): AgentstoreError | undefined {
  if (!principal) return AgentstoreError.unauthenticated('the token is unknown, revoked or expired');
  if (mode === 'service' && principal.kind !== 'service') return AgentstoreError.forbidden('this route takes the service key');
  if (mode === 'tenant' && principal.kind !== 'tenant') return AgentstoreError.forbidden('this route takes a tenant credential (API key, session or JWT)');
  request.principal = principal;
  return undefined;
}
