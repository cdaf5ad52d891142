/**
 * @module store/pinned-content
 * The one definition of "pinned" (docs/decisions/0008-gc-and-eviction.md), used by
 * eviction (what it may never pick), gc (store.pin repositories) and `wharf du` /
 * `wharf stats` (pinned bytes are exactly the bytes eviction never takes).
 *
 * A manifest is pinned when it was not fetched from an upstream (`manifests.source`:
 * pushed, imported, preloaded), when its repository matches a `store.pin` pattern,
 * when an index above it is pinned (an image is kept whole), when it refers to a pinned
 * subject (a referrer goes with its subject), or when it is the subject of a pinned
 * referrer (so that referrer is never taken with it). Tags do not decide: a fetched tag
 * may point at pushed bytes and the other way round; the manifest row says where its
 * bytes came from.
 */
import type { Digest } from '../oci/digest.js';
import type { Db } from './database.js';

/** Repositories matched by a `store.pin` pattern: never evicted nor collected. */
export type IsPinnedRepository = (repository: string) => boolean;

export interface ManifestNode {
  repository_id: number;
  repository: string;
  digest: Digest;
  media_type: string;
  source: string;
  subject: string | null;
  /** Last read, else creation (unix ms): eviction's order. */
  used_at: number;
}

/** Every manifest of the store, with the links between them (one repository each). */
export interface ManifestGraph {
  nodes: ManifestNode[];
  byKey: Map<string, ManifestNode>;
  /** Child key → index keys naming it. */
  parents: Map<string, string[]>;
  /** Index key → child keys present. */
  children: Map<string, string[]>;
  /** Subject key → referrer keys present. */
  referrers: Map<string, string[]>;
}

const manifestsSql = `
  SELECT m.repository_id, r.name AS repository, m.digest, m.media_type, m.source, m.subject,
         coalesce(b.accessed_at, m.created_at) AS used_at
  FROM manifests m JOIN repositories r ON r.id = m.repository_id JOIN blobs b ON b.digest = m.digest`;

/** Parent → child links between manifests of one repository (index → platform manifest). */
const childLinksSql = `
  SELECT x.repository_id, x.manifest_digest AS parent, x.digest AS child FROM manifest_references x
  JOIN manifests c ON c.repository_id = x.repository_id AND c.digest = x.digest`;

export function manifestKey(repositoryId: number, digest: string): string {
  return `${repositoryId} ${digest}`;
}

export function loadManifestGraph(db: Db): ManifestGraph {
  const nodes = db.prepare<[], ManifestNode>(manifestsSql).all();
  const byKey = new Map(nodes.map((node) => [manifestKey(node.repository_id, node.digest), node]));
  const graph: ManifestGraph = { nodes, byKey, parents: new Map(), children: new Map(), referrers: new Map() };
  for (const link of db.prepare<[], { repository_id: number; parent: string; child: string }>(childLinksSql).all()) {
    push(graph.parents, manifestKey(link.repository_id, link.child), manifestKey(link.repository_id, link.parent));
    push(graph.children, manifestKey(link.repository_id, link.parent), manifestKey(link.repository_id, link.child));
  }
  for (const node of nodes) {
    if (node.subject === null) continue;
    const subject = manifestKey(node.repository_id, node.subject);
    if (byKey.has(subject)) push(graph.referrers, subject, manifestKey(node.repository_id, node.digest));
  }
  return graph;
}

/** Keys of the pinned manifests (see the module header). */
export function pinnedManifests(graph: ManifestGraph, isPinnedRepository: IsPinnedRepository): Set<string> {
  const repoPinned = new Map<string, boolean>();
  const stack: string[] = [];
  for (const node of graph.nodes) {
    let byPattern = repoPinned.get(node.repository);
    if (byPattern === undefined) repoPinned.set(node.repository, (byPattern = isPinnedRepository(node.repository)));
    if (node.source !== 'fetched' || byPattern) stack.push(manifestKey(node.repository_id, node.digest));
  }
  const pinned = new Set<string>();
  while (stack.length > 0) {
    const key = stack.pop() as string;
    if (pinned.has(key)) continue;
    pinned.add(key);
    stack.push(...(graph.children.get(key) ?? []), ...(graph.referrers.get(key) ?? []));
    const node = graph.byKey.get(key);
    // Stryker disable next-line LogicalOperator,OptionalChaining: every key on the stack is in byKey (nodes, children joined with manifests, referrers, subjects checked), so node is never undefined; a null subject makes the key "<id> null", which no manifest has.
    if (node?.subject !== null && node !== undefined) {
      const subject = manifestKey(node.repository_id, node.subject);
      if (graph.byKey.has(subject)) stack.push(subject);
    }
  }
  return pinned;
}

