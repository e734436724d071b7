/**
 * How long the event loop was held: a 5 ms interval timer records the longest gap between
 * its ticks. Timed stall tests measure with this, never with a wall-clock bound on a request.
 */
export function loopMeter(): { stop(): Promise<number> } {
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 5);
  return {
    async stop() {
      // A block that just ended is seen by the next tick, not before.
      await new Promise((resolve) => setTimeout(resolve, 15));
      clearInterval(timer);
      return Math.max(longest, performance.now() - last);
    },
  };
}

/** The longest the loop was held while `work` ran, its result, and how long it took. */
export async function longestStall<T>(work: () => Promise<T>): Promise<{ stallMs: number; result: T; tookMs: number }> {
  const meter = loopMeter();
  const started = performance.now();
  const result = await work();
  const tookMs = performance.now() - started;
  return { result, tookMs, stallMs: await meter.stop() };
}
