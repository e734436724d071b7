/**
 * The per-turn request budget (src/server/admission.ts): below it a request proceeds at once;
 * past it requests queue in arrival order and are worked off in slices, between which the
 * event loop turns (timers run, connections are accepted).
 */
import { expect, it } from 'vitest';
import { createAdmission } from '../../src/server/admission.js';
import { forEachBackend } from '../helpers/index.js';
import { bearer, createTenant, useHttp } from './http-kit.js';

const busy = (ms: number): void => {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // burn CPU, as a request does
  }
};

const idle = () => new Promise((resolve) => setTimeout(resolve, 20));
const fail = (error: unknown): void => {
  throw new Error(`unexpected admission error: ${String(error)}`);
};

it('proceeds at once while the turn is under budget', async () => {
  await idle();
  // Far above what five pushes take, even on a machine that stalls.
  const admission = createAdmission(1000, fail);
  const ran: number[] = [];
  for (let i = 0; i < 5; i++) admission.admit(() => ran.push(i));
  expect(ran).toEqual([0, 1, 2, 3, 4]);
  expect(admission.queued).toBe(0);
});

it('queues past the budget, keeps arrival order, and queues newcomers behind the queue', async () => {
  await idle();
  const admission = createAdmission(2, fail);
  const ran: number[] = [];
  admission.admit(() => {
    ran.push(0);
    busy(3);
  });
  for (let i = 1; i <= 3; i++) {
    admission.admit(() => {
      ran.push(i);
      busy(1.5);
    });
  }
  expect(ran).toEqual([0]);
  expect(admission.queued).toBe(3);
  // The first slice (2 ms) runs two of them; in the next turn, a newcomer waits its turn
  // behind the third although its own turn has spent nothing yet.
  await new Promise((resolve) => setTimeout(resolve, 0));
  const before = ran.length;
  expect(ran).toEqual([0, 1, 2].slice(0, before));
  admission.admit(() => ran.push(4));
  expect(ran).toHaveLength(before);
  expect(admission.queued).toBe(4 - before + 1);
  await idle();
  expect(ran).toEqual([0, 1, 2, 3, 4]);
  expect(admission.queued).toBe(0);
});

it('works the queue off in slices: the event loop turns between them', async () => {
  await idle();
  const admission = createAdmission(2, fail);
  const ran: number[] = [];
  admission.admit(() => busy(3));
  for (let i = 0; i < 40; i++) {
    admission.admit(() => {
      ran.push(i);
      busy(0.5);
    });
  }
  // 40 x 0.5 ms of queued work; a timer due now must not wait for all of it.
  let doneWhenTimerFired = -1;
  setTimeout(() => (doneWhenTimerFired = ran.length), 0);
  while (admission.queued > 0) await new Promise((resolve) => setImmediate(resolve));
  await idle();
  expect(ran).toEqual(Array.from({ length: 40 }, (_, i) => i));
  expect(doneWhenTimerFired).toBeGreaterThanOrEqual(0);
  expect(doneWhenTimerFired).toBeLessThan(40);
});

it('lets an asynchronous request continue before the next one starts', async () => {
  await idle();
  const admission = createAdmission(2, fail);
  const events: string[] = [];
  admission.admit(() => busy(3));
  for (const name of ['a', 'b']) {
    admission.admit(() => {
      events.push(`${name} start`);
      void Promise.resolve().then(() => events.push(`${name} continued`));
    });
  }
  await idle();
  expect(events).toEqual(['a start', 'a continued', 'b start', 'b continued']);
});

it('a queued request that throws is reported, and the ones behind it still run', async () => {
  await idle();
  const errors: unknown[] = [];
  const admission = createAdmission(2, (error) => errors.push(error));
  const ran: string[] = [];
  admission.admit(() => busy(3));
  admission.admit(() => {
    throw new Error('boom');
  });
  admission.admit(() => ran.push('after'));
  await idle();
  expect(errors.map(String)).toEqual(['Error: boom']);
  expect(ran).toEqual(['after']);
  // The queue is usable afterwards.
  admission.admit(() => ran.push('later'));
  await idle();
  expect(ran).toEqual(['after', 'later']);
});

it('keeps serving in order when the queue never empties for thousands of requests', async () => {
  await idle();
  const admission = createAdmission(1, fail);
  const ran: number[] = [];
  let next = 0;
  admission.admit(() => busy(2));
  // Each request admits a successor when it runs, as a closed-loop client does: the queue
  // stays non-empty the whole time (the consumed part of it is cut off as it goes).
  const request = (i: number) => () => {
    ran.push(i);
    busy(0.05);
    if (next < 5000) {
      const id = next++;
      setImmediate(() => admission.admit(request(id)));
    }
  };
  for (let k = 0; k < 50; k++) admission.admit(request(next++));
  while (ran.length < 5000) await new Promise((resolve) => setImmediate(resolve));
  await idle();
  expect(ran).toEqual(Array.from({ length: 5000 }, (_, i) => i));
  expect(admission.queued).toBe(0);
});

