/**
 * @module store/content-guard
 * What keeps gc and eviction away from content in use, inside the serving
 * process (docs/decisions/0008-gc-and-eviction.md):
 *
 * - a lease on a digest from before its file is renamed into blobs/ until its
 *   index row is written (uploads, fills, manifest writes): a digest leased is
 *   never deleted, and a lease taken while the digest's file is being unlinked
 *   waits for the unlink, so a fresh file is never removed under a new row;
 * - the last read of each digest, kept in memory (one Map.set per hit, no
 *   database write) and flushed to `blobs.accessed_at` in batches: it orders
 *   eviction (least recently used first) and anything read within `inUseMs`
 *   is not deleted at all (a reader between its index lookup and its open()).
 *
 * Decisions and row deletions happen in one synchronous SQLite transaction, so
 * no request of this process can run between the check and the delete.
 */
import type { Digest } from '../oci/digest.js';
import type { Db } from './database.js';

/**
 * How long a read protects its digest from deletion: far longer than the gap between an index
 * lookup and the open() that follows it (microseconds to milliseconds), and long enough that a
 * client that just fetched a manifest finds its blobs.
 */
export const defaultInUseMs = 60_000;

export class ContentGuard {
  private readonly leases = new Map<Digest, number>();
  private readonly deleting = new Map<Digest, Promise<void>>();
  /** Reads since the last flush, and those younger than inUseMs (kept for the in-use check). */
  private readonly reads = new Map<Digest, number>();
  private readonly unflushed = new Set<Digest>();
  private readonly update;

  constructor(
    private readonly db: Db,
    readonly inUseMs = defaultInUseMs,
    /** Off for the CLI's own reads (preload, export, gc): only serve's clients make content "last pulled". */
    private readonly recording = true,
    private readonly now: () => number = Date.now,
  ) {
    this.update = db.prepare(
      'UPDATE blobs SET accessed_at = @at WHERE digest = @digest AND (accessed_at IS NULL OR accessed_at < @at)',
    );
  }

  /** A read (or a write that makes content reachable): in memory only. */
  touch(digest: Digest): void {
    if (!this.recording) return;
    this.reads.set(digest, this.now());
    this.unflushed.add(digest);
  }

  /** The last read this process saw, if it is not flushed and forgotten yet. */
  lastRead(digest: Digest): number | undefined {
    return this.reads.get(digest);
  }

  /** Writes the reads since the last flush in one transaction; forgets those older than inUseMs. */
  flush(): number {
    const pending = [...this.unflushed];
    this.unflushed.clear();
    if (pending.length > 0 && this.db.open) {
      this.db.transaction(() => {
        for (const digest of pending) this.update.run({ at: this.reads.get(digest) ?? this.now(), digest });
      })();
    }
    const cutoff = this.now() - this.inUseMs;
    for (const [digest, at] of this.reads) if (at < cutoff && !this.unflushed.has(digest)) this.reads.delete(digest);
    return pending.length;
  }

  /** Runs `work` (rename into blobs/, then the index row) with the digest leased. */
  async lease<T>(digest: Digest, work: () => Promise<T>): Promise<T> {
    for (let unlink = this.deleting.get(digest); unlink !== undefined; unlink = this.deleting.get(digest)) {
      await unlink;
    }
    this.leases.set(digest, (this.leases.get(digest) ?? 0) + 1);
    try {
      return await work();
    } finally {
      const left = (this.leases.get(digest) ?? 1) - 1;
      if (left === 0) this.leases.delete(digest);
      else this.leases.set(digest, left);
    }
  }

  /** Digests gc and eviction must leave alone right now: leased, being unlinked, or read within inUseMs. */
  inUse(): Set<Digest> {
    const cutoff = this.now() - this.inUseMs;
    const held = new Set<Digest>([...this.leases.keys(), ...this.deleting.keys()]);
    for (const [digest, at] of this.reads) if (at >= cutoff) held.add(digest);
    return held;
  }

  /** One digest of inUse(), without building the set. */
  isInUse(digest: Digest): boolean {
    if (this.leases.has(digest) || this.deleting.has(digest)) return true;
    const at = this.reads.get(digest);
    return at !== undefined && at >= this.now() - this.inUseMs;
  }

  /**
   * Runs `work` (a quarantine: move the file aside, then drop the rows) as a deletion of `digest`:
   * after any deletion of it in progress, and with leases of it waiting until `work` is done, so
   * no write brings the digest back between the move and the rows going.
   */
  async removing<T>(digest: Digest, work: () => Promise<T>): Promise<T> {
    for (let other = this.deleting.get(digest); other !== undefined; other = this.deleting.get(digest)) {
      await other.catch(() => undefined);
    }
    const run = work();
    const marker = run.then(
      () => undefined,
      () => undefined,
    );
    this.deleting.set(digest, marker);
    try {
      return await run;
    } finally {
      if (this.deleting.get(digest) === marker) this.deleting.delete(digest);
    }
  }

  /**
   * Unlinks the files of digests whose rows are gone (the caller deleted them synchronously, just
   * before): leases of these digests wait until their file is gone.
   */
  async unlinkAll(digests: Iterable<Digest>, unlink: (digest: Digest) => Promise<void>): Promise<void> {
    const done: Promise<void>[] = [];
    for (const digest of digests) {
      const removal = unlink(digest).finally(() => {
        if (this.deleting.get(digest) === removal) this.deleting.delete(digest);
      });
      this.deleting.set(digest, removal);
      done.push(removal);
    }
    await Promise.all(done);
  }
}
