/**
 * The background scrub's edges in process (issue 13, lifecycle scope; ADR 0013): each damage done
 * for real to a store on disk (a file longer or shorter than its row, removed, replaced by a
 * directory or a symlink loop, a row that is not a digest, a quarantine/ that cannot be made), and
 * each change a live server makes while a blob is read across ticks (gc takes the row, the file is
 * replaced). Each test asserts what was quarantined, with why, what was stamped verified, the
 * counters, the warn line, and the reads themselves (the store's blobFs seam records their lengths
 * and which descriptors are still open). scrub.test.ts covers the rate and a flipped byte.
 */
import { appendFile, copyFile, mkdir, mkdtemp, open, rename, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requireDigest, type Digest } from '../src/oci/digest.js';
import { requireRepoName } from '../src/oci/reference.js';
import type { DurableFs } from '../src/store/blob-files.js';
import { indexPath } from '../src/store/database.js';
import { LocalStore } from '../src/store/local-store.js';
import type { QuarantineResult } from '../src/store/quarantine.js';
import { blobPath, flipByte } from './support/blob-file.js';
import { captureLog, type LogCapture } from './support/log-capture.js';
import { randomBytesFor, sha256Digest, testSeed } from './support/make-image.js';
import { descriptorsUnder } from './support/open-descriptors.js';

const name = requireRepoName('team/scrub');
const mib = 1024 * 1024;

let root: string;
let store: LocalStore;
let log: LogCapture;
const quarantined: QuarantineResult[] = [];
/** Lengths of the reads made on each blob file, by path. */
const reads = new Map<string, number[]>();
/** Run once before the store opens this path (a change a live server makes at that moment). */
const beforeOpen = new Map<string, () => Promise<void>>();

/** Node's fs, recording every read on a blob file and running a test's change before an open. */
const recordingFs: DurableFs = {
  async open(path, flags) {
    const change = beforeOpen.get(path);
    beforeOpen.delete(path);
    await change?.();
    const handle = await open(path, flags);
    const read = handle.read.bind(handle) as (
      buffer: Buffer,
      offset: number,
      length: number,
      position: number,
    ) => ReturnType<typeof handle.read>;
    handle.read = (async (buffer: Buffer, offset: number, length: number, position: number) => {
      const result = await read(buffer, offset, length, position);
      reads.set(path, [...(reads.get(path) ?? []), length]);
      return result;
    }) as typeof handle.read;
    return handle;
  },
  rename,
  remove: (path) => rm(path, { force: true }),
};

function digestOf(bytes: Buffer): Digest {
  return requireDigest(sha256Digest(bytes));
}

async function* chunks(bytes: Buffer): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** Stores blobs one millisecond apart, so they are due in this order. */
async function stored(...blobs: Buffer[]): Promise<Digest[]> {
  const digests = [];
  for (const bytes of blobs) {
    await store.putBlob(name, digestOf(bytes), chunks(bytes), bytes.byteLength);
    digests.push(digestOf(bytes));
    const now = Date.now();
    while (Date.now() === now) await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return digests;
}

/** blobs.verified_at of each digest (null: never stamped). */
function verifiedAt(...digests: string[]): (number | null)[] {
  const db = new Database(indexPath(root), { readonly: true });
  try {
    const row = db.prepare<[string], { verified_at: number | null }>('SELECT verified_at FROM blobs WHERE digest = ?');
    return digests.map((d) => row.get(d)?.verified_at ?? null);
  } finally {
    db.close();
  }
}

function found(): [Digest, string, string, boolean][] {
  return quarantined.map((q) => [q.digest, q.reason, q.foundBy, q.movedTo !== undefined]);
}

/** The scrub's warn lines: digest, error code, message. */
function skipped(): [unknown, unknown, unknown][] {
  return log.lines
    .filter((l) => l.level === 40)
    .map((l) => [l['digest'], (l.err as { code?: string } | undefined)?.code, l.msg]);
}

const skipLine = 'scrub: could not check this blob; moving on';

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'wharf-scrub-edges-'));
  quarantined.length = 0;
  reads.clear();
  beforeOpen.clear();
  log = captureLog('info');
  // Nothing held in use after a write: gc may take a blob at once (the tests where it does so).
  store = await LocalStore.open(root, { blobFs: recordingFs, inUseMs: 0, onQuarantine: (r) => quarantined.push(r) });
});

