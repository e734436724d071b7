import type { Problem } from '../../src/server/problem.js';
/**
 * Shared pieces of the HTTP suites: an app over a test store (with a configured service
 * key), tenants with admin keys made through the API itself, problem+json assertions and
 * row counts of every table.
 */
import http from 'node:http';
import { sql } from 'kysely';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, expect } from 'vitest';
import { buildApp, type AppOptions } from '../../src/server/app.js';
import { TENANT_TABLES } from '../../src/db/schema.js';
import type { Store } from '../../src/store.js';
import { openTestStore, type Backend, type TestStore, type TestStoreOptions } from '../helpers/index.js';

/** SQL-injection probes for every string field, path parameter and filter. */
export const INJECTIONS = [
  "x'); DROP TABLE records;--",
  '" OR 1=1 --',
  "$.a') --",
  "1; DELETE FROM tenants WHERE '1'='1",
  "records' UNION SELECT key_hash FROM api_keys --",
  '{a,b}\'; TRUNCATE changes; --',
];

/** Not a secret: test stores only. Starts with assk_ so the auth service treats it as a service key. */
export const SERVICE_KEY = 'assk_http_suite_service_key_0123456789abcdef';

export interface HttpHarness {
  readonly app: FastifyInstance;
  readonly store: Store;
  readonly test: TestStore;
}

export interface HttpHarnessOptions extends TestStoreOptions {
  readonly app?: AppOptions;
}

/** Opens a store and an app for the enclosing describe block. */
export async function openHttp(backend: Backend, options: HttpHarnessOptions = {}): Promise<HttpHarness & { close(): Promise<void> }> {
  const { app: appOptions, ...storeOptions } = options;
  const test = await openTestStore(backend, {
    ...storeOptions,
    store: { ...storeOptions.store, auth: { serviceKey: SERVICE_KEY, ...storeOptions.store?.auth } },
  });
  try {
    const app = await buildApp(test.store, { logger: false, ...appOptions });
    await app.ready();
    return {
      app,
      store: test.store,
      test,
      async close() {
        await app.close();
        await test.close();
      },
    };
  } catch (error) {
    await test.close();
    throw error;
  }
}

