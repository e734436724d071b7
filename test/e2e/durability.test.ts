/**
 * Acceptance test for durability: the real server process, concurrent writers, SIGKILL
 * while requests are in flight, restart on the same data.
 *
 * Every write the client saw acknowledged (a 2xx with its body) must be there after the
 * restart, exactly as acknowledged; a write whose answer never came may or may not be
 * there, but never half: each record has one `record.create` change and audit entry, one
 * change and audit entry per version, and no change or audit entry names a record that
 * does not exist. Three kills per backend, at different moments (early, later, by time).
 */
import { randomUUID } from 'node:crypto';
import { expect, it } from 'vitest';
import type { Counter, StoredRecord } from '../../src/index.js';
import { forEachBackend, seededRandom } from '../helpers/index.js';
import { allChanges, api, listAll, newTenantWithKey, type Api } from './api.js';
import { startServer, waitForExit, type ServerProcess } from './process.js';
import { useServerEnv } from './server-env.js';

const WORKERS = 12;
const COLLECTION = 'items';
const COUNTER = 'hits';
const SERVICE_KEY = `assk_e2e_durability_${randomUUID()}`;

interface RecordState {
  readonly version: number;
  readonly data: Record<string, unknown>;
}

/** What the client knows about one record id. */
interface Tracked {
  /** The last acknowledged state, if any. */
  acked?: RecordState;
  /** The state an unanswered request would have produced (at most one per id: workers are sequential). */
  unanswered?: RecordState;
}

interface RoundResult {
  readonly ackedIncrements: number;
  readonly unansweredIncrements: number;
  readonly unansweredRequests: number;
  readonly acks: number;
  readonly unexpected: string[];
}

/**
 * Runs WORKERS sequential clients (create a record, patch it, increment the counter, ...)
 * until the server dies; `killWhen` is polled and SIGKILLs the server when it says so.
 */
