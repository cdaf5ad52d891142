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
  lstat,
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  realpath,
  rename,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requireDigest, type Digest } from '../src/oci/digest.js';
import { requireRepoName, type Tag } from '../src/oci/reference.js';
import { BlobFiles, type DurableFs } from '../src/store/blob-files.js';
import { holderRepositories } from '../src/store/blob-holders.js';
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

describe('quarantine: holders of a manifest', () => {
  it('names the repositories that keep a manifest whose bytes the blob is, and holderRepositories lists each once', async () => {
    const store = await LocalStore.open(root);
    try {
      const config = Buffer.from('{}');
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: 2 },
          layers: [],
        }),
      );
      for (const repo of ['holders/b', 'holders/a']) {
        await store.putBlob(requireRepoName(repo), digestOf(config), once(config), config.length);
        await store.putManifest(
          requireRepoName(repo),
          'v1' as Tag,
          manifest,
          'application/vnd.oci.image.manifest.v1+json',
        );
      }
      const result = await store.quarantineBlob(digestOf(manifest), 'digest-mismatch');
      expect(result?.holders).toEqual({
        links: [],
        manifests: ['holders/a', 'holders/b'],
        tags: [
          { repository: 'holders/a', tag: 'v1', source: 'pushed' },
          { repository: 'holders/b', tag: 'v1', source: 'pushed' },
        ],
      });
      expect(holderRepositories(result?.holders ?? { links: [], manifests: [], tags: [] })).toEqual([
        'holders/a',
        'holders/b',
      ]);
    } finally {
      store.close();
    }
  });

  it('holderRepositories: links, manifests and tags merged, each repository once, sorted', () => {
    expect(
      holderRepositories({
        links: ['c/links', 'a/both'],
        manifests: ['a/both', 'b/manifest'],
        tags: [
          { repository: 'd/tag', tag: 'v1', source: 'fetched' },
          { repository: 'd/tag', tag: 'v2', source: 'pushed' },
        ],
      }),
    ).toEqual(['a/both', 'b/manifest', 'c/links', 'd/tag']);
  });
});

/** A digest whose prefix directory (blobs/sha256/<xx>) is made a plain file: every lookup under it fails with ENOTDIR. */
async function blockedDigest(files: BlobFiles, label: string): Promise<Digest> {
  const digest = digestOf(Buffer.from(label));
  const prefixDir = join(files.blobsDir, 'sha256', digest.slice('sha256:'.length, 'sha256:'.length + 2));
  await mkdir(join(files.blobsDir, 'sha256'), { recursive: true });
  await writeFile(prefixDir, 'not a directory');
  return digest;
}

describe('BlobFiles: sizes, times and lookups', () => {
  it('blobFileSize: the size of a file, not-a-file for anything else, undefined when absent, other errors passed on', async () => {
    const files = new BlobFiles(root);
    await files.init();
    const bytes = Buffer.from('a blob of some length');
    const { digest } = await files.write([bytes]);
    expect(await files.blobFileSize(digest)).toBe(bytes.length);
    const dirDigest = digestOf(Buffer.from('a directory where a blob file should be'));
    await mkdir(files.pathOf(dirDigest), { recursive: true });
    expect(await files.blobFileSize(dirDigest)).toBe('not-a-file');
    expect(await files.blobFileSize(digestOf(Buffer.from('never written')))).toBeUndefined();
    const blocked = await blockedDigest(files, 'blocked size');
    await expect(files.blobFileSize(blocked)).rejects.toMatchObject({ code: 'ENOTDIR' });
  });

  it('uploadFileSize: the same answers for upload files', async () => {
    const files = new BlobFiles(root);
    await files.init();
    await writeFile(files.uploadPath('one'), Buffer.alloc(7));
    expect(await files.uploadFileSize('one')).toBe(7);
    await mkdir(files.uploadPath('dir'));
    expect(await files.uploadFileSize('dir')).toBe('not-a-file');
    expect(await files.uploadFileSize('none')).toBeUndefined();
  });

  it('blobFileStat: regular file or not, size and last write time; undefined when absent, other errors passed on', async () => {
    const files = new BlobFiles(root);
    await files.init();
    const bytes = Buffer.from('written at a known time');
    const { digest } = await files.write([bytes]);
    await utimes(files.pathOf(digest), 1_000, 1_234);
    expect(await files.blobFileStat(digest)).toStrictEqual({ isFile: true, size: bytes.length, writtenAt: 1_234_000 });
    const dirDigest = digestOf(Buffer.from('a directory where a blob goes'));
    await mkdir(files.pathOf(dirDigest), { recursive: true });
    expect(await files.blobFileStat(dirDigest)).toMatchObject({ isFile: false });
    expect(await files.blobFileStat(digestOf(Buffer.from('absent')))).toBeUndefined();
    const blocked = await blockedDigest(files, 'blocked time');
    await expect(files.blobFileStat(blocked)).rejects.toMatchObject({ code: 'ENOTDIR' });
  });

  it('inodeOf and the reads pass on an error that is not "absent"', async () => {
    const files = new BlobFiles(root);
    await files.init();
    const blocked = await blockedDigest(files, 'blocked reads');
    await expect(files.inodeOf(blocked)).rejects.toMatchObject({ code: 'ENOTDIR' });
    await expect(files.readWithInode(blocked)).rejects.toMatchObject({ code: 'ENOTDIR' });
    await expect(files.openFileWithInode(blocked)).rejects.toMatchObject({ code: 'ENOTDIR' });
  });

  it('remove: a file already gone is no error', async () => {
    const files = new BlobFiles(root);
    await files.init();
    await expect(files.remove(digestOf(Buffer.from('never there')))).resolves.toBeUndefined();
  });

  it('isNotFound: ENOENT only, and nothing thrown for a missing error', async () => {
    const { isNotFound } = await import('../src/store/blob-files.js');
    expect(isNotFound(Object.assign(new Error('x'), { code: 'ENOENT' }))).toBe(true);
    expect(isNotFound(Object.assign(new Error('x'), { code: 'ENOTDIR' }))).toBe(false);
    expect(isNotFound(undefined)).toBe(false);
  });
});

