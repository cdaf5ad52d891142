/**
 * @module store/verify-index
 * The index half of verify: SQLite's own integrity check and the references
 * between tables (manifest → blob row, tag → manifest, link → blob row). All of
 * it reads one snapshot, in one read transaction, so a live writer's change in
 * progress never looks broken. Foreign keys guarantee most of this; checking
 * anyway catches an index written with them off or damaged on disk.
 */
import type Database from 'better-sqlite3';

export interface IndexCounts {
  repositories: number;
  manifests: number;
  tags: number;
  links: number;
}

export type IndexProblemKind = 'index-corrupt' | 'broken-reference';

/** Foreign keys the explicit checks below already name row by row. */
const explained = new Set(['manifests>blobs', 'manifests>repositories', 'tags>manifests', 'repository_blobs>blobs']);

export function checkIndexRows(
  db: Database.Database,
  problem: (kind: IndexProblemKind, message: string) => void,
): IndexCounts {
  const count = (table: string): number =>
    // Stryker disable next-line OptionalChaining: count(*) without GROUP BY returns exactly one row, so get() is never undefined.
    db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM ${table}`).get()?.n ?? 0;
  return db.transaction(() => {
    for (const row of db.pragma('quick_check') as { quick_check: string }[]) {
      if (row.quick_check !== 'ok') problem('index-corrupt', `index.db: ${row.quick_check}`);
    }
    const manifests = db
      .prepare<[], { repo: string | null; digest: string; blob: string | null }>(
        `SELECT r.name AS repo, m.digest AS digest, b.digest AS blob FROM manifests m
         LEFT JOIN repositories r ON r.id = m.repository_id LEFT JOIN blobs b ON b.digest = m.digest
         WHERE b.digest IS NULL OR r.id IS NULL`,
      )
      .all();
    for (const m of manifests) {
      problem(
        'broken-reference',
        m.repo === null
          ? `manifest ${m.digest}: its repository row is missing`
          : `manifest ${m.digest} in ${m.repo}: no blob row for its bytes`,
      );
    }
    const tags = db
      .prepare<[], { repo: string | null; tag: string; digest: string }>(
        `SELECT r.name AS repo, t.name AS tag, t.digest AS digest FROM tags t
         LEFT JOIN repositories r ON r.id = t.repository_id
         LEFT JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.digest
         WHERE m.digest IS NULL`,
      )
      .all();
    for (const t of tags) {
      problem('broken-reference', `tag ${t.repo ?? '?'}:${t.tag} points at ${t.digest}, not a manifest there`);
    }
    const links = db
      .prepare<[], { repo: string | null; digest: string }>(
        `SELECT r.name AS repo, l.digest AS digest FROM repository_blobs l
         LEFT JOIN repositories r ON r.id = l.repository_id LEFT JOIN blobs b ON b.digest = l.digest
         WHERE b.digest IS NULL`,
      )
      .all();
    for (const l of links) problem('broken-reference', `link ${l.repo ?? '?'} → ${l.digest}: no blob row`);

    const others = new Map<string, number>();
    for (const v of db.pragma('foreign_key_check') as { table: string; parent: string }[]) {
      const key = `${v.table}>${v.parent}`;
      if (!explained.has(key)) others.set(key, (others.get(key) ?? 0) + 1);
    }
    for (const [key, n] of others) {
      const [table, parent] = key.split('>');
      problem('broken-reference', `index.db: ${n} ${table} row(s) refer to missing ${parent} rows`);
    }
    return {
      repositories: count('repositories'),
      manifests: count('manifests'),
      tags: count('tags'),
      links: count('repository_blobs'),
    };
  })();
}
