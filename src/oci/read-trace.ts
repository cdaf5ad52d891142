/**
 * @module oci/read-trace
 * What a source tells the HTTP layer about how it answered one read, for the
 * access log and the metrics: whether the cache had it, and which upstream it
 * concerns. The caller hands in an object; a mirror writes into it, a plain
 * store leaves it alone (local content has no cache result).
 */

/**
 * - hit: answered from the store, the upstream not asked.
 * - fill: not in the store; fetched from the upstream now (or joined a fetch running) and kept.
 * - miss: not in the store and nothing kept: a HEAD the upstream answered.
 * - not_found: neither the store nor the upstream has it (or offline, and the store has not).
 * - stale: a cached tag past its TTL, served without a fresh upstream answer.
 * - revalidated: a cached tag past its TTL that the upstream answered for just now.
 */
export const cacheResults = ['hit', 'fill', 'miss', 'not_found', 'stale', 'revalidated'] as const;
export type CacheResult = (typeof cacheResults)[number];

export interface ReadTrace {
  cache?: CacheResult;
  /** The upstream host a mirrored name resolved to. */
  upstream?: string;
}
