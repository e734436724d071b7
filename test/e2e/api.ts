import type { ChangeEvent } from '../../src/index.js';
/**
 * A small HTTP client for the e2e suites: JSON requests against a running server, tenant
 * and key setup through the service key, and paging through cursor and change-feed lists.
 */
import { expect } from 'vitest';

export interface ApiResponse<T = any> {
  readonly status: number;
  readonly body: T;
  readonly headers: Headers;
}

export interface Api {
  request<T = any>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse<T>>;
  /** The same, asserting a 2xx status (the problem body is in the failure message). */
  ok<T = any>(method: string, path: string, body?: unknown): Promise<T>;
}

export function api(baseUrl: string, token: string): Api {
  const request = async <T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse<T>> => {
    const res = await fetch(baseUrl + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    let parsed: unknown = text;
    if ((res.headers.get('content-type') ?? '').includes('json') && text !== '') parsed = JSON.parse(text);
    return { status: res.status, body: parsed as T, headers: res.headers };
  };
  return {
    request,
    async ok<T>(method: string, path: string, body?: unknown): Promise<T> {
      const res = await request<T>(method, path, body);
      expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBeGreaterThanOrEqual(200);
      expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
      return res.body;
    },
  };
}

/** A new tenant and an API key of `role` in it, made with the service key over HTTP. */
export async function newTenantWithKey(baseUrl: string, serviceKey: string, role = 'admin'): Promise<{ tenantId: string; key: string; keyId: string }> {
  const service = api(baseUrl, serviceKey);
  const tenant = await service.ok<{ id: string }>('POST', '/v1/tenants', { name: `e2e-${Date.now()}` });
  const created = await service.ok<{ id: string; key: string }>('POST', `/v1/tenants/${tenant.id}/api-keys`, { name: 'e2e', role });
  return { tenantId: tenant.id, key: created.key, keyId: created.id };
}

/** Every item of a `{ items, nextCursor }` list. */
export async function listAll<T>(client: Api, path: string, limit = 500): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  const sep = path.includes('?') ? '&' : '?';
  do {
    const page: { items: T[]; nextCursor: string | null } = await client.ok('GET', `${path}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return items;
}

/** A change-log entry, as `GET /v1/changes` returns it. */
export type Change = ChangeEvent;

/** The whole change log of the tenant, following `after` = lastSeq. */
export async function allChanges(client: Api): Promise<Change[]> {
  const items: Change[] = [];
  let after = 0;
  for (;;) {
    const page: { items: Change[]; lastSeq: number } = await client.ok('GET', `/v1/changes?after=${after}&limit=1000`);
    items.push(...page.items);
    if (page.items.length === 0) return items;
    after = page.lastSeq;
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `fn` until it returns true or `timeoutMs` passes; returns whether it did. */
export async function eventually(fn: () => Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return true;
    if (Date.now() > deadline) return false;
    await sleep(everyMs);
  }
}
