/** The start-up check that every /v1 route taking a credential got the auth hook. No backend involved. */
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { registerAuth, requireAuthUnder } from '../../src/server/auth.js';
import type { Store } from '../../src/store.js';

// The hook only touches the store when a request arrives; these apps never serve one.
const store = {} as unknown as Store;

async function appWith(register: (v1: ReturnType<typeof Fastify>, guard: () => void) => void): Promise<ReturnType<typeof Fastify>> {
  const app = Fastify({ logger: false });
  const guarded = requireAuthUnder(app, '/v1');
  app.get('/health', () => ({ ok: true }));
  await app.register(async (v1) => register(v1 as unknown as ReturnType<typeof Fastify>, () => registerAuth(v1, store, guarded)));
  return app;
}

describe('requireAuthUnder', () => {
  it('lets the app start when every /v1 route was added after registerAuth (HEAD routes included)', async () => {
    const app = await appWith((v1, guard) => {
      guard();
      v1.get('/v1/things/:id', () => ({}));
      v1.post('/v1/things', () => ({}));
      v1.get('/v1/open', { config: { auth: 'none' } }, () => ({}));
    });
    await expect(app.ready()).resolves.toBeDefined();
    await app.close();
  });

  it('refuses to start when a /v1 route taking a credential was added before registerAuth, and names it', async () => {
    const app = await appWith((v1, guard) => {
      v1.post('/v1/tenants', { config: { auth: 'service' } }, () => ({}));
      v1.get('/v1/public', { config: { auth: 'none' } }, () => ({}));
      guard();
      v1.get('/v1/things', () => ({}));
    });
    await expect(app.ready()).rejects.toThrow(/routes without the auth hook: POST \/v1\/tenants$/);
    await app.close().catch(() => undefined);
  });
});
