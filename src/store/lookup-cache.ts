/**
 * @module store/lookup-cache
 * Remembers manifest lookups (name + digest or tag → row) between writes.
 * Manifest GETs are the mirror's hottest request and the SQLite join behind
 * each one cost about a sixth of the server's CPU under load (node --cpu-prof).
 *
 * Coherence: every write through this process clears the cache; writes by
 * other processes (a second wharf command on the same store) are noticed
 * through SQLite's `PRAGMA data_version`, checked at most every
 * `externalCheckMs`, so they show within that time.
 */
import type { Db } from './database.js';

/** How stale another process's writes may look; short enough that nobody waits on it. */
export const externalCheckMs = 1000;
/** Bounded by entries; rows are small (a digest, a media type, a few numbers). */
export const maxEntries = 50_000;

export class LookupCache<T> {
  private readonly entries = new Map<string, T>();
  private readonly dataVersion;
  private version: number;
  private checkedAt = 0;

  constructor(
    db: Db,
    private readonly now: () => number = Date.now,
  ) {
    this.dataVersion = db.prepare<[], number>('PRAGMA data_version').pluck();
    // Stryker disable next-line LogicalOperator: checkedAt starts at 0 and now() is ms since 1970, so the first get() reads data_version again before anything is cached: this value is only ever compared against an empty map.
    this.version = this.dataVersion.get() ?? 0;
  }

  /** How many lookups are remembered (for tests of the bound). */
  get size(): number {
    return this.entries.size;
  }

  get(key: string, load: () => T | undefined): T | undefined {
    const now = this.now();
    if (now - this.checkedAt >= externalCheckMs) {
      this.checkedAt = now;
      const version = this.dataVersion.get() ?? 0;
      if (version !== this.version) {
        this.version = version;
        this.entries.clear();
      }
    }
    const hit = this.entries.get(key);
    if (hit !== undefined) return hit;
    const loaded = load();
    // Misses are not cached: the next push would have to clear them anyway.
    if (loaded !== undefined) {
      if (this.entries.size >= maxEntries) this.entries.clear();
      this.entries.set(key, loaded);
    }
    return loaded;
  }

  /** Called by every write in this process. */
  clear(): void {
    this.entries.clear();
  }
}
