/**
 * Fractional index keys for the order of siblings (the scheme of Figma's and Linear's
 * ordering, as David Greenspan's `fractional-indexing` writes it): a key is an integer part
 * (a head letter giving its length, then base-62 digits) and an optional fraction. Between
 * any two keys there is another, so a move writes one row, and appending at the end
 * increments the integer part, so keys stay short for appends (`a0`, `a1` … `az`, `b00`).
 * Keys compare by code unit: the column is COLLATE "C" on PostgreSQL.
 */
const DIGITS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const SMALLEST_INTEGER = `A${'0'.repeat(26)}`;

/** Past this length the siblings are given fresh keys (src/modules/tasks/order.ts). */
export const MAX_RANK_LENGTH = 64;

function integerLength(head: string): number {
  if (head >= 'a' && head <= 'z') return head.charCodeAt(0) - 97 + 2;
  if (head >= 'A' && head <= 'Z') return 90 - head.charCodeAt(0) + 2;
  throw new Error(`invalid rank head: ${head}`);
}

function integerPart(key: string): string {
  const length = integerLength(key.charAt(0));
  if (length > key.length) throw new Error(`invalid rank: ${key}`);
  return key.slice(0, length);
}

export function isRank(key: string): boolean {
  try {
    if (key.length === 0 || key === SMALLEST_INTEGER) return false;
    const int = integerPart(key);
    const fraction = key.slice(int.length);
    for (const c of key.slice(1)) if (!DIGITS.includes(c)) return false;
    return !fraction.endsWith('0');
  } catch {
    return false;
  }
}

/** A key strictly between fractions `a` and `b` (b null: no upper bound); neither ends in 0. */
function midpoint(a: string, b: string | null): string {
  if (b !== null) {
    // The common prefix stays; the rest is the midpoint of what follows it.
    let n = 0;
    while ((a.charAt(n) || '0') === b.charAt(n)) n++;
    if (n > 0) return b.slice(0, n) + midpoint(a.slice(n), b.slice(n));
  }
  const digitA = a ? DIGITS.indexOf(a.charAt(0)) : 0;
  const digitB = b !== null ? DIGITS.indexOf(b.charAt(0)) : DIGITS.length;
  if (digitB - digitA > 1) return DIGITS.charAt(Math.round((digitA + digitB) / 2));
  // Adjacent digits: a prefix of b if b is longer, else extend a.
  if (b !== null && b.length > 1) return b.slice(0, 1);
  return DIGITS.charAt(digitA) + midpoint(a.slice(1), null);
}

function incrementInteger(x: string): string | null {
  const head = x.charAt(0);
  const digits = x.slice(1).split('');
  let carry = true;
  for (let i = digits.length - 1; carry && i >= 0; i--) {
    const d = DIGITS.indexOf(digits[i] as string) + 1;
    if (d === DIGITS.length) digits[i] = '0';
    else {
      digits[i] = DIGITS.charAt(d);
      carry = false;
    }
  }
  if (!carry) return head + digits.join('');
  if (head === 'Z') return 'a0';
  if (head === 'z') return null;
  const next = String.fromCharCode(head.charCodeAt(0) + 1);
  if (next > 'a') digits.push('0');
  else digits.pop();
  return next + digits.join('');
}

function decrementInteger(x: string): string | null {
  const head = x.charAt(0);
  const digits = x.slice(1).split('');
  let borrow = true;
  for (let i = digits.length - 1; borrow && i >= 0; i--) {
    const d = DIGITS.indexOf(digits[i] as string) - 1;
    if (d === -1) digits[i] = 'z';
    else {
      digits[i] = DIGITS.charAt(d);
      borrow = false;
    }
  }
  if (!borrow) return head + digits.join('');
  if (head === 'a') return 'Zz';
  if (head === 'A') return null;
  const previous = String.fromCharCode(head.charCodeAt(0) - 1);
  if (previous < 'Z') digits.push('z');
  else digits.pop();
  return previous + digits.join('');
}

/** A key between `a` and `b` (null: the start or the end); a < b. */
export function rankBetween(a: string | null, b: string | null): string {
  if ((a !== null && !isRank(a)) || (b !== null && !isRank(b))) throw new Error(`invalid rank bound: ${a} / ${b}`);
  if (a !== null && b !== null && a >= b) throw new Error(`rank bounds out of order: ${a} >= ${b}`);
  if (a === null) {
    if (b === null) return 'a0';
    const ib = integerPart(b);
    const fb = b.slice(ib.length);
    if (ib === SMALLEST_INTEGER) return ib + midpoint('', fb);
    if (ib < b) return ib;
    const lower = decrementInteger(ib);
    if (lower === null) throw new Error('no rank before the smallest');
    return lower;
  }
  const ia = integerPart(a);
  const fa = a.slice(ia.length);
  if (b === null) {
    const next = incrementInteger(ia);
    return next === null ? ia + midpoint(fa, null) : next;
  }
  const ib = integerPart(b);
  const fb = b.slice(ib.length);
  if (ia === ib) return ia + midpoint(fa, fb);
  const next = incrementInteger(ia);
  if (next === null) throw new Error('no rank after the largest');
  return next < b ? next : ia + midpoint(fa, null);
}

/** `n` ascending keys from the start, as short as appends make them: a rebalance's. */
export function evenRanks(n: number): string[] {
  const keys: string[] = [];
  let last: string | null = null;
  for (let i = 0; i < n; i++) {
    last = rankBetween(last, null);
    keys.push(last);
  }
  return keys;
}
