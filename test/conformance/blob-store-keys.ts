/**
 * The listing and key cases of the BlobStore conformance suite (blob-store.ts): byte order,
 * paging, `after`, prefixes that end inside a segment, awkward keys that must round-trip, and
 * hostile ones that must be refused everywhere.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { BlobStore, PutResult } from '../../src/ports/blob-store.js';
import { expectError } from '../helpers/fixtures.js';
import { byteOrder, readAll } from './blob-stream-kit.js';

const body = (bytes: Buffer | string): Readable => Readable.from([Buffer.from(bytes)]);

export function describeListingAndKeys(s: () => BlobStore, prefix: () => string, put: (key: string, bytes: Buffer | string) => Promise<PutResult>): void {
  describe('list', () => {
    it('lists by prefix in byte order, in pages that follow nextAfter, with sizes and ETags', async () => {
      const p = prefix();
      const keys = ['b', 'a', 'a.b', 'a-b', 'a/b', 'a/b/c', 'ab', 'Z', 'z', 'é', '\uFF5E', '\u{1F600}', 'a b'].map((k) => `${p}${k}`);
      const etags = new Map<string, string>();
      for (const [i, key] of keys.entries()) etags.set(key, (await put(key, 'x'.repeat(i + 1))).etag);
      const expected = [...keys].sort(byteOrder);
      const seen: string[] = [];
      let after: string | undefined;
      let pages = 0;
      do {
        const page = await s().list({ prefix: p, limit: 3, ...(after === undefined ? {} : { after }) });
        pages++;
        expect(page.items.length).toBeLessThanOrEqual(3);
        if (page.items.length < 3) expect(page.nextAfter).toBeUndefined();
        for (const item of page.items) {
          expect(item.etag).toBe(etags.get(item.key));
          expect(item.size).toBe(keys.indexOf(item.key) + 1);
          seen.push(item.key);
        }
        after = page.nextAfter;
      } while (after !== undefined && pages < 20);
      expect(seen).toEqual(expected);
      expect(pages).toBe(5);
    });

    it('the last page has no nextAfter, even when it is full', async () => {
      const p = prefix();
      for (const k of ['1', '2', '3', '4']) await put(`${p}${k}`, k);
      const first = await s().list({ prefix: p, limit: 2 });
      expect(first.nextAfter).toBe(`${p}2`);
      const second = await s().list({ prefix: p, limit: 2, after: first.nextAfter });
      expect(second.items.map((i) => i.key)).toEqual([`${p}3`, `${p}4`]);
      expect(second.nextAfter).toBeUndefined();
      expect((await s().list({ prefix: p, limit: 4 })).nextAfter).toBeUndefined();
    });

    it('after is a keyset position: any string, not only a listed key', async () => {
      const p = prefix();
      for (const k of ['a', 'b/1', 'b/2', 'c']) await put(`${p}${k}`, k);
      const keysAfter = async (after: string) => (await s().list({ prefix: p, after })).items.map((i) => i.key.slice(p.length));
      expect(await keysAfter(`${p}a`)).toEqual(['b/1', 'b/2', 'c']);
      expect(await keysAfter(`${p}b/1`)).toEqual(['b/2', 'c']);
      expect(await keysAfter(`${p}b/0zzz`)).toEqual(['b/1', 'b/2', 'c']);
      expect(await keysAfter(`${p}b/`)).toEqual(['b/1', 'b/2', 'c']);
      expect(await keysAfter(`${p}b0`)).toEqual(['c']);
      expect(await keysAfter(`${p}c`)).toEqual([]);
      expect(await keysAfter('')).toEqual(['a', 'b/1', 'b/2', 'c']);
    });

    it('a prefix may end inside a segment; other prefixes are not listed', async () => {
      const p = prefix();
      for (const k of ['report-1', 'report-2/x', 'reports', 'rep', 'other/report-3']) await put(`${p}${k}`, k);
      const keys = async (q: string) => (await s().list({ prefix: `${p}${q}` })).items.map((i) => i.key.slice(p.length));
      expect(await keys('report')).toEqual(['report-1', 'report-2/x', 'reports']);
      expect(await keys('report-2/')).toEqual(['report-2/x']);
      expect(await keys('nope')).toEqual([]);
      expect(await keys('other/')).toEqual(['other/report-3']);
      expect((await s().list({ prefix: `${randomUUID()}/` })).items).toEqual([]);
    });

    it('refuses a limit that is not a positive integer', async () => {
      await expectError(s().list({ prefix: prefix(), limit: 0 }), 'agentstore.validation', { field: 'limit' });
      await expectError(s().list({ prefix: prefix(), limit: 1.5 }), 'agentstore.validation', { field: 'limit' });
    });
  });

  describe('keys', () => {
    const awkward = [
      'with space/file name.txt',
      'ünïcødé/日本語のファイル.txt',
      'emoji/😀 party.png',
      'deep/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/leaf',
      'Case/README.md',
      'case/readme.md',
      'caf\u00e9',
      'cafe\u0301',
      '.hidden/.env',
      '~tilde/name@/plus+/percent%2e%2e%2f',
      'trailing dot./x',
      `long/${'ü'.repeat(300)}`,
      `long/${'a'.repeat(250)}.txt`,
      `wide/${'x'.repeat(100)}/${'日本'.repeat(40)}/${'y'.repeat(120)}`,
    ];

    it('awkward keys round-trip and list back exactly', async () => {
      const p = prefix();
      for (const [i, k] of awkward.entries()) await put(`${p}${k}`, `#${i}`);
      for (const [i, k] of awkward.entries()) expect((await readAll((await s().get(`${p}${k}`)).body)).toString()).toBe(`#${i}`);
      const listed = (await s().list({ prefix: p })).items.map((i) => i.key.slice(p.length));
      expect(listed).toEqual([...awkward].sort(byteOrder));
      expect((await s().list({ prefix: `${p}long/` })).items).toHaveLength(2);
      expect((await s().list({ prefix: `${p}Case` })).items.map((i) => i.key)).toEqual([`${p}Case/README.md`]);
    });

    it('a 1024-byte key round-trips', async () => {
      const p = prefix();
      const key = `${p}${'k'.repeat(1024 - Buffer.byteLength(p))}`;
      await put(key, 'max');
      expect((await s().head(key)).size).toBe(3);
    });

    const hostile = ['../escape', 'a/../../escape', '..', '/etc/passwd', 'a\\..\\..\\escape', 'a\0b', '', `${'k'.repeat(1025)}`];
    it.each(hostile.map((k) => [JSON.stringify(k).slice(0, 40), k]))('refuses the hostile key %s everywhere', async (_label, key) => {
      await expectError(s().put(key, body('x'), { maxBytes: 10 }), 'agentstore.validation');
      await expectError(s().get(key), 'agentstore.validation');
      await expectError(s().head(key), 'agentstore.validation');
      await expectError(s().delete(key), 'agentstore.validation');
    });

    it('refuses a prefix that climbs out', async () => {
      await expectError(s().list({ prefix: '../' }), 'agentstore.validation', { field: 'prefix' });
      await expectError(s().list({ prefix: 'a/../../' }), 'agentstore.validation', { field: 'prefix' });
      await expectError(s().list({ prefix: '/abs' }), 'agentstore.validation', { field: 'prefix' });
    });
  });
}
