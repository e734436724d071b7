/**
 * One tenant's open event streams are capped per server: each is a connection and a read per
 * wake-up, so one tenant's thousands would be every tenant's load.
 */
import { beforeAll, expect, it } from 'vitest';
import { forEachBackend } from '../helpers/index.js';
import { bearer, createTenant, openSse, useHttp, type SseClient, listen } from './http-kit.js';


forEachBackend('event streams per tenant', (backend) => {
  const h = useHttp(backend, { app: { server: { eventsMaxStreamsPerTenant: 2 } } });
  let base: string;
  beforeAll(async () => {
    base = await listen(h.app);
  });

  it('a tenant past its streams gets 429 with Retry-After; another tenant is not affected; a closed stream frees its place', async () => {
    const a = await createTenant(h.app, `streams-a-${backend.name}`);
    const b = await createTenant(h.app, `streams-b-${backend.name}`);
    const open: SseClient[] = [];
    try {
      open.push(await openSse(`${base}/v1/events`, bearer(a.key)), await openSse(`${base}/v1/events`, bearer(a.key)));
      expect(open.map((s) => s.status)).toEqual([200, 200]);
      const refused = await fetch(`${base}/v1/events`, { headers: { accept: 'text/event-stream', ...bearer(a.key) } });
      expect(refused.status).toBe(429);
      expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(((await refused.json()) as { detail: string }).detail).toMatch(/2 open event streams/);

      const other = await openSse(`${base}/v1/events`, bearer(b.key));
      open.push(other);
      expect(other.status).toBe(200);

      open.shift()?.close();
      // The server counts the stream out when its connection has closed.
      let again: SseClient | undefined;
      for (let i = 0; i < 100 && !again; i++) {
        const attempt = await openSse(`${base}/v1/events`, bearer(a.key));
        if (attempt.status === 200) again = attempt;
        else {
          attempt.close();
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
      expect(again?.status).toBe(200);
      if (again) open.push(again);
    } finally {
      for (const s of open) s.close();
    }
  });
});