afterEach(async () => {
  store.close();
  await rm(root, { recursive: true, force: true });
});

describe('the scrub reads', () => {
  it('in chunks of at most 1 MiB, however high the rate, and then one byte past the end', async () => {
    const bytes = randomBytesFor(testSeed('scrub edges chunks'), 2 * mib + 1000);
    const [digest] = await stored(bytes);
    const scrub = store.createScrub({ rateBytes: 64 * mib, intervalMs: 0 }, log.logger);
    expect(await scrub.tick(1000)).toBe(bytes.byteLength);
    expect(reads.get(blobPath(root, digest!))).toEqual([mib, mib, 1000, 1]);
    expect(scrub.stats).toEqual({ bytes: bytes.byteLength, blobs: 1, corrupt: 0 });
    await scrub.close();
  });

  it('in chunks no larger than one tick of a low rate', async () => {
    const bytes = randomBytesFor(testSeed('scrub edges low rate'), 5000);
    const [digest] = await stored(bytes);
    const scrub = store.createScrub({ rateBytes: 2000, intervalMs: 0 }, log.logger);
    expect([await scrub.tick(1000), await scrub.tick(1000), await scrub.tick(1000)]).toEqual([2000, 2000, 1000]);
    expect(reads.get(blobPath(root, digest!))).toEqual([2000, 2000, 1000, 1]);
    await scrub.close();
  });

  it('hold a large blob open between ticks, and close it when the scrub closes', async () => {
    const bytes = randomBytesFor(testSeed('scrub edges close'), 10_000);
    const [digest] = await stored(bytes);
    const scrub = store.createScrub({ rateBytes: 4000, intervalMs: 0 }, log.logger);
    expect(await scrub.tick(1000)).toBe(4000);
    expect(await descriptorsUnder(join(root, 'blobs'))).toEqual([blobPath(root, digest!)]);
    await scrub.close();
    expect(await descriptorsUnder(join(root, 'blobs'))).toEqual([]);
    // A new pass starts the blob from its first byte.
    reads.clear();
    const again = store.createScrub({ rateBytes: 4000, intervalMs: 0 }, log.logger);
    expect(await again.tick(1000)).toBe(4000);
    expect(reads.get(blobPath(root, digest!))).toEqual([4000]);
    await again.close();
    expect(verifiedAt(digest!)).toEqual([null]);
  });
});

describe('the scrub quarantines', () => {
  it('a file longer than its row as a size mismatch', async () => {
    const bytes = randomBytesFor(testSeed('scrub edges long'), 3000);
    const [digest] = await stored(bytes);
    // The row's bytes are all there and hash right: only the byte past them is wrong.
    await appendFile(blobPath(root, digest!), 'x');
    const scrub = store.createScrub({ rateBytes: mib, intervalMs: 0 }, log.logger);
    expect(await scrub.tick(1000)).toBe(3000);
    expect(found()).toEqual([[digest, 'size-mismatch', 'scrub', true]]);
    expect(scrub.stats).toEqual({ bytes: 3000, blobs: 1, corrupt: 1 });
    await scrub.close();
  });

  it('a file shorter than its row as a size mismatch, and goes on to the next blob in the same tick', async () => {
    const short = randomBytesFor(testSeed('scrub edges short'), 3000);
    const good = randomBytesFor(testSeed('scrub edges after short'), 1000);
    const [shortDigest, goodDigest] = await stored(short, good);
    await truncate(blobPath(root, shortDigest!), 2000);
    const scrub = store.createScrub({ rateBytes: mib, intervalMs: 0 }, log.logger);
    expect(await scrub.tick(1000)).toBe(3000);
    expect(found()).toEqual([[shortDigest, 'size-mismatch', 'scrub', true]]);
    // Read to the end: only the good one (the short one was dropped at its end of file).
    expect(scrub.stats).toEqual({ bytes: 3000, blobs: 1, corrupt: 1 });
    expect(verifiedAt(goodDigest!)).toEqual([expect.any(Number)]);
    expect(await descriptorsUnder(join(root, 'blobs'))).toEqual([]);
    await scrub.close();
  });

  it('a row whose file is missing, dropping its rows', async () => {
    const bytes = randomBytesFor(testSeed('scrub edges missing'), 1000);
    const [digest] = await stored(bytes);
    await rm(blobPath(root, digest!));
    const scrub = store.createScrub({ rateBytes: mib, intervalMs: 0 }, log.logger);
    expect(await scrub.tick(1000)).toBe(0);
    expect(found()).toEqual([[digest, 'missing-file', 'scrub', false]]);
    expect(store.hasBlob(digest!)).toBe(false);
    expect(scrub.stats).toEqual({ bytes: 0, blobs: 0, corrupt: 1 });
    await scrub.close();
  });
});