/**
 * Manifests eviction never removes: the pinned ones, every index with a child that stays
 * (an index goes only when no platform is left), and the referrers of what stays.
 */
export function keptManifests(graph: ManifestGraph, pinned: ReadonlySet<string>): Set<string> {
  const kept = new Set<string>();
  const stack = [...pinned];
  while (stack.length > 0) {
    const key = stack.pop() as string;
    if (kept.has(key)) continue;
    kept.add(key);
    stack.push(...(graph.parents.get(key) ?? []), ...(graph.referrers.get(key) ?? []));
  }
  return kept;
}

export type BlobKeeping = 'evictable' | 'pinned' | 'unreferenced';

/**
 * For every blob row: whether an eviction with nothing in use would delete it (`evictable`), or
 * never. Never: `unreferenced` when no manifest is it or refers to it and no store.pin
 * repository links it (gc's, after store.gc.grace); `pinned` otherwise (a manifest that stays is
 * it or refers to it, or a link stays). Mirrors what eviction.ts deletes: a manifest row, its
 * references, and the links in its repository that no manifest left there refers to.
 */
export function classifyBlobs(
  db: Db,
  graph: ManifestGraph,
  isPinnedRepository: IsPinnedRepository,
): Map<string, BlobKeeping> {
  const kept = keptManifests(graph, pinnedManifests(graph, isPinnedRepository));
  /**
   * Per digest: `held`: a manifest is it or refers to it, or a store.pin repository links it;
   * `stays`: some holder (those, or a link) is left after every eviction.
   */
  const holders = new Map<string, { held: boolean; stays: boolean }>();
  const note = (digest: string, held: boolean, stays: boolean): void => {
    // Stryker disable next-line ObjectLiteral: from {} both fields are undefined, and `undefined || b` is b, as `false || b` is.
    const h = holders.get(digest) ?? { held: false, stays: false };
    holders.set(digest, { held: h.held || held, stays: h.stays || stays });
  };
  for (const node of graph.nodes) note(node.digest, true, kept.has(manifestKey(node.repository_id, node.digest)));
  /** (repository, digest) pairs a manifest eviction removes refers to, and one that stays. */
  const goneRefs = new Set<string>();
  const keptRefs = new Set<string>();
  for (const ref of db
    .prepare<[], { repository_id: number; manifest_digest: string; digest: string }>(
      'SELECT repository_id, manifest_digest, digest FROM manifest_references',
    )
    .iterate()) {
    const stays = kept.has(manifestKey(ref.repository_id, ref.manifest_digest));
    (stays ? keptRefs : goneRefs).add(manifestKey(ref.repository_id, ref.digest));
    note(ref.digest, true, stays);
  }
  const pinnedRepos = new Set<number>();
  for (const repo of db.prepare<[], { id: number; name: string }>('SELECT id, name FROM repositories').iterate()) {
    if (isPinnedRepository(repo.name)) pinnedRepos.add(repo.id);
  }
  for (const link of db
    .prepare<[], { repository_id: number; digest: string }>('SELECT repository_id, digest FROM repository_blobs')
    .iterate()) {
    const pair = manifestKey(link.repository_id, link.digest);
    // Eviction drops a link only when a manifest it removes referred to it and none left there does.
    const stays = !goneRefs.has(pair) || keptRefs.has(pair);
    note(link.digest, pinnedRepos.has(link.repository_id), stays);
  }
  const result = new Map<string, BlobKeeping>();
  for (const { digest } of db.prepare<[], { digest: string }>('SELECT digest FROM blobs').iterate()) {
    const h = holders.get(digest);
    result.set(digest, h === undefined || (h.stays && !h.held) ? 'unreferenced' : h.stays ? 'pinned' : 'evictable');
  }
  return result;
}

function push(map: Map<string, string[]>, k: string, value: string): void {
  const list = map.get(k);
  if (list === undefined) map.set(k, [value]);
  else list.push(value);
}
