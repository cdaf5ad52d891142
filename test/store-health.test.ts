/**
 * The store's health (store/store-health.ts) in process: the size the /metrics gauges show and the
 * reason /readyz gives. A real LocalStore, or the real parts it builds StoreHealth from (the SQLite
 * index, StoreIndex's byte count, BlobFiles' write probe) on a temp directory; only the clock is
 * the test's (StoreHealth's `now` parameter), so the 5 s reuse of the blob count is shown exactly.
 * The data directory is made unwritable for real: tmp/ gone, tmp/ a plain file, tmp/ read-only.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requireDigest, type Digest } from '../src/oci/digest.js';
import { requireRepoName } from '../src/oci/reference.js';
import { BlobFiles } from '../src/store/blob-files.js';
import { indexPath, openDatabase, type Db } from '../src/store/database.js';
import { LocalStore } from '../src/store/local-store.js';
import { StoreHealth } from '../src/store/store-health.js';
import { StoreIndex } from '../src/store/store-index.js';

const name = requireRepoName('team/health');

let work: string;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-store-health-'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

function digestOf(bytes: Buffer): Digest {
  return requireDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
}

async function* once(bytes: Buffer): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** A digest for an index row of `size` bytes (the usage counts rows, not files). */
function fakeDigest(seed: string): Digest {
  return digestOf(Buffer.from(seed));
}

/** The parts LocalStore gives StoreHealth, on `work`, with a clock the test moves. */
async function parts(): Promise<{ db: Db; index: StoreIndex; files: BlobFiles; clock: { now: number } }> {
  const files = new BlobFiles(work);
  await files.init();
  const db = openDatabase(indexPath(work));
  return { db, index: new StoreIndex(db), files, clock: { now: 1_000_000 } };
}

/**
 * Makes `dir` refuse new files even to root: the immutable attribute (chattr +i, EPERM) when root
 * (root ignores file modes), mode 0555 (EACCES) otherwise. Undefined when neither can be set here.
 */
