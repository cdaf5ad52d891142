/**
 * @module store/gc-plan
 * The mark phase of gc, as set operations on the index (temp tables, so it
 * also runs on a read-only connection: `wharf gc --dry-run` beside serve).
 * What goes, all last created and last read before `cutoff`, none in use:
 *
 * 1. untagged manifests: no tag, no manifest that stays refers to them (an
 *    index, in the same repository), and no subject that stays (a referrer
 *    lives as long as its subject); repeated until nothing more goes, so an
 *    untagged index takes its children with it;
 * 2. repository links no manifest that stays refers to (a pushed blob whose
 *    manifest never came, or was deleted);
 * 3. blobs nothing refers to any more: no link, no manifest row of that
 *    digest, no reference from a manifest that stays.
 *
 * Repositories matched by a pin pattern keep everything. `applyGcPlan` deletes
 * the rows; run both in one synchronous step (one transaction) in a serving
 * process, so no request can change the index between them.
 */
import type { Digest } from '../oci/digest.js';
import type { Db } from './database.js';

export interface GcPlanOptions {
  /** Nothing created or read at or after this time (unix ms) goes. */
  cutoff: number;
  /** Digests in use (content-guard.ts): never go. */
  inUse: ReadonlySet<string>;
  /** Repositories whose content is pinned (store.pin). */
  isPinned: (repository: string) => boolean;
}

export interface GcManifest {
  repository: string;
  digest: Digest;
  size: number;
}

export interface GcLink {
  repository: string;
  digest: Digest;
}

export interface GcBlob {
  digest: Digest;
  size: number;
}

export interface GcPlan {
  manifests: GcManifest[];
  links: GcLink[];
  blobs: GcBlob[];
  /** Bytes of the blob files that go (manifests are blob files too). */
  bytes: number;
}

const setupSql = `
  CREATE TEMP TABLE IF NOT EXISTS gc_keep (digest TEXT PRIMARY KEY) WITHOUT ROWID;
  CREATE TEMP TABLE IF NOT EXISTS gc_pinned (repository_id INTEGER PRIMARY KEY);
  CREATE TEMP TABLE IF NOT EXISTS gc_manifests (repository_id INTEGER, digest TEXT, PRIMARY KEY (repository_id, digest)) WITHOUT ROWID;
  CREATE TEMP TABLE IF NOT EXISTS gc_links (repository_id INTEGER, digest TEXT, PRIMARY KEY (repository_id, digest)) WITHOUT ROWID;
  DELETE FROM gc_keep; DELETE FROM gc_pinned; DELETE FROM gc_manifests; DELETE FROM gc_links;`;

/** "The manifest x.manifest_digest of x's repository stays" (is not marked). */
const staysRef = `NOT EXISTS (SELECT 1 FROM gc_manifests g WHERE g.repository_id = x.repository_id AND g.digest = x.manifest_digest)`;

/** Not read, not created at or after :cutoff (digest column named by `d`). */
const old = (d: string, created: string): string =>
  `${created} < :cutoff AND NOT EXISTS (SELECT 1 FROM blobs a WHERE a.digest = ${d} AND a.accessed_at >= :cutoff)
   AND ${d} NOT IN (SELECT digest FROM gc_keep)`;

const markManifestsSql = `
  INSERT OR IGNORE INTO gc_manifests (repository_id, digest)
  SELECT m.repository_id, m.digest FROM manifests m
  WHERE m.repository_id NOT IN (SELECT repository_id FROM gc_pinned)
    AND NOT EXISTS (SELECT 1 FROM gc_manifests g WHERE g.repository_id = m.repository_id AND g.digest = m.digest)
    AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = m.repository_id AND t.digest = m.digest)
    AND NOT EXISTS (SELECT 1 FROM manifest_references x
                    WHERE x.repository_id = m.repository_id AND x.digest = m.digest AND ${staysRef})
    AND (m.subject IS NULL OR NOT EXISTS (
          SELECT 1 FROM manifests s WHERE s.repository_id = m.repository_id AND s.digest = m.subject
          AND NOT EXISTS (SELECT 1 FROM gc_manifests g WHERE g.repository_id = s.repository_id AND g.digest = s.digest)))
    AND ${old('m.digest', 'm.created_at')}`;

