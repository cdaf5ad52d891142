/**
 * @module store/store-index
 * The SQLite side of the store: prepared statements over the tables of
 * migrations/0001-init.sql. Synchronous (better-sqlite3); callers hold no
 * transaction across an await.
 */
import type { Db } from './database.js';
import { LookupCache } from './lookup-cache.js';
import type { Digest } from '../oci/digest.js';
import type { ManifestInfo } from '../oci/image-source.js';
import type { RepoName } from '../oci/reference.js';

export interface ManifestRow {
  digest: Digest;
  media_type: string;
  size: number;
  subject: string | null;
  artifact_type: string | null;
  annotations: string | null;
}

/** Where a tag came from: pushed by a client, imported, preloaded, or fetched from an upstream. */
export type TagSource = 'pushed' | 'imported' | 'preloaded' | 'fetched';

export interface TagRow {
  digest: Digest;
  source: TagSource;
  confirmed_at: number | null;
}

export interface UploadRow {
  id: string;
  repository_id: number;
  size: number;
  created_at: number;
}

export interface NewManifest {
  digest: Digest;
  mediaType: string;
  size: number;
  subject: Digest | undefined;
  artifactType: string | undefined;
  annotations: Record<string, string> | undefined;
  references: Digest[];
}

export class StoreIndex {
  private readonly q;
  private readonly lookups: LookupCache<ManifestRow>;
  /** Bytes of the blob files the index holds: counted at open, then kept by every insert and delete here. */
  storedBytes: number;

  constructor(private readonly db: Db) {
    this.lookups = new LookupCache<ManifestRow>(db);
    this.storedBytes =
      // Stryker disable next-line OptionalChaining: an aggregate without GROUP BY always returns one row.
      db.prepare<[], { bytes: number | null }>('SELECT sum(size) AS bytes FROM blobs').get()?.bytes ?? 0;
    this.q = {
      repoId: db.prepare<[string], { id: number }>('SELECT id FROM repositories WHERE name = ?'),
      insertRepo: db.prepare('INSERT INTO repositories (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING'),
      blobSize: db.prepare<[string], { size: number }>('SELECT size FROM blobs WHERE digest = ?'),
      insertBlob: db.prepare('INSERT INTO blobs (digest, size, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING'),
      linkedBlob: db.prepare<[string, string], { size: number }>(
        `SELECT b.size FROM repository_blobs l JOIN repositories r ON r.id = l.repository_id
         JOIN blobs b ON b.digest = l.digest WHERE r.name = ? AND l.digest = ?`,
      ),
      link: db.prepare(
        'INSERT INTO repository_blobs (repository_id, digest, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
      ),
      holders: db.prepare<[string], { name: string }>(
        `SELECT r.name FROM repository_blobs l JOIN repositories r ON r.id = l.repository_id
         WHERE l.digest = ? ORDER BY r.name LIMIT 1000`,
      ),
      unlink: db.prepare(
        'DELETE FROM repository_blobs WHERE repository_id = (SELECT id FROM repositories WHERE name = ?) AND digest = ?',
      ),
      manifestByDigest: db.prepare<[string, string], ManifestRow>(
        `SELECT m.digest, m.media_type, m.size, m.subject, m.artifact_type, m.annotations FROM manifests m
         JOIN repositories r ON r.id = m.repository_id WHERE r.name = ? AND m.digest = ?`,
      ),
      manifestByTag: db.prepare<[string, string], ManifestRow>(
        `SELECT m.digest, m.media_type, m.size, m.subject, m.artifact_type, m.annotations FROM tags t
         JOIN repositories r ON r.id = t.repository_id
         JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.digest
         WHERE r.name = ? AND t.name = ?`,
      ),
      // A fetched manifest never turns pushed content into evictable content; a push or import of
      // fetched content pins it (migrations/0002-lifecycle.sql).
      insertManifest: db.prepare(
        `INSERT INTO manifests (repository_id, digest, media_type, size, subject, artifact_type, annotations, created_at, source)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (repository_id, digest) DO UPDATE SET source = excluded.source
         WHERE manifests.source = 'fetched' AND excluded.source <> 'fetched'`,
      ),
      insertReference: db.prepare(
        'INSERT INTO manifest_references (repository_id, manifest_digest, digest) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
      ),
      upsertTag: db.prepare(
        `INSERT INTO tags (repository_id, name, digest, source, updated_at, confirmed_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (repository_id, name) DO UPDATE SET digest = excluded.digest, source = excluded.source,
         updated_at = excluded.updated_at, confirmed_at = excluded.confirmed_at`,
      ),
      tagRow: db.prepare<[string, string], TagRow>(
        `SELECT t.digest, t.source, t.confirmed_at FROM tags t JOIN repositories r ON r.id = t.repository_id
         WHERE r.name = ? AND t.name = ?`,
      ),
      confirmTag: db.prepare(
        'UPDATE tags SET confirmed_at = ? WHERE repository_id = (SELECT id FROM repositories WHERE name = ?) AND name = ?',
      ),
      deleteTag: db.prepare(
        'DELETE FROM tags WHERE repository_id = (SELECT id FROM repositories WHERE name = ?) AND name = ?',
      ),
      deleteManifest: db.prepare(
        'DELETE FROM manifests WHERE repository_id = (SELECT id FROM repositories WHERE name = ?) AND digest = ?',
      ),
      tags: db.prepare<[number, string, number], { name: string }>(
        'SELECT name FROM tags WHERE repository_id = ? AND name > ? ORDER BY name LIMIT ?',
      ),
      repositories: db.prepare<[string, number], { name: string }>(
        `SELECT name FROM repositories r WHERE name > ?
         AND (EXISTS (SELECT 1 FROM manifests m WHERE m.repository_id = r.id)
           OR EXISTS (SELECT 1 FROM repository_blobs l WHERE l.repository_id = r.id))
         ORDER BY name LIMIT ?`,
      ),
      referrers: db.prepare<[string, string], ManifestRow>(
        `SELECT m.digest, m.media_type, m.size, m.subject, m.artifact_type, m.annotations FROM manifests m
         JOIN repositories r ON r.id = m.repository_id WHERE r.name = ? AND m.subject = ? ORDER BY m.created_at, m.digest`,
      ),
      anyBlob: db.prepare<[string], { size: number }>('SELECT size FROM blobs WHERE digest = ?'),
      insertUpload: db.prepare(
        'INSERT INTO uploads (id, repository_id, size, created_at, updated_at) VALUES (?, ?, 0, ?, ?)',
      ),
      upload: db.prepare<[string, string], UploadRow>(
        `SELECT u.id, u.repository_id, u.size, u.created_at FROM uploads u
         JOIN repositories r ON r.id = u.repository_id WHERE u.id = ? AND r.name = ?`,
      ),
      setUploadSize: db.prepare('UPDATE uploads SET size = ?, updated_at = ? WHERE id = ?'),
      deleteUpload: db.prepare('DELETE FROM uploads WHERE id = ?'),
      expiredUploads: db.prepare<[number], { id: string }>('SELECT id FROM uploads WHERE updated_at < ?'),
      idleEmptyUploads: db.prepare<[number], { id: string }>(
        'SELECT id FROM uploads WHERE size = 0 AND updated_at < ?',
      ),
      countUploads: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM uploads'),
      uploadIds: db.prepare<[], { id: string }>('SELECT id FROM uploads'),
      uploadSize: db.prepare<[string], { size: number }>('SELECT size FROM uploads WHERE id = ?'),
    };
  }

