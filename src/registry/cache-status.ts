/**
 * @module registry/cache-status
 * The `Cache-Status` response header (RFC 9211) on mirrored manifests and blobs: how this mirror
 * answered, under the cache name `wharf`. Lets a client (e.g. `wharf tree` against a wharf URL)
 * tell what the mirror holds without a second interface: a HEAD answered `wharf; hit` is held.
 * Local names carry none: wharf is their origin, not a cache.
 */
import type { CacheResult, ReadTrace } from '../oci/read-trace.js';

export const cacheName = 'wharf';

const members: Record<CacheResult, string | undefined> = {
  hit: 'hit',
  // Fetched now and kept: forwarded because it was not held, and stored.
  fill: 'fwd=miss; stored',
  // A HEAD the upstream answered: forwarded, nothing kept.
  miss: 'fwd=miss',
  not_found: undefined,
  // A tag past its TTL served without a fresh upstream answer.
  stale: 'hit; detail=stale',
  // A tag past its TTL that the upstream confirmed just now.
  revalidated: 'fwd=stale',
};

/** The header for a read the mirror traced; none for local content or an untraced read. */
export function cacheStatusHeader(trace: ReadTrace | undefined): Record<string, string> {
  const member = trace?.cache === undefined ? undefined : members[trace.cache];
  return member === undefined ? {} : { 'Cache-Status': `${cacheName}; ${member}` };
}
