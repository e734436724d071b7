/** How `openStore` builds the file storage from `StoreConfig.storage` (src/store.ts). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore, resolveStoreConfig } from '../../../src/store.js';
import { blobStoreOf } from '../../../src/store-blobs.js';
import { readAll } from '../../conformance/blob-stream-kit.js';
import { expectError } from '../../helpers/fixtures.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'agentstore-wiring-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('the store’s file storage', () => {
  it('is the local disk under <dataDir>/files, made on first use (opening a store creates no directory), closed with the store', async () => {
    const dataDir = path.join(root, 'data');
    const store = await openStore(resolveStoreConfig({ databaseUrl: 'sqlite::memory:', dataDir, migrateOnStart: true }, {}));
    try {
      const blobs = blobStoreOf(store);
      expect(blobs.name).toBe('local');
      expect(fs.existsSync(path.join(dataDir, 'files'))).toBe(false);
      const stored = await blobs.put('t/a.txt', Readable.from([Buffer.from('hello')]), { maxBytes: 100 });
      expect(stored.size).toBe(5);
      expect(fs.existsSync(path.join(dataDir, 'files', '.tmp'))).toBe(true);
      expect((await readAll((await blobs.get('t/a.txt')).body)).toString()).toBe('hello');
      expect((await store.ready()).storage).toEqual({ backend: 'local', ok: true });
    } finally {
      await store.close();
    }
    await expectError(blobStoreOf(store).head('t/a.txt'), 'agentstore.unavailable');
  });

  it('refuses to open with the s3 backend until its adapter is built, naming STORAGE_BACKEND', async () => {
    const config = resolveStoreConfig({ databaseUrl: 'sqlite::memory:', dataDir: root }, { STORAGE_BACKEND: 's3', S3_BUCKET: 'bucket' });
    const error = await openStore(config).then(
      () => undefined,
      (e: unknown) => e as { code?: string; context?: { variable?: string } },
    );
    expect(error).toMatchObject({ code: 'agentstore.config', context: { variable: 'STORAGE_BACKEND' } });
  });
});
