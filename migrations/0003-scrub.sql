-- Background scrub (issue 9, docs/decisions/0013-scrub-and-namespace-tiers.md): when each blob's file
-- was last read whole and found to match its digest, so the scrub walks the least recently verified
-- first and carries on across restarts instead of starting again at the same end.

-- NULL until the scrub first checks it: a blob is verified when it is written (hashed while
-- streaming, store/blob-files.ts), so created_at counts until then.
ALTER TABLE blobs ADD COLUMN verified_at INTEGER;

-- The scrub's order: one indexed step to the next blob due, however large the store.
CREATE INDEX blobs_verified ON blobs (coalesce(verified_at, created_at));
