import type { ServerResponse } from 'node:http';

/**
 * Writes a chunk of an event stream. Returns a promise when the chunk is buffered and the
 * writer should wait: it settles on 'drain', or on 'close' when the client goes away.
 */
export function write(raw: ServerResponse, chunk: string): Promise<void> | undefined {
  // A destroyed response takes the write without a word: no 'drain', and 'close' is past.
  if (raw.destroyed) return undefined;
  if (raw.write(chunk)) return undefined;
  return new Promise((resolve) => {
    const done = () => {
      raw.off('drain', done);
      raw.off('close', done);
      resolve();
    };
    raw.once('drain', done);
    raw.once('close', done);
  });
}
