/**
 * @module store/blob-holders
 * Who holds a blob: the repositories that link it, that keep a manifest whose
 * bytes it is, and the tags that reach it through manifests and indexes (a tag
 * on an index reaches its child manifests' layers). Repair uses it to say what a
 * corrupt blob takes down, and whether it can come back from an upstream (only
 * fetched tags reach it) or was pushed or imported (it cannot).
 */
import type { Db } from './database.js';
import type { Digest } from '../oci/digest.js';
import type { TagSource } from './store-index.js';

export interface HoldingTag {
  repository: string;
  tag: string;
  source: TagSource;
}

export interface BlobHolders {
  /** Repositories linking the blob (it is served from them as a blob). */
  links: string[];
  /** Repositories keeping a manifest whose bytes are this blob. */
  manifests: string[];
  /** Tags from which the blob is reachable, directly or through an index. */
  tags: HoldingTag[];
}

/** Manifests (repository, digest) that are the blob or reach it, walked up through manifest_references. */
const reachingManifests = `
  WITH RECURSIVE up(repository_id, digest) AS (
    SELECT repository_id, digest FROM manifests WHERE digest = :digest
    UNION SELECT repository_id, manifest_digest FROM manifest_references WHERE digest = :digest
    UNION SELECT mr.repository_id, mr.manifest_digest FROM manifest_references mr
      JOIN up ON mr.repository_id = up.repository_id AND mr.digest = up.digest
  )`;

export function findBlobHolders(db: Db, digest: Digest): BlobHolders {
  const links = db
    .prepare<{ digest: string }, { name: string }>(
      `SELECT r.name FROM repository_blobs l JOIN repositories r ON r.id = l.repository_id
       WHERE l.digest = :digest ORDER BY r.name`,
    )
    .all({ digest })
    .map((row) => row.name);
  const manifests = db
    .prepare<{ digest: string }, { name: string }>(
      `SELECT r.name FROM manifests m JOIN repositories r ON r.id = m.repository_id
       WHERE m.digest = :digest ORDER BY r.name`,
    )
    .all({ digest })
    .map((row) => row.name);
  const tags = db
    .prepare<{ digest: string }, HoldingTag>(
      `${reachingManifests}
       SELECT DISTINCT r.name AS repository, t.name AS tag, t.source AS source FROM up
       JOIN tags t ON t.repository_id = up.repository_id AND t.digest = up.digest
       JOIN repositories r ON r.id = up.repository_id ORDER BY r.name, t.name`,
    )
    .all({ digest });
  return { links, manifests, tags };
}

/** Every repository named in the holders, once. */
export function holderRepositories(holders: BlobHolders): string[] {
  return [...new Set([...holders.links, ...holders.manifests, ...holders.tags.map((t) => t.repository)])].sort();
}
