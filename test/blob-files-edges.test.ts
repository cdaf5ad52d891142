/**
 * BlobFiles' edges (store/blob-files.ts), on real temp dirs: what start-up removes from tmp/, every
 * descriptor a read, a write or a truncation opens is closed (and only the one handed out stays open
 * until its reader closes it), a file's identity changes when its bytes are rewritten in place (so a
 * remembered verification no longer holds), and a quarantine moves the file under quarantine/ and
 * names who held the blob. Written for the survivors of the content scope's mutation run
 * (docs/mutation-testing.md); each asserts the exact answer.
 */
import { createHash } from 'node:crypto';
import {
  type FileHandle,
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  realpath,
  rename,
  rm,
  stat,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requireDigest, type Digest } from '../src/oci/digest.js';
import { requireRepoName, type Tag } from '../src/oci/reference.js';
import { BlobFiles, type DurableFs } from '../src/store/blob-files.js';
import { LocalStore } from '../src/store/local-store.js';
import { blobPath } from './support/blob-file.js';
import { descriptorsUnder } from './support/open-descriptors.js';

let root: string;
beforeEach(async () => {
  // The real path: /proc/self/fd names files by it.
  root = await realpath(await mkdtemp(join(tmpdir(), 'wharf-blob-files-')));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const digestOf = (bytes: Buffer): Digest => requireDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);

async function* once(bytes: Buffer): AsyncGenerator<Uint8Array> {
  yield bytes;
}

describe('BlobFiles.init', () => {
  it('removes the *.part files interrupted writes left in tmp/, and nothing else', async () => {
    await mkdir(join(root, 'tmp'), { recursive: true });
    for (const name of ['0f1e2d3c.part', 'b.part', 'keep.txt', '.partial-notes']) {
      await writeFile(join(root, 'tmp', name), name);
    }
    await new BlobFiles(root).init();
    expect((await readdir(join(root, 'tmp'))).sort()).toEqual(['.partial-notes', 'keep.txt', 'uploads']);
  });
});

describe('BlobFiles: descriptors', () => {
  let files: BlobFiles;
  beforeEach(async () => {
    files = new BlobFiles(root);
    await files.init();
  });

  it('readWithInode reads a blob whole and closes its file; an absent blob is undefined', async () => {
    const bytes = Buffer.from('read whole, then closed');
    const { digest } = await files.write([bytes]);
    const read = await files.readWithInode(digest);
    expect(read?.bytes.equals(bytes)).toBe(true);
    expect(read?.ino).toBe((await stat(files.pathOf(digest))).ino);
    expect(await descriptorsUnder(root)).toEqual([]);
    expect(await files.readWithInode(digestOf(Buffer.from('never written')))).toBeUndefined();
  });

  it('openFileWithInode hands out an open file that its reader closes', async () => {
    const bytes = Buffer.from('positioned reads on a descriptor the reader owns');
    const { digest } = await files.write([bytes]);
    const opened = await files.openFileWithInode(digest);
    if (opened === undefined) throw new Error('no file');
    expect(opened.ino).toBe((await stat(files.pathOf(digest))).ino);
    const buffer = Buffer.alloc(bytes.length);
    expect(await opened.file.read(buffer, 0)).toBe(bytes.length);
    expect(buffer.equals(bytes)).toBe(true);
    expect(await descriptorsUnder(root)).toEqual([files.pathOf(digest)]);
    await opened.file.close();
    expect(await descriptorsUnder(root)).toEqual([]);
    await expect(opened.file.read(buffer, 0)).rejects.toMatchObject({ code: 'EBADF' });
  });

  it('a committed write, an upload cut back and a removed upload leave no descriptor open', async () => {
    const { digest } = await files.write(once(Buffer.from('committed: file and directory synced and closed')));
    expect(await descriptorsUnder(root)).toEqual([]);
    expect(await readFile(files.pathOf(digest), 'utf8')).toBe('committed: file and directory synced and closed');

    await files.createUpload('session');
    await files.append('session', once(Buffer.from('abcdef')), undefined);
    await files.truncateUpload('session', 3);
    expect(await readFile(files.uploadPath('session'), 'utf8')).toBe('abc');
    expect(await descriptorsUnder(root)).toEqual([]);

    // Removing an upload whose file is already gone is not an error.
    await rm(files.uploadPath('session'));
    await expect(files.removeUpload('session')).resolves.toBeUndefined();
  });
});

describe('BlobFiles: a descriptor whose stat fails', () => {
  it('is closed, and the error passed on, by openFileWithInode and readWithInode', async () => {
    const closed: string[] = [];
    const failingStat: DurableFs = {
      async open(path, flags) {
        const handle = await open(path, flags);
        if (!path.startsWith(join(root, 'blobs'))) return handle;
        const close = handle.close.bind(handle);
        handle.close = async () => {
          closed.push(path);
          await close();
        };
        handle.stat = (() =>
          Promise.reject(Object.assign(new Error('EIO: i/o error, fstat'), { code: 'EIO' }))) as FileHandle['stat'];
        return handle;
      },
      rename,
      remove: (path) => rm(path, { force: true }),
    };
    const files = new BlobFiles(root, failingStat);
    await files.init();
    const { digest } = await files.write([Buffer.from('a blob whose fstat fails')]);
    closed.length = 0; // the write's own descriptors (the file, its directory for fsync)
    await expect(files.openFileWithInode(digest)).rejects.toMatchObject({ code: 'EIO' });
    await expect(files.readWithInode(digest)).rejects.toMatchObject({ code: 'EIO' });
    expect(closed).toEqual([files.pathOf(digest), files.pathOf(digest)]);
    expect(await descriptorsUnder(root)).toEqual([]);
  });
});

describe('BlobFiles: identity', () => {
  it('changes when the bytes are rewritten in place (same inode, same size), so a remembered check no longer holds', async () => {
    const files = new BlobFiles(root);
    await files.init();
    const bytes = Buffer.from('the bytes as written');
    const { digest } = await files.write([bytes]);
    const first = await files.readWithInode(digest);
    expect((await files.readWithInode(digest))?.identity).toBe(first?.identity);

    const path = files.pathOf(digest);
    await writeFile(path, Buffer.from('THE BYTES AS WRITTEN'));
    // A distinct modification time, so the test does not rest on the clock ticking between writes.
    await utimes(path, new Date(1_000_000), new Date(2_000_000));
    const after = await files.readWithInode(digest);
    expect(after?.ino).toBe(first?.ino);
    expect(after?.bytes.length).toBe(bytes.length);
    expect(typeof after?.identity).toBe('string');
    expect(after?.identity).not.toBe(first?.identity);
  });

  it('a small blob trusted once is hashed again after an in-place rewrite, and the corrupt file is not served', async () => {
    const store = await LocalStore.open(root);
    try {
      const name = requireRepoName('identity/app');
      const bytes = Buffer.from('a small blob, read twice, then rotted in place');
      const digest = digestOf(bytes);
      await store.putBlob(name, digest, once(bytes), bytes.length);
      expect((await store.openBlob(name, digest))?.size).toBe(bytes.length);
      expect((await store.openBlob(name, digest))?.size).toBe(bytes.length);
      expect(store.verified.counts).toEqual({ hashed: 1, trusted: 1, joined: 0, own: 0 });

      const path = blobPath(root, digest);
      await writeFile(path, Buffer.from(bytes.toString().toUpperCase()));
      await utimes(path, new Date(1_000_000), new Date(2_000_000));
      expect(await store.openBlob(name, digest)).toBeUndefined();
      expect(store.verified.counts).toEqual({ hashed: 2, trusted: 1, joined: 0, own: 0 });
      expect(await readdir(join(root, 'quarantine'))).toHaveLength(1);
    } finally {
      store.close();
    }
  });
});

describe('quarantine', () => {
  it('moves the file under quarantine/ and names the repositories and tags that held the blob', async () => {
    const store = await LocalStore.open(root);
    try {
      const app = requireRepoName('holders/app');
      const config = Buffer.from('{}');
      const layer = Buffer.from('a layer reached by a tag on a manifest and on an index above it');
      await store.putBlob(app, digestOf(config), once(config), config.length);
      await store.putBlob(app, digestOf(layer), once(layer), layer.length);
      await store.putBlob(requireRepoName('holders/other'), digestOf(layer), once(layer), layer.length);
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: 2 },
          layers: [
            { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(layer), size: layer.length },
          ],
        }),
      );
      await store.putManifest(app, 'v1' as Tag, manifest, 'application/vnd.oci.image.manifest.v1+json');
      const index = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          manifests: [
            {
              mediaType: 'application/vnd.oci.image.manifest.v1+json',
              digest: digestOf(manifest),
              size: manifest.length,
            },
          ],
        }),
      );
      await store.putManifest(app, 'multi' as Tag, index, 'application/vnd.oci.image.index.v1+json');

      const before = Date.now();
      const result = await store.quarantineBlob(digestOf(layer), 'digest-mismatch');
      const hex = digestOf(layer).slice('sha256:'.length);
      expect(result?.movedTo).toMatch(new RegExp(`^${join(root, 'quarantine')}/sha256-${hex}-\\d+$`));
      const stamp = Number(result?.movedTo?.split('-').at(-1));
      expect(stamp).toBeGreaterThanOrEqual(before);
      expect(stamp).toBeLessThanOrEqual(Date.now());
      expect((await readFile(result?.movedTo ?? '')).equals(layer)).toBe(true);
      expect(await readdir(join(root, 'quarantine'))).toEqual([`sha256-${hex}-${stamp}`]);
      expect(result?.holders).toEqual({
        links: ['holders/app', 'holders/other'],
        manifests: [],
        tags: [
          { repository: 'holders/app', tag: 'multi', source: 'pushed' },
          { repository: 'holders/app', tag: 'v1', source: 'pushed' },
        ],
      });
    } finally {
      store.close();
    }
  });
});
