/**
 * Multi-row INSERTs as SQL text and a flat parameter list, for the statements that write
 * hundreds of rows at once (a bulk load's records, a unit's audit and change entries): Kysely's
 * builder parsed and compiled every value of such a statement anew, which was most of the
 * JavaScript time of a bulk load. The text depends only on the table, the columns and the row
 * count, so it is built once per shape (and SQLite's statement cache, keyed by text, prepares
 * it once).
 */
import { CompiledQuery } from 'kysely';
import type { Executor } from './database.js';
import type { DialectName } from './dialect.js';
import { loopTurns } from '../core/loop-turns.js';

const texts = new Map<string, string>();
// Shapes differ by row count only (each unit's last chunk, each unit's mutation count): a
// bound keeps a process that sees every count from 1 to 500 from keeping thousands.
const MAX_TEXTS = 2048;

/**
 * `insert into <table> (<columns>) values (…), (…) <suffix>` for `rows` rows, with `?` or `$n`
 * placeholders. `table`, `columns` and `suffix` are the caller's constants, never input.
 */
export function multiRowInsertSql(dialect: DialectName, table: string, columns: readonly string[], rows: number, suffix = ''): string {
  const key = `${dialect}\u0000${table}\u0000${columns.join(',')}\u0000${rows}\u0000${suffix}`;
  let text = texts.get(key);
  if (text === undefined) {
    const width = columns.length;
    const tuples: string[] = [];
    for (let r = 0; r < rows; r++) {
      const marks = dialect === 'sqlite' ? Array<string>(width).fill('?') : Array.from({ length: width }, (_, c) => `$${r * width + c + 1}`);
      tuples.push(`(${marks.join(', ')})`);
    }
    text = `insert into ${table} (${columns.join(', ')}) values ${tuples.join(', ')}${suffix ? ` ${suffix}` : ''}`;
    if (texts.size >= MAX_TEXTS) texts.clear();
    texts.set(key, text);
  }
  return text;
}

// On SQLite each statement runs on the event loop: pieces of this many rows (about a
// millisecond each here), with a turn of the loop between them once 2 ms have passed.
const SQLITE_PIECE_ROWS = 100;

/**
 * Runs a multi-row INSERT of `rows` (each a row's values in `columns` order); resolves to the
 * rows it inserted. On SQLite in pieces, all in the caller's transaction, which stays open
 * while the loop turns (only the group committer writes; reads use other connections).
 */
export async function insertRows(
  trx: Executor,
  dialect: DialectName,
  table: string,
  columns: readonly string[],
  rows: readonly (readonly unknown[])[],
  suffix = '',
): Promise<number> {
  const piece = dialect === 'sqlite' ? SQLITE_PIECE_ROWS : rows.length;
  const turn = loopTurns();
  let inserted = 0;
  for (let first = 0; first < rows.length; first += piece) {
    if (first > 0) {
      const due = turn();
      if (due) await due;
    }
    const part = rows.length <= piece ? rows : rows.slice(first, first + piece);
    const parameters: unknown[] = [];
    for (const row of part) for (const value of row) parameters.push(value);
    const result = await trx.executeQuery(CompiledQuery.raw(multiRowInsertSql(dialect, table, columns, part.length, suffix), parameters));
    inserted += Number(result.numAffectedRows ?? 0);
  }
  return inserted;
}
