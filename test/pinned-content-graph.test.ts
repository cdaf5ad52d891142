/**
 * @module test/pinned-content-graph.test
 * The one definition of "pinned" (store/pinned-content.ts, ADR 0008), in process on a store
 * written through its own paths (pushed and fetched manifests, loose blobs): the manifest graph
 * (children, parents, referrers of manifests present), the exact set of pinned manifests (pushed,
 * store.pin, children of a pinned index, referrers of a pinned subject, the subject of a pinned
 * referrer), the manifests eviction keeps (indexes above what stays, their referrers), and `wharf
 * du`'s classification of every blob, checked against what an eviction of everything then deletes.
 * Written for the lifecycle scope's survivors and unreached mutants (docs/mutation-testing.md).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../src/store/database.js';
import { evictImages } from '../src/store/eviction.js';
import {
  classifyBlobs,
  keptManifests,
  loadManifestGraph,
  pinnedManifests,
  type BlobKeeping,
} from '../src/store/pinned-content.js';
import { blobRows, blobsOf, GraphStore, keyOf, manifestRows, setLastRead } from './support/graph-store.js';
import { content } from './support/store-content.js';

let root: string;
let db: Db | undefined;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'wharf-pinned-graph-'));
});
afterEach(async () => {
  db?.close();
  db = undefined;
  await rm(root, { recursive: true, force: true });
});

/** A map's lists sorted, as a plain object: the order of rows is not a promise. */
function sortedLists(map: Map<string, string[]>): Record<string, string[]> {
  return Object.fromEntries([...map].map(([k, list]) => [k, [...list].sort()]));
}

describe('the manifest graph', () => {
  it('links indexes to the platforms present, and subjects to their referrers present', async () => {
    const store = await GraphStore.open(root);
    const repo = 'mirror/app';
    const a = await store.image(repo, 'a', 'fetched');
    const b = await store.image(repo, 'b', 'fetched');
    const index = await store.index(repo, [a.manifest, b.manifest], 'fetched', 'v1');
    const signature = await store.image(repo, 's', 'fetched', { subject: a.manifest });
    // A pushed referrer of a manifest this store does not hold.
    const orphan = await store.image(repo, 'x', 'pushed', { subject: content('a manifest not stored') });
    db = store.openIndex();
    const key = (item: { digest: string }): string => keyOf(db as Db, repo, item);

    const graph = loadManifestGraph(db);
    expect(graph.nodes.map((n) => `${n.repository} ${n.digest} ${n.source}`).sort()).toEqual(
      [
        `${repo} ${a.manifest.digest} fetched`,
        `${repo} ${b.manifest.digest} fetched`,
        `${repo} ${index.digest} fetched`,
        `${repo} ${signature.manifest.digest} fetched`,
        `${repo} ${orphan.manifest.digest} pushed`,
      ].sort(),
    );
    expect([...graph.byKey.keys()].sort()).toEqual(
      [a.manifest, b.manifest, index, signature.manifest, orphan.manifest].map(key).sort(),
    );
    expect(sortedLists(graph.children)).toEqual({ [key(index)]: [key(a.manifest), key(b.manifest)].sort() });
    expect(sortedLists(graph.parents)).toEqual({ [key(a.manifest)]: [key(index)], [key(b.manifest)]: [key(index)] });
    // The orphan's subject is not here: no entry for it.
    expect(sortedLists(graph.referrers)).toEqual({ [key(a.manifest)]: [key(signature.manifest)] });

    // Only the pushed orphan is pinned: nothing it names is here, and nothing else is pinned.
    expect([...pinnedManifests(graph, () => false)]).toEqual([key(orphan.manifest)]);
  });
});

describe('pinned manifests', () => {
  it('are the pushed ones, store.pin matches, and what they hold: children, referrers, subjects', async () => {
    const store = await GraphStore.open(root);
    // A pushed signature on a fetched image: the subject is pinned with it.
    const signed = await store.image('mirror/signed', 'signed', 'fetched', { tag: 'v1' });
    const signature = await store.image('mirror/signed', 'signature', 'pushed', { subject: signed.manifest });
    // A fetched attestation of a pushed image: pinned as its subject is.
    const own = await store.image('mirror/attested', 'own', 'pushed', { tag: 'v1' });
    const attestation = await store.image('mirror/attested', 'attestation', 'fetched', { subject: own.manifest });
    // A pushed index over two fetched platforms: both pinned.
    const amd = await store.image('mirror/multi', 'amd', 'fetched');
    const arm = await store.image('mirror/multi', 'arm', 'fetched');
    const multi = await store.index('mirror/multi', [amd.manifest, arm.manifest], 'pushed', 'v1');
    // A store.pin repository's fetched image.
    const kept = await store.image('mirror/kept', 'kept', 'fetched', { tag: 'v1' });
    // Plain mirrored content: not pinned.
    await store.image('mirror/plain', 'plain', 'fetched', { tag: 'v1' });
    await store.image('mirror/plain', 'plain too', 'fetched', { tag: 'v2' });
    db = store.openIndex();
    const key = (repo: string, item: { digest: string }): string => keyOf(db as Db, repo, item);

    const asked: string[] = [];
    const isPinned = (repository: string): boolean => {
      asked.push(repository);
      return repository === 'mirror/kept';
    };
    const pinned = pinnedManifests(loadManifestGraph(db), isPinned);
    expect([...pinned].sort()).toEqual(
      [
        key('mirror/signed', signed.manifest),
        key('mirror/signed', signature.manifest),
        key('mirror/attested', own.manifest),
        key('mirror/attested', attestation.manifest),
        key('mirror/multi', amd.manifest),
        key('mirror/multi', arm.manifest),
        key('mirror/multi', multi),
        key('mirror/kept', kept.manifest),
      ].sort(),
    );
    // store.pin's patterns are matched once per repository, not once per manifest.
    expect(asked.sort()).toEqual(['mirror/attested', 'mirror/kept', 'mirror/multi', 'mirror/plain', 'mirror/signed']);
  });

  it('eviction keeps an index above a pinned platform, and the referrers of what it keeps', async () => {
    const store = await GraphStore.open(root);
    const repo = 'mirror/mixed';
    const pushed = await store.image(repo, 'pushed platform', 'pushed');
    const fetched = await store.image(repo, 'fetched platform', 'fetched');
    const index = await store.index(repo, [pushed.manifest, fetched.manifest], 'fetched', 'v1');
    const indexSignature = await store.image(repo, 'index signature', 'fetched', { subject: index });
    // Fetched and unrelated: neither pinned nor kept.
    await store.image(repo, 'other', 'fetched', { tag: 'v2' });
    db = store.openIndex();
    const key = (item: { digest: string }): string => keyOf(db as Db, repo, item);

    const graph = loadManifestGraph(db);
    const pinned = pinnedManifests(graph, () => false);
    expect([...pinned]).toEqual([key(pushed.manifest)]);
    expect([...keptManifests(graph, pinned)].sort()).toEqual(
      [key(pushed.manifest), key(index), key(indexSignature.manifest)].sort(),
    );
  });
});

