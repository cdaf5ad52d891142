/**
 * @module test/eviction-units.test
 * What one eviction takes, exactly (store/eviction.ts, ADR 0008), in process on a store written
 * through its own paths, with the last reads set in the index and the in-use set given: the images
 * it evicts and in what order, the blob rows it deletes and the bytes it counts, the manifests left.
 * The unit is an image (a referrer goes with its subject, never alone; an index is a unit only when
 * none of its platforms is here, and goes with its last platform unless it is in use); an image is
 * in use when its manifest or any blob it names is. Written for the lifecycle scope's survivors and
 * unreached mutants (docs/mutation-testing.md).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../src/store/database.js';
import { evictImages, type EvictionResult } from '../src/store/eviction.js';
import { blobRows, blobsOf, GraphStore, manifestRows, setLastRead, type StoredImage } from './support/graph-store.js';
import { content, type Content } from './support/store-content.js';

let root: string;
let db: Db | undefined;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'wharf-eviction-units-'));
});
afterEach(async () => {
  db?.close();
  db = undefined;
  await rm(root, { recursive: true, force: true });
});

const all = Number.MAX_SAFE_INTEGER;

/** One eviction in one transaction, as Lifecycle.evict runs it; nothing pinned by pattern. */
function evict(index: Db, need: number, inUse: string[] = []): EvictionResult {
  return index.transaction(() => evictImages(index, { need, inUse: new Set(inUse), isPinned: () => false }))();
}

/** Blob rows of an image: its manifest, config and layers. */
function rowsOf(image: StoredImage): string[] {
  return [image.manifest.digest, ...blobsOf(image)];
}

function sizeOf(items: Content[]): number {
  return items.reduce((total, item) => total + item.size, 0);
}

function contentOf(image: StoredImage): Content[] {
  return [image.manifest, image.config, ...image.layers];
}

