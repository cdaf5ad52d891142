/**
 * @module store/store-stats
 * What the store holds, for `wharf du` / `wharf stats`: bytes in all, by
 * upstream and by repository, pinned against cached, and when content was
 * stored and (where recorded) last read. Read-only, one read transaction: it
 * runs beside a serving wharf.
 *
 * The categories are eviction's own (pinned-content.ts, the one definition of
 * "pinned"): **cached** bytes are exactly those an eviction with nothing in use
 * would delete; **pinned** bytes are those it never takes because a pinned image
 * (pushed, imported, preloaded, store.pin, or tied to one) holds them;
 * **unreferenced** bytes are held by no manifest (gc's, after store.gc.grace).
 * Every blob counts once in the totals; in the per-repository and per-upstream
 * rows a blob shared by several counts in each.
 */
import type { Db } from './database.js';
import { classifyBlobs, loadManifestGraph, type IsPinnedRepository } from './pinned-content.js';

export interface Usage {
  blobs: number;
  bytes: number;
}

export interface RepositoryUsage extends Usage {
  name: string;
  /** The upstream's host component for a mirrored name; undefined for a local one. */
  upstream: string | undefined;
  manifests: number;
  tags: number;
  /** Tags by where they came from. */
  tagSources: Record<string, number>;
}

export interface StoreStats {
  total: Usage;
  pinned: Usage;
  cached: Usage;
  unreferenced: Usage;
  /** By upstream (host component of mirrored names), and "local" for the rest. */
  upstreams: (Usage & { upstream: string; repositories: number })[];
  repositories: RepositoryUsage[];
  /** created_at of blob rows: when the oldest and newest content was stored (unix ms). */
  stored: { oldest: number; newest: number } | undefined;
  /** Last reads (blobs.accessed_at; undefined times: no blob stored, or none read yet). */
  accessed: { oldest: number | undefined; newest: number | undefined; neverRead: number };
}

/** Which repository names are mirrored, and under which upstream (its host component). */
export type UpstreamOf = (name: string) => string | undefined;

export function collectStoreStats(
  db: Db,
  upstreamOf: UpstreamOf,
  // Stryker disable next-line ArrowFunction: pinned-content.ts only tests the answer for truth (`node.source !== 'fetched' || byPattern`, `if (isPinnedRepository(repo.name))`): undefined is as false as false.
  isPinnedRepository: IsPinnedRepository = () => false,
): StoreStats {
  return db.transaction(() => {
    const repos = db.prepare<[], { id: number; name: string }>('SELECT id, name FROM repositories').all();
    const names = new Map(repos.map((r) => [r.id, r.name]));
    const keeping = classifyBlobs(db, loadManifestGraph(db), isPinnedRepository);
    const holders = new Map<string, Set<number>>();
    for (const row of db
      .prepare<[], { digest: string; repository_id: number }>(
        'SELECT digest, repository_id FROM repository_blobs UNION SELECT digest, repository_id FROM manifests',
      )
      .iterate()) {
      let set = holders.get(row.digest);
      if (set === undefined) holders.set(row.digest, (set = new Set()));
      set.add(row.repository_id);
    }
    // Every index read here has blobs.accessed_at: openReadOnlyDatabase refuses one not at the latest
    // schema, and 0002-lifecycle adds the column.
    const blobRows = db
      .prepare<[], { digest: string; size: number; created_at: number; accessed_at: number | null }>(
        'SELECT digest, size, created_at, accessed_at FROM blobs',
      )
      .iterate();
    const zero = (): Usage => ({ blobs: 0, bytes: 0 });
    const stats = { total: zero(), pinned: zero(), cached: zero(), unreferenced: zero() };
    const byUpstream = new Map<string, Usage>();
    const repoUsage = new Map<number, Usage>();
    let stored: StoreStats['stored'];
    const accessed: StoreStats['accessed'] = { oldest: undefined, newest: undefined, neverRead: 0 };
    const add = (usage: Usage, size: number): void => {
      usage.blobs++;
      usage.bytes += size;
    };
    for (const blob of blobRows) {
      add(stats.total, blob.size);
      stored = {
        oldest: Math.min(stored?.oldest ?? Infinity, blob.created_at),
        newest: Math.max(stored?.newest ?? 0, blob.created_at),
      };
      if (blob.accessed_at === null) accessed.neverRead++;
      else {
        accessed.oldest = Math.min(accessed.oldest ?? Infinity, blob.accessed_at);
        accessed.newest = Math.max(accessed.newest ?? 0, blob.accessed_at);
      }
      // Stryker disable next-line StringLiteral: never taken, classifyBlobs (same transaction) has a kind for every blob row; and '' would land in unreferenced all the same.
      const kind = keeping.get(blob.digest) ?? 'unreferenced';
      add(kind === 'evictable' ? stats.cached : kind === 'pinned' ? stats.pinned : stats.unreferenced, blob.size);
      const held = holders.get(blob.digest);
      if (held === undefined) continue;
      const upstreams = new Set<string>();
      for (const id of held) {
        const usage = repoUsage.get(id) ?? zero();
        add(usage, blob.size);
        repoUsage.set(id, usage);
        // Stryker disable next-line StringLiteral: never taken, repository_blobs and manifests rows reference repositories(id) (foreign keys on in every connection wharf writes with), so names has every id; and `wharf stats`' upstreamOf answers undefined for '' and for any name without '/' alike.
        const name = names.get(id) ?? '';
        upstreams.add(upstreamOf(name) ?? 'local');
      }
      for (const upstream of upstreams) {
        const usage = byUpstream.get(upstream) ?? zero();
        add(usage, blob.size);
        byUpstream.set(upstream, usage);
      }
    }
    const repositories = repositoryRows(db, names, repoUsage, upstreamOf);
    const upstreams = [...byUpstream].map(([upstream, usage]) => ({
      upstream,
      repositories: repositories.filter((r) => (r.upstream ?? 'local') === upstream).length,
      ...usage,
    }));
    upstreams.sort((a, b) => b.bytes - a.bytes || a.upstream.localeCompare(b.upstream));
    return { ...stats, upstreams, repositories, stored, accessed };
  })();
}

function repositoryRows(
  db: Db,
  names: Map<number, string>,
  usage: Map<number, Usage>,
  upstreamOf: UpstreamOf,
): RepositoryUsage[] {
  const manifests = new Map(
    db
      .prepare<[], { id: number; n: number }>('SELECT repository_id AS id, count(*) AS n FROM manifests GROUP BY 1')
      .all()
      .map((r) => [r.id, r.n]),
  );
  const sources = new Map<number, Record<string, number>>();
  for (const row of db
    .prepare<[], { id: number; source: string; n: number }>(
      'SELECT repository_id AS id, source, count(*) AS n FROM tags GROUP BY 1, 2',
    )
    .all()) {
    sources.set(row.id, { ...sources.get(row.id), [row.source]: row.n });
  }
  const rows: RepositoryUsage[] = [];
  for (const [id, name] of names) {
    const bytes = usage.get(id);
    if (bytes === undefined) continue;
    const tagSources = sources.get(id) ?? {};
    rows.push({
      name,
      upstream: upstreamOf(name),
      ...bytes,
      manifests: manifests.get(id) ?? 0,
      tags: Object.values(tagSources).reduce((a, b) => a + b, 0),
      tagSources,
    });
  }
  return rows.sort((a, b) => b.bytes - a.bytes || a.name.localeCompare(b.name));
}
