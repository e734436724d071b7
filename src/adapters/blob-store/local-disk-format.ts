/**
 * The object file format of the local-disk blob store: a fixed 512-byte header, then the
 * bytes. The header carries what `head` and `list` must answer without reading the bytes
 * (the SHA-256, which is the ETag, and the content type), inside the one file that the one
 * rename replaces, so that bytes and their checksum can never disagree. (Node has no
 * extended-attribute API, and a sidecar file would need a second rename.)
 *
 * Header: `AGSBLOB1` then UTF-8 JSON `{"sha256": "…", "contentType"?: "…"}`, padded with
 * spaces to 512 bytes. A content type that does not fit is not kept (the files module keeps
 * its own copy in the database). A file without the magic is not an object and is not served.
 */
import type { FileHandle } from 'node:fs/promises';

export const HEADER_BYTES = 512;
const MAGIC = 'AGSBLOB1';

export interface ObjectHeader {
  readonly sha256: string;
  readonly contentType?: string;
}

/** The header's bytes; a placeholder (all spaces after the magic) when `header` is absent. */
export function encodeHeader(header?: ObjectHeader): Buffer {
  const out = Buffer.alloc(HEADER_BYTES, 0x20);
  out.write(MAGIC, 0, 'latin1');
  if (!header) return out;
  let json = JSON.stringify(header);
  if (MAGIC.length + Buffer.byteLength(json) > HEADER_BYTES) json = JSON.stringify({ sha256: header.sha256 });
  out.write(json, MAGIC.length, 'utf8');
  return out;
}

export function decodeHeader(bytes: Buffer): ObjectHeader | undefined {
  if (bytes.length < HEADER_BYTES || bytes.toString('latin1', 0, MAGIC.length) !== MAGIC) return undefined;
  try {
    const parsed: unknown = JSON.parse(bytes.toString('utf8', MAGIC.length, HEADER_BYTES).trimEnd());
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    const { sha256, contentType } = parsed as { sha256?: unknown; contentType?: unknown };
    if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) return undefined;
    return typeof contentType === 'string' ? { sha256, contentType } : { sha256 };
  } catch {
    return undefined;
  }
}

export async function readHeader(handle: FileHandle): Promise<ObjectHeader | undefined> {
  const bytes = Buffer.alloc(HEADER_BYTES);
  const { bytesRead } = await handle.read(bytes, 0, HEADER_BYTES, 0);
  return bytesRead === HEADER_BYTES ? decodeHeader(bytes) : undefined;
}
