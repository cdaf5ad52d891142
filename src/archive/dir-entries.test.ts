/**
 * readDirEntries on a real folder under a temp dir: the exact entries (blobs first, index.json
 * last, the rest by name between), a directory as `<path>/`, a symlink and a socket with no body
 * (a symlink is never followed), a file's body its bytes in reads of up to 1 MiB. The
 * archive-import Stryker scope's survivors in dir-entries.ts (docs/mutation-testing.md).
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readDirEntries } from './dir-entries.js';

let root: string;
let server: Server | undefined;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'wharf-dir-entries-'));
});

afterEach(async () => {
  await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
  server = undefined;
  await rm(root, { recursive: true, force: true });
});

interface Seen {
  path: string;
  type: string;
  size: number;
  chunks: number[];
  body: string;
}

async function readAll(): Promise<Seen[]> {
  const seen: Seen[] = [];
  for await (const entry of readDirEntries(root)) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry.body) chunks.push(Buffer.from(chunk));
    const { path, type, size } = entry;
    seen.push({ path, type, size, chunks: chunks.map((c) => c.length), body: Buffer.concat(chunks).toString() });
  }
  return seen;
}

describe('readDirEntries', () => {
  it('yields blobs first, index.json last, the rest by name, each with its type, size and body', async () => {
    await writeFile(join(root, 'index.json'), '{"i":1}');
    await writeFile(join(root, 'oci-layout'), '{"o":1}');
    await writeFile(join(root, 'a-note'), 'a');
    await writeFile(join(root, 'zz-note'), 'zz');
    await writeFile(join(root, 'index.jsonx'), 'x');
    await mkdir(join(root, 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(root, 'blobs', 'sha256', 'bb'), 'second');
    await writeFile(join(root, 'blobs', 'sha256', 'aa'), 'first');
    await writeFile(join(root, 'blobs', 'index.json'), 'nested');
    // A symlink to a file with content: its entry has no body (never followed).
    await symlink('a-note', join(root, 'link'));
    expect(await readAll()).toStrictEqual([
      { path: 'blobs/', type: 'directory', size: 0, chunks: [], body: '' },
      { path: 'blobs/sha256/', type: 'directory', size: 0, chunks: [], body: '' },
      { path: 'blobs/sha256/aa', type: 'file', size: 5, chunks: [5], body: 'first' },
      { path: 'blobs/sha256/bb', type: 'file', size: 6, chunks: [6], body: 'second' },
      { path: 'blobs/index.json', type: 'file', size: 6, chunks: [6], body: 'nested' },
      { path: 'a-note', type: 'file', size: 1, chunks: [1], body: 'a' },
      { path: 'index.jsonx', type: 'file', size: 1, chunks: [1], body: 'x' },
      { path: 'link', type: 'symlink', size: 'a-note'.length, chunks: [], body: '' },
      { path: 'oci-layout', type: 'file', size: 7, chunks: [7], body: '{"o":1}' },
      { path: 'zz-note', type: 'file', size: 2, chunks: [2], body: 'zz' },
      { path: 'index.json', type: 'file', size: 7, chunks: [7], body: '{"i":1}' },
    ]);
  });

  it('a socket is "other", with no body', async () => {
    server = createServer();
    const listening = server;
    await new Promise<void>((resolve) => listening.listen(join(root, 'sock'), resolve));
    const seen = await readAll();
    expect(seen).toStrictEqual([{ path: 'sock', type: 'other', size: 0, chunks: [], body: '' }]);
  });

  it("reads a file's body in reads of up to 1 MiB", async () => {
    await writeFile(join(root, 'big'), Buffer.alloc(1024 * 1024 + 5, 0x61));
    const [entry] = await readAll();
    expect(entry?.chunks).toEqual([1024 * 1024, 5]);
  });
});