export function useHttp(backend: Backend, options: HttpHarnessOptions = {}): HttpHarness {
  let current: (HttpHarness & { close(): Promise<void> }) | undefined;
  beforeAll(async () => {
    current = await openHttp(backend, options);
  });
  afterAll(async () => {
    await current?.close();
    current = undefined;
  });
  const get = () => {
    if (!current) throw new Error('useHttp: read the harness inside a test or hook');
    return current;
  };
  return {
    get app() {
      return get().app;
    },
    get store() {
      return get().store;
    },
    get test() {
      return get().test;
    },
  };
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

export interface HttpTenant {
  readonly id: string;
  readonly name: string;
  /** An admin API key's secret. */
  readonly key: string;
  readonly keyId: string;
}

let tenantSeq = 0;

/** A tenant and an admin API key, made over HTTP with the service key. */
export async function createTenant(app: FastifyInstance, name = `http-tenant-${process.pid}-${++tenantSeq}`, role = 'admin'): Promise<HttpTenant> {
  const created = await app.inject({ method: 'POST', url: '/v1/tenants', headers: bearer(SERVICE_KEY), payload: { name } });
  expect(created.statusCode, created.body).toBe(201);
  const id = created.json<{ id: string }>().id;
  const key = await app.inject({ method: 'POST', url: `/v1/tenants/${id}/api-keys`, headers: bearer(SERVICE_KEY), payload: { name: `${name}-key`, role } });
  expect(key.statusCode, key.body).toBe(201);
  const body = key.json<{ id: string; key: string }>();
  return { id, name, key: body.key, keyId: body.id };
}

/** An extra API key of `role` in a tenant. */
export async function createKey(app: FastifyInstance, tenant: HttpTenant, role: string, name = `${role}-key`): Promise<{ id: string; key: string }> {
  const res = await app.inject({ method: 'POST', url: '/v1/api-keys', headers: bearer(tenant.key), payload: { name, role } });
  expect(res.statusCode, res.body).toBe(201);
  return res.json<{ id: string; key: string }>();
}

/** The problem+json body, as the server renders it. */
export type ProblemBody = Problem;

export interface ExpectedProblem {
  readonly code?: string;
  /** A field that must be named in errors[].field (exactly, or matching a RegExp). */
  readonly field?: string | RegExp;
}

/** Asserts an RFC 9457 problem+json of `status` (one status or a list) and returns its body. */
export function expectProblem(res: LightMyRequestResponse, status: number | readonly number[], expected: ExpectedProblem = {}): ProblemBody {
  const statuses = typeof status === 'number' ? [status] : status;
  const where = `${res.statusCode} ${res.body.slice(0, 600)}`;
  expect(statuses, where).toContain(res.statusCode);
  expect(String(res.headers['content-type']), where).toMatch(/^application\/problem\+json/);
  const body = res.json<ProblemBody>();
  expect(body.status, where).toBe(res.statusCode);
  expect(typeof body.code, where).toBe('string');
  expect(body.code, where).toMatch(/^agentstore\./);
  expect(typeof body.detail, where).toBe('string');
  expect(body.detail.length, where).toBeGreaterThan(0);
  expect(typeof body.title, where).toBe('string');
  expect(typeof body.requestId, where).toBe('string');
  // RFC 9110 §11.6.1: every 401 says how to authenticate (test/http/www-authenticate.test.ts).
  if (res.statusCode === 401) expect(res.headers['www-authenticate'], where).toMatch(/^Bearer realm="agentstore"(, error="invalid_token")?$/);
  else expect(res.headers['www-authenticate'], where).toBeUndefined();
  if (expected.code) expect(body.code, where).toBe(expected.code);
  if (expected.field !== undefined) {
    const fields = (body.errors ?? []).map((e) => e.field);
    const wanted = expected.field;
    expect(
      fields.some((f) => (typeof wanted === 'string' ? f === wanted : wanted.test(f))),
      `errors[].field ${JSON.stringify(fields)} should name ${String(wanted)}: ${where}`,
    ).toBe(true);
  }
  return body;
}

/** Rows of every tenant table for these tenants, plus the tenants and service keys. */
export async function countEverything(store: Store, tenantIds: readonly string[]): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const db = store.internals.db;
  const system = await db.inSystem(
    async (trx) => {
      const out: Record<string, number> = {};
      for (const table of ['tenants', 'service_keys'] as const) {
        const { rows } = await sql<{ n: number | string }>`select count(*) as n from ${sql.table(table)}`.execute(trx);
        out[table] = Number(rows[0]?.n ?? 0);
      }
      return out;
    },
    { readOnly: true },
  );
  Object.assign(counts, system);
  for (const tenantId of tenantIds) {
    await db.inTenant(
      tenantId,
      async (trx) => {
        for (const table of TENANT_TABLES) {
          const { rows } = await sql<{ n: number | string }>`select count(*) as n from ${sql.table(table)} where tenant_id = ${tenantId}`.execute(trx);
          counts[`${tenantId}:${table}`] = Number(rows[0]?.n ?? 0);
        }
      },
      { readOnly: true },
    );
  }
  return counts;
}

/**
 * Every route of the app as `METHOD /url`, read from `printRoutes` (HEAD left out: Fastify
 * adds it to every GET). Derived from the app, so a new route shows up here by itself.
 */
export function listRoutes(app: FastifyInstance): string[] {
  const out: string[] = [];
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const at = line.indexOf('── ');
    if (at < 0) continue;
    const depth = (at - 1) / 4;
    const match = /^(\S+)(?: \(([^)]*)\))?/.exec(line.slice(at + 3));
    if (!match?.[1]) continue;
    const path = (depth > 0 ? (stack[depth - 1] ?? '') : '') + match[1];
    stack[depth] = path;
    stack.length = depth + 1;
    for (const method of (match[2] ?? '').split(',').map((m) => m.trim()).filter(Boolean)) {
      if (method !== 'HEAD') out.push(`${method} ${path}`);
    }
  }
  return [...new Set(out)].sort();
}