it('a queued request whose client left is dropped, not run; the ones behind it still run', async () => {
  await idle();
  const dropped: string[] = [];
  const admission = createAdmission<{ name: string; left: boolean }>(2, fail, { left: (s) => s.left, drop: (s) => dropped.push(s.name) });
  const ran: string[] = [];
  const leaves = { name: 'leaves', left: false };
  admission.admit(() => busy(3));
  admission.admit(() => ran.push('stays'), { name: 'stays', left: false });
  admission.admit(() => ran.push('leaves'), leaves);
  admission.admit(() => ran.push('plain'));
  leaves.left = true;
  await idle();
  expect(ran).toEqual(['stays', 'plain']);
  expect(dropped).toEqual(['leaves']);
  expect(admission.queued).toBe(0);
});

forEachBackend('http admission under a burst', (backend) => {
  const h = useHttp(backend, { app: { server: { loopBudgetMs: 1 } } });

  it('answers every request of a burst far past the budget, each with its own record', async () => {
    const t = await createTenant(h.app);
    for (let i = 0; i < 20; i++) {
      const res = await h.app.inject({ method: 'POST', url: '/v1/collections/burst/records', headers: bearer(t.key), payload: { id: `b${i}`, i } });
      expect(res.statusCode, res.body).toBe(201);
    }
    // 300 requests issued in one turn: all but the first few are queued and run in slices.
    // A scrape among them sees the ones behind it waiting.
    const gets = Array.from({ length: 300 }, (_, k) => h.app.inject({ method: 'GET', url: `/v1/collections/burst/records/b${k % 20}`, headers: bearer(t.key) }));
    const scrape = h.app.inject({ method: 'GET', url: '/metrics' });
    const more = Array.from({ length: 100 }, () => h.app.inject({ method: 'GET', url: '/v1/collections/burst/records/b0', headers: bearer(t.key) }));
    const responses = await Promise.all(gets);
    const queued = Number(/^agentstore_http_queued_requests (\d+)$/m.exec((await scrape).body)?.[1]);
    expect(queued).toBeGreaterThan(0);
    for (const res of await Promise.all(more)) expect(res.statusCode).toBe(200);
    responses.forEach((res, k) => {
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json<{ data: { i: number } }>().data.i).toBe(k % 20);
    });
  });

  it('drops the queued requests of clients that left: their handlers never run', async () => {
    const t = await createTenant(h.app);
    const created = await h.app.inject({ method: 'POST', url: '/v1/collections/gone/records', headers: bearer(t.key), payload: { id: 'g1' } });
    expect(created.statusCode, created.body).toBe(201);
    const svc = h.store.collections;
    const getJson = svc.getJson.bind(svc);
    // 300 requests ahead keep the 100 behind them queued past the first slice; those
    // clients leave when the first handler reads (an aborted inject destroys its request,
    // as Node does when a connection closes). Leaving then, not after some answer, keeps
    // the ones behind queued however slow the backend is: a slow read (pgbouncer) let the
    // whole queue be admitted before the first answer came back.
    const leaving = Array.from({ length: 100 }, () => new AbortController());
    let reads = 0;
    svc.getJson = (...args: Parameters<typeof getJson>) => {
      reads += 1;
      if (reads === 1) for (const c of leaving) c.abort();
      return getJson(...args);
    };
    try {
      const get = (signal?: AbortSignal) => h.app.inject({ method: 'GET', url: '/v1/collections/gone/records/g1', headers: bearer(t.key), ...(signal ? { signal } : {}) });
      const ahead = Array.from({ length: 300 }, () => get());
      const behind = leaving.map((c) => get(c.signal));
      const settled = await Promise.allSettled(behind);
      for (const res of await Promise.all(ahead)) expect(res.statusCode).toBe(200);
      const aborted = settled.filter((r) => r.status === 'rejected').length;
      expect(aborted).toBeGreaterThan(0);
      // Every request ahead read its record. A request behind may have been aborted after
      // its handler started (a slow backend still answering it), so it can count both as
      // aborted and as a read: only the bound below, one or the other, holds.
      expect(reads).toBeGreaterThanOrEqual(300);
      const after = await get();
      expect(after.statusCode).toBe(200);
      const scrape = (await h.app.inject({ method: 'GET', url: '/metrics' })).body;
      const abandoned = Number(/^agentstore_http_abandoned_requests_total (\d+)$/m.exec(scrape)?.[1]);
      expect(abandoned).toBeGreaterThan(0);
      // Each request behind ran its handler or was dropped: one or the other, never both.
      expect(abandoned).toBeLessThanOrEqual(aborted);
      expect(reads - 301 + abandoned).toBe(100);
    } finally {
      svc.getJson = getJson;
    }
  });
});
