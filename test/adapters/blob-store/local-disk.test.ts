import { mkdtemp, mkdir, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { createLocalDiskBlobStore, type LocalDiskBlobStore } from '../../../src/adapters/blob-store/local-disk.js';
import { objectPath, parseName, segmentNames } from '../../../src/adapters/blob-store/local-disk-paths.js';
import { HEADER_BYTES } from '../../../src/adapters/blob-store/local-disk-format.js';
import { describeBlobStore } from '../../conformance/blob-store.js';
import { countingSource, readAll } from '../../conformance/blob-stream-kit.js';
import { expectError } from '../../helpers/fixtures.js';

const roots: string[] = [];
async function newRoot(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'agentstore-blob-'));
  roots.push(dir);
  return join(dir, 'files');
}
afterAll(async () => {
  for (const dir of roots) await rm(dir, { recursive: true, force: true });
});

/** Every file under `dir`, relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name)));
}

const body = (text: string): Readable => Readable.from([Buffer.from(text)]);

describeBlobStore('local disk', async () => createLocalDiskBlobStore({ root: await newRoot() }), {
  additionalTests: ({ store, prefix }) => {
    describe('local disk only', () => {
      const local = (): LocalDiskBlobStore => store() as LocalDiskBlobStore;

      it('an upload in progress is only a temp file, never under its final name', async () => {
        const key = `${prefix()}slow.bin`;
        const final = objectPath(local().root, key);
        const source = countingSource(2 * 1024 * 1024, { chunk: 64 * 1024, pauseMs: 3 });
        const pending = local().put(key, source.stream, { maxBytes: 4 * 1024 * 1024 });
        let sawTemp = false;
        while (!source.ended()) {
          await expect(stat(final)).rejects.toMatchObject({ code: 'ENOENT' });
          if ((await readdir(join(local().root, '.tmp'))).length > 0) sawTemp = true;
          await new Promise((r) => setTimeout(r, 5));
        }
        await pending;
        expect(sawTemp).toBe(true);
        expect((await stat(final)).size).toBe(2 * 1024 * 1024 + HEADER_BYTES);
      });

      it('a refused or aborted put leaves no temp file behind', async () => {
        const p = prefix();
        const before = await readdir(join(local().root, '.tmp'));
        await expectError(local().put(`${p}big`, body('x'.repeat(2000)), { maxBytes: 1000 }), 'agentstore.payload_too_large');
        const controller = new AbortController();
        const pending = local().put(`${p}cut`, countingSource(8 * 1024 * 1024, { pauseMs: 5 }).stream, { maxBytes: 1e9, signal: controller.signal });
        await new Promise((r) => setTimeout(r, 30));
        controller.abort(new Error('gone'));
        await expect(pending).rejects.toThrow('gone');
        await local().put(`${p}once`, body('1'), { maxBytes: 10 });
        await expectError(local().put(`${p}once`, body('2'), { maxBytes: 10, ifNoneMatch: '*' }), 'agentstore.precondition_failed');
        expect((await readdir(join(local().root, '.tmp'))).filter((n) => !before.includes(n))).toEqual([]);
      });

      it('delete removes the key directories it emptied, and only those', async () => {
        const p = prefix();
        await local().put(`${p}x/y/z`, body('z'), { maxBytes: 10 });
        await local().put(`${p}x/keep`, body('k'), { maxBytes: 10 });
        const xDir = join(local().root, ...segmentNames(p.slice(0, -1), true), 'x@');
        await local().delete(`${p}x/y/z`);
        expect(await readdir(xDir)).toEqual(['keep']);
        await local().delete(`${p}x/keep`);
        await expect(stat(xDir)).rejects.toMatchObject({ code: 'ENOENT' });
        await expect(stat(join(local().root, '.tmp'))).resolves.toBeTruthy();
      });

      it('keys that are not plain are stored under encoded, lower-case ASCII names of at most 255 bytes', async () => {
        const p = prefix();
        const keys = [`${p}Upper/ünï ${'é'.repeat(400)}`, `${p}.env`, `${p}a/b`, `${p}a`];
        for (const key of keys) await local().put(key, body(key), { maxBytes: 10_000 });
        const dir = join(local().root, ...segmentNames(p.slice(0, -1), true));
        for (const file of await filesUnder(dir)) {
          for (const name of file.split('/')) {
            expect(Buffer.byteLength(name)).toBeLessThanOrEqual(255);
            expect(name).toMatch(/^[a-z0-9._~@+-]+$/);
            expect(name.startsWith('.')).toBe(false);
          }
        }
        for (const key of keys) expect((await readAll((await local().get(key)).body)).toString()).toBe(key);
      });

      it('never serves or lists a symlink where an object would be', async () => {
        const p = prefix();
        const outside = join(local().root, '..', 'outside-secret');
        await writeFile(outside, 'secret');
        await local().put(`${p}real`, body('real'), { maxBytes: 10 });
        const dir = join(local().root, ...segmentNames(p.slice(0, -1), true));
        await symlink(outside, join(dir, 'link'));
        await symlink(join(local().root, '..'), join(dir, 'up@'));
        await expectError(local().get(`${p}link`), 'agentstore.not_found');
        await expectError(local().head(`${p}link`), 'agentstore.not_found');
        expect((await local().list({ prefix: p })).items.map((i) => i.key)).toEqual([`${p}real`]);
        expect(await readFile(outside, 'utf8')).toBe('secret');
      });

      it('ignores files it did not write: foreign names are not listed, headerless files not served', async () => {
        const p = prefix();
        await local().put(`${p}ours`, body('ours'), { maxBytes: 10 });
        const dir = join(local().root, ...segmentNames(p.slice(0, -1), true));
        await writeFile(join(dir, 'Foreign.TXT'), 'x');
        await writeFile(join(dir, '~notbase32!'), 'x');
        await writeFile(join(dir, 'raw'), 'no header here');
        await mkdir(join(dir, 'lost+found'));
        expect((await local().list({ prefix: p })).items.map((i) => i.key)).toEqual([`${p}ours`]);
        await expectError(local().get(`${p}raw`), 'agentstore.not_found');
      });
    });
  },
});

describe('local disk: opening', () => {
  it('removes temp files older than an hour left by a crash, keeps younger ones, and never lists either', async () => {
    const root = await newRoot();
    const first = await createLocalDiskBlobStore({ root });
    await first.put('t/kept', body('kept'), { maxBytes: 10 });
    const stale = join(root, '.tmp', 'dead-upload.part');
    const young = join(root, '.tmp', 'live-upload.part');
    await writeFile(stale, 'half an upload');
    await writeFile(young, 'an upload in progress');
    const twoHoursAgo = new Date(Date.now() - 2 * 60 * 60 * 1000);
    await utimes(stale, twoHoursAgo, twoHoursAgo);
    expect((await first.list({ prefix: '' })).items.map((i) => i.key)).toEqual(['t/kept']);
    await first.close();

    const reopened = await createLocalDiskBlobStore({ root });
    expect(await readdir(join(root, '.tmp'))).toEqual(['live-upload.part']);
    expect((await reopened.list({ prefix: '' })).items.map((i) => i.key)).toEqual(['t/kept']);
    expect((await readAll((await reopened.get('t/kept')).body)).toString()).toBe('kept');
  });

  it('ping fails once the root is gone', async () => {
    const root = await newRoot();
    const store = await createLocalDiskBlobStore({ root });
    await store.ping();
    await rm(root, { recursive: true, force: true });
    await expectError(store.ping(), 'agentstore.unavailable');
  });
});

describe('local disk: key mapping', () => {
  it('keeps plain segments readable and encodes the rest reversibly', () => {
    expect(segmentNames('report-2024.pdf', false)).toEqual(['report-2024.pdf']);
    expect(segmentNames('docs', true)).toEqual(['docs@']);
    for (const segment of ['Docs', 'ünï.txt', '.env', 'a.', '~', 'x@', 'y+', '😀', 'é'.repeat(600)]) {
      for (const directory of [false, true]) {
        const names = segmentNames(segment, directory);
        let carried = '';
        for (const [i, name] of names.entries()) {
          const parsed = parseName(name, directory || i < names.length - 1, carried);
          if (i < names.length - 1) {
            expect(parsed?.kind).toBe('continuation');
            carried = (parsed as { carried: string }).carried;
          } else {
            expect(parsed).toEqual({ kind: directory ? 'dir' : 'file', segment });
          }
        }
      }
    }
  });

  it('accepts only the one name each segment maps to', () => {
    expect(parseName('Docs', false, '')).toBeUndefined();
    expect(parseName('docs', true, '')).toBeUndefined();
    expect(parseName('~mrxwg4y', false, '')).toBeUndefined(); // "docs" is plain, so never encoded
    expect(parseName('.tmp', true, '')).toBeUndefined();
  });
});