export interface SseEvent {
  readonly id?: string;
  readonly event?: string;
  readonly data: string;
}

export interface SseClient {
  readonly status: number;
  readonly headers: Headers;
  /** Waits for the next `count` events (not comments) within `timeoutMs`. */
  take(count: number, timeoutMs?: number): Promise<SseEvent[]>;
  /** Resolves when the server ends the stream (or rejects after timeoutMs). */
  ended(timeoutMs?: number): Promise<void>;
  /** The last id the stream set, as EventSource keeps it for Last-Event-ID (id-only blocks too). */
  lastEventId(): string | undefined;
  /** When the stream last sent any bytes (comments included), from performance.now(). */
  lastBytesAt(): number;
  close(): void;
}

/**
 * A Server-Sent Events client with a streaming reader. node:http rather than fetch: when
 * fetch (undici) aborts a streaming body it leaves the socket to linger for seconds, which
 * would make every app.close() after an SSE test wait for it; closing a node:http request
 * destroys the socket at once, as a browser closing a tab does.
 */
export async function openSse(url: string, headers: Record<string, string>): Promise<SseClient> {
  const request = http.get(url, { headers: { accept: 'text/event-stream', ...headers } });
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    request.once('response', resolve);
    request.once('error', reject);
  });
  request.on('error', () => undefined);
  const queue: SseEvent[] = [];
  let waiter: (() => void) | undefined;
  let done = false;
  let closedByUs = false;
  let failure: unknown;
  res.setEncoding('utf8');
  let buffer = '';
  let lastId: string | undefined;
  let lastBytes = performance.now();
  res.on('data', (chunk: string) => {
    buffer += chunk;
    lastBytes = performance.now();
    let cut: number;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const event: { id?: string; event?: string; data: string[] } = { data: [] };
      let any = false;
      for (const line of block.split('\n')) {
        if (line.startsWith(':') || line.startsWith('retry:')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'id') event.id = value;
        else if (field === 'event') event.event = value;
        else if (field === 'data') event.data.push(value);
        else continue;
        any = true;
      }
      if (event.id !== undefined) lastId = event.id;
      // As EventSource dispatches: the id is kept, but a block without data is no event.
      if (any && event.data.length > 0) queue.push({ ...(event.id !== undefined ? { id: event.id } : {}), ...(event.event !== undefined ? { event: event.event } : {}), data: event.data.join('\n') });
    }
    waiter?.();
  });
  const finish = (error?: unknown) => {
    if (error && !closedByUs) failure = error;
    done = true;
    waiter?.();
  };
  res.on('end', () => finish());
  res.on('close', () => finish());
  res.on('error', finish);
  const responseHeaders = new Headers();
  for (const [name, value] of Object.entries(res.headers)) if (typeof value === 'string') responseHeaders.set(name, value);
  const wait = (timeoutMs: number, ready: () => boolean, what: string) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiter = undefined;
        reject(new Error(`SSE: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const check = () => {
        if (ready()) {
          clearTimeout(timer);
          waiter = undefined;
          resolve();
        } else if (done) {
          clearTimeout(timer);
          waiter = undefined;
          reject(new Error(`SSE: the stream ended while waiting for ${what}${failure ? `: ${String(failure)}` : ''}`));
        }
      };
      waiter = check;
      check();
    });
  return {
    status: res.statusCode ?? 0,
    headers: responseHeaders,
    lastEventId: () => lastId,
    lastBytesAt: () => lastBytes,
    async take(count, timeoutMs = 5000) {
      await wait(timeoutMs, () => queue.length >= count, `${count} event(s), have ${queue.length}`);
      return queue.splice(0, count);
    },
    async ended(timeoutMs = 5000) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`SSE: the stream did not end within ${timeoutMs} ms`)), timeoutMs);
        const check = () => {
          if (done) {
            clearTimeout(timer);
            resolve();
          }
        };
        waiter = check;
        check();
      });
    },
    close() {
      closedByUs = true;
      request.destroy();
    },
  };
}

/** Starts `app` on an ephemeral local port and returns its base URL (for real-socket clients such as SSE). */
export async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  return `http://127.0.0.1:${address.port}`;
}
