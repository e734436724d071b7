import { performance } from 'node:perf_hooks';

/**
 * For long runs of synchronous work on the event loop (better-sqlite3 statements, checking
 * thousands of lines): the returned function gives a promise to await once `sliceMs` have
 * passed since the last turn, which resolves after the loop has turned (setImmediate), and
 * undefined before that (no promise per call). Every request shares the loop: one bulk load's
 * chunk held it for tens of ms at a time, during which no other request was read or answered
 * (the same reason as the group committer's slices, src/db/group-commit.ts).
 */
export function loopTurns(sliceMs = 2): () => Promise<void> | undefined {
  let since = performance.now();
  return () => {
    if (performance.now() - since < sliceMs) return undefined;
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        since = performance.now();
        resolve();
      }),
    );
  };
}
