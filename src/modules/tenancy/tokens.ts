import { createHash, timingSafeEqual } from 'node:crypto';
import { isUuid, randomSecret } from '../../core/ids.js';

/**
 * Bearer secrets carry their tenant in the clear (`ask_<tenant>_<secret>`): the tenant
 * is not a secret, and knowing it before the lookup lets the lookup itself run under the
 * tenant's row-level security instead of needing a cross-tenant bypass.
 */
export type TokenKind = 'api_key' | 'session';

const prefixes: Readonly<Record<TokenKind, string>> = { api_key: 'ask', session: 'ass' };

export function issueToken(kind: TokenKind, tenantId: string): string {
  return `${prefixes[kind]}_${tenantId.replaceAll('-', '')}_${randomSecret(32)}`;
}

export interface ParsedToken {
  readonly kind: TokenKind;
  readonly tenantId: string;
}

const tokenPattern = /^(ask|ass)_([0-9a-f]{32})_[A-Za-z0-9_-]{43}$/;

export function parseToken(token: string): ParsedToken | undefined {
  const match = tokenPattern.exec(token);
  if (!match?.[1] || !match[2]) return undefined;
  const hex = match[2];
  const tenantId = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  if (!isUuid(tenantId)) return undefined;
  return { kind: match[1] === 'ask' ? 'api_key' : 'session', tenantId };
}

/** Tokens are 256-bit random, so a fast hash is enough: no dictionary to guess from. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function constantTimeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** What a listing shows of a key: enough to recognise it, never enough to use it. */
export function displayPrefix(token: string): string {
  return `${token.slice(0, 12)}…${token.slice(-4)}`;
}
