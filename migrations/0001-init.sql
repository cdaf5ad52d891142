-- The index. Blob and manifest bytes live in files named by digest
-- (blobs/<alg>/<xx>/<hex>); these tables say who refers to what.

CREATE TABLE repositories (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
) STRICT;

-- Global content: one row per verified file under blobs/.
CREATE TABLE blobs (
  digest TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Visibility is per repository: a blob is served from a repository only through a link.
CREATE TABLE repository_blobs (
  repository_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
  digest TEXT NOT NULL REFERENCES blobs (digest),
  created_at INTEGER NOT NULL,
  PRIMARY KEY (repository_id, digest)
) STRICT, WITHOUT ROWID;
CREATE INDEX repository_blobs_digest ON repository_blobs (digest);

-- A manifest in a repository. Its bytes are the blob file of the same digest.
-- subject makes the referrers index: subject -> referrer is a query on this table.
CREATE TABLE manifests (
  repository_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
  digest TEXT NOT NULL REFERENCES blobs (digest),
  media_type TEXT NOT NULL,
  size INTEGER NOT NULL,
  subject TEXT,
  artifact_type TEXT,
  annotations TEXT,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (repository_id, digest)
) STRICT, WITHOUT ROWID;
CREATE INDEX manifests_subject ON manifests (repository_id, subject) WHERE subject IS NOT NULL;
CREATE INDEX manifests_digest ON manifests (digest);

-- What each manifest refers to (config, layers, child manifests): gc and eviction are set operations on this.
CREATE TABLE manifest_references (
  repository_id INTEGER NOT NULL,
  manifest_digest TEXT NOT NULL,
  digest TEXT NOT NULL,
  PRIMARY KEY (repository_id, manifest_digest, digest),
  FOREIGN KEY (repository_id, manifest_digest) REFERENCES manifests (repository_id, digest) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX manifest_references_digest ON manifest_references (digest);

-- source: pushed | imported | preloaded | fetched; confirmed_at: last time the upstream agreed.
CREATE TABLE tags (
  repository_id INTEGER NOT NULL,
  name TEXT NOT NULL,
  digest TEXT NOT NULL,
  source TEXT NOT NULL DEFAULT 'pushed',
  updated_at INTEGER NOT NULL,
  confirmed_at INTEGER,
  PRIMARY KEY (repository_id, name),
  FOREIGN KEY (repository_id, digest) REFERENCES manifests (repository_id, digest) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX tags_digest ON tags (repository_id, digest);

-- Upload sessions; the bytes so far are in tmp/uploads/<id>.
CREATE TABLE uploads (
  id TEXT PRIMARY KEY,
  repository_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
  size INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