describe('the scrub passes, stamped and logged, what it cannot check', () => {
  it('a row that is not a digest (verify reports it), then scrubs the rest', async () => {
    const bytes = randomBytesFor(testSeed('scrub edges after bad row'), 1000);
    const [digest] = await stored(bytes);
    const db = new Database(indexPath(root));
    try {
      // Written by some other tool: created before every other row, so due first.
      db.prepare('INSERT INTO blobs (digest, size, created_at) VALUES (?, ?, ?)').run('not-a-digest', 10, 1);
    } finally {
      db.close();
    }
    const scrub = store.createScrub({ rateBytes: mib, intervalMs: 0 }, log.logger);
    expect(await scrub.tick(1000)).toBe(1000);
    expect(verifiedAt('not-a-digest', digest!)).toEqual([expect.any(Number), expect.any(Number)]);
    expect(found()).toEqual([]);
    expect(scrub.stats).toEqual({ bytes: 1000, blobs: 1, corrupt: 0 });
    expect(skipped()).toEqual([]);
    await scrub.close();
  });

  it('a file that cannot be opened (a symlink loop): not proof of corruption', async () => {
    const [digest] = await stored(randomBytesFor(testSeed('scrub edges loop'), 1000));
    const path = blobPath(root, digest!);
    await rm(path);
    await symlink(path, path);
    const scrub = store.createScrub({ rateBytes: mib, intervalMs: 0 }, log.logger);
    expect(await scrub.tick(1000)).toBe(0);
    expect(found()).toEqual([]);
    expect(store.hasBlob(digest!)).toBe(true);
    expect(verifiedAt(digest!)).toEqual([expect.any(Number)]);
    expect(scrub.stats).toEqual({ bytes: 0, blobs: 0, corrupt: 0 });
    expect(skipped()).toEqual([[digest, 'ELOOP', skipLine]]);
    await scrub.close();
  });

  it('the same without a logger', async () => {
    const [digest] = await stored(randomBytesFor(testSeed('scrub edges loop quiet'), 1000));
    const path = blobPath(root, digest!);
    await rm(path);
    await symlink(path, path);
    const scrub = store.createScrub({ rateBytes: mib, intervalMs: 0 });
    expect(await scrub.tick(1000)).toBe(0);
    expect(verifiedAt(digest!)).toEqual([expect.any(Number)]);
    expect(found()).toEqual([]);
    await scrub.close();
  });

  it('a file that cannot be read (a directory where the file goes), closing what it opened', async () => {
    const [digest] = await stored(randomBytesFor(testSeed('scrub edges directory'), 1000));
    const path = blobPath(root, digest!);
    await rm(path);
    await mkdir(path);
    const scrub = store.createScrub({ rateBytes: mib, intervalMs: 0 }, log.logger);
    expect(await scrub.tick(1000)).toBe(0);
    expect(found()).toEqual([]);
    expect(verifiedAt(digest!)).toEqual([expect.any(Number)]);
    expect(scrub.stats).toEqual({ bytes: 0, blobs: 0, corrupt: 0 });
    expect(skipped()).toEqual([[digest, 'EISDIR', skipLine]]);
    expect(await descriptorsUnder(join(root, 'blobs'))).toEqual([]);
    await scrub.close();
  });

  it('a corrupt blob whose quarantine fails (quarantine/ cannot be made): counted, stamped, logged, left', async () => {
    const bytes = randomBytesFor(testSeed('scrub edges no quarantine'), 1000);
    const [digest] = await stored(bytes);
    await flipByte(blobPath(root, digest!), 10);
    await writeFile(join(root, 'quarantine'), 'a file where the directory goes');
    const scrub = store.createScrub({ rateBytes: mib, intervalMs: 0 }, log.logger);
    expect(await scrub.tick(1000)).toBe(1000);
    expect(found()).toEqual([]);
    expect(store.hasBlob(digest!)).toBe(true);
    expect(scrub.stats).toEqual({ bytes: 1000, blobs: 1, corrupt: 1 });
    expect(verifiedAt(digest!)).toEqual([expect.any(Number)]);
    expect(skipped()).toEqual([[digest, 'EEXIST', skipLine]]);
    await scrub.close();
  });
});

