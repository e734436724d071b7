/**
 * Classifies driver errors. Codes, not messages, where the drivers give them (pg's
 * SQLSTATE, better-sqlite3's extended result codes); connection failures show up as Node
 * system errors or as pg's own message strings, which we match as PocketBase does for the
 * same reason: the codes vary between drivers and layers.
 */

const transientPgStates = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
]);

const transientSystemCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

const transientMessages = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error',
  'connection is closed',
  'server conn crashed',
  'no more connections allowed',
  'database is locked',
];

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export function isTransientDbError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const code = codeOf(error);
  if (code && (transientPgStates.has(code) || transientSystemCodes.has(code))) return true;
  if (code === 'SQLITE_BUSY' || code?.startsWith('SQLITE_BUSY_') || code === 'SQLITE_LOCKED') return true;
  const message = (error as { message?: unknown }).message;
  if (typeof message === 'string' && transientMessages.some((m) => message.includes(m))) return true;
  const errors = (error as { errors?: unknown }).errors;
  return Array.isArray(errors) && errors.some(isTransientDbError);
}

export function isUniqueViolation(error: unknown): boolean {
  const code = codeOf(error);
  return code === '23505' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

export function isForeignKeyViolation(error: unknown): boolean {
  const code = codeOf(error);
  return code === '23503' || code === 'SQLITE_CONSTRAINT_FOREIGNKEY';
}

/** PostgreSQL 54000 with "index row size": a value too large for a B-tree entry. */
export function isIndexRowTooLarge(error: unknown): boolean {
  const message = (error as { message?: unknown } | null)?.message;
  return codeOf(error) === '54000' && typeof message === 'string' && message.includes('index row');
}
