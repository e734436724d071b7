import { setTimeout as sleep } from 'node:timers/promises';

export interface RetryPolicy {
  readonly attempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 3, baseDelayMs: 25, maxDelayMs: 400 };

/**
 * Runs `fn`, retrying while `isTransient(error)` holds, with exponential backoff and full
 * jitter (so that many clients failing together do not retry in lockstep). The last
 * error is rethrown; the caller turns it into a 503.
 */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  isTransient: (error: unknown) => boolean,
  policy: RetryPolicy = DEFAULT_RETRY,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (attempt >= policy.attempts || !isTransient(error)) throw error;
      const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      await sleep(Math.random() * ceiling);
    }
  }
}
