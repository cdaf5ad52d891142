/**
 * store/verified-read on real files: the check of a small blob read whole, the check of a large
 * one read in order (the read that reaches the end throws instead of returning its bytes), reads
 * out of order that are served as read, and the in-memory handle of bytes already checked.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  appendFile,
  mkdtemp,
  open,
  readFile,
  readdir,
  readlink,
  rename,
  rm,
  truncate,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requireDigest, type Digest } from '../src/oci/digest.js';
import type { BlobFile } from '../src/oci/image-source.js';
import { requireRepoName, type Tag } from '../src/oci/reference.js';
import type { DurableFs } from '../src/store/blob-files.js';
import { LocalStore, type LocalStoreOptions } from '../src/store/local-store.js';
import type { QuarantineResult } from '../src/store/quarantine.js';
import { checkWhole, memoryBlob, smallBlobBytes } from '../src/store/verified-read.js';
import { blobPath, flipByte } from './support/blob-file.js';
import { settledWithin } from './support/fill-harness.js';

const name = requireRepoName('team/verified');
let root: string;
let store: LocalStore;
/** What the store quarantined, with why. */
const found: QuarantineResult[] = [];
/** Descriptors the store opened on blob files and has not closed (through its fs seam). */
const unclosed = new Set<string>();
let opened = 0;

/**
 * Node's fs, with every descriptor opened on a file under blobs/ tracked until it is closed. The
 * /proc/self/fd check below sees any leak, but a leaked FileHandle that the garbage collector
 * reaches is closed by Node: this check does not depend on when the collector runs.
 */
const trackingFs: DurableFs = {
  async open(path, flags) {
    const handle = await open(path, flags);
    if (!path.startsWith(join(root, 'blobs'))) return handle;
    const id = `${path}#${++opened}`;
    unclosed.add(id);
    const close = handle.close.bind(handle);
    handle.close = async () => {
      unclosed.delete(id);
      await close();
    };
    return handle;
  },
  rename,
  remove: (path) => rm(path, { force: true }),
};

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'wharf-verified-read-'));
  found.length = 0;
  unclosed.clear();
  store = await LocalStore.open(root, { blobFs: trackingFs, onQuarantine: (result) => found.push(result) });
});
afterEach(async () => {
  const left = [...unclosed];
  store.close();
  await rm(root, { recursive: true, force: true });
  // Every test ends with its readers closed: no descriptor the store opened on a blob stays open.
  expect(left).toEqual([]);
});

function digestOf(bytes: Buffer): Digest {
  return requireDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
}

async function stored(bytes: Buffer): Promise<Digest> {
  const digest = digestOf(bytes);
  await store.putBlob(name, digest, Readable.from([bytes]), bytes.byteLength);
  return digest;
}

/** Descriptors of this process open on the store's blob files. */
async function descriptorsOnBlobs(): Promise<string[]> {
  const targets = await Promise.all(
    (await readdir('/proc/self/fd')).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')),
  );
  return targets.filter((target) => target.startsWith(join(root, 'blobs')));
}

/** Reads [0, size) in order with a buffer of `chunk` bytes. */
async function readInOrder(file: BlobFile, size: number, chunk: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  const buffer = Buffer.alloc(chunk);
  for (let position = 0; position < size;) {
    const bytes = await file.read(buffer, position);
    if (bytes === 0) break;
    parts.push(Buffer.from(buffer.subarray(0, bytes)));
    position += bytes;
  }
  return Buffer.concat(parts);
}

describe('checkWhole', () => {
  it('passes the blob itself and names what is wrong with anything else', () => {
    const bytes = randomBytes(1000);
    const digest = digestOf(bytes);
    expect(checkWhole(digest, 1000, bytes)).toBeUndefined();
    expect(checkWhole(digest, 1000, bytes.subarray(0, 999))).toBe('size-mismatch');
    const flipped = Buffer.from(bytes);
    flipped[500] = (flipped[500] ?? 0) ^ 1;
    expect(checkWhole(digest, 1000, flipped)).toBe('digest-mismatch');
  });
});