const markLinksSql = `
  INSERT OR IGNORE INTO gc_links (repository_id, digest)
  SELECT l.repository_id, l.digest FROM repository_blobs l
  WHERE l.repository_id NOT IN (SELECT repository_id FROM gc_pinned)
    AND NOT EXISTS (SELECT 1 FROM manifest_references x
                    WHERE x.repository_id = l.repository_id AND x.digest = l.digest AND ${staysRef})
    AND ${old('l.digest', 'l.created_at')}`;

const blobsSql = `
  SELECT b.digest, b.size FROM blobs b
  WHERE NOT EXISTS (SELECT 1 FROM repository_blobs l WHERE l.digest = b.digest
                    AND NOT EXISTS (SELECT 1 FROM gc_links g WHERE g.repository_id = l.repository_id AND g.digest = l.digest))
    AND NOT EXISTS (SELECT 1 FROM manifests m WHERE m.digest = b.digest
                    AND NOT EXISTS (SELECT 1 FROM gc_manifests g WHERE g.repository_id = m.repository_id AND g.digest = m.digest))
    AND NOT EXISTS (SELECT 1 FROM manifest_references x WHERE x.digest = b.digest AND ${staysRef})
    AND ${old('b.digest', 'b.created_at')}
  ORDER BY b.digest`;

export function planGc(db: Db, options: GcPlanOptions): GcPlan {
  db.exec(setupSql);
  const keep = db.prepare('INSERT OR IGNORE INTO gc_keep (digest) VALUES (?)');
  for (const digest of options.inUse) keep.run(digest);
  const pin = db.prepare('INSERT INTO gc_pinned (repository_id) VALUES (?)');
  for (const repo of db.prepare<[], { id: number; name: string }>('SELECT id, name FROM repositories').all()) {
    if (options.isPinned(repo.name)) pin.run(repo.id);
  }
  const params = { cutoff: options.cutoff };
  const markManifests = db.prepare(markManifestsSql);
  // Each round frees the children of what the last one marked; bounded by the depth of nesting.
  while (markManifests.run(params).changes > 0);
  db.prepare(markLinksSql).run(params);
  const manifests = db
    .prepare<[], GcManifest>(
      `SELECT r.name AS repository, g.digest, m.size FROM gc_manifests g
       JOIN repositories r ON r.id = g.repository_id
       JOIN manifests m ON m.repository_id = g.repository_id AND m.digest = g.digest ORDER BY r.name, g.digest`,
    )
    .all();
  const links = db
    .prepare<[], GcLink>(
      `SELECT r.name AS repository, g.digest FROM gc_links g JOIN repositories r ON r.id = g.repository_id
       ORDER BY r.name, g.digest`,
    )
    .all();
  const blobs = db.prepare<{ cutoff: number }, GcBlob>(blobsSql).all(params);
  return { manifests, links, blobs, bytes: blobs.reduce((sum, b) => sum + b.size, 0) };
}

/** Deletes the planned rows (tags and references cascade with their manifest); call in the plan's transaction. */
export function applyGcPlan(db: Db): void {
  db.exec(`
    DELETE FROM manifests WHERE (repository_id, digest) IN (SELECT repository_id, digest FROM gc_manifests);
    DELETE FROM repository_blobs WHERE (repository_id, digest) IN (SELECT repository_id, digest FROM gc_links);`);
}

/** Deletes one planned blob row; false when something came to refer to it (it then stays). */
export function deleteGcBlob(db: Db, digest: Digest): boolean {
  return (
    db
      .prepare(
        `DELETE FROM blobs WHERE digest = @digest
         AND NOT EXISTS (SELECT 1 FROM repository_blobs WHERE digest = @digest)
         AND NOT EXISTS (SELECT 1 FROM manifests WHERE digest = @digest)
         AND NOT EXISTS (SELECT 1 FROM manifest_references WHERE digest = @digest)`,
      )
      .run({ digest }).changes > 0
  );
}