async function readOnlyDir(dir: string): Promise<(() => Promise<void>) | undefined> {
  if (process.getuid?.() !== 0) {
    await chmod(dir, 0o555);
    return () => chmod(dir, 0o755);
  }
  try {
    execFileSync('chattr', ['+i', dir], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    return undefined;
  }
  return async () => {
    execFileSync('chattr', ['-i', dir], { stdio: 'ignore', timeout: 10_000 });
  };
}

describe('StoreHealth on a LocalStore', () => {
  let store: LocalStore;
  beforeEach(async () => {
    store = await LocalStore.open(work);
  });
  afterEach(() => {
    // A second close (after the test's own) does nothing.
    store.close();
  });

  it('counts the blobs the store holds, and is ready while the index answers and tmp/ takes a write', async () => {
    const a = Buffer.from('a'.repeat(100));
    const b = Buffer.from('b'.repeat(20));
    await store.putBlob(name, digestOf(a), once(a), a.byteLength);
    await store.putBlob(requireRepoName('team/other'), digestOf(b), once(b), b.byteLength);
    expect(store.health.currentUsage()).toEqual({ bytes: 120, blobs: 2 });
    expect(await store.health.notReadyReason()).toBeUndefined();
  });

  it('tmp/ gone: not ready, naming the error code; ready again once it is back', async () => {
    await rm(join(work, 'tmp'), { recursive: true });
    expect(await store.health.notReadyReason()).toBe('the data directory is not writable: ENOENT');
    await mkdir(join(work, 'tmp', 'uploads'), { recursive: true });
    expect(await store.health.notReadyReason()).toBeUndefined();
  });

  it('tmp/ a plain file: not ready (ENOTDIR)', async () => {
    const tmp = join(work, 'tmp');
    await rename(tmp, `${tmp}.away`);
    await writeFile(tmp, 'not a directory');
    expect(await store.health.notReadyReason()).toBe('the data directory is not writable: ENOTDIR');
  });

  it('tmp/ read-only: not ready (EPERM for root, whom file modes do not stop; EACCES otherwise)', async (context) => {
    const tmp = join(work, 'tmp');
    const undo = await readOnlyDir(tmp);
    if (undo === undefined) {
      context.skip('neither chattr +i nor file modes can make tmp/ read-only here');
      return;
    }
    try {
      expect(await store.health.notReadyReason()).toMatch(/^the data directory is not writable: (EPERM|EACCES)$/);
    } finally {
      await undo();
    }
    expect(await store.health.notReadyReason()).toBeUndefined();
  });

  it('once the index is closed: not ready, and the usage is the last one known', async () => {
    const a = Buffer.from('b'.repeat(40));
    await store.putBlob(name, digestOf(a), once(a), a.byteLength);
    expect(store.health.currentUsage()).toEqual({ bytes: 40, blobs: 1 });
    store.close();
    expect(await store.health.notReadyReason()).toBe('the index is closed');
    expect(store.health.currentUsage()).toEqual({ bytes: 40, blobs: 1 });
  });
});

describe('StoreHealth from its parts, with a clock', () => {
  it('bytes now, the count reused for less than 5 s and counted again at 5 s', async () => {
    const { db, index, files, clock } = await parts();
    try {
      const health = new StoreHealth(
        db,
        () => files.probeWritable(),
        () => index.storedBytes,
        () => clock.now,
      );
      index.addBlob(name, fakeDigest('one'), 100);
      expect(health.currentUsage()).toEqual({ bytes: 100, blobs: 1 });
      index.addBlob(name, fakeDigest('two'), 50);
      clock.now += 4_999;
      expect(health.currentUsage()).toEqual({ bytes: 150, blobs: 1 });
      clock.now += 1;
      expect(health.currentUsage()).toEqual({ bytes: 150, blobs: 2 });
    } finally {
      db.close();
    }
  });

  it('without the index total, bytes come from the same sum as the count (and are 0, not null, when empty)', async () => {
    const { db, index, files, clock } = await parts();
    try {
      const health = new StoreHealth(
        db,
        () => files.probeWritable(),
        undefined,
        () => clock.now,
      );
      expect(health.currentUsage()).toEqual({ bytes: 0, blobs: 0 });
      clock.now += 5_000;
      index.addBlob(name, fakeDigest('one'), 100);
      expect(health.currentUsage()).toEqual({ bytes: 100, blobs: 1 });
      index.addBlob(name, fakeDigest('two'), 7);
      clock.now += 4_999;
      expect(health.currentUsage()).toEqual({ bytes: 100, blobs: 1 });
      clock.now += 1;
      expect(health.currentUsage()).toEqual({ bytes: 107, blobs: 2 });
    } finally {
      db.close();
    }
  });

  it('after the index closes: the last count however old, not the live total; zeros if none was made', async () => {
    const { db, index, files, clock } = await parts();
    const counted = new StoreHealth(
      db,
      () => files.probeWritable(),
      () => index.storedBytes,
      () => clock.now,
    );
    const never = new StoreHealth(
      db,
      () => files.probeWritable(),
      () => index.storedBytes,
      () => clock.now,
    );
    index.addBlob(name, fakeDigest('one'), 100);
    expect(counted.currentUsage()).toEqual({ bytes: 100, blobs: 1 });
    index.addBlob(name, fakeDigest('two'), 50);
    db.close();
    clock.now += 3_600_000;
    expect(counted.currentUsage()).toEqual({ bytes: 100, blobs: 1 });
    expect(never.currentUsage()).toEqual({ bytes: 0, blobs: 0 });
    expect(await counted.notReadyReason()).toBe('the index is closed');
  });

  it("an index that does not answer (no blobs table: not a wharf index) is not ready, with SQLite's words", async () => {
    const files = new BlobFiles(work);
    await files.init();
    const db = new Database(join(work, 'other.db'));
    try {
      const health = new StoreHealth(db, () => files.probeWritable());
      expect(await health.notReadyReason()).toBe('the index does not answer: no such table: blobs');
    } finally {
      db.close();
    }
  });

  it('a healthy index and tmp/: ready', async () => {
    const { db, files } = await parts();
    try {
      expect(await new StoreHealth(db, () => files.probeWritable()).notReadyReason()).toBeUndefined();
    } finally {
      db.close();
    }
  });
});
