import { sql, type RawBuilder } from 'kysely';
import { AgentstoreError } from '../../core/errors.js';
import { assertText } from '../../core/text.js';
import type { Executor } from '../../db/database.js';
import type { DialectName } from '../../db/dialect.js';
import { toIso } from '../../db/dialect.js';
import type { MessageRole, SearchHit, SearchQuery } from './types.js';
import { checkRef } from './validation.js';

export const MAX_SEARCH_TERMS = 16;
export const MAX_SEARCH_HITS = 100;
const TERM = /[\p{L}\p{N}]+/gu;

/**
 * The words of a query, as both backends' tokenizers cut text (FTS5's unicode61 and
 * PostgreSQL's `simple` configuration split at everything but letters and digits) and
 * lower-cased. Each is then quoted as a plain term: FTS5's MATCH syntax (AND, NEAR, `"`, `*`,
 * column filters) and tsquery's operators never see the user's text, so no input is a syntax
 * error, and a query of nothing but punctuation is a 400 naming `q`.
 */
export function searchTerms(q: string): string[] {
  assertText(q, 'q');
  if (q.length > 512) throw AgentstoreError.invalidField('q', 'must be at most 512 characters');
  const terms = [...new Set((q.match(TERM) ?? []).map((t) => t.toLowerCase()))];
  if (terms.length === 0) throw AgentstoreError.invalidField('q', 'must contain at least one word (letters or digits)');
  if (terms.length > MAX_SEARCH_TERMS) throw AgentstoreError.invalidField('q', `must have at most ${MAX_SEARCH_TERMS} distinct words`);
  return terms;
}

/** The tenant's token in the FTS5 `scope` column (migration 0008). */
export function scopeToken(tenantId: string): string {
  return `t${tenantId.replace(/[^A-Za-z0-9]/g, '').toLowerCase()}`;
}

export interface CheckedSearch {
  readonly terms: string[];
  readonly agentId?: string;
  readonly endUserId?: string;
  readonly limit: number;
}

export function checkSearch(query: SearchQuery): CheckedSearch {
  const terms = searchTerms(query.q);
  const limit = query.limit ?? 20;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_SEARCH_HITS) throw AgentstoreError.invalidField('limit', `must be an integer from 1 to ${MAX_SEARCH_HITS}`);
  return {
    terms,
    limit,
    ...(query.agentId === undefined ? {} : { agentId: checkRef(query.agentId, 'agentId') }),
    ...(query.endUserId === undefined ? {} : { endUserId: checkRef(query.endUserId, 'endUserId') }),
  };
}

interface HitRow {
  conversation_id: string;
  seq: number | string;
  role: string;
  text: string;
  created_at: string | Date;
  score: number | string;
}

/**
 * Best match first. SQLite: BM25 with the scope column weighted 0 (it only narrows to the
 * tenant), lower is better. PostgreSQL: ts_rank over the GIN-indexed tsvector, read through
 * `tenant_messages` so that the index may serve `@@` under RLS (migration 0008).
 */
export function searchSql(dialect: DialectName, tenantId: string, s: CheckedSearch): RawBuilder<HitRow> {
  const join = s.agentId !== undefined || s.endUserId !== undefined;
  const filters = [
    s.agentId === undefined ? sql`` : sql` and c.agent_id = ${s.agentId}`,
    s.endUserId === undefined ? sql`` : sql` and c.end_user_id = ${s.endUserId}`,
  ];
  if (dialect === 'sqlite') {
    const match = `scope : "${scopeToken(tenantId)}" AND text : (${s.terms.map((t) => `"${t}"`).join(' ')})`;
    return sql<HitRow>`select m.conversation_id, m.seq, m.role, substr(m.text, 1, 500) as text, m.created_at, -bm25(messages_fts, 0.0, 1.0) as score
      from messages_fts f join messages m on m.rowid = f.rowid
      ${join ? sql`join conversations c on c.tenant_id = m.tenant_id and c.id = m.conversation_id` : sql``}
      where messages_fts match ${match} and m.tenant_id = ${tenantId}${filters[0]}${filters[1]}
      order by bm25(messages_fts, 0.0, 1.0), m.created_at desc limit ${s.limit}`;
  }
  const tsquery = s.terms.map((t) => `'${t.replaceAll("'", "''")}'`).join(' & ');
  return sql<HitRow>`select m.conversation_id, m.seq, m.role, left(m.text, 500) as text, m.created_at, ts_rank(m.tsv, q, 1) as score
    from tenant_messages m cross join to_tsquery('simple', ${tsquery}) as q
    ${join ? sql`join conversations c on c.tenant_id = m.tenant_id and c.id = m.conversation_id` : sql``}
    where m.tsv @@ q and m.tenant_id = ${tenantId}${filters[0]}${filters[1]}
    order by score desc, m.created_at desc limit ${s.limit}`;
}

export async function runSearch(trx: Executor, dialect: DialectName, tenantId: string, s: CheckedSearch): Promise<SearchHit[]> {
  const { rows } = await searchSql(dialect, tenantId, s).execute(trx);
  return rows.map((r) => ({ conversationId: r.conversation_id, seq: Number(r.seq), role: r.role as MessageRole, text: r.text, createdAt: toIso(r.created_at), score: Number(r.score) }));
}