describe('verified reads of a large stored blob', () => {
  async function open(digest: Digest): Promise<BlobFile> {
    return (await store.openBlob(name, digest))!.openFile!();
  }

  it('returns every byte of a good file, hashes it once, and trusts it afterwards', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 5);
    const digest = await stored(bytes);
    const file = await open(digest);
    expect((await readInOrder(file, bytes.byteLength, 1024 * 1024)).equals(bytes)).toBe(true);
    await file.close();
    await (await open(digest)).close();
    expect(store.verified.counts).toEqual({ hashed: 1, trusted: 1, joined: 0, own: 0 });
  });

  it('fails the read that reaches the end of a file whose bytes changed, and quarantines it', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 5);
    const digest = await stored(bytes);
    await flipByte(blobPath(root, digest), 123_456);
    const file = await open(digest);
    const buffer = Buffer.alloc(1024 * 1024);
    // Every read but the one that reaches the end returns its bytes, as read.
    for (const position of [0, 1, 2].map((n) => n * 1024 * 1024))
      expect(await file.read(buffer, position)).toBe(1024 * 1024);
    await expect(file.read(buffer, 3 * 1024 * 1024)).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      status: 503,
      message: `blob ${digest} failed verification and was quarantined`,
      detail: { digest },
    });
    await file.close();
    expect(await store.openBlob(name, digest)).toBeUndefined();
    expect(found).toMatchObject([{ digest, reason: 'digest-mismatch', foundBy: 'read' }]);
  });

  it('fails a file shorter or longer than its size', async () => {
    for (const damage of ['shorter', 'longer'] as const) {
      const bytes = randomBytes(2 * 1024 * 1024);
      const digest = await stored(bytes);
      if (damage === 'shorter') await truncate(blobPath(root, digest), 2 * 1024 * 1024 - 100);
      else await appendFile(blobPath(root, digest), Buffer.alloc(100));
      const file = await open(digest);
      await expect(readInOrder(file, 2 * 1024 * 1024, 1024 * 1024)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
      await file.close();
      expect(await store.openBlob(name, digest)).toBeUndefined();
      expect(found.at(-1), damage).toMatchObject({ digest, reason: 'size-mismatch', foundBy: 'read' });
    }
    expect(found).toHaveLength(2);
  });

  it('serves a range that stops before the last byte as read, without waiting for a verdict', async () => {
    const bytes = randomBytes(2 * 1024 * 1024);
    const digest = await stored(bytes);
    await flipByte(blobPath(root, digest), 1_500_000);
    const file = await open(digest);
    const buffer = Buffer.alloc(1000);
    expect(await file.read(buffer, 10_000)).toBe(1000);
    expect(buffer.equals(bytes.subarray(10_000, 11_000))).toBe(true);
    await file.close();
    // Nor does it start a hash of the whole file it does not need.
    expect(store.verified.counts).toEqual({ hashed: 0, trusted: 0, joined: 0, own: 0 });
  });
});

describe('memoryBlob', () => {
  it('serves checked bytes whole, by range, and through positioned reads that end with 0', async () => {
    const bytes = randomBytes(5000);
    const digest = digestOf(bytes);
    const blob = memoryBlob(digest, bytes);
    expect(blob.size).toBe(5000);
    const collect = async (range?: { start: number; end: number }): Promise<Buffer> => {
      const parts: Buffer[] = [];
      for await (const part of blob.open(range)) parts.push(Buffer.from(part));
      return Buffer.concat(parts);
    };
    expect((await collect()).equals(bytes)).toBe(true);
    expect((await collect({ start: 100, end: 199 })).equals(bytes.subarray(100, 200))).toBe(true);
    const file = await blob.openFile!();
    const buffer = Buffer.alloc(4096);
    expect(await file.read(buffer, 0)).toBe(4096);
    expect(buffer.equals(bytes.subarray(0, 4096))).toBe(true);
    expect(await file.read(buffer, 4096)).toBe(904);
    expect(buffer.subarray(0, 904).equals(bytes.subarray(4096))).toBe(true);
    expect(await file.read(buffer, 5000)).toBe(0);
    await expect(file.close()).resolves.toBeUndefined();
  });
});

