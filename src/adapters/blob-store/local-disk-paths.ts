/**
 * How the local-disk blob store turns a key into a path under its root, and back.
 *
 * A key is split at `/`; each segment becomes one on-disk name (or a few, see below):
 * - A **plain** segment, `[a-z0-9_-][a-z0-9._-]*` of at most 200 characters and not ending
 *   in `.`, is its own name (`report-2024.pdf`), so the common case stays readable.
 * - Any other segment (upper case, spaces, Unicode, a leading dot, `~`, `@`, `+`, …) is
 *   `~` + the lowercase, unpadded RFC 4648 base32 of its UTF-8 bytes. Lower case only, in
 *   both forms, so that a case-insensitive filesystem (macOS, Windows) cannot merge two keys
 *   that differ in case, and ASCII only, so that no filesystem can normalise Unicode.
 * - An encoded name longer than 200 characters is cut into 200-character pieces; every piece
 *   but the last is a directory whose name ends in `+` (a continuation, not a `/` of the key).
 *   So no name passes ext4's 255-byte limit, and a 1024-byte key is at most ~1,700 bytes of path.
 * - An intermediate segment (a "directory" of the key) gets `@` after its name; the last
 *   segment (the object) gets nothing. So `a` and `a/b` can both be objects, as on S3:
 *   `a` is a file, `a/b` is the file `b` in the directory `a@`.
 * - Names starting with `.` are never produced, which keeps `<root>/.tmp` (uploads in
 *   progress) and anything an operator drops there (`.DS_Store`) out of the key space.
 *   Names that are not exactly what this mapping produces for some key are ignored by `list`.
 *
 * Example: `t1/Docs/ünï.txt` → `t1@/~irxwg4y@/~yo6g5q5pfz2hq5a` (`Docs` has upper case).
 */
import { join } from 'node:path';
import { AgentstoreError } from '../../core/errors.js';

export const MAX_KEY_BYTES = 1024;
const PIECE = 200; // characters of base32 per on-disk name: a multiple of 8, so pieces decode on byte boundaries
const PLAIN = /^[a-z0-9_-][a-z0-9._-]{0,199}$/;
const DIR_MARK = '@';
const CONT_MARK = '+';
const ENCODED = '~';
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const BASE32 = /^[a-z2-7]+$/;
// A lone surrogate has no UTF-8 form: two such keys would encode to the same bytes.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

function unbase32(text: string): Buffer {
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const char of text) {
    value = (value << 5) | ALPHABET.indexOf(char);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 255);
      bits -= 8;
    }
    value &= (1 << bits) - 1;
  }
  return Buffer.from(out);
}

const refuse = (field: string, message: string): AgentstoreError => AgentstoreError.invalidField(field, message);

function checkSegment(segment: string, field: string): void {
  if (segment === '') throw refuse(field, 'must not contain an empty segment');
  if (segment === '.' || segment === '..') throw refuse(field, 'must not contain a "." or ".." segment');
}

function checkText(value: string, field: string): void {
  if (value.includes('\0')) throw refuse(field, 'must not contain NUL');
  if (value.includes('\\')) throw refuse(field, 'must not contain a backslash');
  if (LONE_SURROGATE.test(value)) throw refuse(field, 'must be valid Unicode');
  if (Buffer.byteLength(value) > MAX_KEY_BYTES) throw refuse(field, `must be at most ${MAX_KEY_BYTES} bytes`);
}

/** The port's key rules, checked again here: a key that passes cannot leave the root. */
export function checkKey(key: unknown, field = 'key'): string[] {
  if (typeof key !== 'string' || key === '') throw refuse(field, 'must be a non-empty string');
  checkText(key, field);
  if (key.startsWith('/')) throw refuse(field, 'must not be absolute');
  const segments = key.split('/');
  for (const segment of segments) checkSegment(segment, field);
  return segments;
}

/** The on-disk names of one segment: continuations, then the last name (with `@` for a directory). */
export function segmentNames(segment: string, directory: boolean): string[] {
  const end = directory ? DIR_MARK : '';
  if (PLAIN.test(segment) && !segment.endsWith('.')) return [segment + end];
  const encoded = base32(Buffer.from(segment, 'utf8'));
  const names: string[] = [];
  for (let at = 0; at < encoded.length; at += PIECE) {
    const last = at + PIECE >= encoded.length;
    names.push(ENCODED + encoded.slice(at, at + PIECE) + (last ? end : CONT_MARK));
  }
  return names;
}

/** The file of `key` under `root`. */
export function objectPath(root: string, key: string): string {
  const segments = checkKey(key);
  const names = segments.flatMap((segment, i) => segmentNames(segment, i < segments.length - 1));
  return join(root, ...names);
}

/** The directory for the complete segments of `segments` (each as a key directory). */
export function directoryPath(root: string, segments: readonly string[]): string {
  return join(root, ...segments.flatMap((segment) => segmentNames(segment, true)));
}

/**
 * Where a listing by `prefix` starts: the directory of its complete segments and the
 * start of the name that entries in it must have. `undefined` when no key can match
 * (an empty segment). `.` and `..` are refused rather than matched.
 */
export function prefixStart(root: string, prefix: unknown): { dir: string; keyPrefix: string; partial: string } | undefined {
  if (typeof prefix !== 'string') throw refuse('prefix', 'must be a string');
  checkText(prefix, 'prefix');
  if (prefix.startsWith('/')) throw refuse('prefix', 'must not be absolute');
  const segments = prefix.split('/');
  const partial = segments.pop() ?? '';
  for (const segment of segments) {
    if (segment === '') return undefined;
    checkSegment(segment, 'prefix');
  }
  return { dir: directoryPath(root, segments), keyPrefix: segments.map((s) => `${s}/`).join(''), partial };
}

export type NameKind = 'file' | 'dir' | 'continuation';

/**
 * What one on-disk name stands for, given the base32 carried in from continuation
 * directories above it. `undefined` for a name this mapping never produces; a name is
 * accepted only if encoding its segment again gives exactly that name, so each key has one
 * path and `list` never returns a key that `get` would look for elsewhere.
 */
export function parseName(
  name: string,
  isDirectory: boolean,
  carried: string,
): { kind: 'continuation'; carried: string } | { kind: 'file' | 'dir'; segment: string } | undefined {
  if (isDirectory && name.endsWith(CONT_MARK)) {
    const piece = name.slice(1, -1);
    if (!name.startsWith(ENCODED) || piece.length !== PIECE || !BASE32.test(piece)) return undefined;
    return { kind: 'continuation', carried: carried + piece };
  }
  if (isDirectory && !name.endsWith(DIR_MARK)) return undefined;
  const body = isDirectory ? name.slice(0, -1) : name;
  let segment: string;
  if (body.startsWith(ENCODED)) {
    const encoded = carried + body.slice(1);
    if (!BASE32.test(encoded)) return undefined;
    try {
      segment = utf8.decode(unbase32(encoded));
    } catch {
      return undefined;
    }
  } else {
    if (carried !== '') return undefined;
    segment = body;
  }
  if (segment === '' || segment === '.' || segment === '..' || /[/\\\0]/.test(segment)) return undefined;
  const names = segmentNames(segment, isDirectory);
  const expected = names[names.length - 1];
  if (expected !== name || names.length !== carried.length / PIECE + 1) return undefined;
  return { kind: isDirectory ? 'dir' : 'file', segment };
}
