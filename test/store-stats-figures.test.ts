/**
 * `wharf du` / `wharf stats` figures in process (issue 13, lifecycle scope): collectStoreStats on a
 * store built through LocalStore's own write paths (fetched, pushed and preloaded images, a blob
 * shared by three repositories under two upstreams, a loose blob, a blob no repository links), read
 * as the command reads it (openReadOnlyDatabase). Every figure is compared whole: totals, pinned /
 * cached / unreferenced, the rows by upstream and by repository and their order, the stored and
 * last-read times. stats.test.ts runs the command as a child process, which the mutation runner
 * cannot see; store-stats.test.ts checks the times only.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import { requireRepoName, type RepoName, type Tag } from '../src/oci/reference.js';
import { indexPath, openReadOnlyDatabase } from '../src/store/database.js';
import { LocalStore } from '../src/store/local-store.js';
import type { IsPinnedRepository } from '../src/store/pinned-content.js';
import { collectStoreStats, type StoreStats, type UpstreamOf, type Usage } from '../src/store/store-stats.js';
import { content, descriptorOf, imageManifest, ociTypes, type Content } from './support/store-content.js';

/** As `wharf stats` decides it: a name is mirrored when its first component is a configured upstream's. */
function upstreamsNamed(...hosts: string[]): UpstreamOf {
  return (name) => {
    const first = name.slice(0, name.indexOf('/'));
    return hosts.includes(first) ? first : undefined;
  };
}

/** A blob of exactly `size` bytes, distinct per `fill`. */
function blobOf(size: number, fill: string): Content {
  return content(Buffer.alloc(size, fill));
}

async function* chunks(bytes: Buffer): AsyncGenerator<Uint8Array> {
  yield bytes;
}

async function put(store: LocalStore, name: RepoName, blob: Content): Promise<void> {
  await store.putBlob(name, blob.digest, chunks(blob.bytes), blob.size);
}

function usage(...blobs: Content[]): Usage {
  return { blobs: blobs.length, bytes: blobs.reduce((sum, b) => sum + b.size, 0) };
}

/** Runs collectStoreStats on the index as `wharf stats` opens it. */
function statsOf(root: string, upstreamOf: UpstreamOf, isPinned?: IsPinnedRepository): StoreStats {
  const db = openReadOnlyDatabase(indexPath(root));
  try {
    // undefined: the default, as a caller without store.pin leaves it.
    return collectStoreStats(db, upstreamOf, isPinned);
  } finally {
    db.close();
  }
}

/** Writes times into the index (the store writes them as now; a year of use spreads them). */
function setTimes(root: string, times: Map<Digest, { created: number; accessed: number | null }>): void {
  const db = new Database(indexPath(root));
  try {
    const update = db.prepare<[number, number | null, string]>(
      'UPDATE blobs SET created_at = ?, accessed_at = ? WHERE digest = ?',
    );
    for (const [digest, { created, accessed }] of times) {
      if (update.run(created, accessed, digest).changes !== 1) throw new Error(`no blob row ${digest}`);
    }
  } finally {
    db.close();
  }
}