describe('BlobFiles: listings', () => {
  it('listBlobFiles names a digest only for blobs/<alg>/<first two hex>/<hex>', async () => {
    const files = new BlobFiles(root);
    await files.init();
    const { digest } = await files.write([Buffer.from('a well-placed blob')]);
    const other = digestOf(Buffer.from('another')).slice('sha256:'.length);
    const misplaced = join(files.blobsDir, 'sha256', other.slice(0, 2) === 'zz' ? 'yy' : 'zz', other);
    const unknownAlgorithm = join(files.blobsDir, 'md5', other.slice(0, 2), other);
    const badHex = join(files.blobsDir, 'sha256', 'ab', 'ab-not-hex');
    const stray = join(files.blobsDir, 'stray');
    // A directory named like a blob file, holding a file: four parts, never a blob.
    const nested = join(files.blobsDir, 'sha256', other.slice(0, 2), other, 'inner');
    const linked = digestOf(Buffer.from('a symbolic link where a blob file should be'));
    const link = files.pathOf(linked);
    for (const path of [misplaced, unknownAlgorithm, badHex, stray, nested]) {
      await mkdir(join(path, '..'), { recursive: true });
      await writeFile(path, 'x');
    }
    await mkdir(join(files.blobsDir, 'sha256', 'ee'), { recursive: true }); // empty: nothing listed
    await mkdir(join(link, '..'), { recursive: true });
    await symlink(files.pathOf(digest), link);
    const found: unknown[] = [];
    for await (const entry of files.listBlobFiles()) found.push(entry);
    const byPath = (a: unknown, b: unknown): number =>
      (a as { path: string }).path.localeCompare((b as { path: string }).path);
    expect(found.sort(byPath)).toEqual(
      [
        { path: files.pathOf(digest), isFile: true, digest },
        { path: link, isFile: false, digest: linked },
        { path: misplaced, isFile: true, digest: undefined },
        { path: unknownAlgorithm, isFile: true, digest: undefined },
        { path: badHex, isFile: true, digest: undefined },
        { path: stray, isFile: true, digest: undefined },
        { path: nested, isFile: true, digest: undefined },
      ].sort(byPath),
    );
  });

  it('a missing directory lists nothing; one that is not a directory is an error', async () => {
    const files = new BlobFiles(root);
    const none: unknown[] = [];
    for await (const entry of files.listBlobFiles()) none.push(entry);
    expect(none).toEqual([]);
    expect(await files.listUploadFiles()).toEqual([]);
    expect(await files.listTempFiles()).toEqual([]);
    await writeFile(join(root, 'blobs'), 'a file');
    await mkdir(join(root, 'tmp'));
    await writeFile(join(root, 'tmp', 'uploads'), 'a file');
    const listing = (async () => {
      for await (const entry of files.listBlobFiles()) none.push(entry);
    })();
    await expect(listing).rejects.toMatchObject({ code: 'ENOTDIR' });
    await expect(files.listUploadFiles()).rejects.toMatchObject({ code: 'ENOTDIR' });
  });
});

