/**
 * @module store/store-health
 * What an operator watches about the store: its size from the index (one SQL
 * sum, remembered briefly so a scrape every few seconds costs one query at most
 * per interval), and whether it can serve at all (the index answers a query,
 * the data directory takes a write).
 */
import type { Db } from './database.js';

export interface StoreUsage {
  /** Bytes of every blob file the index knows (manifests included: they are blob files too). */
  bytes: number;
  blobs: number;
}

/**
 * How long a computed usage is reused. The sum reads every row of `blobs` (about 30 ms per
 * million rows here); a Prometheus scrape interval is 15 s or more.
 */
const usageMaxAgeMs = 5_000;

export class StoreHealth {
  private usage: { at: number; value: StoreUsage } | undefined;

  constructor(
    private readonly db: Db,
    /** Writes and removes a tiny file where blob writes go (BlobFiles.probeWritable). */
    private readonly probeWritable: () => Promise<void>,
    /**
     * The index's own count (store-index.ts): what store.maxSize is checked against, kept by every
     * insert and deletion, so the gauge and the limit never disagree.
     */
    private readonly storedBytes?: () => number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Size (now) and count (at most usageMaxAgeMs old) of the blobs in the index. */
  currentUsage(): StoreUsage {
    const usage = this.countedUsage();
    return this.storedBytes === undefined || !this.db.open ? usage : { ...usage, bytes: this.storedBytes() };
  }

  private countedUsage(): StoreUsage {
    const at = this.now();
    if (this.usage !== undefined && (at - this.usage.at < usageMaxAgeMs || !this.db.open)) return this.usage.value;
    // A scrape during shutdown, after the index closed, and before any usage was known.
    if (!this.db.open) return { bytes: 0, blobs: 0 };
    const row = this.db
      .prepare<[], { bytes: number | null; blobs: number }>('SELECT sum(size) AS bytes, count(*) AS blobs FROM blobs')
      .get();
    // Stryker disable next-line OptionalChaining: an aggregate query without GROUP BY returns exactly one row, even over an empty table (SQLite: sum() NULL, count() 0), so `row` is never undefined here.
    const value = { bytes: row?.bytes ?? 0, blobs: row?.blobs ?? 0 };
    this.usage = { at, value };
    return value;
  }

  /** undefined when ready; else why not, in a few words for /readyz. */
  async notReadyReason(): Promise<string | undefined> {
    try {
      if (!this.db.open) return 'the index is closed';
      this.db.prepare('SELECT 1 FROM blobs LIMIT 1').get();
    } catch (error) {
      return `the index does not answer: ${(error as Error).message}`;
    }
    // A read-only or full disk shows here.
    try {
      await this.probeWritable();
    } catch (error) {
      return `the data directory is not writable: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
    }
    return undefined;
  }
}