describe('store stats figures', () => {
  let root: string;
  const app = requireRepoName('mirror.test/lib/app');
  const other = requireRepoName('mirror.test/lib/other');
  const tool = requireRepoName('other.test/tool');
  const team = requireRepoName('team/app');
  const scratch = requireRepoName('team/scratch');
  const upstreamOf = upstreamsNamed('mirror.test', 'other.test');

  // Distinct sizes, so that a blob counted in the wrong place shows in the bytes.
  const c1 = blobOf(101, 'a');
  const l1 = blobOf(1000, 'b');
  const c2 = blobOf(102, 'c');
  const c3 = blobOf(103, 'd');
  const l3 = blobOf(3000, 'e');
  const c4 = blobOf(104, 'f');
  const l4 = blobOf(4000, 'g');
  const loose = blobOf(500, 'h');
  const c5 = blobOf(105, 'i');
  const unlinked = blobOf(50, 'j');
  const m1 = imageManifest(c1, [descriptorOf(l1, ociTypes.layer)]);
  const m2 = imageManifest(c2, [descriptorOf(l1, ociTypes.layer)]);
  const m3 = imageManifest(c3, [descriptorOf(l3, ociTypes.layer)]);
  const m4 = imageManifest(c4, [descriptorOf(l4, ociTypes.layer), descriptorOf(l1, ociTypes.layer)]);
  const m5 = imageManifest(c5, [descriptorOf(l4, ociTypes.layer)]);

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'wharf-stats-figures-'));
    const store = await LocalStore.open(root);
    try {
      // Mirrored, fetched: two repositories of one upstream share l1.
      await put(store, app, c1);
      await put(store, app, l1);
      await store.putFetchedManifest(
        app,
        { digest: m1.digest, mediaType: ociTypes.manifest, bytes: m1.bytes },
        'v1' as Tag,
      );
      await put(store, other, c2);
      store.linkBlob(other, l1.digest);
      await store.putFetchedManifest(
        other,
        { digest: m2.digest, mediaType: ociTypes.manifest, bytes: m2.bytes },
        'v2' as Tag,
      );
      await put(store, tool, c3);
      await put(store, tool, l3);
      await store.putFetchedManifest(
        tool,
        { digest: m3.digest, mediaType: ociTypes.manifest, bytes: m3.bytes },
        'stable' as Tag,
      );
      // Local: pushed (two tags) and preloaded; its image also holds l1, which pins it.
      await put(store, team, c4);
      await put(store, team, l4);
      store.linkBlob(team, l1.digest);
      await store.putManifest(team, 'v1' as Tag, m4.bytes, ociTypes.manifest, ['latest' as Tag]);
      await put(store, team, loose);
      const batch = store.startImport({ source: 'preloaded' });
      await batch.writeBlob({ digest: c5.digest, size: c5.size }, [c5.bytes]);
      await batch.writeManifest(team, {
        digest: m5.digest,
        mediaType: ociTypes.manifest,
        size: m5.size,
        bytes: m5.bytes,
      });
      await batch.tag(team, 'base' as Tag, m5.digest);
      await batch.commit();
      // A repository whose only blob was unlinked: the row stays, held by no repository.
      await put(store, scratch, unlinked);
      expect(await store.deleteBlob(scratch, unlinked.digest)).toBe(true);
    } finally {
      store.close();
    }
  });

  afterAll(async () => {
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  const cached = [c1, m1, c2, m2, c3, l3, m3];
  const pinned = [l1, c4, l4, m4, c5, m5];
  const unreferenced = [loose, unlinked];

  it('count each blob once in the totals, pinned, cached and unreferenced as eviction would', () => {
    const stats = statsOf(root, upstreamOf);
    expect(stats.total).toEqual(usage(...cached, ...pinned, ...unreferenced));
    expect(stats.cached).toEqual(usage(...cached));
    expect(stats.pinned).toEqual(usage(...pinned));
    expect(stats.unreferenced).toEqual(usage(...unreferenced));
  });

  it('count a shared blob in each repository and once per upstream, largest first', () => {
    const stats = statsOf(root, upstreamOf);
    expect(stats.upstreams).toEqual([
      { upstream: 'local', repositories: 1, ...usage(c4, l4, l1, m4, loose, c5, m5) },
      { upstream: 'other.test', repositories: 1, ...usage(c3, l3, m3) },
      { upstream: 'mirror.test', repositories: 2, ...usage(c1, l1, m1, c2, m2) },
    ]);
    // team/scratch holds nothing: no row.
    expect(stats.repositories).toEqual([
      {
        name: team,
        upstream: undefined,
        ...usage(c4, l4, l1, m4, loose, c5, m5),
        manifests: 2,
        tags: 3,
        tagSources: { pushed: 2, preloaded: 1 },
      },
      {
        name: tool,
        upstream: 'other.test',
        ...usage(c3, l3, m3),
        manifests: 1,
        tags: 1,
        tagSources: { fetched: 1 },
      },
      // c2 is one byte larger than c1.
      { name: other, upstream: 'mirror.test', ...usage(c2, l1, m2), manifests: 1, tags: 1, tagSources: { fetched: 1 } },
      { name: app, upstream: 'mirror.test', ...usage(c1, l1, m1), manifests: 1, tags: 1, tagSources: { fetched: 1 } },
    ]);
  });

  it('move a store.pin repository from cached to pinned; without the test, nothing is pinned by name', () => {
    const byPin = statsOf(root, upstreamOf, (name) => name === tool);
    expect(byPin.cached).toEqual(usage(c1, m1, c2, m2));
    expect(byPin.pinned).toEqual(usage(...pinned, c3, l3, m3));
    expect(byPin.unreferenced).toEqual(usage(...unreferenced));
    const without = statsOf(root, upstreamOf);
    expect(without.cached).toEqual(usage(...cached));
  });

  it('give the oldest and newest stored and read times, and how many blobs were never read', () => {
    const all = [...cached, ...pinned, ...unreferenced];
    // Spread over the blobs in an order of their own (rows come in digest order).
    const times = new Map(
      all.map((blob, i) => [
        blob.digest,
        { created: 10_000 + ((i * 7) % all.length) * 100, accessed: null as number | null },
      ]),
    );
    const read = new Map<Content, number>([
      [l3, 50_000],
      [c1, 40_000],
      [loose, 70_000],
      [m4, 60_000],
    ]);
    for (const [blob, at] of read)
      times.set(blob.digest, { created: times.get(blob.digest)?.created ?? 0, accessed: at });
    setTimes(root, times);
    const created = [...times.values()].map((t) => t.created);
    const stats = statsOf(root, upstreamOf);
    expect(stats.stored).toEqual({ oldest: Math.min(...created), newest: Math.max(...created) });
    expect(stats.stored).toEqual({ oldest: 10_000, newest: 10_000 + (all.length - 1) * 100 });
    expect(stats.accessed).toEqual({ oldest: 40_000, newest: 70_000, neverRead: all.length - read.size });
  });
});

