/**
 * Listing for the local-disk blob store: a depth-first walk that yields keys in byte order of
 * their UTF-8, starting after `after` without visiting what lies before it.
 *
 * Why a depth-first walk is in key order: in a directory standing for the key prefix `P`, an
 * object `x` is the key `P x`, and a directory `y` holds exactly the keys starting `P y/`.
 * Sorting the entries by `x` and `y/` (as bytes) therefore sorts every key below them, since
 * a name never contains `/`. Continuation directories (parts of one long segment) are
 * flattened into their parent first, so that each entry is a whole segment.
 */
import type { Dirent } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseName } from './local-disk-paths.js';

interface Entry {
  readonly segment: string;
  readonly kind: 'file' | 'dir';
  readonly path: string;
  /** The sort key: the segment's bytes, with `/` after a directory's. */
  readonly order: Buffer;
}

const SLASH = Buffer.from('/');

async function entriesOf(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    // A directory removed by a delete since its parent was read, or a prefix with no objects.
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw error;
  }
}

/** The whole segments in `dir`, with continuation directories flattened in. */
async function logicalEntries(dir: string, carried = ''): Promise<Entry[]> {
  const out: Entry[] = [];
  for (const dirent of await entriesOf(dir)) {
    // Symlinks and other special files are neither files nor directories here: never followed.
    if (!dirent.isFile() && !dirent.isDirectory()) continue;
    const parsed = parseName(dirent.name, dirent.isDirectory(), carried);
    if (!parsed) continue;
    const path = join(dir, dirent.name);
    if (parsed.kind === 'continuation') {
      out.push(...(await logicalEntries(path, parsed.carried)));
      continue;
    }
    const bytes = Buffer.from(parsed.segment, 'utf8');
    out.push({ segment: parsed.segment, kind: parsed.kind, path, order: parsed.kind === 'dir' ? Buffer.concat([bytes, SLASH]) : bytes });
  }
  return out;
}

const startsWith = (value: Buffer, prefix: Buffer): boolean =>
  value.length >= prefix.length && value.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;

/**
 * Keys (with their files) under `dir`, which stands for `keyPrefix`, whose next segment
 * starts with `partial`, strictly after `after`, in byte order.
 */
export async function* walk(
  dir: string,
  keyPrefix: string,
  partial: string,
  after: Buffer | undefined,
): AsyncGenerator<{ key: string; path: string }> {
  const entries = (await logicalEntries(dir)).filter((e) => e.segment.startsWith(partial));
  entries.sort((a, b) => Buffer.compare(a.order, b.order));
  for (const entry of entries) {
    const key = keyPrefix + entry.segment;
    const keyBytes = Buffer.from(key, 'utf8');
    if (entry.kind === 'file') {
      if (after === undefined || Buffer.compare(keyBytes, after) > 0) yield { key, path: entry.path };
      continue;
    }
    const below = Buffer.concat([keyBytes, SLASH]);
    // Every key under the directory starts with `below`: all of them sort before `after`
    // unless `after` itself is inside (starts with `below`) or sorts before `below`.
    if (after !== undefined && !startsWith(after, below) && Buffer.compare(below, after) < 0) continue;
    yield* walk(entry.path, `${key}/`, '', after);
  }
}
