/**
 * @module store/blob-scrub
 * serve's background scrub (ADR 0013): at a bounded rate, re-reads the blob files verified longest
 * ago and hashes them, so corruption in blobs nobody pulls is found before a client meets it (and,
 * for pushed content, while someone may still have the image to push again). A file that fails goes
 * through the same quarantine as a verified read (LocalStore.quarantineBlob → Lifecycle.quarantine:
 * the deletion protocol, the stored-bytes total, one report line).
 *
 * The rate is a budget per tick: each tick may read `rate × tick` bytes, no more, and a tick starts
 * only after the previous one finished, so a slow disk lowers the rate rather than queueing work.
 * A blob larger than one tick's budget is read across ticks, its hash and file kept open between.
 * When each blob was last verified is kept in `blobs.verified_at` (migrations/0003-scrub.sql): the
 * walk resumes across restarts, and a blob is not due again before `interval` has passed.
 */
import { createDigester, digestAlgorithm, formatDigest, parseDigest, type Digest } from '../oci/digest.js';
import type { BlobFile } from '../oci/image-source.js';
import type { Logger } from '../oci/logger.js';
import type { BlobFiles } from './blob-files.js';
import type { Db } from './database.js';
import type { CorruptionReason } from './quarantine.js';

export interface ScrubSettings {
  /** Bytes hashed per second at most (store.scrub.rate). */
  rateBytes: number;
  /** A blob verified (or written) within this long is not scrubbed again yet (store.scrub.interval). */
  intervalMs: number;
}

export interface ScrubStats {
  /** Bytes read and hashed. */
  bytes: number;
  /** Blobs read to the end (found whole or not). */
  blobs: number;
  /** Blobs that failed and were quarantined. */
  corrupt: number;
}

export interface ScrubStore {
  db: Db;
  files: BlobFiles;
  /** Quarantines a blob whose file is the one read (`ino`), reporting it as found by the scrub. */
  quarantine(digest: Digest, reason: CorruptionReason, ino: number | undefined): Promise<unknown>;
  logger?: Logger;
}

/** Reads of one tick are at most this large (the read path's chunk). */
const chunkBytes = 1024 * 1024;

interface InProgress {
  digest: Digest;
  size: number;
  file: BlobFile;
  ino: number;
  hash: ReturnType<typeof createDigester>;
  position: number;
}

export class BlobScrub {
  readonly stats: ScrubStats = { bytes: 0, blobs: 0, corrupt: 0 };
  private current: InProgress | undefined;
  private readonly nextDue;
  private readonly markVerified;
  private readonly rowExists;
  private readonly buffer: Buffer;

  constructor(
    private readonly store: ScrubStore,
    private readonly settings: ScrubSettings,
    private readonly now: () => number = Date.now,
  ) {
    this.nextDue = store.db.prepare<[number], { digest: string; size: number }>(
      `SELECT digest, size FROM blobs WHERE coalesce(verified_at, created_at) < ?
       ORDER BY coalesce(verified_at, created_at), digest LIMIT 1`,
    );
    this.markVerified = store.db.prepare<[number, string]>('UPDATE blobs SET verified_at = ? WHERE digest = ?');
    this.rowExists = store.db.prepare<[string]>('SELECT 1 FROM blobs WHERE digest = ?');
    this.buffer = Buffer.allocUnsafe(Math.min(chunkBytes, Math.max(1, settings.rateBytes)));
  }

  /**
   * One tick of `tickMs`: hashes up to rate × tickMs bytes of the blobs due, oldest verified first;
   * returns the bytes read. A blob finished in this tick is not taken again in it (its new
   * verified_at is not before the tick began), so a tick ends even when every blob is due.
   */
  async tick(tickMs: number): Promise<number> {
    const started = this.now();
    const budget = Math.max(1, Math.floor((this.settings.rateBytes * tickMs) / 1000));
    let spent = 0;
    while (spent < budget) {
      this.current ??= await this.openNext(started);
      const blob = this.current;
      if (blob === undefined) break;
      const want = Math.min(this.buffer.byteLength, budget - spent, blob.size - blob.position);
      if (want > 0) {
        const read = await this.readChunk(blob, want);
        if (read === undefined) continue;
        spent += read;
        this.stats.bytes += read;
        continue;
      }
      await this.finish(blob);
    }
    return spent;
  }

