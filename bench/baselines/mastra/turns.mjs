// Mastra's LibSQLStore doing bench/conversations-inproc.ts's turn: save a user and an
// assistant message (one saveMessages call), then list the last 20 of the thread. Run under
// Node 22 (Mastra needs >= 22.13) by bench/conversations.ts; prints one JSON line per
// measurement. Preloads through Mastra's own saveMessages, 50 messages per call.
import { LibSQLStore } from '@mastra/libsql';
import { randomUUID } from 'node:crypto';

const file = process.env.MASTRA_DB;
if (!file) throw new Error('MASTRA_DB is required');
const conversations = Number(process.env.CONV_CONVERSATIONS ?? 1000);
const levels = (process.env.CONV_LEVELS ?? '10000').split(',').map(Number);
const durationMs = Number(process.env.CONV_DURATION_S ?? 2) * 1000;
const runs = Number(process.env.CONV_RUNS ?? 3);
const TEXT = 'The quick brown fox jumps over the lazy dog. '.repeat(4).trim();

const store = new LibSQLStore({ id: 'bench', url: `file:${file}` });
await store.init();
const memory = await store.getStore('memory');
// The store's client, reached for the synchronous pragma only (Mastra sets NORMAL).
const client = store['client'];

const threads = [];
for (let i = 0; i < conversations; i++) {
  const id = randomUUID();
  threads.push(id);
  const now = new Date();
  await memory.saveThread({ thread: { id, resourceId: `user-${i % 100}`, title: `bench ${i}`, metadata: {}, createdAt: now, updatedAt: now } });
}
const pick = () => threads[Math.floor(Math.random() * threads.length)];
let clock = Date.now();
const message = (threadId, role) => ({
  id: randomUUID(), threadId, resourceId: 'user-0', role, type: 'v2', createdAt: new Date(clock++),
  content: { format: 2, parts: [{ type: 'text', text: TEXT }] },
});
let messages = 0;
async function preload(target) {
  // Spread evenly over the threads, up to 50 per call.
  const per = Math.max(1, Math.min(50, Math.ceil((target - messages) / threads.length)));
  let t = 0;
  while (messages < target) {
    const threadId = threads[t++ % threads.length];
    const batch = [];
    for (let k = 0; k < per && messages < target; k++, messages++) batch.push(message(threadId, k % 2 ? 'assistant' : 'user'));
    await memory.saveMessages({ messages: batch });
  }
}
const last20 = async (threadId) => {
  const { messages: page } = await memory.listMessages({ threadId, perPage: 20, page: 0, orderBy: { field: 'createdAt', direction: 'DESC' } });
  if (page.length === 0) throw new Error('no messages');
};
const turn = async () => {
  const threadId = pick();
  await memory.saveMessages({ messages: [message(threadId, 'user'), message(threadId, 'assistant')] });
  await last20(threadId);
};
async function closedLoop(op, concurrency) {
  const lat = [];
  let errors = 0;
  const start = performance.now();
  const end = start + durationMs;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try { await op(); lat.push(performance.now() - t0); } catch { errors++; }
    }
  }));
  lat.sort((a, b) => a - b);
  const at = (p) => lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))] ?? 0;
  return { opsPerSec: lat.length / ((performance.now() - start) / 1000), p50: at(50), p99: at(99), errors, total: lat.length + errors };
}
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };

for (const level of levels) {
  const started = performance.now();
  await preload(level);
  const preloadSeconds = (performance.now() - started) / 1000;
  for (const synchronous of ['full', 'normal']) {
    await client.execute(`PRAGMA synchronous=${synchronous.toUpperCase()}`);
    await closedLoop(turn, 8).catch(() => undefined);
    const samples = new Map();
    const add = (key, sample) => samples.set(key, [...(samples.get(key) ?? []), sample]);
    for (let run = 0; run < runs; run++) {
      for (const concurrency of [1, 32]) {
        const sample = await closedLoop(turn, concurrency);
        messages += 2 * (sample.total - sample.errors);
        add(`turn|${concurrency}`, sample);
      }
      add('last-20|1', await closedLoop(() => last20(pick()), 1));
    }
    for (const [key, list] of samples) {
      const [workload, concurrency] = key.split('|');
      console.log(JSON.stringify({
        level, synchronous, system: 'mastra', workload, concurrency: Number(concurrency), preloadSeconds,
        opsPerSec: median(list.map((s) => s.opsPerSec)), p50: median(list.map((s) => s.p50)), p99: median(list.map((s) => s.p99)),
        errors: list.reduce((n, s) => n + s.errors, 0), runs: list,
      }));
    }
  }
}
store.close?.();
