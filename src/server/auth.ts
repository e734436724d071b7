import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AgentstoreError } from '../core/errors.js';
import type { Store } from '../store.js';

function bearer(request: FastifyRequest): string | undefined {
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
 * Resolves the credential of every request in this scope to a principal, and enforces the
 * kind the route asks for (`config.auth`). Roles are enforced by the services, so the
 * library and the HTTP API apply the same rules.
 */
export function registerAuth(app: FastifyInstance, store: Store): void {
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (request) => {
    const mode = request.routeOptions.config.auth ?? 'tenant';
    if (mode === 'none') return;
    const token = bearer(request);
    if (!token) throw AgentstoreError.unauthenticated('send a bearer token: Authorization: Bearer <token>');
    const principal = await store.auth.authenticate(token);
    if (!principal) throw AgentstoreError.unauthenticated('the token is unknown, revoked or expired');
    if (mode === 'service' && principal.kind !== 'service') throw AgentstoreError.forbidden('this route takes the service key');
    if (mode === 'tenant' && principal.kind !== 'tenant') throw AgentstoreError.forbidden('this route takes a tenant credential (API key, session or JWT)');
    request.principal = principal;
  });
}