  /** Closes a file held open between ticks (serve's shutdown). */
  async close(): Promise<void> {
    const blob = this.current;
    this.current = undefined;
    await blob?.file.close();
  }

  private async openNext(tickStarted: number): Promise<InProgress | undefined> {
    const due = Math.min(tickStarted, this.now() - this.settings.intervalMs);
    for (let row = this.nextDue.get(due); row !== undefined; row = this.nextDue.get(due)) {
      const digest = parseDigest(row.digest);
      // Not a digest wharf wrote (verify reports it): stamped so the walk goes past it.
      if (digest === undefined) {
        this.markVerified.run(this.now(), row.digest);
        continue;
      }
      let opened;
      try {
        opened = await this.store.files.openFileWithInode(digest);
      } catch (error) {
        this.skip(digest, error);
        continue;
      }
      if (opened === undefined) {
        // A row whose file is gone; unless gc took both meanwhile (then nothing is wrong).
        if (this.isIndexed(digest)) await this.fail(digest, 'missing-file', undefined);
        continue;
      }
      const hash = createDigester(digestAlgorithm(digest));
      return { digest, size: row.size, file: opened.file, ino: opened.ino, hash, position: 0 };
    }
    return undefined;
  }

  /** Reads and hashes the next `want` bytes; undefined when the blob was dealt with (short file). */
  private async readChunk(blob: InProgress, want: number): Promise<number | undefined> {
    const chunk = this.buffer.subarray(0, want);
    let read: number;
    try {
      read = await blob.file.read(chunk, blob.position);
    } catch (error) {
      await this.drop(blob);
      this.skip(blob.digest, error);
      return undefined;
    }
    if (read === 0) {
      await this.drop(blob);
      if (this.isIndexed(blob.digest)) await this.fail(blob.digest, 'size-mismatch', blob.ino);
      return undefined;
    }
    blob.hash.update(chunk.subarray(0, read));
    blob.position += read;
    return read;
  }

  /** All `size` bytes read: longer than the row says, or another digest, is corruption. */
  private async finish(blob: InProgress): Promise<void> {
    // Stryker disable next-line ArrowFunction: an unreadable byte past the end counts as none either way: `undefined > 0` is false, as `0 > 0` is.
    const extra = await blob.file.read(Buffer.alloc(1), blob.size).catch(() => 0);
    await this.drop(blob);
    this.stats.blobs++;
    const reason: CorruptionReason | undefined =
      extra > 0
        ? 'size-mismatch'
        : formatDigest(digestAlgorithm(blob.digest), blob.hash) === blob.digest
          ? undefined
          : 'digest-mismatch';
    // The row may have gone while the file was read (gc, eviction, a quarantine by a read): nothing to do.
    if (!this.isIndexed(blob.digest)) return;
    if (reason === undefined) {
      // Only the file read is vouched for: one renamed in meanwhile is checked on a later pass.
      if ((await this.store.files.inodeOf(blob.digest)) === blob.ino) this.markVerified.run(this.now(), blob.digest);
      return;
    }
    await this.fail(blob.digest, reason, blob.ino);
  }

  private async fail(digest: Digest, reason: CorruptionReason, ino: number | undefined): Promise<void> {
    this.stats.corrupt++;
    try {
      await this.store.quarantine(digest, reason, ino);
    } catch (error) {
      // The file could not be moved (verify and the next read see it again): the walk goes on.
      this.skip(digest, error);
    }
  }

  /**
   * Unreadable is not proof of corruption, and a quarantine that failed is no reason to stop: the
   * blob is stamped so the walk moves past it, and the line says why (`wharf verify` reports it too).
   */
  private skip(digest: Digest, error: unknown): void {
    this.markVerified.run(this.now(), digest);
    this.store.logger?.warn({ digest, err: error }, 'scrub: could not check this blob; moving on');
  }

  private async drop(blob: InProgress): Promise<void> {
    if (this.current === blob) this.current = undefined;
    await blob.file.close();
  }

  private isIndexed(digest: Digest): boolean {
    return this.rowExists.get(digest) !== undefined;
  }
}