describe('while the scrub reads a blob across ticks', () => {
  /** gc of everything unreferenced, as serve's schedule runs it, past the grace period. */
  const collect = async (): Promise<void> => {
    const report = await store.gc({ graceMs: 0, now: Date.now() + 60_000 });
    expect(report.blobs.length).toBeGreaterThan(0);
  };

  it('gc takes a corrupt blob: nothing is quarantined, nothing stamped', async () => {
    const [digest] = await stored(randomBytesFor(testSeed('scrub edges gc corrupt'), 10_000));
    await flipByte(blobPath(root, digest!), 9000);
    const scrub = store.createScrub({ rateBytes: 4000, intervalMs: 0 }, log.logger);
    expect(await scrub.tick(1000)).toBe(4000);
    await collect();
    expect(store.hasBlob(digest!)).toBe(false);
    // The descriptor still reads the removed file to its end.
    expect([await scrub.tick(1000), await scrub.tick(1000)]).toEqual([4000, 2000]);
    expect(found()).toEqual([]);
    expect(scrub.stats).toEqual({ bytes: 10_000, blobs: 1, corrupt: 0 });
    await scrub.close();
  });

  it('gc takes a short blob: nothing is quarantined', async () => {
    const [digest] = await stored(randomBytesFor(testSeed('scrub edges gc short'), 10_000));
    // Two ticks read all there is; the third finds the end of the file.
    await truncate(blobPath(root, digest!), 8000);
    const scrub = store.createScrub({ rateBytes: 4000, intervalMs: 0 }, log.logger);
    expect([await scrub.tick(1000), await scrub.tick(1000)]).toEqual([4000, 4000]);
    await collect();
    expect(await scrub.tick(1000)).toBe(0);
    expect(found()).toEqual([]);
    expect(scrub.stats).toEqual({ bytes: 8000, blobs: 0, corrupt: 0 });
    await scrub.close();
  });

  it('gc takes a blob just before its file is opened: no missing-file', async () => {
    const [digest] = await stored(randomBytesFor(testSeed('scrub edges gc before open'), 1000));
    beforeOpen.set(blobPath(root, digest!), collect);
    const scrub = store.createScrub({ rateBytes: mib, intervalMs: 0 }, log.logger);
    expect(await scrub.tick(1000)).toBe(0);
    expect(beforeOpen.size).toBe(0);
    expect(found()).toEqual([]);
    expect(scrub.stats).toEqual({ bytes: 0, blobs: 0, corrupt: 0 });
    await scrub.close();
  });

  it('the file is replaced by a copy: the read of the old one does not vouch for it; the copy is read next', async () => {
    const bytes = randomBytesFor(testSeed('scrub edges replaced'), 10_000);
    const [digest] = await stored(bytes);
    const path = blobPath(root, digest!);
    const scrub = store.createScrub({ rateBytes: 4000, intervalMs: 0 }, log.logger);
    expect(await scrub.tick(1000)).toBe(4000);
    await copyFile(path, `${path}.copy`);
    await rename(`${path}.copy`, path);
    // The old file's last 6000 bytes (whole, but no longer the blob's file); then the copy, still due, starts.
    expect([await scrub.tick(1000), await scrub.tick(1000)]).toEqual([4000, 4000]);
    expect(found()).toEqual([]);
    expect(scrub.stats).toEqual({ bytes: 12_000, blobs: 1, corrupt: 0 });
    expect(verifiedAt(digest!)).toEqual([null]);
    // Its last byte read at the end of a tick's budget, the copy is finished (and stamped) in the next.
    expect([await scrub.tick(1000), await scrub.tick(1000), await scrub.tick(1000)]).toEqual([4000, 4000, 0]);
    expect(scrub.stats).toEqual({ bytes: 20_000, blobs: 2, corrupt: 0 });
    expect(verifiedAt(digest!)).toEqual([expect.any(Number)]);
    await scrub.close();
  });
});