describe('BlobFiles.quarantine: what it answers when it moves nothing', () => {
  it('absent: no file; replaced: another file than the one checked, left where it is', async () => {
    const files = new BlobFiles(root);
    await files.init();
    expect(await files.quarantine(digestOf(Buffer.from('absent')))).toEqual({ moved: false, why: 'absent' });
    // Absent, not "replaced", when the file checked (this inode) is gone; and no quarantine/ made for it.
    expect(await files.quarantine(digestOf(Buffer.from('absent')), 12345)).toEqual({ moved: false, why: 'absent' });
    expect((await readdir(root)).sort()).toEqual(['blobs', 'tmp']);
    const bytes = Buffer.from('a blob checked, then replaced');
    const { digest } = await files.write([bytes]);
    const ino = (await stat(files.pathOf(digest))).ino;
    expect(await files.quarantine(digest, ino + 1)).toEqual({ moved: false, why: 'replaced' });
    expect(await readFile(files.pathOf(digest))).toEqual(bytes);
    const moved = await files.quarantine(digest, ino);
    expect(moved).toMatchObject({ moved: true });
    await expect(stat(files.pathOf(digest))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('absent when a concurrent quarantine moved the file first; any other rename error is passed on', async () => {
    let failWith: 'moved' | 'EIO' = 'moved';
    const racing: DurableFs = {
      open,
      async rename(from, to) {
        if (!from.includes(`${join(root, 'blobs')}/`)) return rename(from, to);
        if (failWith === 'EIO') throw Object.assign(new Error('EIO: i/o error, rename'), { code: 'EIO' });
        // The other quarantine's rename lands first.
        await rename(from, `${to}-other`);
        return rename(from, to);
      },
      remove: (path) => rm(path, { force: true }),
    };
    const files = new BlobFiles(root, racing);
    await files.init();
    const { digest } = await files.write([Buffer.from('quarantined twice at once')]);
    expect(await files.quarantine(digest)).toEqual({ moved: false, why: 'absent' });
    const second = await files.write([Buffer.from('a rename that fails')]);
    failWith = 'EIO';
    await expect(files.quarantine(second.digest)).rejects.toMatchObject({ code: 'EIO' });
  });
});

describe('BlobFiles.probeWritable', () => {
  it('writes and removes its probe, leaving tmp/ as it was; fails when tmp/ cannot hold a file', async () => {
    const files = new BlobFiles(root);
    await files.init();
    await writeFile(join(files.tmpDir, 'keep.txt'), 'x');
    await files.probeWritable();
    expect((await readdir(files.tmpDir)).sort()).toEqual(['keep.txt', 'uploads']);
    await rm(files.tmpDir, { recursive: true });
    await writeFile(files.tmpDir, 'a file where tmp/ should be');
    await expect(files.probeWritable()).rejects.toMatchObject({ code: 'ENOTDIR' });
  });

  it("fails with the write's own error where files cannot be made (procfs stands in for a read-only disk)", async () => {
    const files = new BlobFiles(root);
    await mkdir(root, { recursive: true });
    await symlink('/proc', files.tmpDir);
    await expect(files.probeWritable()).rejects.toMatchObject({ code: 'ENOENT', syscall: 'open' });
  });
});

describe('BlobFiles.listTempFiles: a .part file finished between readdir and lstat', () => {
  it('is left out, and the others listed', async () => {
    const finishing = join(root, 'tmp', 'finishing.part');
    const racing: DurableFs = {
      open,
      rename,
      remove: (path) => rm(path, { force: true }),
      lstat: async (path) => {
        // Renamed into blobs/ (or removed) after readdir listed it.
        if (path === finishing) await rm(path);
        return lstat(path);
      },
    };
    const files = new BlobFiles(root, racing);
    await files.init();
    await writeFile(finishing, 'a write about to finish');
    await writeFile(join(files.tmpDir, 'staying.part'), 'a write in progress');
    const listed = await files.listTempFiles();
    expect(listed.map((file) => file.path)).toEqual([join(files.tmpDir, 'staying.part')]);
    expect(listed[0]?.size).toBe('a write in progress'.length);
  });
});

describe('BlobFiles.listTempFiles: an lstat error other than "finished meanwhile"', () => {
  it('is passed on', async () => {
    // A name readdir lists but lstat cannot reach: the directories above tmp/ get long names only
    // after the file is made, so tmp/ stays under PATH_MAX (4096) and tmp/<name> goes past it.
    const depth = 15;
    const short = Array.from({ length: depth }, (_, i) => `d${i}`);
    const long = short.map((s) => s.padEnd(255, 'x'));
    await mkdir(join(root, ...short, 'tmp'), { recursive: true });
    const name = `${'n'.repeat(245)}.part`;
    await writeFile(join(root, ...short, 'tmp', name), 'x');
    // Deepest first, so every rename's own path stays short enough.
    for (let i = depth - 1; i >= 0; i--) {
      await rename(join(root, ...short.slice(0, i + 1)), join(root, ...short.slice(0, i), long[i] ?? ''));
      short[i] = long[i] ?? '';
    }
    const files = new BlobFiles(join(root, ...long));
    try {
      expect(files.tmpDir.length).toBeLessThan(4096);
      await expect(files.listTempFiles()).rejects.toMatchObject({ code: 'ENAMETOOLONG' });
    } finally {
      // Short names again, top first, so afterEach can remove the tree.
      const names = [...long];
      for (let i = 0; i < depth; i++) {
        const shortName = `d${i}`;
        await rename(join(root, ...names.slice(0, i + 1)), join(root, ...names.slice(0, i), shortName));
        names[i] = shortName;
      }
    }
  });
});
