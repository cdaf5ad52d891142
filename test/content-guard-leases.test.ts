/**
 * @module test/content-guard-leases.test
 * Leases (store/content-guard.ts, ADR 0008): a blob write holds its digest from before its file is
 * renamed into blobs/ until its index row is written. gc must leave a leased digest alone, and a
 * lease taken while the digest's file is being removed (here: a quarantine moving it aside) waits
 * for the removal, so a fresh file is never taken away under a new row.
 *
 * The in-use window (reads) covers the same writes in serve, so no end-to-end test told these apart
 * (round 2 of the planted-bug audit, docs/mutation-testing.md): here the window is 0 ms and the write
 * is held at an exact point through the store's fs seam (DurableFs, store/blob-files.ts): Node's
 * own calls, one rename held until the test releases it.
 */
import { lstat, mkdtemp, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requireDigest, type Digest } from '../src/oci/digest.js';
import { requireRepoName, type Tag } from '../src/oci/reference.js';
import type { DurableFs } from '../src/store/blob-files.js';
import { LocalStore } from '../src/store/local-store.js';
import { sha256 } from './support/http.js';
import { withDeadline } from './support/run.js';

const deadlineMs = 30_000;

interface Hold {
  /** Resolves when the held rename is reached (before it runs, or once it ran). */
  reached: Promise<void>;
  release(): void;
}

/** Node's fs calls, logged (renames and removals once done); renames and removals may be held. */
class HoldingFs implements DurableFs {
  readonly log: string[] = [];
  private held: {
    call: 'rename' | 'remove';
    match: (path: string) => boolean;
    before: boolean;
    reached: () => void;
    gate: Promise<void>;
  }[] = [];
  private waiters: { match: (entry: string) => boolean; done: () => void }[] = [];

  /** Logged when called (not when done): a write that started is seen before any I/O completes. */
  open(path: string, flags: string) {
    this.note(`open ${path}`);
    return open(path, flags);
  }

  async rename(from: string, to: string): Promise<void> {
    await this.withHold('rename', to, async () => {
      await rename(from, to);
      this.note(`rename ${from} -> ${to}`);
    });
  }

  async remove(path: string): Promise<void> {
    await this.withHold('remove', path, async () => {
      await rm(path, { force: true });
      this.note(`remove ${path}`);
    });
  }

  /** Holds the next rename to (or removal of) a path `match`es, `before` it runs or after it ran. */
  hold(match: (path: string) => boolean, when: 'before' | 'after', call: 'rename' | 'remove' = 'rename'): Hold {
    let reached = (): void => undefined;
    let release = (): void => undefined;
    const hold: Hold = {
      reached: new Promise<void>((resolve) => (reached = resolve)),
      release: () => release(),
    };
    const gate = new Promise<void>((resolve) => (release = resolve));
    this.held.push({ call, match, before: when === 'before', reached, gate });
    return hold;
  }

  private async withHold(call: 'rename' | 'remove', path: string, run: () => Promise<void>): Promise<void> {
    const hold = this.held.find((h) => h.call === call && h.match(path));
    this.held = this.held.filter((h) => h !== hold);
    if (hold?.before === true) {
      hold.reached();
      await hold.gate;
    }
    await run();
    if (hold?.before === false) {
      hold.reached();
      await hold.gate;
    }
  }

  /** Resolves once a call logged from entry `from` on `match`es (at once if one already did). */
  seen(match: (entry: string) => boolean, from: number): Promise<void> {
    if (this.log.slice(from).some(match)) return Promise.resolve();
    return new Promise((done) => this.waiters.push({ match, done }));
  }

  private note(entry: string): void {
    this.log.push(entry);
    for (const waiter of this.waiters.filter((w) => w.match(entry))) waiter.done();
    this.waiters = this.waiters.filter((w) => !w.match(entry));
  }
}

/** Waits until every microtask queued so far (and those they queue) has run. */
function macrotask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

async function* once(bytes: Buffer): AsyncGenerator<Uint8Array> {
  yield bytes;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

let root: string;
let fs: HoldingFs;
let store: LocalStore;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'wharf-leases-'));
  fs = new HoldingFs();
  // Reads recorded as serve does, but in use for 0 ms: only leases protect a write here.
  store = await LocalStore.open(root, { blobFs: fs, recordReads: true, inUseMs: 0 });
});