describe('du: each blob evictable, pinned or unreferenced, exactly as eviction then deletes', () => {
  it('classifies every blob of a store mixing pushed, fetched, store.pin and loose content', async () => {
    const store = await GraphStore.open(root);
    // Loose blobs: one linked, one linked in a store.pin repository, one whose link was deleted.
    const loose = await store.blob('loose/repo', 'a blob no manifest names');
    const pinnedLoose = await store.blob('kept/repo', 'a blob in a store.pin repository');
    const unlinked = await store.blob('loose/repo', 'a blob whose link was deleted');
    await store.unlink('loose/repo', unlinked.digest);
    // A layer another repository links on its own, and one a pushed image shares.
    const alsoLinked = await store.blob('other/repo', 'a layer linked elsewhere too');
    const shared = content('a layer shared with a pushed image');
    const fetched = await store.image('mirror/app', 'fetched', 'fetched', { shared: [shared, alsoLinked], tag: 'v1' });
    const pushed = await store.image('team/pushed', 'pushed', 'pushed', { shared: [shared], tag: 'v1' });
    // A fetched referrer of the pushed image: pinned with it.
    const attestation = await store.image('team/pushed', 'attestation', 'fetched', { subject: pushed.manifest });
    // A fetched index over a pushed and a fetched platform: the index stays (kept), so do the bytes
    // of the fetched platform's manifest it names; that platform's config and layers go.
    const pushedPlatform = await store.image('mirror/multi', 'pushed platform', 'pushed');
    const fetchedPlatform = await store.image('mirror/multi', 'fetched platform', 'fetched');
    const index = await store.index('mirror/multi', [pushedPlatform.manifest, fetchedPlatform.manifest], 'fetched');
    db = store.openIndex();
    setLastRead(db, [
      [fetched.manifest, 1000],
      [fetchedPlatform.manifest, 2000],
    ]);
    const isPinned = (repository: string): boolean => repository === 'kept/repo';

    const expected: Record<string, BlobKeeping> = {};
    const say = (keeping: BlobKeeping, digests: string[]): void => {
      for (const digest of digests) expected[digest] = keeping;
    };
    say('unreferenced', [loose.digest, unlinked.digest]);
    say('pinned', [pinnedLoose.digest, shared.digest, alsoLinked.digest]);
    say('evictable', [fetched.manifest.digest, fetched.config.digest, fetched.layers[0]?.digest as string]);
    say('pinned', [pushed.manifest.digest, ...blobsOf(pushed)]);
    say('pinned', [attestation.manifest.digest, ...blobsOf(attestation)]);
    say('pinned', [pushedPlatform.manifest.digest, ...blobsOf(pushedPlatform), index.digest]);
    say('pinned', [fetchedPlatform.manifest.digest]);
    say('evictable', [fetchedPlatform.config.digest, fetchedPlatform.layers[0]?.digest as string]);

    const keeping = classifyBlobs(db, loadManifestGraph(db), isPinned);
    expect(Object.fromEntries([...keeping].sort())).toEqual(Object.fromEntries(Object.entries(expected).sort()));
    expect(blobRows(db)).toEqual(Object.keys(expected).sort());

    // Evicting everything that may go deletes exactly the evictable blobs.
    const evictable = Object.keys(expected).filter((d) => expected[d] === 'evictable');
    const result = db.transaction(() =>
      evictImages(db as Db, { need: Number.MAX_SAFE_INTEGER, inUse: new Set(), isPinned }),
    )();
    expect(result.images).toEqual([
      { repository: 'mirror/app', digest: fetched.manifest.digest, lastUsedAt: 1000 },
      { repository: 'mirror/multi', digest: fetchedPlatform.manifest.digest, lastUsedAt: 2000 },
    ]);
    expect([...result.blobs].sort()).toEqual(evictable.sort());
    expect(blobRows(db)).toEqual(
      Object.keys(expected)
        .filter((d) => expected[d] !== 'evictable')
        .sort(),
    );
    expect(manifestRows(db)).toEqual(
      [
        `team/pushed ${pushed.manifest.digest}`,
        `team/pushed ${attestation.manifest.digest}`,
        `mirror/multi ${pushedPlatform.manifest.digest}`,
        `mirror/multi ${index.digest}`,
      ].sort(),
    );
  });
});
