/**
 * @module test/eviction-kept-links.test
 * What an eviction leaves of a repository (store/eviction.ts, ADR 0008): when an image goes, a
 * repository link goes only when no manifest left in that repository refers to the blob. A layer two
 * images of one repository share keeps its link when the older image is evicted, so the image that
 * stays can still be pulled whole through that repository. Round 8a of the hand-planted bugs
 * (docs/mutation-testing.md): the link was dropped with the evicted image and no test looked.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../src/store/database.js';
import { evictImages } from '../src/store/eviction.js';
import { blobRows, blobsOf, GraphStore, manifestRows, setLastRead } from './support/graph-store.js';
import { content } from './support/store-content.js';

let root: string;
let db: Db | undefined;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'wharf-eviction-links-'));
});
afterEach(async () => {
  db?.close();
  db = undefined;
  await rm(root, { recursive: true, force: true });
});

/** (repository, digest) of every repository link, sorted. */
function linkRows(index: Db): string[] {
  return index
    .prepare<[], { name: string; digest: string }>(
      'SELECT r.name, l.digest FROM repository_blobs l JOIN repositories r ON r.id = l.repository_id',
    )
    .all()
    .map((row) => `${row.name} ${row.digest}`)
    .sort();
}

describe('eviction keeps the links an image that stays still needs', () => {
  it('evicts the older of two images sharing a layer in one repository, and keeps the shared link', async () => {
    const store = await GraphStore.open(root);
    const repo = 'mirror/shared';
    const base = content('base layer both images name');
    const older = await store.image(repo, 'older', 'fetched', { shared: [base], tag: 'v1' });
    const newer = await store.image(repo, 'newer', 'fetched', { shared: [base], tag: 'v2' });
    db = store.openIndex();
    setLastRead(db, [
      [older.manifest, 1000],
      [newer.manifest, 2000],
    ]);
    const index = db;

    // One byte: the least recently used image goes, and only it.
    const result = index.transaction(() => evictImages(index, { need: 1, inUse: new Set(), isPinned: () => false }))();

    expect(result.images.map((image) => image.digest)).toEqual([older.manifest.digest]);
    expect(manifestRows(index)).toEqual([`${repo} ${newer.manifest.digest}`]);
    // The older image's own config and layer go; the shared layer stays, row and link.
    expect([...result.blobs].sort()).toEqual(
      [older.manifest.digest, older.config.digest, older.layers[0]?.digest as string].sort(),
    );
    expect(blobRows(index)).toEqual([newer.manifest.digest, ...blobsOf(newer)].sort());
    expect(linkRows(index)).toEqual(blobsOf(newer).map((digest) => `${repo} ${digest}`));
  });
});