afterEach(async () => {
  store.close();
  await rm(root, { recursive: true, force: true });
});

function blobPath(digest: Digest): string {
  const hex = digest.slice('sha256:'.length);
  return join(root, 'blobs', 'sha256', hex.slice(0, 2), hex);
}

/**
 * Gives a push started at log entry `from` every chance to run ahead of a removal in progress: if its
 * write started (it must not: its lease waits for the removal), waits until it renamed its file into
 * blobs/, so a removal that then goes on would take the push's file.
 */
async function letEarlyPushRunAhead(digest: Digest, from: number): Promise<void> {
  await macrotask();
  if (fs.log.slice(from).some((entry) => entry.startsWith(`open ${join(root, 'tmp')}`))) {
    await withDeadline(
      fs.seen((entry) => entry.endsWith(`-> ${blobPath(digest)}`), from),
      deadlineMs,
      'the early push renaming its file into blobs/',
    );
  }
}

describe('leases: a write in progress is never undone by gc or a removal', () => {
  it('gc leaves alone a digest whose write has renamed its file but not yet written its row', async () => {
    const bytes = Buffer.from('a blob pushed to one repository, unreferenced, then pushed again to another');
    const digest = requireDigest(sha256(bytes));
    await store.putBlob(requireRepoName('leases/first'), digest, once(bytes), bytes.length);
    // Past the grace period (0) and the in-use window (0): gc would collect the blob and its link.
    await sleep(5);

    const hold = fs.hold((to) => to === blobPath(digest), 'after');
    const pushed = store.putBlob(requireRepoName('leases/second'), digest, once(bytes), bytes.length);
    await withDeadline(hold.reached, deadlineMs, 'the second push renaming its file into blobs/');
    try {
      const report = await withDeadline(store.gc({ graceMs: 0 }), deadlineMs, 'gc');
      expect(report.blobs).toEqual([]);
      expect(report.links).toEqual([]);
      expect(report.bytes).toBe(0);
    } finally {
      hold.release();
      // Settled before the store closes, whatever the assertions above found.
      await withDeadline(
        pushed.catch(() => undefined),
        deadlineMs,
        'the second push',
      );
    }
    expect(await pushed).toEqual({ digest, size: bytes.length });
    // The row and the file agree: both repositories serve the blob, whole.
    expect(store.contentSize(digest)).toBe(bytes.length);
    expect((await readFile(blobPath(digest))).equals(bytes)).toBe(true);
    for (const repository of ['leases/first', 'leases/second']) {
      expect((await store.statBlob(requireRepoName(repository), digest))?.size, repository).toBe(bytes.length);
    }
  });

  it('a push of the good bytes during the quarantine of a corrupt file waits for it, and its file stays', async () => {
    const name = requireRepoName('leases/repaired');
    const bytes = Buffer.from('good bytes, corrupted on disk, then pushed again by a client');
    const digest = requireDigest(sha256(bytes));
    await store.putBlob(name, digest, once(bytes), bytes.length);
    // The file rots in place (same inode, same size): what a verified read then quarantines.
    const corrupt = Buffer.from(bytes.toString().toUpperCase());
    await writeFile(blobPath(digest), corrupt);
    const ino = (await lstat(blobPath(digest))).ino;

    const hold = fs.hold((to) => to.startsWith(join(root, 'quarantine')), 'before');
    const quarantined = store.quarantineBlob(digest, 'digest-mismatch', ino);
    await withDeadline(hold.reached, deadlineMs, 'the quarantine about to move the file');
    const from = fs.log.length;
    const pushed = store.putBlob(name, digest, once(bytes), bytes.length);
    // Give the push every chance to run ahead of the quarantine moving "the" file.
    await letEarlyPushRunAhead(digest, from);
    hold.release();
    // Both settled before any assertion, so none leaves a write running when the store closes.
    await withDeadline(Promise.allSettled([quarantined, pushed]), deadlineMs, 'the quarantine and the push');

    const result = await quarantined;
    expect(result?.movedTo).toBeDefined();
    // What was moved aside is the corrupt file, not the good one the push wrote.
    expect((await readFile(result?.movedTo ?? '')).equals(corrupt)).toBe(true);
    expect(await pushed).toEqual({ digest, size: bytes.length });
    // The push came after the quarantine: its row and its file stay, with the good bytes.
    expect(store.contentSize(digest)).toBe(bytes.length);
    expect((await readFile(blobPath(digest))).equals(bytes)).toBe(true);
    expect((await store.statBlob(name, digest))?.size).toBe(bytes.length);
  });
});

