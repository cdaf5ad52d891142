/**
 * @module proxy/prefetch
 * Starts the fills of an image manifest's config and layers as soon as the manifest arrives from
 * the upstream, before the client asks for them: the client's blob requests, a round trip or more
 * later, join fills already running (single-flight), so a cold pull through the mirror overlaps
 * the client's round trips with the upstream transfers.
 *
 * What it must not change: one upstream GET per blob (a blob queued, running or stored is
 * skipped); the fill queue and its limit (prefetches queue like any fill); nothing kept from a
 * failed prefetch (a fill keeps nothing unless the digest matched), and a client that joined a
 * prefetch that could not start asks again on its own (fill-registry.ts). Only image manifests
 * a client asked for are prefetched: an index names every platform, and a client pulls one.
 * Blob GETs do not count against Docker Hub's pull limit (manifest GETs do), so a prefetch
 * costs no pull quota. Blobs held for other names are skipped: the client's request confirms
 * them with this name's upstream first (proxy-source.ts), as visibility requires.
 */
import type { Digest } from '../oci/digest.js';
import type { Logger } from '../oci/logger.js';
import { parseManifest, type ParsedManifest } from '../oci/manifest.js';
import { isNondistributable } from '../oci/media-types.js';
import type { LocalStore } from '../store/local-store.js';
import type { FillRegistry } from './fill-registry.js';
import type { Route } from './router.js';

/** An upstream prefetches unless its configuration says `prefetch: false`. */
export const defaultPrefetch = true;

/**
 * Blobs prefetched per manifest at most: overlay filesystems stack at most 128 layers, so real
 * images stay under it, and a hostile manifest listing thousands of digests cannot queue
 * thousands of upstream GETs on its own (the client's requests still fetch whatever it asks).
 */
export const maxPrefetchBlobs = 128;

type MirrorRoute = Extract<Route, { kind: 'mirror' }>;

/**
 * Starts fills for the blobs of `manifest` (just fetched from the upstream for `route`) that are
 * neither stored nor being filled. Returns how many it started.
 */
export function prefetchBlobs(
  route: MirrorRoute,
  manifest: { digest: Digest; mediaType: string; bytes: Uint8Array },
  store: LocalStore,
  fills: FillRegistry,
  logger: Logger,
): number {
  if (route.upstream.prefetch === false) return 0;
  let parsed: ParsedManifest;
  try {
    parsed = parseManifest(manifest.bytes, manifest.mediaType);
  } catch {
    // Served as the upstream sent it (proxy-source.ts); nothing to prefetch from bytes wharf cannot read.
    return 0;
  }
  if (parsed.kind !== 'image') return 0;
  let started = 0;
  for (const blob of parsed.references.slice(0, maxPrefetchBlobs)) {
    if ((blob.urls !== undefined && blob.urls.length > 0) || isNondistributable(blob.mediaType)) continue;
    if (store.contentSize(blob.digest) !== undefined) continue;
    const client = route.upstream.client;
    if (fills.prefetch(blob.digest, route.canonical, (signal) => client.getBlob(route.remote, blob.digest, signal)))
      started++;
  }
  if (started > 0) {
    logger.info(
      { name: route.canonical, digest: manifest.digest, blobs: started },
      'prefetching the blobs of a cold image manifest',
    );
  }
  return started;
}