describe('store stats ordering', () => {
  let root: string;
  // Repositories come out of the index as made (b, a, c, z), blobs by digest (z, c, a, b): neither is
  // the order asked for (bytes, then name: z, a, b, c).
  const repos = [
    { name: requireRepoName('b.test/x'), blob: blobOf(100, 'k') },
    { name: requireRepoName('a.test/x'), blob: blobOf(100, 'l') },
    { name: requireRepoName('c.test/x'), blob: blobOf(40, 'm') },
    { name: requireRepoName('z.test/x'), blob: blobOf(300, 'n') },
  ];

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'wharf-stats-order-'));
    const store = await LocalStore.open(root);
    try {
      for (const { name, blob } of repos) await put(store, name, blob);
    } finally {
      store.close();
    }
  });

  afterAll(async () => {
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  it('sort upstreams and repositories by bytes, then by name', () => {
    const stats = statsOf(root, upstreamsNamed('a.test', 'b.test', 'c.test', 'z.test'));
    expect(stats.upstreams.map((u) => [u.upstream, u.bytes])).toEqual([
      ['z.test', 300],
      ['a.test', 100],
      ['b.test', 100],
      ['c.test', 40],
    ]);
    expect(stats.repositories.map((r) => [r.name, r.bytes])).toEqual([
      ['z.test/x', 300],
      ['a.test/x', 100],
      ['b.test/x', 100],
      ['c.test/x', 40],
    ]);
  });

  it('an empty store: zeros, no rows, no times, no reads', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'wharf-stats-empty-'));
    try {
      (await LocalStore.open(empty)).close();
      expect(statsOf(empty, upstreamsNamed())).toEqual({
        total: { blobs: 0, bytes: 0 },
        pinned: { blobs: 0, bytes: 0 },
        cached: { blobs: 0, bytes: 0 },
        unreferenced: { blobs: 0, bytes: 0 },
        upstreams: [],
        repositories: [],
        stored: undefined,
        accessed: { oldest: undefined, newest: undefined, neverRead: 0 },
      });
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