describe('leases: a write waits for gc removing the same digest', () => {
  it('a push of a blob gc is unlinking waits for the unlink, and its file stays', async () => {
    const bytes = Buffer.from('a blob gc collects while a client pushes it again');
    const digest = requireDigest(sha256(bytes));
    await store.putBlob(requireRepoName('leases/collected'), digest, once(bytes), bytes.length);
    await sleep(5);

    const hold = fs.hold((path) => path === blobPath(digest), 'before', 'remove');
    const collected = store.gc({ graceMs: 0 });
    await withDeadline(hold.reached, deadlineMs, 'gc about to unlink the file');
    const from = fs.log.length;
    const pushed = store.putBlob(requireRepoName('leases/again'), digest, once(bytes), bytes.length);
    await letEarlyPushRunAhead(digest, from);
    hold.release();
    await withDeadline(Promise.allSettled([collected, pushed]), deadlineMs, 'gc and the push');

    expect((await collected).blobs.map((blob) => blob.digest)).toEqual([digest]);
    expect(await pushed).toEqual({ digest, size: bytes.length });
    expect(store.contentSize(digest)).toBe(bytes.length);
    expect((await readFile(blobPath(digest))).equals(bytes)).toBe(true);
    expect((await store.statBlob(requireRepoName('leases/again'), digest))?.size).toBe(bytes.length);
  });
});

// Round 12b of the planted bugs: a fill (a blob pulled through the mirror) committed without its
// lease passed every test, faults/gc-race too: only pushes were tried here.
describe('leases: a fill commit', () => {
  it('gc leaves alone a fill that has renamed its file into blobs/ but not yet written its row', async () => {
    const name = requireRepoName('leases/filled');
    const bytes = Buffer.from('a blob filled from an upstream, committed while gc runs');
    const digest = requireDigest(sha256(bytes));
    const fill = await store.startFill(digest);
    await fill.append([bytes]);
    fill.verify(bytes.length);
    // The file's last write is now past the grace period (0): without its lease, gc takes it as unindexed.
    await sleep(5);

    const hold = fs.hold((to) => to === blobPath(digest), 'after');
    const committed = store.commitFill(fill, [name]);
    await withDeadline(hold.reached, deadlineMs, 'the fill renaming its file into blobs/');
    try {
      const report = await withDeadline(store.gc({ graceMs: 0 }), deadlineMs, 'gc');
      expect(report.unindexed).toEqual([]);
      expect(report.blobs).toEqual([]);
      expect(report.bytes).toBe(0);
    } finally {
      hold.release();
      await withDeadline(
        committed.catch(() => undefined),
        deadlineMs,
        'the fill commit',
      );
    }
    expect(await committed).toEqual({ digest, size: bytes.length });
    expect(store.contentSize(digest)).toBe(bytes.length);
    expect((await readFile(blobPath(digest))).equals(bytes)).toBe(true);
    expect((await store.statBlob(name, digest))?.size).toBe(bytes.length);
  });

  it('a fill commit of a blob gc is unlinking waits for the unlink, and its file stays', async () => {
    const bytes = Buffer.from('a blob gc collects while the mirror fills it again');
    const digest = requireDigest(sha256(bytes));
    await store.putBlob(requireRepoName('leases/collected'), digest, once(bytes), bytes.length);
    await sleep(5);
    const fill = await store.startFill(digest);
    await fill.append([bytes]);
    fill.verify(bytes.length);

    const hold = fs.hold((path) => path === blobPath(digest), 'before', 'remove');
    const collected = store.gc({ graceMs: 0 });
    await withDeadline(hold.reached, deadlineMs, 'gc about to unlink the file');
    const from = fs.log.length;
    const committed = store.commitFill(fill, [requireRepoName('leases/refilled')]);
    // The fill's temp file is open already: give a commit that did not wait (it must) time to rename it in.
    await Promise.race([fs.seen((entry) => entry.endsWith(`-> ${blobPath(digest)}`), from), sleep(500)]);
    hold.release();
    await withDeadline(Promise.allSettled([collected, committed]), deadlineMs, 'gc and the fill commit');

    expect((await collected).blobs.map((blob) => blob.digest)).toEqual([digest]);
    expect(await committed).toEqual({ digest, size: bytes.length });
    expect(store.contentSize(digest)).toBe(bytes.length);
    expect((await readFile(blobPath(digest))).equals(bytes)).toBe(true);
    expect((await store.statBlob(requireRepoName('leases/refilled'), digest))?.size).toBe(bytes.length);
  });
});

