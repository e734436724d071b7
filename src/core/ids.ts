import { randomBytes, randomFillSync } from 'node:crypto';

// Node 20 has only v4 in crypto.randomUUID; v7 (RFC 9562) keeps ids time-ordered so
// primary-key indexes stay append-mostly and ids sort by creation.
let lastMs = 0;
let sequence = 0;
const scratch = Buffer.alloc(16);
// One randomFillSync per 256 ids instead of two per id: the syscall dominated id cost.
const pool = Buffer.alloc(16 * 256);
let poolOffset = pool.length;

function randomInto(target: Buffer, offset: number, length: number): void {
  if (poolOffset + length > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  pool.copy(target, offset, poolOffset, poolOffset + length);
  poolOffset += length;
}

export function uuidv7(now: number = Date.now()): string {
  // Within one millisecond, a 12-bit counter in rand_a keeps ids from one process monotonic.
  if (now <= lastMs) {
    sequence = (sequence + 1) & 0xfff;
    if (sequence === 0) lastMs += 1;
    now = lastMs;
  } else {
    lastMs = now;
    randomInto(scratch, 6, 2);
    sequence = scratch.readUInt16BE(6) & 0x7ff;
  }
  const b = scratch;
  randomInto(b, 8, 8);
  b.writeUIntBE(now, 0, 6);
  b[6] = 0x70 | ((sequence >> 8) & 0x0f);
  b[7] = sequence & 0xff;
  b[8] = 0x80 | ((b[8] ?? 0) & 0x3f);
  const hex = b.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export const UUID_PATTERN = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';
const uuidRegex = new RegExp(UUID_PATTERN);

export function isUuid(value: string): boolean {
  return uuidRegex.test(value);
}

// 64 random bits per process, then a counter: unique across processes and restarts for
// any practical purpose, at the cost of an increment (request ids are made per request).
const requestIdPrefix = randomBytes(8).toString('hex');
let requestCounter = 0;

/** An id for a request: `<16 hex of this process>-<counter in base 36>`. */
export function requestId(): string {
  requestCounter += 1;
  return `${requestIdPrefix}-${requestCounter.toString(36)}`;
}

/** A URL-safe random secret with `bytes` bytes of entropy. */
export function randomSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}
