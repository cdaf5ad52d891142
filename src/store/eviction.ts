/**
 * @module store/eviction
 * Least-recently-used eviction of mirrored images, reference-aware
 * (docs/decisions/0008-gc-and-eviction.md). The unit is an image: one
 * platform's manifest with its config and layers, or an index none of whose
 * platforms is here. Evicting it deletes the manifest (its tags and referrers
 * with it), the links and blobs nothing that stays refers to, and each index
 * above it that has no platform left: never half an image, never a blob
 * another manifest still names.
 *
 * Never evicted: pinned manifests (pinned-content.ts: not fetched from an
 * upstream, in a store.pin repository, below a pinned index, or tied to a
 * pinned referrer or subject), and any image whose manifest or blobs are in use
 * (content-guard.ts). `wharf du` counts with the same rules (classifyBlobs).
 * Synchronous: run it inside one transaction; unlink the returned files after.
 */
import type { Digest } from '../oci/digest.js';
import { manifestKindOf } from '../oci/media-types.js';
import type { Db } from './database.js';
import {
  loadManifestGraph,
  manifestKey as key,
  pinnedManifests,
  type IsPinnedRepository,
  type ManifestNode,
} from './pinned-content.js';

export interface EvictionOptions {
  /** Stop once this many bytes of blob files are freed. */
  need: number;
  inUse: ReadonlySet<string>;
  isPinned: IsPinnedRepository;
}

export interface EvictedImage {
  repository: string;
  digest: Digest;
  lastUsedAt: number;
}

export interface EvictionResult {
  images: EvictedImage[];
  /** Blob rows deleted: their files are to be unlinked. */
  blobs: Digest[];
  bytes: number;
}

export function evictImages(db: Db, options: EvictionOptions): EvictionResult {
  const q = statements(db);
  const graph = loadManifestGraph(db);
  const { byKey, parents, children } = graph;
  const pinned = pinnedManifests(graph, options.isPinned);
  const units = graph.nodes
    .filter((row) => {
      // A referrer goes with its subject.
      if (row.subject !== null && byKey.has(key(row.repository_id, row.subject))) return false;
      const isIndex = manifestKindOf(row.media_type) === 'index';
      return !isIndex || (children.get(key(row.repository_id, row.digest)) ?? []).length === 0;
    })
    .filter((row) => !pinned.has(key(row.repository_id, row.digest)))
    .sort((a, b) => a.used_at - b.used_at || a.digest.localeCompare(b.digest));

  const result: EvictionResult = { images: [], blobs: [], bytes: 0 };
  for (const unit of units) {
    if (result.bytes >= options.need) break;
    if (!q.exists.get(unit.repository_id, unit.digest)) continue;
    if (isInUse(q, unit, options.inUse)) continue;
    const doomed = [unit.digest];
    // Each index above that would have no platform left goes too (unless it is in use).
    const stack = [...(parents.get(key(unit.repository_id, unit.digest)) ?? [])];
    const removeManifest = (repositoryId: number, digest: string): void => {
      for (const referrer of q.referrers.all(repositoryId, digest)) removeManifest(repositoryId, referrer.digest);
      const refs = q.references.all(repositoryId, digest).map((r) => r.digest);
      q.deleteManifest.run(repositoryId, digest);
      for (const ref of refs) {
        q.unlinkIfUnreferenced.run({ repositoryId, digest: ref });
        freeBlob(q, ref, options.inUse, result);
      }
      freeBlob(q, digest, options.inUse, result);
    };
    for (const digest of doomed) removeManifest(unit.repository_id, digest);
    while (stack.length > 0) {
      const parent = byKey.get(stack.pop() as string);
      // Stryker disable next-line LogicalOperator: parent is never undefined (a parent key comes from a manifest_references row: its manifest and that manifest's blob row exist, by foreign key), and a parent visited again after its removal changes nothing (childCount 0, no referrer nor reference left, its blob already tried).
      if (parent === undefined || !q.exists.get(parent.repository_id, parent.digest)) continue;
      // Stryker disable next-line OptionalChaining: `SELECT count(*)` without GROUP BY returns exactly one row.
      if (q.childCount.get(parent.repository_id, parent.digest)?.n !== 0) continue;
      if (options.inUse.has(parent.digest)) continue;
      removeManifest(parent.repository_id, parent.digest);
      // Stryker disable next-line ArrayDeclaration: a key no manifest has: byKey.get gives undefined, and the check above skips it.
      stack.push(...(parents.get(key(parent.repository_id, parent.digest)) ?? []));
    }
    result.images.push({ repository: unit.repository, digest: unit.digest, lastUsedAt: unit.used_at });
  }
  return result;
}

function statements(db: Db) {
  return {
    exists: db.prepare<[number, string], { one: number }>(
      'SELECT 1 AS one FROM manifests WHERE repository_id = ? AND digest = ?',
    ),
    references: db.prepare<[number, string], { digest: string }>(
      'SELECT digest FROM manifest_references WHERE repository_id = ? AND manifest_digest = ?',
    ),
    referrers: db.prepare<[number, string], { digest: string }>(
      'SELECT digest FROM manifests WHERE repository_id = ? AND subject = ?',
    ),
    childCount: db.prepare<[number, string], { n: number }>(
      `SELECT count(*) AS n FROM manifest_references x
       JOIN manifests c ON c.repository_id = x.repository_id AND c.digest = x.digest
       WHERE x.repository_id = ? AND x.manifest_digest = ?`,
    ),
    deleteManifest: db.prepare('DELETE FROM manifests WHERE repository_id = ? AND digest = ?'),
    unlinkIfUnreferenced: db.prepare(
      `DELETE FROM repository_blobs WHERE repository_id = @repositoryId AND digest = @digest
       AND NOT EXISTS (SELECT 1 FROM manifest_references WHERE repository_id = @repositoryId AND digest = @digest)`,
    ),
    blobSize: db.prepare<[string], { size: number }>('SELECT size FROM blobs WHERE digest = ?'),
    deleteBlob: db.prepare(
      `DELETE FROM blobs WHERE digest = @digest
       AND NOT EXISTS (SELECT 1 FROM repository_blobs WHERE digest = @digest)
       AND NOT EXISTS (SELECT 1 FROM manifests WHERE digest = @digest)
       AND NOT EXISTS (SELECT 1 FROM manifest_references WHERE digest = @digest)`,
    ),
  };
}

type Statements = ReturnType<typeof statements>;

/** An image is in use when its manifest or any blob it names was read (or written) within the in-use window. */
function isInUse(q: Statements, unit: ManifestNode, inUse: ReadonlySet<string>): boolean {
  if (inUse.has(unit.digest)) return true;
  return q.references.all(unit.repository_id, unit.digest).some((r) => inUse.has(r.digest));
}

/** Deletes a blob row nothing refers to any more; its bytes count as freed. */
function freeBlob(q: Statements, digest: string, inUse: ReadonlySet<string>, result: EvictionResult): void {
  if (inUse.has(digest)) return;
  const size = q.blobSize.get(digest)?.size;
  if (size === undefined) return;
  if (q.deleteBlob.run({ digest }).changes === 0) return;
  result.blobs.push(digest as Digest);
  result.bytes += size;
}