describe('one hash per file for readers that start together', () => {
  const size = 3 * 1024 * 1024 + 5;

  async function openTwo(digest: Digest): Promise<[BlobFile, BlobFile]> {
    const first = await (await store.openBlob(name, digest))!.openFile!();
    const second = await (await store.openBlob(name, digest))!.openFile!();
    return [first, second];
  }

  it('hashes once for two readers, and a reader that reads nothing holds the other back not at all', async () => {
    const bytes = randomBytes(size);
    const digest = await stored(bytes);
    const [idle, reader] = await openTwo(digest);
    // The first read from byte 0 starts the file's one hash.
    await idle.read(Buffer.alloc(10), 0);
    // Buffer.equals: vitest's toEqual compares 3 MiB element by element (14 s).
    const read = await settledWithin(readInOrder(reader, size, 1024 * 1024), 5000);
    expect(read !== 'pending' && read.equals(bytes)).toBe(true);
    expect(store.verified.counts).toEqual({ hashed: 1, trusted: 0, joined: 1, own: 0 });
    await reader.close();
    expect((await readInOrder(idle, size, 1024 * 1024)).equals(bytes)).toBe(true);
    await idle.close();
    await (await (await store.openBlob(name, digest))!.openFile!()).close();
    expect(store.verified.counts).toEqual({ hashed: 1, trusted: 1, joined: 1, own: 0 });
    expect(await descriptorsOnBlobs()).toEqual([]);
    expect([...unclosed]).toEqual([]);
  });

  it('falls back to its own hash when the shared one cannot finish (the file replaced under it)', async () => {
    for (const original of ['good', 'corrupt'] as const) {
      const bytes = randomBytes(size);
      const digest = await stored(bytes);
      const path = blobPath(root, digest);
      if (original === 'corrupt') await flipByte(path, 1_000_000);
      const reader = await (await store.openBlob(name, digest))!.openFile!();
      // A good copy renamed over the path: the shared hash opens it, sees another file, and gives up;
      // the reader still holds the original, and hashes that.
      await writeFile(`${path}.new`, bytes);
      await rename(`${path}.new`, path);
      const read = readInOrder(reader, size, 1024 * 1024);
      if (original === 'good') expect((await read).equals(bytes)).toBe(true);
      else await expect(read).rejects.toMatchObject({ code: 'UNAVAILABLE', detail: { digest } });
      await reader.close();
      // The reader hashed its own file; only a good one is remembered.
      expect(store.verified.counts.own).toBe(original === 'good' ? 1 : 2);
      expect(store.verified.size).toBe(1);
    }
    expect(await descriptorsOnBlobs()).toEqual([]);
    expect([...unclosed]).toEqual([]);
  });

  it('fails every reader of a corrupt file at its last read', async () => {
    const bytes = randomBytes(size);
    const digest = await stored(bytes);
    await flipByte(blobPath(root, digest), 2_000_000);
    const [first, second] = await openTwo(digest);
    const failure = { code: 'UNAVAILABLE', message: `blob ${digest} failed verification and was quarantined` };
    await expect(readInOrder(first, size, 1024 * 1024)).rejects.toMatchObject(failure);
    await expect(readInOrder(second, size, 1024 * 1024)).rejects.toMatchObject(failure);
    await first.close();
    await second.close();
    expect(await store.openBlob(name, digest)).toBeUndefined();
  });
});

