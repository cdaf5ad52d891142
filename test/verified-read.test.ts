/**
 * store/verified-read on real files: the check of a small blob read whole, the check of a large
 * one read in order (the read that reaches the end throws instead of returning its bytes), reads
 * out of order that are served as read, and the in-memory handle of bytes already checked.
 */
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, mkdtemp, readdir, readlink, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requireDigest, type Digest } from '../src/oci/digest.js';
import type { BlobFile } from '../src/oci/image-source.js';
import { requireRepoName } from '../src/oci/reference.js';
import { LocalStore } from '../src/store/local-store.js';
import type { CorruptionReason } from '../src/store/quarantine.js';
import { checkWhole, memoryBlob, verifyingFile } from '../src/store/verified-read.js';
import { blobPath, flipByte } from './support/blob-file.js';
import { settledWithin } from './support/fill-harness.js';

const name = requireRepoName('team/verified');
let root: string;
let store: LocalStore;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'wharf-verified-read-'));
  store = await LocalStore.open(root);
});
afterEach(async () => {
  store.close();
  await rm(root, { recursive: true, force: true });
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

describe('verifyingFile', () => {
  const corrupt = (): {
    calls: [CorruptionReason, number | undefined][];
    onCorrupt: (reason: CorruptionReason, ino: number | undefined) => Promise<void>;
  } => {
    const calls: [CorruptionReason, number | undefined][] = [];
    return { calls, onCorrupt: async (reason, ino) => void calls.push([reason, ino]) };
  };

  it('returns every byte of a good file read in order, and says so once at the end', async () => {
    const bytes = randomBytes(300_000);
    const digest = await stored(bytes);
    const { calls, onCorrupt } = corrupt();
    let verified = 0;
    const file = verifyingFile(await store.openContentFile(digest), digest, bytes.byteLength, 7, onCorrupt, () => {
      verified++;
    });
    expect((await readInOrder(file, bytes.byteLength, 64 * 1024)).equals(bytes)).toBe(true);
    expect(verified).toBe(1);
    expect(calls).toEqual([]);
    await file.close();
  });

  it('throws on the read that reaches the end of a file whose bytes changed, and reports it once', async () => {
    const bytes = randomBytes(300_000);
    const digest = await stored(bytes);
    await flipByte(blobPath(root, digest), 123_456);
    const { calls, onCorrupt } = corrupt();
    const file = verifyingFile(await store.openContentFile(digest), digest, bytes.byteLength, 42, onCorrupt);
    const buffer = Buffer.alloc(100_000);
    // Every read but the one that reaches the end returns its bytes, as read.
    expect(await file.read(buffer, 0)).toBe(100_000);
    expect(await file.read(buffer, 100_000)).toBe(100_000);
    expect(calls).toEqual([]);
    await expect(file.read(buffer, 200_000)).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: `blob ${digest} failed verification (digest-mismatch) and was quarantined`,
      detail: { digest, reason: 'digest-mismatch' },
    });
    expect(calls).toEqual([['digest-mismatch', 42]]);
    await file.close();
  });

  it('fails a file shorter or longer than its size as a size mismatch', async () => {
    const bytes = randomBytes(200_000);
    const digest = await stored(bytes);
    const { calls, onCorrupt } = corrupt();
    // Announced larger than the file: the read past the file's end finds nothing.
    const long = verifyingFile(await store.openContentFile(digest), digest, 250_000, 1, onCorrupt);
    await expect(readInOrder(long, 250_000, 64 * 1024)).rejects.toMatchObject({ detail: { reason: 'size-mismatch' } });
    // Announced smaller than the file: the bytes run past the size.
    const short = verifyingFile(await store.openContentFile(digest), digest, 150_000, 2, onCorrupt);
    await expect(readInOrder(short, 200_000, 64 * 1024)).rejects.toMatchObject({ detail: { reason: 'size-mismatch' } });
    expect(calls).toEqual([
      ['size-mismatch', 1],
      ['size-mismatch', 2],
    ]);
    await long.close();
    await short.close();
  });

  it('serves reads out of order as read, without a verdict (a range cannot be checked)', async () => {
    const bytes = randomBytes(200_000);
    const digest = await stored(bytes);
    await truncate(blobPath(root, digest), 150_000);
    const { calls, onCorrupt } = corrupt();
    let verified = 0;
    const file = verifyingFile(await store.openContentFile(digest), digest, bytes.byteLength, 3, onCorrupt, () => {
      verified++;
    });
    const buffer = Buffer.alloc(1000);
    expect(await file.read(buffer, 10_000)).toBe(1000);
    expect(buffer.equals(bytes.subarray(10_000, 11_000))).toBe(true);
    // From 0 again, in order to the end: the check stopped at the first out-of-order read.
    expect((await readInOrder(file, 200_000, 64 * 1024)).equals(bytes.subarray(0, 150_000))).toBe(true);
    expect(calls).toEqual([]);
    expect(verified).toBe(0);
    await file.close();
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

  it('lets a second reader wait for the first one’s hash instead of hashing again', async () => {
    const bytes = randomBytes(size);
    const digest = await stored(bytes);
    const [first, second] = await openTwo(digest);
    expect(store.verified.counts).toEqual({ hashed: 1, trusted: 0, joined: 1 });
    // The joined reader streams everything but its last read before any verdict...
    const buffer = Buffer.alloc(1024 * 1024);
    for (const position of [0, 1, 2].map((n) => n * 1024 * 1024)) {
      expect(await settledWithin(second.read(buffer, position), 1000)).toBe(1024 * 1024);
      expect(buffer.equals(bytes.subarray(position, position + 1024 * 1024))).toBe(true);
    }
    // ...and its last read waits for the verdict, which comes with the first reader's last read.
    const last = second.read(buffer, 3 * 1024 * 1024);
    expect(await settledWithin(last, 200)).toBe('pending');
    expect((await readInOrder(first, size, 1024 * 1024)).equals(bytes)).toBe(true);
    expect(await last).toBe(5);
    expect(buffer.subarray(0, 5).equals(bytes.subarray(3 * 1024 * 1024))).toBe(true);
    await first.close();
    await second.close();
    expect(await descriptorsOnBlobs()).toEqual([]);
    // Remembered: the next reader trusts the file.
    await (await (await store.openBlob(name, digest))!.openFile!()).close();
    expect(store.verified.counts).toEqual({ hashed: 1, trusted: 1, joined: 1 });
  });

  it('fails the waiting reader too when the first one finds the file corrupt', async () => {
    const bytes = randomBytes(size);
    const digest = await stored(bytes);
    await flipByte(blobPath(root, digest), 2_000_000);
    const [first, second] = await openTwo(digest);
    const joined = readInOrder(second, size, 1024 * 1024);
    await expect(readInOrder(first, size, 1024 * 1024)).rejects.toMatchObject({
      detail: { reason: 'digest-mismatch' },
    });
    await expect(joined).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      status: 503,
      message: `blob ${digest} failed verification and was quarantined`,
      detail: { digest },
    });
    await first.close();
    await second.close();
    expect(await store.openBlob(name, digest)).toBeUndefined();
  });

  it('hashes the file itself when the first reader stops early, and finds it good or corrupt', async () => {
    const good = randomBytes(size);
    const goodDigest = await stored(good);
    let [first, second] = await openTwo(goodDigest);
    await first.read(Buffer.alloc(1000), 0);
    await first.close();
    expect((await readInOrder(second, size, 1024 * 1024)).equals(good)).toBe(true);
    await second.close();
    await (await (await store.openBlob(name, goodDigest))!.openFile!()).close();
    expect(store.verified.counts).toEqual({ hashed: 1, trusted: 1, joined: 1 });

    const bad = randomBytes(size);
    const badDigest = await stored(bad);
    await flipByte(blobPath(root, badDigest), 10);
    [first, second] = await openTwo(badDigest);
    // A range: the first reader's check stops at once.
    await first.read(Buffer.alloc(1000), 5000);
    await expect(readInOrder(second, size, 1024 * 1024)).rejects.toMatchObject({
      detail: { digest: badDigest, reason: 'digest-mismatch' },
    });
    await first.close();
    await second.close();
    expect(await store.openBlob(name, badDigest)).toBeUndefined();

    // Shorter and longer than its size: the reader's own hash names a size mismatch.
    for (const damage of ['shorter', 'longer'] as const) {
      const blob = randomBytes(size);
      const blobDigest = await stored(blob);
      const path = blobPath(root, blobDigest);
      if (damage === 'shorter') await truncate(path, size - 100);
      else await appendFile(path, Buffer.alloc(100));
      [first, second] = await openTwo(blobDigest);
      await first.close();
      await expect(readInOrder(second, size, 1024 * 1024)).rejects.toMatchObject({
        detail: { digest: blobDigest, reason: 'size-mismatch' },
      });
      await second.close();
    }
  });
});
