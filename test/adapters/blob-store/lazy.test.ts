/** The lazy wrapper (src/adapters/blob-store/lazy.ts) keeps what the port requires of the backend it opens. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { createLazyBlobStore } from '../../../src/adapters/blob-store/lazy.js';
import { createLocalDiskBlobStore, LOCAL_DISK_CAPABILITIES } from '../../../src/adapters/blob-store/local-disk.js';
import type { BlobStore } from '../../../src/ports/blob-store.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'agentstore-lazy-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

it('has presign exactly when the backend presigns natively, and passes the call through once opened', async () => {
  const local = createLazyBlobStore({ name: 'local', capabilities: LOCAL_DISK_CAPABILITIES }, () => createLocalDiskBlobStore({ root }));
  expect(local.presign).toBeUndefined();
  await local.close();

  // A backend that signs (as S3 does): the local disk with a signing method added.
  const calls: string[] = [];
  const signing = async (): Promise<BlobStore> => {
    const disk = await createLocalDiskBlobStore({ root });
    return Object.assign(Object.create(disk) as BlobStore, {
      capabilities: { ...LOCAL_DISK_CAPABILITIES, nativePresign: true },
      presign: async (key: string) => {
        calls.push(key);
        return `https://signed.example/${key}`;
      },
    });
  };
  const lazy = createLazyBlobStore({ name: 'signing', capabilities: { ...LOCAL_DISK_CAPABILITIES, nativePresign: true } }, signing);
  expect(typeof lazy.presign).toBe('function');
  expect(await lazy.presign?.('t/a.txt', { method: 'GET', expiresInSeconds: 60 })).toBe('https://signed.example/t/a.txt');
  expect(calls).toEqual(['t/a.txt']);
  await lazy.close();
});