describe('eviction: least recently used images, whole', () => {
  it('evicts in last-read order and stops once it freed what it needs, recording each image', async () => {
    const store = await GraphStore.open(root);
    const repo = 'mirror/lru';
    const first = await store.image(repo, 'first', 'fetched');
    const second = await store.image(repo, 'second', 'fetched');
    const third = await store.image(repo, 'third', 'fetched');
    db = store.openIndex();
    setLastRead(db, [
      [second.manifest, 2000],
      [first.manifest, 1000],
      [third.manifest, 3000],
    ]);

    // One byte more than the first image: the second goes too, the third stays.
    const result = evict(db, sizeOf(contentOf(first)) + 1);
    expect(result.images).toEqual([
      { repository: repo, digest: first.manifest.digest, lastUsedAt: 1000 },
      { repository: repo, digest: second.manifest.digest, lastUsedAt: 2000 },
    ]);
    expect([...result.blobs].sort()).toEqual([...rowsOf(first), ...rowsOf(second)].sort());
    expect(result.bytes).toBe(sizeOf([...contentOf(first), ...contentOf(second)]));
    expect(manifestRows(db)).toEqual([`${repo} ${third.manifest.digest}`]);
    expect(blobRows(db)).toEqual(rowsOf(third).sort());
  });

  it('takes a referrer with its subject, never alone, though the referrer was read less recently', async () => {
    const store = await GraphStore.open(root);
    const repo = 'mirror/signed';
    const image = await store.image(repo, 'image', 'fetched', { tag: 'v1' });
    const signature = await store.image(repo, 'signature', 'fetched', { subject: image.manifest });
    const newer = await store.image(repo, 'newer', 'fetched', { tag: 'v2' });
    db = store.openIndex();
    setLastRead(db, [
      [signature.manifest, 1000],
      [image.manifest, 2000],
      [newer.manifest, 3000],
    ]);

    const result = evict(db, 1);
    expect(result.images).toEqual([{ repository: repo, digest: image.manifest.digest, lastUsedAt: 2000 }]);
    expect([...result.blobs].sort()).toEqual([...rowsOf(image), ...rowsOf(signature)].sort());
    expect(result.bytes).toBe(sizeOf([...contentOf(image), ...contentOf(signature)]));
    expect(manifestRows(db)).toEqual([`${repo} ${newer.manifest.digest}`]);
  });

  it('evicts a referrer whose subject is not here as an image of its own', async () => {
    const store = await GraphStore.open(root);
    const repo = 'mirror/orphan';
    // A signature fetched through the referrers API for a subject this store never fetched.
    const absent = content('a subject this store never held');
    const signature = await store.image(repo, 'signature', 'fetched', { subject: absent });
    db = store.openIndex();
    setLastRead(db, [[signature.manifest, 1000]]);

    const result = evict(db, all);
    expect(result.images).toEqual([{ repository: repo, digest: signature.manifest.digest, lastUsedAt: 1000 }]);
    expect([...result.blobs].sort()).toEqual(rowsOf(signature).sort());
    expect(manifestRows(db)).toEqual([]);
  });

  it('evicts an index none of whose platforms is here; one with platforms goes with its last', async () => {
    const store = await GraphStore.open(root);
    const repo = 'mirror/multi';
    const amd = await store.image(repo, 'amd', 'fetched');
    const arm = await store.image(repo, 'arm', 'fetched');
    const full = await store.index(repo, [amd.manifest, arm.manifest], 'fetched', 'v1');
    // A sparse index: its platform was never fetched.
    const sparse = await store.index(repo, [content('a platform never fetched')], 'fetched', 'v2');
    db = store.openIndex();
    setLastRead(db, [
      [full, 500],
      [amd.manifest, 1000],
      [sparse, 1500],
      [arm.manifest, 2000],
    ]);

    const result = evict(db, all);
    // The full index is never a unit of its own (it was read first, though).
    expect(result.images).toEqual([
      { repository: repo, digest: amd.manifest.digest, lastUsedAt: 1000 },
      { repository: repo, digest: sparse.digest, lastUsedAt: 1500 },
      { repository: repo, digest: arm.manifest.digest, lastUsedAt: 2000 },
    ]);
    expect([...result.blobs].sort()).toEqual([...rowsOf(amd), ...rowsOf(arm), full.digest, sparse.digest].sort());
    expect(result.bytes).toBe(sizeOf([...contentOf(amd), ...contentOf(arm), full, sparse]));
    expect(manifestRows(db)).toEqual([]);
    expect(blobRows(db)).toEqual([]);
  });

  it('keeps an index in use when its last platform goes', async () => {
    const store = await GraphStore.open(root);
    const repo = 'mirror/busy';
    const platform = await store.image(repo, 'platform', 'fetched');
    const index = await store.index(repo, [platform.manifest], 'fetched', 'v1');
    db = store.openIndex();
    setLastRead(db, [
      [index, 1000],
      [platform.manifest, 1000],
    ]);

    const result = evict(db, all, [index.digest]);
    expect(result.images).toEqual([{ repository: repo, digest: platform.manifest.digest, lastUsedAt: 1000 }]);
    // The platform's manifest bytes stay: the index that stays names them.
    expect([...result.blobs].sort()).toEqual(blobsOf(platform));
    expect(manifestRows(db)).toEqual([`${repo} ${index.digest}`]);
    expect(blobRows(db)).toEqual([index.digest, platform.manifest.digest].sort());
  });

  it('does not evict twice an image that already went with another (a manifest naming it)', async () => {
    const store = await GraphStore.open(root);
    const repo = 'mirror/nested';
    const inner = await store.image(repo, 'inner', 'fetched', { tag: 'v1' });
    // An image manifest that names the other among its layers: a parent in the graph, which goes
    // with the other (no manifest of the repository it names is left).
    const outer = await store.image(repo, 'outer', 'fetched', { extra: [inner.manifest], tag: 'v2' });
    db = store.openIndex();
    setLastRead(db, [
      [inner.manifest, 1000],
      [outer.manifest, 2000],
    ]);

    const result = evict(db, all);
    expect(result.images).toEqual([{ repository: repo, digest: inner.manifest.digest, lastUsedAt: 1000 }]);
    expect([...result.blobs].sort()).toEqual([...rowsOf(inner), ...rowsOf(outer)].sort());
    expect(manifestRows(db)).toEqual([]);
  });

  it('skips an image whose manifest is in use, or any one blob it names', async () => {
    const store = await GraphStore.open(root);
    const repo = 'mirror/used';
    const readManifest = await store.image(repo, 'manifest read', 'fetched');
    const readLayer = await store.image(repo, 'layer read', 'fetched');
    const idle = await store.image(repo, 'idle', 'fetched');
    db = store.openIndex();
    setLastRead(db, [
      [readManifest.manifest, 1000],
      [readLayer.manifest, 2000],
      [idle.manifest, 3000],
    ]);

    // Its config is not in use, only its layer.
    const result = evict(db, all, [readManifest.manifest.digest, readLayer.layers[0]?.digest as string]);
    expect(result.images).toEqual([{ repository: repo, digest: idle.manifest.digest, lastUsedAt: 3000 }]);
    expect([...result.blobs].sort()).toEqual(rowsOf(idle).sort());
    expect(manifestRows(db)).toEqual(
      [`${repo} ${readManifest.manifest.digest}`, `${repo} ${readLayer.manifest.digest}`].sort(),
    );
  });
});