// Round 2 of the planted-bug audit: eviction's freeBlob ignoring the in-use set passed every test.
// An image in use is never evicted, so only the blobs of what goes with an evicted image (its
// referrers, a parent index) reach that check while something else holds them.
describe('leases: eviction', () => {
  it("keeps a blob of an evicted image's referrer that a push to another repository is writing", async () => {
    const name = requireRepoName('leases/evicted');
    const put = async (bytes: Buffer): Promise<Digest> => {
      const digest = requireDigest(sha256(bytes));
      await store.putBlob(name, digest, once(bytes), bytes.length);
      return digest;
    };
    const descriptor = (mediaType: string, bytes: Buffer) => ({ mediaType, digest: sha256(bytes), size: bytes.length });
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed: 'leases-evicted' }));
    const layer = Buffer.from('the layer of an image nobody reads any more');
    await put(config);
    await put(layer);
    const image = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: descriptor('application/vnd.oci.image.config.v1+json', config),
        layers: [descriptor('application/vnd.oci.image.layer.v1.tar', layer)],
      }),
    );
    const imageDigest = requireDigest(sha256(image));
    // Fetched from an upstream (pushed content is pinned, never evicted).
    const manifest = { mediaType: 'application/vnd.oci.image.manifest.v1+json' };
    await store.putFetchedManifest(name, { ...manifest, digest: imageDigest, bytes: image }, 'v1' as Tag);
    // A signature of the image: its payload is the blob another client is pushing elsewhere.
    const signature = Buffer.from('a signature payload, pushed again to another repository');
    const signatureDigest = await put(signature);
    const referrer = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType: 'application/vnd.example.signature',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256('{}'), size: 2 },
        layers: [descriptor('application/vnd.example.signature.payload', signature)],
        subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: imageDigest, size: image.length },
      }),
    );
    await put(Buffer.from('{}'));
    await store.putFetchedManifest(name, { ...manifest, digest: requireDigest(sha256(referrer)), bytes: referrer });
    await sleep(5);

    const hold = fs.hold((to) => to === blobPath(signatureDigest), 'after');
    const pushed = store.putBlob(requireRepoName('leases/other'), signatureDigest, once(signature), signature.length);
    await withDeadline(hold.reached, deadlineMs, 'the other push renaming its file into blobs/');
    try {
      const freed = await withDeadline(store.lifecycle.evict(1), deadlineMs, 'eviction');
      // The image and its signature went; the signature's payload did not (it is leased).
      expect(await store.statManifest(name, imageDigest)).toBeUndefined();
      expect(await store.statManifest(name, requireDigest(sha256(referrer)))).toBeUndefined();
      expect(freed).toBe(config.length + layer.length + image.length + referrer.length + 2);
    } finally {
      hold.release();
      await withDeadline(
        pushed.catch(() => undefined),
        deadlineMs,
        'the other push',
      );
    }
    expect(await pushed).toEqual({ digest: signatureDigest, size: signature.length });
    expect(store.contentSize(signatureDigest)).toBe(signature.length);
    expect((await readFile(blobPath(signatureDigest))).equals(signature)).toBe(true);
    expect((await store.statBlob(requireRepoName('leases/other'), signatureDigest))?.size).toBe(signature.length);
  });
});
