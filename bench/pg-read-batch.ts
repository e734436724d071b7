/**
 * PostgreSQL CPU of a coalesced read batch, by form: N point reads as N SELECTs in one
 * simple-protocol query (the batch before 683d66c) against one SELECT ... id IN (N keys), the
 * form keyed reads take now (src/db/postgres-read-batch.ts). 4 clients, 4 s per form, 3 rounds,
 * on the bench fixture as agentstore_app (RLS on):
 *   N=25 node --import tsx bench/pg-read-batch.ts
 * Prints reads/s and this process's CPU per read (PostgreSQL's own CPU is not included).
 */
import pg from 'pg';
import { createFixture, recordId } from './lib/fixture.js';
const fx = await createFixture('postgres', 10000);
const pool = new pg.Pool({ connectionString: fx.url, max: 4 });
const N = Number(process.env.N ?? 25);
const iso = (c: string) => `to_char(${c} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
const cols = `id, version, ${iso('created_at')} as created_at, ${iso('updated_at')} as updated_at, data::text as data`;
const ids = () => Array.from({ length: N }, () => recordId(Math.floor(Math.random() * 10000)));
const head = `begin read only; select set_config('statement_timeout', '5000', true); select set_config('app.tenant_id', '${fx.tenantId}', true)`;
const forms = {
  many: () => `${head}; ${ids().map((id) => `select ${cols} from records where tenant_id = '${fx.tenantId}' and collection = 'items' and id = '${id}'`).join('; ')}; commit`,
  inlist: () => `${head}; select ${cols} from records where tenant_id = '${fx.tenantId}' and collection = 'items' and id in (${ids().map((i) => `'${i}'`).join(', ')}); commit`,
};
const cpu = (since?: NodeJS.CpuUsage) => process.cpuUsage(since);
for (let round = 0; round < 3; round++) {
  for (const [name, make] of Object.entries(forms)) {
    let batches = 0;
    const c0 = cpu();
    const end = Date.now() + 4000;
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (Date.now() < end) {
        const r = (await pool.query(make())) as unknown as pg.QueryResult[];
        if (!Array.isArray(r)) throw new Error('x');
        batches++;
      }
    }));
    const c = cpu(c0);
    console.log(`${name.padEnd(7)} N=${N}: ${((batches * N) / 4).toFixed(0)} reads/s, node CPU ${(((c.user + c.system) / (batches * N))).toFixed(1)} µs/read`);
  }
}
await pool.end();
await fx.drop();
