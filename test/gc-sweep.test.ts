/**
 * @module test/gc-sweep.test
 * gc in process on a real store (store/lifecycle.ts, store/gc-plan.ts, ADR 0008), each run with its
 * exact report and what it did to the files, the rows and the stored total store.maxSize is checked
 * against: a dry run lists what the run then takes and deletes, writes and counts nothing; the
 * sweep of files without rows keeps one written at the cutoff, one leased by a write in flight, and
 * files not named as wharf names blobs; gc-plan's own figures (the plan's bytes, a blob row another
 * row still needs is not deleted). The sweep raced through the store's fs seam (its one lstat of a
 * file without a row): a file that vanishes or turns into a directory there is skipped, and a write
 * that indexes the digest there keeps its file; files with a row are never looked at.
 */
import { lstat, mkdir, mkdtemp, open, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import { requireRepoName, type Tag } from '../src/oci/reference.js';
import { indexPath, openDatabase, openReadOnlyDatabase } from '../src/store/database.js';
import { applyGcPlan, deleteGcBlob, planGc } from '../src/store/gc-plan.js';
import type { DurableFs } from '../src/store/blob-files.js';
import { LocalStore } from '../src/store/local-store.js';
import { blobPath } from './support/blob-file.js';
import { withDeadline } from './support/run.js';
import { content, descriptorOf, imageManifest, ociTypes, once, type Content } from './support/store-content.js';
import { exists } from './support/exists.js';

const name = requireRepoName('team/app');
const deadlineMs = 30_000;

let root: string;
let store: LocalStore | undefined;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'wharf-gc-sweep-'));
});
afterEach(async () => {
  store?.close();
  store = undefined;
  await rm(root, { recursive: true, force: true });
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface Pushed {
  config: Content;
  layer: Content;
  manifest: Content;
}

/** An image pushed into team/app: tagged v1 when `tag`, else by digest only (untagged: gc's to take). */
async function push(s: LocalStore, seed: string, tag?: Tag): Promise<Pushed> {
  const config = content(JSON.stringify({ architecture: 'amd64', os: 'linux', seed }));
  const layer = content(`layer of ${seed} `.repeat(200));
  const manifest = imageManifest(config, [descriptorOf(layer, ociTypes.layer)]);
  await s.putBlob(name, config.digest, once(config.bytes));
  await s.putBlob(name, layer.digest, once(layer.bytes));
  await s.putManifest(name, tag ?? manifest.digest, manifest.bytes, ociTypes.manifest);
  return { config, layer, manifest };
}

/** A file under blobs/ with no index row (what a crash between rename and insert leaves). */
async function unindexedFile(seed: string, mtimeMs?: number): Promise<Content> {
  const file = content(`a file without a row: ${seed}`);
  await writeAt(blobPath(root, file.digest), file.bytes, mtimeMs);
  return file;
}

async function writeAt(path: string, bytes: Buffer, mtimeMs?: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, bytes);
  if (mtimeMs !== undefined) await utimes(path, mtimeMs / 1000, mtimeMs / 1000);
}

/** blobs.accessed_at of each digest, read beside the store. */
function accessedAt(digests: Digest[]): (number | null)[] {
  const db = openReadOnlyDatabase(indexPath(root));
  try {
    const row = db.prepare<[string], { accessed_at: number | null }>('SELECT accessed_at FROM blobs WHERE digest = ?');
    return digests.map((digest) => row.get(digest)?.accessed_at ?? null);
  } finally {
    db.close();
  }
}

const byDigest = <T extends { digest: string }>(items: T[]): T[] =>
  [...items].sort((a, b) => a.digest.localeCompare(b.digest));

describe('gc', () => {
  it('in a dry run lists what the run then takes, and deletes, writes and counts nothing', async () => {
    // Reads recorded (as serve does), in use for 0 ms: the recorded reads must not keep anything here.
    store = await LocalStore.open(root, { recordReads: true, inUseMs: 0 });
    const kept = await push(store, 'kept', 'v1' as Tag);
    const untagged = await push(store, 'untagged');
    const crashed = await unindexedFile('crashed');
    await sleep(5);
    const heldBefore = store.lifecycle.space.used;
    const goes = [untagged.config, untagged.layer, untagged.manifest];
    const options = { graceMs: 1_000, now: Date.now() + 60_000 };
    const expected = {
      manifests: [{ repository: 'team/app', digest: untagged.manifest.digest, size: untagged.manifest.size }],
      links: byDigest([untagged.config, untagged.layer]).map((b) => ({ repository: 'team/app', digest: b.digest })),
      blobs: byDigest(goes).map((b) => ({ digest: b.digest, size: b.size })),
      unindexed: [{ digest: crashed.digest, size: crashed.size }],
      uploads: [],
      bytes: goes.reduce((sum, b) => sum + b.size, 0) + crashed.size,
    };

    const dry = await store.gc({ ...options, dryRun: true });

    expect(dry).toEqual({ dryRun: true, ...expected });
    for (const blob of [...goes, crashed]) expect(await exists(blobPath(root, blob.digest)), blob.digest).toBe(true);
    for (const blob of goes) expect(store.hasBlob(blob.digest)).toBe(true);
    expect(store.lifecycle.space.used).toBe(heldBefore);
    expect(store.lifecycle.stats).toEqual({ evictions: 0, evictedBytes: 0, gcRuns: 0, gcBytes: 0 });
    // Not even the last-read times: a dry run writes nothing to the index.
    expect(accessedAt([kept.manifest.digest, untagged.manifest.digest])).toEqual([null, null]);

    const run = await store.gc(options);

    expect(run).toEqual({ dryRun: false, ...expected });
    for (const blob of [...goes, crashed]) expect(await exists(blobPath(root, blob.digest)), blob.digest).toBe(false);
    for (const blob of goes) expect(store.hasBlob(blob.digest)).toBe(false);
    // The rows' bytes come off the total; the file without a row was never in it.
    expect(store.lifecycle.space.used).toBe(heldBefore - (expected.bytes - crashed.size));
    expect(store.lifecycle.stats).toEqual({ evictions: 0, evictedBytes: 0, gcRuns: 1, gcBytes: expected.bytes });
    // The real run writes the reads first (they decide what is old); the kept image is whole.
    expect(accessedAt([kept.manifest.digest])[0]).toEqual(expect.any(Number));
    expect((await store.getManifest(name, 'v1' as Tag))?.digest).toBe(kept.manifest.digest);
    for (const blob of [kept.config, kept.layer, kept.manifest]) expect(store.hasBlob(blob.digest)).toBe(true);

    const again = await store.gc(options);
    expect(again).toEqual({ dryRun: false, manifests: [], links: [], blobs: [], unindexed: [], uploads: [], bytes: 0 });
    expect(store.lifecycle.stats).toEqual({ evictions: 0, evictedBytes: 0, gcRuns: 2, gcBytes: expected.bytes });
  });

  it('sweeps a file without a row only past the cutoff, not while a write leases it, and never a stray name', async () => {
    store = await LocalStore.open(root);
    await push(store, 'kept', 'v1' as Tag);
    // Whole seconds: utimes and mtimeMs agree exactly.
    const writtenAt = 1_700_000_000_000;
    const crashed = await unindexedFile('at the cutoff', writtenAt);
    const leased = await unindexedFile('leased by a write in flight', writtenAt - 60_000);
    const wrongPrefix = content('named by a digest, under the wrong two-letter directory');
    const hex = wrongPrefix.digest.slice('sha256:'.length);
    const strays = [
      join(root, 'blobs', 'sha256', hex.startsWith('00') ? '01' : '00', hex),
      join(root, 'blobs', 'sha256', 'README'),
      join(root, 'blobs', 'notes.txt'),
    ];
    for (const path of strays) await writeAt(path, wrongPrefix.bytes, writtenAt - 60_000);
    let endWrite = (): void => undefined;
    const writing = store.lifecycle.guard.lease(leased.digest, () => new Promise<void>((done) => (endWrite = done)));
    const graceMs = 1_000;

    const atCutoff = await store.gc({ graceMs, now: writtenAt + graceMs, dryRun: true });
    expect(atCutoff.unindexed).toEqual([]);

    const past = await store.gc({ graceMs, now: writtenAt + graceMs + 1 });
    expect(past.unindexed).toEqual([{ digest: crashed.digest, size: crashed.size }]);
    expect(await exists(blobPath(root, crashed.digest))).toBe(false);
    expect(await exists(blobPath(root, leased.digest))).toBe(true);
    for (const path of strays) expect(await exists(path), path).toBe(true);

    endWrite();
    await withDeadline(writing, deadlineMs, 'the lease ends');
    const after = await store.gc({ graceMs, now: writtenAt + graceMs + 1 });
    expect(after.unindexed).toEqual([{ digest: leased.digest, size: leased.size }]);
    expect(await exists(blobPath(root, leased.digest))).toBe(false);
    for (const path of strays) expect(await exists(path), path).toBe(true);
  });

  it('plans the bytes of exactly the blobs that go, and deletes no blob row another row still needs', async () => {
    store = await LocalStore.open(root);
    const kept = await push(store, 'kept', 'v1' as Tag);
    const untagged = await push(store, 'untagged');
    store.close();
    store = undefined;
    const db = openDatabase(indexPath(root));
    try {
      const plan = db.transaction(() =>
        planGc(db, { cutoff: Date.now() + 60_000, inUse: new Set(), isPinned: () => false }),
      )();
      expect(plan.blobs.map((b) => b.digest).sort()).toEqual(
        [untagged.config.digest, untagged.layer.digest, untagged.manifest.digest].sort(),
      );
      expect(plan.bytes).toBe(untagged.config.size + untagged.layer.size + untagged.manifest.size);
      // Linked and named by a tagged manifest; linked still (the plan is not applied yet).
      expect(deleteGcBlob(db, kept.layer.digest)).toBe(false);
      expect(deleteGcBlob(db, untagged.layer.digest)).toBe(false);
      applyGcPlan(db);
      expect(deleteGcBlob(db, untagged.layer.digest)).toBe(true);
      const rows = db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM blobs WHERE digest = ?');
      expect(rows.get(kept.layer.digest)?.n).toBe(1);
      expect(rows.get(untagged.layer.digest)?.n).toBe(0);
    } finally {
      db.close();
    }
  });
});

/** Steps a test runs at gc's lstat of a blob file, once per path: before the call, or after it (before its answer). */
interface SweepSteps {
  before: Map<string, () => Promise<void>>;
  after: Map<string, () => Promise<void>>;
}

/** Node's fs calls, with gc's lstat of a blob file recorded and raced by `steps`. */
function sweepFs(steps: SweepSteps, statted: string[]): DurableFs {
  const run = async (on: Map<string, () => Promise<void>>, path: string): Promise<void> => {
    const step = on.get(path);
    on.delete(path);
    await step?.();
  };
  return {
    open,
    rename,
    remove: (path) => rm(path, { force: true }),
    lstat: async (path) => {
      statted.push(path);
      await run(steps.before, path);
      const info = await lstat(path);
      await run(steps.after, path);
      return info;
    },
  };
}

describe('the sweep of files without a row, raced at its lstat', () => {
  const graceMs = 1_000;
  const writtenAt = 1_700_000_000_000;
  const now = writtenAt + graceMs + 1;

  it('looks only at files without a row, and skips one that vanished or became a directory by then', async () => {
    const steps: SweepSteps = { before: new Map(), after: new Map() };
    const statted: string[] = [];
    store = await LocalStore.open(root, { blobFs: sweepFs(steps, statted) });
    const image = await push(store, 'indexed', 'v1' as Tag);
    const vanishing = await unindexedFile('gone before its lstat', writtenAt);
    const turning = await unindexedFile('a directory by its lstat', writtenAt);
    const crashed = await unindexedFile('still there', writtenAt);
    const turningPath = blobPath(root, turning.digest);
    steps.before.set(blobPath(root, vanishing.digest), () => rm(blobPath(root, vanishing.digest)));
    steps.before.set(turningPath, async () => {
      await rm(turningPath);
      await mkdir(turningPath);
      // As old as the file was: only its kind tells it apart.
      await utimes(turningPath, writtenAt / 1000, writtenAt / 1000);
    });

    const report = await store.gc({ graceMs, now });
    expect(steps.before.size).toBe(0);
    expect(report.unindexed).toEqual([{ digest: crashed.digest, size: crashed.size }]);
    expect([...statted].sort()).toEqual(
      [vanishing, turning, crashed].map((file) => blobPath(root, file.digest)).sort(),
    );
    expect((await lstat(turningPath)).isDirectory()).toBe(true);
    expect(await exists(blobPath(root, crashed.digest))).toBe(false);
    for (const blob of [image.config, image.layer, image.manifest]) {
      expect(await exists(blobPath(root, blob.digest)), blob.digest).toBe(true);
    }
  });

  it('keeps the file of a write that indexed the digest while the sweep looked at it', async () => {
    const steps: SweepSteps = { before: new Map(), after: new Map() };
    store = await LocalStore.open(root, { blobFs: sweepFs(steps, []) });
    const file = await unindexedFile('pushed again during the sweep', writtenAt);
    const writer = store;
    // The whole write (lease, rename, row, lease ended) runs after the sweep's lstat saw an old file
    // without a row, and before the sweep acts on it.
    steps.after.set(blobPath(root, file.digest), async () => {
      await writer.putBlob(name, file.digest, once(file.bytes), file.size);
    });

    const report = await store.gc({ graceMs, now });
    expect(steps.after.size).toBe(0);
    expect(report.unindexed).toEqual([]);
    expect(store.hasBlob(file.digest)).toBe(true);
    expect(await exists(blobPath(root, file.digest))).toBe(true);
    expect(await store.statBlob(name, file.digest)).toMatchObject({ digest: file.digest, size: file.size });
  });
});
