/**
 * @module proxy/referrer-listings
 * The upstream's referrers of a mirrored manifest (decision 0014): its referrers API, or the
 * fallback tag when it has none, shared by concurrent requests and kept briefly like tag listings
 * (tag-listings.ts). Unlike a tag listing, a listing that fails is answered from the last one the
 * upstream gave (stale-if-error), then not asked again for a backoff, so an outage costs neither
 * the signatures already seen nor a timeout per request. A refusal (DENIED) is no outage: the
 * listing is forgotten, and only what the mirror holds is listed.
 */
import type { Descriptor } from '../oci/descriptor.js';
import { isOciError } from '../oci/errors.js';
import { SingleFlight } from './single-flight.js';
import { maxListingTtlMs } from './tag-listings.js';

/** After a failed listing, the last answer (or none) serves this long before the upstream is asked again. */
export const referrersRetryMs = 30_000;

/** At most this many descriptors cached over all subjects; an entry counts at least one. */
const maxCachedDescriptors = 100_000;

interface Entry {
  /** undefined: no answer yet (the first listing failed). */
  referrers: Descriptor[] | undefined;
  /** Asked again after this (fresh until then). */
  until: number;
}

export type ListingOutcome = { kind: 'fresh' | 'stale'; referrers: Descriptor[] } | { kind: 'none'; error?: unknown };

export class ReferrerListings {
  private readonly cache = new Map<string, Entry>();
  private readonly flights = new SingleFlight<ListingOutcome>();
  private cached = 0;

  constructor(private readonly now: () => number) {}

  /** The upstream's referrers for key: cached, in flight, or list(); `none` when there is no answer to give. */
  async get(key: string, ttlMs: number, list: () => Promise<Descriptor[]>): Promise<ListingOutcome> {
    const entry = this.cache.get(key);
    if (entry !== undefined && entry.until > this.now()) {
      return entry.referrers === undefined ? { kind: 'none' } : { kind: 'fresh', referrers: entry.referrers };
    }
    return this.flights.run(key, async () => {
      try {
        const referrers = await list();
        this.put(key, referrers, Math.min(ttlMs, maxListingTtlMs));
        return { kind: 'fresh', referrers };
      } catch (error) {
        if (isOciError(error) && error.code === 'DENIED') {
          // Revoked access or a repository made private: what it listed before is not served on.
          this.drop(key);
          return { kind: 'none', error };
        }
        const last = this.cache.get(key)?.referrers;
        this.put(key, last, referrersRetryMs);
        return last === undefined ? { kind: 'none', error } : { kind: 'stale', referrers: last };
      }
    });
  }

  private put(key: string, referrers: Descriptor[] | undefined, ttlMs: number): void {
    this.drop(key);
    const weight = weightOf(referrers);
    if (weight > maxCachedDescriptors) return;
    // Oldest first (Map iteration is insertion order) until the new listing fits.
    for (const oldKey of this.cache.keys()) {
      if (this.cached + weight <= maxCachedDescriptors) break;
      this.drop(oldKey);
    }
    this.cache.set(key, { referrers, until: this.now() + ttlMs });
    this.cached += weight;
  }

  private drop(key: string): void {
    const entry = this.cache.get(key);
    if (entry === undefined) return;
    this.cache.delete(key);
    this.cached -= weightOf(entry.referrers);
  }
}

function weightOf(referrers: Descriptor[] | undefined): number {
  return Math.max(1, referrers?.length ?? 0);
}
