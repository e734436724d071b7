/**
 * Newline-delimited JSON (application/x-ndjson) read from a request stream one line at a time,
 * without ever holding more than one line: the body of a bulk load may be far larger than
 * memory. Every physical line is one item, numbered from 1 (an empty one too: it is not JSON);
 * text after the last newline is the last line, and `\r\n` ends a line like `\n`.
 */
import type { Readable } from 'node:stream';
import { AgentstoreError } from '../core/errors.js';

const NEWLINE = 0x0a;
const CR = 0x0d;

function parseLine(bytes: Buffer, maxLineBytes: number): unknown {
  const length = bytes.length > 0 && bytes[bytes.length - 1] === CR ? bytes.length - 1 : bytes.length;
  if (length > maxLineBytes) return tooLong(maxLineBytes);
  const line = bytes.toString('utf8', 0, length);
  if (line.trim() === '') return AgentstoreError.invalidField('body', 'the line is empty: send one JSON object per line');
  try {
    return JSON.parse(line) as unknown;
  } catch {
    return AgentstoreError.invalidField('body', 'the line is not valid JSON');
  }
}

function tooLong(maxLineBytes: number): AgentstoreError {
  return new AgentstoreError('agentstore.payload_too_large', `the line is longer than ${maxLineBytes} bytes`, { errors: [{ field: 'body', message: `longer than ${maxLineBytes} bytes` }] });
}

/**
 * The parsed lines of `stream`: each line's JSON value, or an AgentstoreError for a line that is
 * not JSON or is longer than `maxLineBytes` (whose bytes are skipped as they arrive, not kept).
 * Reading pauses while the consumer does not ask for the next line, so TCP holds the sender back.
 */
export async function* ndjsonLines(stream: Readable, maxLineBytes: number): AsyncGenerator<unknown> {
  // The start of a line that began in an earlier chunk; none while skipping an over-long one.
  let parts: Buffer[] = [];
  let size = 0;
  let skipping = false;
  for await (const chunk of stream as AsyncIterable<Buffer | string>) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    let start = 0;
    while (start < buffer.length) {
      const end = buffer.indexOf(NEWLINE, start);
      const stop = end < 0 ? buffer.length : end;
      // +1 for a `\r` before the newline, which is not part of the line.
      if (!skipping && size + (stop - start) > maxLineBytes + 1) {
        skipping = true;
        parts = [];
        size = 0;
      }
      if (end < 0) {
        if (!skipping) {
          parts.push(buffer.subarray(start));
          size += buffer.length - start;
        }
        break;
      }
      if (skipping) {
        skipping = false;
        yield tooLong(maxLineBytes);
      } else if (parts.length === 0) {
        // The common case: the whole line is in this chunk.
        yield parseLine(buffer.subarray(start, stop), maxLineBytes);
      } else {
        parts.push(buffer.subarray(start, stop));
        const line = Buffer.concat(parts, size + (stop - start));
        parts = [];
        size = 0;
        yield parseLine(line, maxLineBytes);
      }
      start = end + 1;
    }
  }
  if (skipping) yield tooLong(maxLineBytes);
  else if (parts.length > 0) yield parseLine(Buffer.concat(parts, size), maxLineBytes);
}