describe('LocalStore.openBlob: small blobs, hashed whole when opened', () => {
  async function readHandle(digest: Digest): Promise<Buffer> {
    const handle = await store.openBlob(name, digest);
    if (handle === undefined) throw new Error(`${digest} answered as absent`);
    const parts: Buffer[] = [];
    for await (const chunk of handle.open()) parts.push(Buffer.from(chunk));
    return Buffer.concat(parts);
  }

  it('hashes a blob of exactly 1 MiB when it is opened, and trusts the same file afterwards', async () => {
    const bytes = randomBytes(smallBlobBytes);
    const digest = await stored(bytes);
    expect((await readHandle(digest)).equals(bytes)).toBe(true);
    expect(store.verified.counts).toEqual({ hashed: 1, trusted: 0, joined: 0, own: 0 });
    expect((await readHandle(digest)).equals(bytes)).toBe(true);
    expect(store.verified.counts).toEqual({ hashed: 1, trusted: 1, joined: 0, own: 0 });
    expect(found).toEqual([]);
  });

  it('answers as absent, and quarantines, a blob whose bytes, size or file are wrong', async () => {
    const cases = [
      { damage: 'a flipped byte', reason: 'digest-mismatch' },
      { damage: 'cut short', reason: 'size-mismatch' },
      { damage: 'removed', reason: 'missing-file' },
    ] as const;
    for (const { damage, reason } of cases) {
      const bytes = randomBytes(1000);
      const digest = await stored(bytes);
      const path = blobPath(root, digest);
      if (damage === 'a flipped byte') await flipByte(path, 500);
      else if (damage === 'cut short') await truncate(path, 999);
      else await rm(path);
      expect(await store.openBlob(name, digest), damage).toBeUndefined();
      expect(found.at(-1), damage).toMatchObject({ digest, reason, foundBy: 'read' });
      expect(await store.statBlob(name, digest), damage).toBeUndefined();
    }
    expect(found).toHaveLength(3);
    // Hashed: the two files that were there; trusted: none.
    expect(store.verified.counts).toEqual({ hashed: 2, trusted: 0, joined: 0, own: 0 });
    expect(store.verified.size).toBe(0);
  });

  it('serves bytes as stored, unhashed, with verified reads off (store.verifyReads: false)', async () => {
    store.close();
    store = await LocalStore.open(root, { verifyReads: false, onQuarantine: (result) => found.push(result) });
    for (const size of [1000, 2 * 1024 * 1024]) {
      const bytes = randomBytes(size);
      const digest = await stored(bytes);
      await flipByte(blobPath(root, digest), 10);
      const onDisk = await readFile(blobPath(root, digest));
      expect((await readHandle(digest)).equals(onDisk)).toBe(true);
      const file = await (await store.openBlob(name, digest))!.openFile!();
      expect((await readInOrder(file, size, 64 * 1024)).equals(onDisk)).toBe(true);
      await file.close();
    }
    expect(found).toEqual([]);
    expect(store.verified.counts).toEqual({ hashed: 0, trusted: 0, joined: 0, own: 0 });
  });
});

