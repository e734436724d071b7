import type { ServerResponse } from 'node:http';

/**
 * Writes a chunk of an event stream. Returns a promise when the chunk is buffered and the
 * writer should wait: it settles on 'drain', or on 'close' when the client goes away. With
 * `stallMs`, a client that has read nothing for that long is cut off (the response is
 * destroyed, which closes it): one that stopped reading would otherwise hold its stream, its
 * buffered events and its listener for good.
 */
export function write(raw: ServerResponse, chunk: string, stallMs?: number): Promise<void> | undefined {
  // A destroyed response takes the write without a word: no 'drain', and 'close' is past.
  if (raw.destroyed) return undefined;
  if (raw.write(chunk)) return undefined;
  return new Promise((resolve) => {
    const timer = stallMs === undefined ? undefined : setTimeout(() => raw.destroy(), stallMs);
    timer?.unref();
    const done = () => {
      if (timer) clearTimeout(timer);
      raw.off('drain', done);
      raw.off('close', done);
      resolve();
    };
    raw.once('drain', done);
    raw.once('close', done);
  });
}
