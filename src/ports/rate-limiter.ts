/**
 * Fixed-window attempt counting (login throttling). In-process by default; a shared
 * backend (Redis) makes the limit hold across instances.
 */
export interface RateLimitResult {
  readonly allowed: boolean;
  /** Seconds until the window resets. */
  readonly retryAfter: number;
}

export interface RateLimiter {
  /** Is `key` under `limit` in the current window? Does not count. */
  check(key: string, limit: number, windowSeconds: number): Promise<RateLimitResult>;
  /** Counts one hit for `key`. */
  hit(key: string, windowSeconds: number): Promise<void>;
  reset(key: string): Promise<void>;
}
