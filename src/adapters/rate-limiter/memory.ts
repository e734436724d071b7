import { LRUCache } from 'lru-cache';
import type { RateLimiter } from '../../ports/rate-limiter.js';

interface Window {
  count: number;
  resetAt: number;
}

/** Bounded so that a flood of distinct keys (addresses, emails) cannot grow memory. */
export function createMemoryRateLimiter(maxKeys = 100_000, now: () => number = Date.now): RateLimiter {
  const windows = new LRUCache<string, Window>({ max: maxKeys });
  const current = (key: string): Window | undefined => {
    const w = windows.get(key);
    if (w && w.resetAt <= now()) {
      windows.delete(key);
      return undefined;
    }
    return w;
  };
  return {
    async check(key, limit) {
      const w = current(key);
      if (!w || w.count < limit) return { allowed: true, retryAfter: 0 };
      return { allowed: false, retryAfter: Math.max(1, Math.ceil((w.resetAt - now()) / 1000)) };
    },
    async hit(key, windowSeconds) {
      const w = current(key);
      if (w) w.count += 1;
      else windows.set(key, { count: 1, resetAt: now() + windowSeconds * 1000 });
    },
    async reset(key) {
      windows.delete(key);
    },
  };
}
