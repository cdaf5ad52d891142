/**
 * readTarEntries on real tars built here with tar-stream (plain and gzip'd, whole, cut short, in
 * one-byte reads, with links and odd names): the exact entries it yields, and the exact refusal when
 * the stream stops before the tar does. The archive-import Stryker scope's survivors in
 * tar-entries.ts (docs/mutation-testing.md): the import tests that feed it spawn wharf.
 */
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import type { LayoutEntry } from './layout-entry.js';
import { readTarEntries } from './tar-entries.js';

type Written = { header: Parameters<ReturnType<typeof pack>['entry']>[0]; data?: string };

async function tarBytes(entries: readonly Written[]): Promise<Buffer> {
  const archive = pack();
  for (const { header, data } of entries) archive.entry({ mtime: new Date(0), ...header }, data ?? '');
  archive.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of archive) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function* inChunks(bytes: Buffer, size = bytes.length): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

interface Seen {
  path: string;
  type: string;
  size: number;
  linkTarget?: string;
  body: string;
}

async function bodyOf(entry: LayoutEntry): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of entry.body) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks).toString('latin1');
}

async function readAll(input: AsyncIterable<Uint8Array>): Promise<Seen[]> {
  const seen: Seen[] = [];
  for await (const entry of readTarEntries(input)) {
    const { body: _body, ...rest } = entry;
    seen.push({ ...rest, body: await bodyOf(entry) });
  }
  return seen;
}

const mixed: Written[] = [
  { header: { name: 'blobs/sha256/aa', type: 'file', size: 5 }, data: 'hello' },
  { header: { name: 'blobs/', type: 'directory' } },
  { header: { name: 'escape', type: 'symlink', linkname: '../../etc/passwd' } },
  { header: { name: 'twin', type: 'link', linkname: 'blobs/sha256/aa' } },
  { header: { name: 'pipe', type: 'fifo' } },
  { header: { name: 'old-style', type: 'contiguous-file', size: 2 }, data: 'xy' },
];

const mixedSeen: Seen[] = [
  { path: 'blobs/sha256/aa', type: 'file', size: 5, body: 'hello' },
  { path: 'blobs/', type: 'directory', size: 0, body: '' },
  { path: 'escape', type: 'symlink', size: 0, linkTarget: '../../etc/passwd', body: '' },
  { path: 'twin', type: 'link', size: 0, linkTarget: 'blobs/sha256/aa', body: '' },
  { path: 'pipe', type: 'other', size: 0, body: '' },
  { path: 'old-style', type: 'file', size: 2, body: 'xy' },
];

describe('readTarEntries: what a whole tar holds', () => {
  it('yields every entry with its type, size, link target (links only) and body', async () => {
    const tar = await tarBytes(mixed);
    // toStrictEqual: an entry that is no link has no linkTarget key at all.
    expect(await readAll(inChunks(tar))).toStrictEqual(mixedSeen);
  });

  it("reads a gzip'd tar the same, whole or one byte at a time", async () => {
    const gz = gzipSync(await tarBytes(mixed));
    expect(await readAll(inChunks(gz))).toStrictEqual(mixedSeen);
    expect(await readAll(inChunks(gz, 1))).toStrictEqual(mixedSeen);
  });

  it('reads a plain tar one byte at a time', async () => {
    expect(await readAll(inChunks(await tarBytes(mixed), 1))).toStrictEqual(mixedSeen);
  });

  it("takes a plain tar whose first byte is gzip's first (a name starting with 0x1f) as plain", async () => {
    const tar = await tarBytes([{ header: { name: '\x1fodd', type: 'file', size: 1 }, data: 'z' }]);
    expect(tar[0]).toBe(0x1f);
    expect(await readAll(inChunks(tar))).toStrictEqual([{ path: '\x1fodd', type: 'file', size: 1, body: 'z' }]);
  });

  it('an empty input is an empty tar', async () => {
    expect(await readAll(inChunks(Buffer.alloc(0)))).toEqual([]);
  });
});

describe('readTarEntries: a tar cut short is a refusal, never a clean end', () => {
  it('one byte: SIZE_INVALID between entries', async () => {
    await expect(readAll(inChunks(Buffer.from([0x1f])))).rejects.toMatchObject({
      code: 'SIZE_INVALID',
      message: 'the archive ends between entries (truncated or unreadable: Unexpected end of data)',
      cause: { message: 'Unexpected end of data' },
    });
  });

  it("cut inside a file's body: the body fails naming the entry, then the archive between entries", async () => {
    const tar = await tarBytes(mixed);
    const entries = readTarEntries(inChunks(tar.subarray(0, 515)));
    const first = await entries.next();
    expect(first.done).toBe(false);
    const entry = first.value as LayoutEntry;
    expect(entry.path).toBe('blobs/sha256/aa');
    const read: string[] = [];
    const failure = await (async () => {
      try {
        for await (const chunk of entry.body) read.push(Buffer.from(chunk).toString());
        return undefined;
      } catch (error) {
        return error;
      }
    })();
    expect(read.join('')).toBe('hel');
    expect(failure).toMatchObject({
      code: 'SIZE_INVALID',
      message: 'the archive ends inside blobs/sha256/aa (truncated or unreadable: Unexpected end of data)',
      cause: { message: 'Unexpected end of data' },
    });
    await expect(entries.next()).rejects.toMatchObject({
      code: 'SIZE_INVALID',
      message: 'the archive ends between entries (truncated or unreadable: Unexpected end of data)',
    });
  });

  it("a gzip'd tar cut short: gunzip's error, between entries, after the entries it held", async () => {
    const gz = gzipSync(await tarBytes(mixed));
    const seen: string[] = [];
    const failure = await (async () => {
      try {
        for await (const entry of readTarEntries(inChunks(gz.subarray(0, gz.length - 20)))) {
          seen.push(entry.path);
          await bodyOf(entry);
        }
        return undefined;
      } catch (error) {
        return error;
      }
    })();
    expect(seen).toEqual(['blobs/sha256/aa', 'blobs/', 'escape', 'twin', 'pipe']);
    expect(failure).toMatchObject({
      code: 'SIZE_INVALID',
      message: 'the archive ends between entries (truncated or unreadable: unexpected end of file)',
    });
  });

  it('an input that fails (a read error, not an Error) is the same refusal, with its words', async () => {
    const tar = await tarBytes(mixed);
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield tar.subarray(0, 1024);
      // eslint-disable-next-line @typescript-eslint/only-throw-error -- a source may fail with a non-Error
      throw 'disk unreadable';
    }
    const seen: string[] = [];
    const failure = await (async () => {
      try {
        for await (const entry of readTarEntries(failing())) {
          seen.push(entry.path);
          await bodyOf(entry);
        }
        return undefined;
      } catch (error) {
        return error;
      }
    })();
    expect(seen).toEqual(['blobs/sha256/aa']);
    expect(failure).toMatchObject({
      code: 'SIZE_INVALID',
      message: 'the archive ends between entries (truncated or unreadable: disk unreadable)',
    });
  });
});
