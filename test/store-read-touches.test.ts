/**
 * @module test/store-read-touches.test
 * Every read of the store records its time (ADR 0008, rule 3: "every read (manifest GET/HEAD, blob
 * GET/HEAD, a mount) records the time"), so the content a client just looked at is in use for gc
 * and eviction, and its last read orders the LRU. A HEAD counts as much as a GET: docker and
 * containerd HEAD a manifest before they fetch its blobs, and a manifest evicted between the two
 * breaks the pull. Each read is made on a store opened afresh (its writes' own records gone), on a
 * real LocalStore. Round 8a of the hand-planted bugs (docs/mutation-testing.md): a manifest HEAD
 * that recorded nothing passed every test, and so did an eviction that ordered images without first
 * writing the reads held in memory (those older than the in-use window, not flushed yet).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import { requireRepoName, type Tag } from '../src/oci/reference.js';
import { LocalStore } from '../src/store/local-store.js';
import { GraphStore, type StoredImage } from './support/graph-store.js';

const name = requireRepoName('mirror/touched');
const tag = 'v1' as Tag;

let root: string;
let image: StoredImage;
let store: LocalStore | undefined;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'wharf-read-touches-'));
  const graph = await GraphStore.open(root);
  image = await graph.image(name, 'touched', 'fetched', { tag });
  graph.openIndex().close();
});
afterEach(async () => {
  store?.close();
  store = undefined;
  await rm(root, { recursive: true, force: true });
});

/** The store as serve opens it (reads recorded), nothing read yet. */
async function fresh(): Promise<LocalStore> {
  store?.close();
  store = await LocalStore.open(root, { recordReads: true });
  return store;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function inUse(opened: LocalStore, digest: string): boolean {
  return opened.lifecycle.guard.isInUse(digest as Digest);
}

describe('reads record their time', () => {
  it('a manifest HEAD, by tag and by digest, puts the manifest in use', async () => {
    for (const reference of [tag, image.manifest.digest]) {
      const opened = await fresh();
      expect(inUse(opened, image.manifest.digest), String(reference)).toBe(false);
      expect((await opened.statManifest(name, reference))?.digest).toBe(image.manifest.digest);
      expect(inUse(opened, image.manifest.digest), String(reference)).toBe(true);
      expect(opened.lifecycle.guard.lastRead(image.manifest.digest)).toBeTypeOf('number');
    }
  });

  it('a manifest GET puts the manifest in use', async () => {
    const opened = await fresh();
    expect(inUse(opened, image.manifest.digest)).toBe(false);
    expect((await opened.getManifest(name, tag))?.digest).toBe(image.manifest.digest);
    expect(inUse(opened, image.manifest.digest)).toBe(true);
  });

  // Round 12b of the planted bugs: a blob GET that recorded nothing passed every test (only HEAD was tried).
  it('a blob GET, read whole or opened for positioned reads, puts that blob in use, and nothing else', async () => {
    const layer = image.layers[0]?.digest as Digest;
    for (const digest of [layer, image.config.digest]) {
      const opened = await fresh();
      expect(inUse(opened, digest)).toBe(false);
      const blob = await opened.openBlob(name, digest);
      expect(blob?.digest).toBe(digest);
      expect(inUse(opened, digest)).toBe(true);
      expect(opened.lifecycle.guard.lastRead(digest)).toBeTypeOf('number');
      expect(inUse(opened, image.manifest.digest)).toBe(false);
    }
  });

  it('a blob HEAD puts that blob in use, and nothing else', async () => {
    const layer = image.layers[0]?.digest as Digest;
    const opened = await fresh();
    expect(inUse(opened, layer)).toBe(false);
    expect((await opened.statBlob(name, layer))?.size).toBe(image.layers[0]?.size);
    expect(inUse(opened, layer)).toBe(true);
    expect(inUse(opened, image.config.digest)).toBe(false);
    expect(inUse(opened, image.manifest.digest)).toBe(false);
  });
});

describe('eviction orders by the last read', () => {
  it('counts a read still held in memory (past the in-use window, not flushed yet)', async () => {
    const graph = await GraphStore.open(root);
    const other = await graph.image(name, 'other', 'fetched', { tag: 'v2' });
    graph.openIndex().close();
    // The other image is read first, in a session whose close() writes its read to the index.
    const earlier = await fresh();
    expect((await earlier.getManifest(name, 'v2' as Tag))?.digest).toBe(other.manifest.digest);
    earlier.close();
    store = undefined;
    await sleep(20);
    // Then the first image is read, in memory only; the in-use window (10 ms) passes, so it may go.
    store = await LocalStore.open(root, { recordReads: true, inUseMs: 10 });
    expect((await store.getManifest(name, tag))?.digest).toBe(image.manifest.digest);
    await sleep(200);
    expect(inUse(store, image.manifest.digest)).toBe(false);

    // One byte: the least recently read image goes, the other one, not the one read last.
    await store.lifecycle.evict(1);
    expect((await store.statManifest(name, tag))?.digest).toBe(image.manifest.digest);
    expect(await store.statManifest(name, 'v2' as Tag)).toBeUndefined();
  });
});