  /** Runs fn in one transaction (the methods it calls nest as savepoints): all its rows or none. */
  runInTransaction<T>(fn: () => T): T {
    this.lookups.clear();
    return this.db.transaction(fn)();
  }

  ensureRepository(name: RepoName): number {
    this.q.insertRepo.run(name, Date.now());
    return this.repositoryId(name) as number;
  }

  repositoryId(name: RepoName): number | undefined {
    return this.q.repoId.get(name)?.id;
  }

  /** Records a verified blob file and links it into a repository. */
  addBlob(name: RepoName, digest: Digest, size: number): void {
    const now = Date.now();
    this.db.transaction(() => {
      this.insertBlob(digest, size, now);
      this.q.link.run(this.ensureRepository(name), digest, now);
    })();
  }

  /** Records a verified file that no repository links to yet (a manifest's bytes). */
  addContent(digest: Digest, size: number): void {
    this.insertBlob(digest, size, Date.now());
  }

  /** gc and eviction deleted rows of this many bytes. */
  forgetBytes(bytes: number): void {
    this.storedBytes -= bytes;
  }

  private insertBlob(digest: Digest, size: number, now: number): void {
    if (this.q.insertBlob.run(digest, size, now).changes > 0) this.storedBytes += size;
  }

  linkBlob(name: RepoName, digest: Digest): void {
    this.q.link.run(this.ensureRepository(name), digest, Date.now());
  }

  linkedBlobSize(name: RepoName, digest: Digest): number | undefined {
    return this.q.linkedBlob.get(name, digest)?.size;
  }

  /** Repositories that link the blob (bounded: a mount needs one that the client may read). */
  blobHolders(digest: Digest): RepoName[] {
    return this.q.holders.all(digest).map((r) => r.name as RepoName);
  }