async function writeUntilKilled(server: ServerProcess, client: Api, round: number, tracked: Map<string, Tracked>, killWhen: (acks: number, firstAckAt: number | undefined) => boolean): Promise<RoundResult> {
  let acks = 0;
  let firstAckAt: number | undefined;
  let ackedIncrements = 0;
  let unansweredIncrements = 0;
  let unansweredRequests = 0;
  const unexpected: string[] = [];
  const random = seededRandom(round * 7919 + 17);

  // A request is acknowledged when a 2xx status and its whole JSON body arrived.
  const send = async (method: string, url: string, body: unknown): Promise<any | undefined> => {
    try {
      const res = await client.request(method, url, body);
      if (res.status >= 200 && res.status < 300 && typeof res.body === 'object') {
        acks++;
        firstAckAt ??= Date.now();
        return res.body;
      }
      unexpected.push(`${method} ${url} -> ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
    } catch {
      // Connection reset or refused: the server is gone.
    }
    unansweredRequests++;
    return undefined;
  };

  const worker = async (w: number): Promise<void> => {
    for (let n = 0; ; n++) {
      const id = `r${round}-w${w}-${n}`;
      const data = { id, round, worker: w, n, nonce: randomUUID(), text: 'x'.repeat(Math.floor(random() * 2000)) };
      const entry: Tracked = { unanswered: { version: 1, data } };
      tracked.set(id, entry);
      const created = await send('POST', `/v1/collections/${COLLECTION}/records`, data);
      if (!created) return;
      entry.acked = { version: created.version, data: created.data };
      delete entry.unanswered;

      const patch = { patched: n, nonce2: randomUUID() };
      entry.unanswered = { version: entry.acked.version + 1, data: { ...entry.acked.data, ...patch } };
      const patched = await send('PATCH', `/v1/collections/${COLLECTION}/records/${id}`, patch);
      if (!patched) return;
      entry.acked = { version: patched.version, data: patched.data };
      delete entry.unanswered;

      const incremented = await send('POST', `/v1/counters/${COUNTER}/increment`, {});
      if (!incremented) {
        unansweredIncrements++;
        return;
      }
      ackedIncrements++;
    }
  };

  let workersDone = false;
  const killer = (async () => {
    // Ends with the workers too: if they all stopped on errors before the kill condition
    // held, the test reports those errors instead of waiting for its timeout.
    while (!server.hasExited && !workersDone) {
      if (killWhen(acks, firstAckAt)) {
        server.kill('SIGKILL');
        break;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  await Promise.all([
    Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w))).finally(() => {
      workersDone = true;
    }),
    killer,
  ]);
  if (!server.hasExited) {
    server.kill('SIGKILL');
    expect(unexpected, 'every worker stopped on an error before the kill').toEqual([]);
  }
  const exit = await waitForExit(server, 5000);
  expect(exit.signal, 'the server died by our SIGKILL, not by itself').toBe('SIGKILL');
  return { ackedIncrements, unansweredIncrements, unansweredRequests, acks, unexpected };
}

/** Checks the restarted server against what the clients know; resolves `tracked` to the actual states. */
async function verify(client: Api, tracked: Map<string, Tracked>, counter: { min: number; max: number }): Promise<number> {
  // Records: every acknowledged one as acknowledged; an unanswered write either fully there or not at all.
  const records = await listAll<{ id: string; version: number; data: Record<string, unknown> }>(client, `/v1/collections/${COLLECTION}/records`);
  const actual = new Map(records.map((r) => [r.id, { version: r.version, data: r.data }]));
  expect(actual.size, 'no duplicate ids in the listing').toBe(records.length);
  for (const [id, t] of tracked) {
    const got = actual.get(id);
    const allowed = [t.acked, t.unanswered].filter((s): s is RecordState => s !== undefined);
    if (!t.acked && !got) {
      tracked.delete(id); // an unanswered create that did not commit
      continue;
    }
    expect(got, `record ${id} was acknowledged as ${JSON.stringify(t.acked)?.slice(0, 200)} but is missing`).toBeDefined();
    expect(allowed, `record ${id}: ${JSON.stringify(got).slice(0, 300)} is neither the acknowledged nor the unanswered state`).toContainEqual(got);
    tracked.set(id, { acked: got! });
  }
  for (const id of actual.keys()) expect(tracked.has(id), `record ${id} exists but no client wrote it`).toBe(true);

  const value = (await client.ok<{ value: number }>('GET', `/v1/counters/${COUNTER}`)).value;
  expect(value, 'counter >= acknowledged increments').toBeGreaterThanOrEqual(counter.min);
  expect(value, 'counter <= acknowledged + unanswered increments').toBeLessThanOrEqual(counter.max);

  // Change log: one change per version of each record, creates exactly once, nothing about records that do not exist.
  const changes = await allChanges(client);
  const seqs = changes.map((c) => c.seq);
  expect(new Set(seqs).size, 'change sequence numbers are unique').toBe(seqs.length);
  expect([...seqs].sort((a, b) => a - b), 'changes come in sequence order').toEqual(seqs);
  const byRecord = new Map<string, typeof changes>();
  for (const c of changes) {
    if (c.resourceType !== 'record') continue;
    expect(c.collection).toBe(COLLECTION);
    expect(actual.has(c.resourceId), `change ${c.seq} (${c.type}) names record ${c.resourceId}, which does not exist`).toBe(true);
    byRecord.set(c.resourceId, [...(byRecord.get(c.resourceId) ?? []), c]);
  }
  for (const [id, state] of actual) {
    const list = byRecord.get(id) ?? [];
    expect(list.filter((c) => c.type === 'record.create'), `record ${id}: record.create changes`).toHaveLength(1);
    expect(list.map((c) => c.version), `record ${id}: one change per version`).toEqual(Array.from({ length: state.version }, (_, i) => i + 1));
    const last = list.at(-1)!.data as StoredRecord;
    expect({ version: last.version, data: last.data }, `record ${id}: the last change carries the stored state`).toEqual(state);
  }
  const increments = changes.filter((c) => c.resourceType === 'counter' && c.resourceId === COUNTER);
  expect(increments.every((c) => c.action === 'increment')).toBe(true);
  expect(increments, 'one change per increment').toHaveLength(value);
  expect((increments.at(-1)?.data as Counter | undefined)?.value).toBe(value);
  expect(changes.filter((c) => c.type === 'collection.create'), 'the collection was created once').toHaveLength(1);

  // Audit log: the same facts, entry for entry.
  const audit = await listAll<{ action: string; resourceType: string; resourceId: string }>(client, '/v1/audit');
  const count = new Map<string, number>();
  for (const a of audit) {
    if (a.resourceType === 'record') expect(actual.has(a.resourceId), `audit ${a.action} names record ${a.resourceId}, which does not exist`).toBe(true);
    const key = `${a.action} ${a.resourceId}`;
    count.set(key, (count.get(key) ?? 0) + 1);
  }
  for (const [id, state] of actual) {
    expect(count.get(`record.create ${id}`) ?? 0, `record ${id}: record.create audit entries`).toBe(1);
    expect(count.get(`record.update ${id}`) ?? 0, `record ${id}: record.update audit entries`).toBe(state.version - 1);
  }
  expect(count.get(`counter.increment ${COUNTER}`) ?? 0, 'one audit entry per increment').toBe(value);
  expect(audit.filter((a) => a.resourceType === 'record').length, 'record audit entries = record changes').toBe(changes.filter((c) => c.resourceType === 'record').length);
  return value;
}

forEachBackend(
  'durability: SIGKILL during concurrent writes, then restart',
  (backend) => {
    const serverEnv = useServerEnv(backend, 'durability', SERVICE_KEY);

    it('keeps every acknowledged write, exactly, across three kills at different moments', async () => {
      let server = await startServer(serverEnv.env);
      const { key } = await newTenantWithKey(server.url, SERVICE_KEY);
      const tracked = new Map<string, Tracked>();
      let counterBase = 0;
      // Early (the collection's first writes still racing), later, and by the clock. The clock
      // starts at the first acknowledgement: on a loaded machine (CI runs suites in parallel)
      // a fixed time from the start could pass before any write was answered.
      const kills: ((acks: number, firstAckAt: number | undefined) => boolean)[] = [
        (acks) => acks >= 30,
        (acks) => acks >= 240,
        (_acks, firstAckAt) => firstAckAt !== undefined && Date.now() - firstAckAt >= 450,
      ];

      for (const [round, killWhen] of kills.entries()) {
        const result = await writeUntilKilled(server, api(server.url, key), round, tracked, killWhen);
        expect(result.unexpected, 'no write failed with an error status before the kill').toEqual([]);
        expect(result.acks, 'writes were acknowledged before the kill').toBeGreaterThan(0);
        expect(result.unansweredRequests, 'requests were in flight at the kill').toBeGreaterThan(0);

        server = await startServer(serverEnv.env);
        counterBase = await verify(api(server.url, key), tracked, {
          min: counterBase + result.ackedIncrements,
          max: counterBase + result.ackedIncrements + result.unansweredIncrements,
        });
      }
      expect([...tracked.values()].filter((t) => t.acked).length).toBeGreaterThan(100);
      server.kill('SIGTERM');
      expect((await waitForExit(server, 5000)).code).toBe(0);
    }, 120_000);
  },
  { only: ['sqlite', 'postgres'] },
);
