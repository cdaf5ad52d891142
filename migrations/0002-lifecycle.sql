-- Lifecycle (issue 9, docs/decisions/0008-gc-and-eviction.md): when content was last read,
-- and where each manifest came from, so gc and eviction are queries.

-- Last read (a pull of a manifest, a GET or HEAD of a blob), written in batches from memory:
-- NULL until first read (created_at counts then).
ALTER TABLE blobs ADD COLUMN accessed_at INTEGER;

-- pushed | imported | preloaded | fetched, as for tags. Only 'fetched' manifests may be evicted;
-- an admin push or import of a fetched manifest makes it 'pushed'/'imported' (never the reverse).
ALTER TABLE manifests ADD COLUMN source TEXT NOT NULL DEFAULT 'pushed';

-- Manifests stored before this migration did not record it. Mirror content is recognised
-- conservatively: a repository whose tags all came from an upstream (and has some). Anything
-- else stays 'pushed', so it is never evicted by mistake.
UPDATE manifests SET source = 'fetched'
WHERE EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = manifests.repository_id AND t.source = 'fetched')
  AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = manifests.repository_id AND t.source <> 'fetched');
