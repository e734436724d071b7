/**
 * The worst schema + record pairs found for each way a tenant's schema can burn the one
 * event loop, sent as full HTTP requests up to the 1 MiB body limit: each is answered (201
 * or a 400 problem) while the loop is never held much longer than by the same body in a
 * collection without a schema. The loop is measured by a 5 ms interval timer: the longest
 * gap between two of its ticks while the request runs is the longest the loop was held.
 * Before the fixes each of these held it for one to many seconds.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { beforeAll, describe, expect, it } from 'vitest';
import { forEachBackend } from '../helpers/index.js';
import { loopMeter } from '../helpers/loop-meter.js';
import { bearer, createTenant, useHttp, type HttpTenant } from './http-kit.js';


// Each measurement starts from a collected heap: otherwise the previous request's garbage
// (a parsed 1 MiB body is ~20 MB of objects) is collected during the next one.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Up to ~1 MiB of JSON. */
const MIB = 1024 * 1024;

interface Case {
  readonly schema: Record<string, unknown>;
  readonly record: () => Record<string, unknown>;
}

/**
 * 250 passing checks on each of ~500,000 items: 125 M keyword checks, refused by the work
 * bound before they run. Not among the timed cases: Ajv inlines allOf branches so tightly
 * (~3 ns a check) that it held the loop only ~250 ms longer than the bare body before.
 */
const FAN_OUT: Case = {
  schema: { properties: { v: { type: 'array', items: { allOf: Array.from({ length: 250 }, (_, i) => ({ minimum: -i })) } } } },
  record: () => ({ v: Array.from({ length: Math.floor(MIB / 2) - 10 }, () => 0) }),
};

const CASES: Record<string, Case> = {
  'a catastrophic-backtracking pattern (27 characters: 1.1 s before)': {
    schema: { properties: { s: { type: 'string', pattern: '^(a+)+$' } } },
    record: () => ({ s: `${'a'.repeat(27)}!` }),
  },
  'uniqueItems on 10,000 distinct objects (pairwise deep equality before)': {
    schema: { properties: { list: { type: 'array', uniqueItems: true } } },
    record: () => ({ list: Array.from({ length: 10_000 }, (_, i) => ({ i })) }),
  },
  'format url on 1 MiB of URLs its regex backtracks on quadratically': {
    schema: { properties: { urls: { type: 'array', items: { type: 'string', format: 'url' } } } },
    record: () => ({ urls: Array.from({ length: Math.floor(MIB / 2020) }, () => `http://a.com/${'a:'.repeat(1000)}`) }),
  },
  'format date-time on 1 MiB of "T"s (split per character)': {
    schema: { properties: { d: { type: 'array', items: { anyOf: [{ type: 'string', format: 'date-time' }, { type: 'string' }] } } } },
    record: () => ({ d: Array.from({ length: 100 }, () => 'T'.repeat(10_000)) }),
  },
  'a negated 250-member enum on each of ~250,000 items': {
    schema: { properties: { v: { type: 'array', items: { not: { enum: Array.from({ length: 250 }, (_, i) => `x${i}`) } } } } },
    record: () => ({ v: Array.from({ length: Math.floor(MIB / 4) - 10 }, () => 'y') }),
  },
  'a Unicode-class pattern on one 1 MiB string (re2js: ~420 ms)': {
    schema: { properties: { s: { type: 'string', pattern: '^[\\p{L} ]+$' } } },
    record: () => ({ s: 'a'.repeat(MIB - 100) }),
  },
};

forEachBackend('http: tenant schemas cannot stall the event loop', (backend) => {
  const h = useHttp(backend);
  let T: HttpTenant;
  beforeAll(async () => {
    T = await createTenant(h.app);
  });

  /** The request's answer and the longest the loop was held while it ran (ms). */
  const measure = async (collection: string, record: Record<string, unknown>) => {
    const payload = JSON.stringify(record);
    expect(payload.length).toBeLessThanOrEqual(MIB);
    gc();
    const meter = loopMeter();
    const res = await h.app.inject({ method: 'POST', url: `/v1/collections/${collection}/records`, headers: { ...bearer(T.key), 'content-type': 'application/json' }, payload });
    return { res, heldMs: await meter.stop() };
  };

  let i = 0;
  for (const [what, c] of Object.entries(CASES)) {
    it(what, async () => {
      const name = `stall-${++i}`;
      const define = await h.app.inject({ method: 'PUT', url: `/v1/collections/${name}`, headers: bearer(T.key), payload: { schema: c.schema } });
      expect(define.statusCode, define.body).toBe(200);
      // The first write compiles the schema (its cost is bounded by the sub-schema limit and
      // measured apart); this suite is about checking records.
      const warm = await h.app.inject({ method: 'POST', url: `/v1/collections/${name}/records`, headers: bearer(T.key), payload: {} });
      expect([201, 400], warm.body).toContain(warm.statusCode);
      const record = c.record();
      // The same body in a collection without a schema: JSON parsing, the storability walk
      // and the insert, which this suite is not about.
      const baseline = await measure(`${name}-plain`, record);
      expect(baseline.res.statusCode, baseline.res.body).toBe(201);
      const { res, heldMs } = await measure(name, record);
      expect([201, 400], res.body.slice(0, 300)).toContain(res.statusCode);
      expect(heldMs, `held ${heldMs.toFixed(0)} ms, ${baseline.heldMs.toFixed(0)} ms without a schema`).toBeLessThan(baseline.heldMs + 250);
    });
  }

  describe('what the answer says', () => {
    it('a record over the schema work bound is a 400 on /data', async () => {
      const define = await h.app.inject({ method: 'PUT', url: '/v1/collections/bound', headers: bearer(T.key), payload: { schema: FAN_OUT.schema } });
      expect(define.statusCode).toBe(200);
      const { res } = await measure('bound', FAN_OUT.record());
      expect(res.statusCode).toBe(400);
      expect(res.json<{ errors: { field: string }[] }>().errors.map((e) => e.field)).toContain('/data');
    });
  });
});
