/**
 * @module proxy/tag-listings
 * Upstream tags/list answers, shared and kept briefly: concurrent listings of one repository make
 * one upstream listing (20 clients once made 20), and repeats within the TTL make none. A listing
 * can be long (thousands of tags, many pages), so the cache is bounded by the tags it holds.
 */
import { SingleFlight } from './single-flight.js';

/**
 * A listing is what people and tools read to find new tags: 30 s absorbs a burst (a CI fan-out, a
 * dashboard) while a tag pushed upstream still shows within half a minute. Never longer than the
 * upstream's tag TTL, so a short TTL configured for freshness applies to listings too.
 */
export const maxListingTtlMs = 30_000;

/** At most this many tag names cached over all repositories (a few MB). */
const maxCachedTags = 100_000;

interface Entry {
  /** undefined: the upstream said the repository does not exist. */
  tags: string[] | undefined;
  until: number;
}

export class TagListings {
  private readonly cache = new Map<string, Entry>();
  private readonly flights = new SingleFlight<string[] | undefined>();
  private cachedTags = 0;

  constructor(private readonly now: () => number) {}

  /** The upstream's tags for key, from the cache, a listing in flight, or list() (whose failure is not cached). */
  async get(key: string, ttlMs: number, list: () => Promise<string[] | undefined>): Promise<string[] | undefined> {
    const cached = this.cache.get(key);
    if (cached !== undefined) {
      if (cached.until > this.now()) return cached.tags;
      this.drop(key, cached);
    }
    return this.flights.run(key, async () => {
      const tags = await list();
      this.put(key, tags, Math.min(ttlMs, maxListingTtlMs));
      return tags;
    });
  }

  private put(key: string, tags: string[] | undefined, ttlMs: number): void {
    const weight = weightOf(tags);
    if (ttlMs <= 0 || weight > maxCachedTags) return;
    const previous = this.cache.get(key);
    if (previous !== undefined) this.drop(key, previous);
    // Oldest first (Map iteration is insertion order) until the new listing fits.
    for (const [oldKey, old] of this.cache) {
      if (this.cachedTags + weight <= maxCachedTags) break;
      this.drop(oldKey, old);
    }
    this.cache.set(key, { tags, until: this.now() + ttlMs });
    this.cachedTags += weight;
  }

  private drop(key: string, entry: Entry): void {
    this.cache.delete(key);
    this.cachedTags -= weightOf(entry.tags);
  }
}

/** An empty or absent listing still counts one, so the number of entries is bounded too. */
function weightOf(tags: string[] | undefined): number {
  return Math.max(1, tags?.length ?? 0);
}