describe('LocalStore.getManifest: hashed when read from disk', () => {
  const manifestType = 'application/vnd.oci.image.manifest.v1+json';
  /** Each case's tag: its damage, spaces as dashes. */
  const tagOf = (damage: string): Tag => damage.replace(/ /g, '-') as Tag;
  /** A one-layer image pushed as `name:tag`; its manifest's bytes and digest. */
  async function pushed(tag: Tag, seed: string): Promise<{ bytes: Buffer; digest: Digest }> {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed }));
    const layer = Buffer.from(`layer ${seed}`);
    const [configDigest, layerDigest] = [await stored(config), await stored(layer)];
    const bytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: manifestType,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
      }),
    );
    await store.putManifest(name, tag, bytes, manifestType);
    return { bytes, digest: digestOf(bytes) };
  }
  /** The store opened again: its manifest cache is empty, so the next read is from disk. */
  async function reopened(options: LocalStoreOptions = {}): Promise<void> {
    store.close();
    store = await LocalStore.open(root, {
      blobFs: trackingFs,
      onQuarantine: (result) => found.push(result),
      ...options,
    });
  }

  it('serves a good file, and answers as absent, quarantining it, a manifest whose bytes, size or file are wrong', async () => {
    const good = await pushed(tagOf('good'), 'good');
    const cases = [
      { damage: 'a flipped byte', reason: 'digest-mismatch' },
      { damage: 'cut short', reason: 'size-mismatch' },
      { damage: 'removed', reason: 'missing-file' },
    ] as const;
    const damaged = [];
    for (const { damage } of cases) damaged.push(await pushed(tagOf(damage), damage));
    for (const [i, { damage }] of cases.entries()) {
      const path = blobPath(root, damaged[i]!.digest);
      if (damage === 'a flipped byte') await flipByte(path, 20);
      else if (damage === 'cut short') await truncate(path, damaged[i]!.bytes.byteLength - 1);
      else await rm(path);
    }
    await reopened();
    const served = await store.getManifest(name, tagOf('good'));
    expect(Buffer.from(served?.bytes ?? []).equals(good.bytes)).toBe(true);
    for (const [i, { damage, reason }] of cases.entries()) {
      const { digest } = damaged[i]!;
      expect(await store.getManifest(name, tagOf(damage)), damage).toBeUndefined();
      expect(found.at(-1), damage).toMatchObject({ digest, reason, foundBy: 'read' });
      // A pushed manifest found corrupt takes its tag with it (ADR 0009): a push restores both.
      expect(store.tagState(name, tagOf(damage)), damage).toBeUndefined();
      expect(await store.getManifest(name, digest), damage).toBeUndefined();
    }
    expect(found).toHaveLength(3);
  });

  it('reads a manifest from disk, and hashes it, once: later reads are served from memory', async () => {
    const { bytes } = await pushed(tagOf('cached'), 'cached');
    await reopened();
    const before = opened;
    for (let i = 0; i < 3; i++) {
      const served = await store.getManifest(name, tagOf('cached'));
      expect(Buffer.from(served?.bytes ?? []).equals(bytes)).toBe(true);
    }
    expect(opened - before).toBe(1);
  });

  it('serves a manifest file as stored with verified reads off (store.verifyReads: false)', async () => {
    const { digest } = await pushed(tagOf('as-stored'), 'as-stored');
    await flipByte(blobPath(root, digest), 20);
    await reopened({ verifyReads: false });
    const onDisk = await readFile(blobPath(root, digest));
    const served = await store.getManifest(name, tagOf('as-stored'));
    expect(Buffer.from(served?.bytes ?? []).equals(onDisk)).toBe(true);
    expect(found).toEqual([]);
  });
});

describe('LocalStore.openBlob: large blobs', () => {
  const size = 2 * 1024 * 1024 + 7;

  it('streams a range of the stored file through open()', async () => {
    const bytes = randomBytes(size);
    const digest = await stored(bytes);
    const handle = await store.openBlob(name, digest);
    const parts: Buffer[] = [];
    for await (const chunk of handle!.open({ start: 1_000_000, end: 1_500_000 })) parts.push(Buffer.from(chunk));
    expect(Buffer.concat(parts).equals(bytes.subarray(1_000_000, 1_500_001))).toBe(true);
  });

  it('answers a file gone between openBlob and openFile with BLOB_UNKNOWN, and drops its rows', async () => {
    const bytes = randomBytes(size);
    const digest = await stored(bytes);
    const handle = await store.openBlob(name, digest);
    await rm(blobPath(root, digest));
    await expect(handle!.openFile!()).rejects.toMatchObject({
      code: 'BLOB_UNKNOWN',
      message: 'blob unknown to registry',
      detail: { digest },
    });
    expect(found).toMatchObject([{ digest, reason: 'missing-file', foundBy: 'read' }]);
    expect(await store.statBlob(name, digest)).toBeUndefined();
  });

  it('a reader whose file was unlinked under it hashes the file it holds, and serves it whole', async () => {
    const bytes = randomBytes(size);
    const digest = await stored(bytes);
    const reader = await (await store.openBlob(name, digest))!.openFile!();
    // The shared hash finds no file to open: it gives up, and the reader hashes its own descriptor.
    await rm(blobPath(root, digest));
    expect((await readInOrder(reader, size, 1024 * 1024)).equals(bytes)).toBe(true);
    await reader.close();
    expect(store.verified.counts).toEqual({ hashed: 1, trusted: 0, joined: 0, own: 1 });
    expect(found).toEqual([]);
    expect(await descriptorsOnBlobs()).toEqual([]);
    expect([...unclosed]).toEqual([]);
  });
});
