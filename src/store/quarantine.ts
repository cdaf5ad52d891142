/**
 * @module store/quarantine
 * What happens to a blob whose file failed verification (or is gone): the file
 * moves to quarantine/ (blob-files.ts) and every index row that says the store
 * has those bytes goes, in one transaction: the blob row, its repository links,
 * and the manifests whose bytes it is (their tags and references with them, by
 * ON DELETE CASCADE). Manifests that merely reference the blob stay: they say
 * what an image needs, not what is here.
 *
 * After that a mirrored blob is simply not cached any more, so the next pull
 * fetches it again from the upstream; a pushed or imported one is unknown
 * (BLOB_UNKNOWN) until someone pushes it again. The caller reports which
 * (see findBlobHolders): nothing is dropped without a line saying so.
 */
import type { Digest } from '../oci/digest.js';
import type { BlobHolders } from './blob-holders.js';
import type { Db } from './database.js';

export type CorruptionReason = 'digest-mismatch' | 'size-mismatch' | 'missing-file';

export interface QuarantineResult {
  digest: Digest;
  reason: CorruptionReason;
  /** What found it: a verified read in serve, serve's background scrub, or `verify --repair`. */
  foundBy: 'read' | 'scrub' | 'repair';
  /** Where the file went; undefined when there was no file to move. */
  movedTo: string | undefined;
  /** Who held the blob before its rows went. */
  holders: BlobHolders;
  /** Tags removed with the manifests whose bytes the blob was ("name:tag"). */
  droppedTags: string[];
  /** Manifests whose bytes the blob was, removed ("name@digest"). */
  droppedManifests: string[];
}

/**
 * Removes every row that says the store holds `digest`; what went, for the report, and the bytes
 * of the blob row removed (0 if there was none). Call it through Lifecycle.quarantine, which
 * keeps the index's stored-bytes count and the deletion protocol (content-guard.ts).
 */
export function dropBlobRows(
  db: Db,
  digest: Digest,
): Pick<QuarantineResult, 'droppedTags' | 'droppedManifests'> & { bytes: number } {
  return db.transaction(() => {
    const droppedTags = db
      .prepare<[string], { name: string }>(
        `SELECT r.name || ':' || t.name AS name FROM tags t JOIN repositories r ON r.id = t.repository_id
         WHERE t.digest = ? ORDER BY 1`,
      )
      .all(digest)
      .map((row) => row.name);
    const droppedManifests = db
      .prepare<[string], { name: string }>(
        `SELECT r.name || '@' || m.digest AS name FROM manifests m JOIN repositories r ON r.id = m.repository_id
         WHERE m.digest = ? ORDER BY 1`,
      )
      .all(digest)
      .map((row) => row.name);
    db.prepare('DELETE FROM manifests WHERE digest = ?').run(digest);
    db.prepare('DELETE FROM repository_blobs WHERE digest = ?').run(digest);
    const bytes = db
      .prepare<[string], { size: number }>('DELETE FROM blobs WHERE digest = ? RETURNING size')
      .get(digest);
    return { droppedTags, droppedManifests, bytes: bytes?.size ?? 0 };
  })();
}