  blobSize(digest: Digest): number | undefined {
    return this.q.anyBlob.get(digest)?.size;
  }

  unlinkBlob(name: RepoName, digest: Digest): boolean {
    return this.q.unlink.run(name, digest).changes > 0;
  }

  manifestByDigest(name: RepoName, digest: Digest): ManifestRow | undefined {
    return this.lookups.get(`${name}@${digest}`, () => this.q.manifestByDigest.get(name, digest));
  }

  manifestByTag(name: RepoName, tag: string): ManifestRow | undefined {
    return this.lookups.get(`${name}:${tag}`, () => this.q.manifestByTag.get(name, tag));
  }

  /**
   * Inserts the manifest, its references and its tags in one transaction.
   * A fetched tag never replaces a pushed or imported one: local content is authoritative.
   */
  putManifest(name: RepoName, manifest: NewManifest, tags: string[], source: TagSource = 'pushed'): void {
    this.lookups.clear();
    const now = Date.now();
    this.db.transaction(() => {
      const repoId = this.ensureRepository(name);
      this.insertBlob(manifest.digest, manifest.size, now);
      this.q.insertManifest.run(
        repoId,
        manifest.digest,
        manifest.mediaType,
        manifest.size,
        manifest.subject ?? null,
        manifest.artifactType ?? null,
        manifest.annotations === undefined ? null : JSON.stringify(manifest.annotations),
        now,
        source,
      );
      for (const ref of manifest.references) this.q.insertReference.run(repoId, manifest.digest, ref);
      const confirmedAt = source === 'fetched' ? now : null;
      for (const tag of tags) {
        const current = source === 'fetched' ? this.q.tagRow.get(name, tag) : undefined;
        if (current !== undefined && current.source !== 'fetched') continue;
        this.q.upsertTag.run(repoId, tag, manifest.digest, source, now, confirmedAt);
      }
    })();
  }

  tag(name: RepoName, tag: string): TagRow | undefined {
    return this.q.tagRow.get(name, tag);
  }

  /** Records that the upstream still has the tag on the same digest. */
  confirmTag(name: RepoName, tag: string, at: number): void {
    this.q.confirmTag.run(at, name, tag);
  }

  deleteTag(name: RepoName, tag: string): boolean {
    this.lookups.clear();
    return this.q.deleteTag.run(name, tag).changes > 0;
  }

  /** Tags and references go with it (ON DELETE CASCADE). */
  deleteManifest(name: RepoName, digest: Digest): boolean {
    this.lookups.clear();
    return this.q.deleteManifest.run(name, digest).changes > 0;
  }

  listTags(repoId: number, last: string, limit: number): string[] {
    return this.q.tags.all(repoId, last, limit).map((r) => r.name);
  }

  listRepositories(last: string, limit: number): string[] {
    return this.q.repositories.all(last, limit).map((r) => r.name);
  }

  referrers(name: RepoName, subject: Digest): ManifestRow[] {
    return this.q.referrers.all(name, subject);
  }

  createUpload(name: RepoName, id: string): void {
    const now = Date.now();
    this.q.insertUpload.run(id, this.ensureRepository(name), now, now);
  }

  upload(name: RepoName, id: string): UploadRow | undefined {
    return this.q.upload.get(id, name);
  }

  setUploadSize(id: string, size: number): void {
    this.q.setUploadSize.run(size, Date.now(), id);
  }

  deleteUpload(id: string): void {
    this.q.deleteUpload.run(id);
  }

  expiredUploads(before: number): string[] {
    return this.q.expiredUploads.all(before).map((r) => r.id);
  }

  /** Sessions that never received a byte since `before`: a POST left hanging. */
  idleEmptyUploads(before: number): string[] {
    return this.q.idleEmptyUploads.all(before).map((r) => r.id);
  }

  countUploads(): number {
    // Stryker disable next-line OptionalChaining: an aggregate without GROUP BY always returns one row.
    return this.q.countUploads.get()?.n ?? 0;
  }

  uploadSize(id: string): number | undefined {
    // Stryker disable next-line OptionalChaining: its callers (uploads.ts) pass ids just read from this table: abandoned() in the same synchronous step, truncateAll() at open before the store is handed out (only its own catch deletes a row, the current one's).
    return this.q.uploadSize.get(id)?.size;
  }

  uploadIds(): Set<string> {
    return new Set(this.q.uploadIds.all().map((r) => r.id));
  }
}

export function toManifestInfo(row: ManifestRow): ManifestInfo {
  return { digest: row.digest, mediaType: row.media_type, size: row.size };
}
