/** Streams for the blob-store conformance suite: bodies that count what was pulled, and readers. */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

/** Deterministic bytes: byte `i` of a pattern seeded by `seed`. */
export function patternBytes(size: number, seed = 1): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 255;
  }
  return out;
}

export const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

export interface CountingSource {
  readonly stream: Readable;
  /** Bytes handed to the consumer so far. */
  pulled(): number;
  /** Did the source run to its end? */
  ended(): boolean;
  destroyed(): boolean;
}

/**
 * A lazy body of `total` bytes in `chunk`-sized pieces, made only when the consumer asks for
 * more, so that `pulled()` shows how far a consumer read. `pauseMs` waits before each chunk
 * after the first (a slow client), `fill` is the byte value (default: a pattern).
 */
export function countingSource(total: number, options: { chunk?: number; pauseMs?: number; fill?: number } = {}): CountingSource {
  const chunk = options.chunk ?? 64 * 1024;
  let pulled = 0;
  let ended = false;
  let seed = 7;
  async function* generate(): AsyncGenerator<Buffer> {
    while (pulled < total) {
      if (options.pauseMs && pulled > 0) await sleep(options.pauseMs);
      const size = Math.min(chunk, total - pulled);
      const piece = options.fill === undefined ? patternBytes(size, seed++) : Buffer.alloc(size, options.fill);
      pulled += size;
      yield piece;
    }
    ended = true;
  }
  const stream = Readable.from(generate(), { objectMode: false, highWaterMark: chunk });
  return { stream, pulled: () => pulled, ended: () => ended, destroyed: () => stream.destroyed };
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(typeof part === 'string' ? Buffer.from(part) : (part as Buffer));
  return Buffer.concat(parts);
}

/** Size and SHA-256 of a stream, without holding it in memory. */
export async function digest(stream: Readable): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const part of stream) {
    const bytes = typeof part === 'string' ? Buffer.from(part) : (part as Buffer);
    size += bytes.length;
    hash.update(bytes);
  }
  return { size, sha256: hash.digest('hex') };
}

/** Byte order of UTF-8, as the port promises for `list`. */
export const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
