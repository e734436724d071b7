import { describe, expect, it } from 'vitest';
import { evenRanks, isRank, rankBetween } from './rank.js';

/** Deterministic PRNG (mulberry32), so a failure repeats. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('rank keys', () => {
  it('starts at a0, appends by incrementing the integer part, and prepends by decrementing it', () => {
    expect(rankBetween(null, null)).toBe('a0');
    expect(rankBetween('a0', null)).toBe('a1');
    expect(rankBetween('az', null)).toBe('b00');
    expect(rankBetween(null, 'a0')).toBe('Zz');
    expect(rankBetween('a0', 'a1')).toBe('a0V');
    expect(rankBetween('a0V', 'a1')).toBe('a0l');
  });

  it('10,000 appends stay short', () => {
    const keys = evenRanks(10_000);
    expect(keys.at(-1)!.length).toBeLessThanOrEqual(4);
    for (let i = 1; i < keys.length; i++) expect(keys[i - 1]! < keys[i]!).toBe(true);
  });

  it('random inserts anywhere keep a strict total order, every key valid', () => {
    const next = random(42);
    const keys: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const at = Math.floor(next() * (keys.length + 1));
      const key = rankBetween(keys[at - 1] ?? null, keys[at] ?? null);
      expect(isRank(key), key).toBe(true);
      if (at > 0) expect(keys[at - 1]! < key).toBe(true);
      if (at < keys.length) expect(key < keys[at]!).toBe(true);
      keys.splice(at, 0, key);
    }
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('repeated inserts at one place grow the key by about a character per six inserts', () => {
    let low = 'a0';
    const high = 'a1';
    for (let i = 0; i < 60; i++) low = rankBetween(low, high);
    expect(low.length).toBeLessThan(20);
    expect(low < high).toBe(true);
  });

  it('refuses bounds out of order and keys it never makes', () => {
    expect(() => rankBetween('a1', 'a0')).toThrow();
    expect(() => rankBetween('a0', 'a0')).toThrow();
    for (const bad of ['', 'a', 'a00', '~x', 'a0!', `A${'0'.repeat(26)}`]) expect(isRank(bad), bad).toBe(false);
  });
});
