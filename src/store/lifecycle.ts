/**
 * @module store/lifecycle
 * gc and eviction for one store (docs/decisions/0008-gc-and-eviction.md):
 * decisions and row deletions in one synchronous transaction, then the files
 * unlinked through the content guard. Counts what it did, for metrics.
 */
import type { Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import type { Logger } from '../oci/logger.js';
import type { BlobFiles, QuarantineMove } from './blob-files.js';
import type { ContentGuard } from './content-guard.js';
import type { Db } from './database.js';
import { evictImages, type EvictedImage } from './eviction.js';
import { applyGcPlan, deleteGcBlob, planGc, type GcBlob, type GcLink, type GcManifest } from './gc-plan.js';
import { dropBlobRows } from './quarantine.js';
import { SpaceLimit, type Reservation, type SpaceSettings } from './space-limit.js';
import type { StoreIndex } from './store-index.js';

export interface LifecycleSettings {
  /** store.maxSize and its low-water mark; absent: no limit. */
  space?: SpaceSettings;
  /** Repositories that are never evicted nor collected (store.pin). */
  isPinned?: (repository: string) => boolean;
  logger?: Logger;
}

export interface GcOptions {
  /** Nothing created or read within this long goes (store.gc.grace). */
  graceMs: number;
  dryRun?: boolean;
  now?: number;
}

export interface GcReport {
  dryRun: boolean;
  manifests: GcManifest[];
  links: GcLink[];
  blobs: GcBlob[];
  /** Files under blobs/ with no index row (a crash between rename and insert), past the grace period. */
  unindexed: GcBlob[];
  /** Upload sessions past uploads.maxAge, with the bytes they hold. */
  uploads: { id: string; size: number }[];
  /** Bytes of blob files (indexed and not) and upload files removed, or that would be. */
  bytes: number;
}

export interface LifecycleStats {
  evictions: number;
  evictedBytes: number;
  gcRuns: number;
  gcBytes: number;
}

export class Lifecycle {
  readonly stats: LifecycleStats = { evictions: 0, evictedBytes: 0, gcRuns: 0, gcBytes: 0 };
  readonly space: SpaceLimit;
  private readonly isPinned: (repository: string) => boolean;

  constructor(
    private readonly db: Db,
    private readonly index: StoreIndex,
    private readonly files: BlobFiles,
    readonly guard: ContentGuard,
    private readonly settings: LifecycleSettings,
  ) {
    // Stryker disable next-line ArrowFunction: its only readers (planGc, pinnedManifests via evictImages) test the answer for truth; undefined is as false as false.
    this.isPinned = settings.isPinned ?? (() => false);
    this.space = new SpaceLimit(
      settings.space,
      () => index.storedBytes,
      (need) => this.evict(need),
    );
  }

  /** Counts `bytes` against store.maxSize until released, evicting first if needed; 507 if they cannot fit. */
  reserve(bytes: number): Promise<Reservation> {
    return this.space.reserve(bytes);
  }

  /** Evicts least recently used images until `need` bytes are freed, or nothing more may go. */
  async evict(need: number): Promise<number> {
    this.guard.flush();
    const inUse = this.guard.inUse();
    const result = this.index.runInTransaction(() => evictImages(this.db, { need, inUse, isPinned: this.isPinned }));
    this.index.forgetBytes(result.bytes);
    this.stats.evictions += result.images.length;
    this.stats.evictedBytes += result.bytes;
    this.settings.logger?.info(
      { need, freed: result.bytes, images: result.images.map(describe), blobs: result.blobs.length },
      result.bytes >= need ? 'store.maxSize: evicted images' : 'store.maxSize: evicted all that may go, still short',
    );
    await this.guard.unlinkAll(result.blobs, (digest) => this.files.remove(digest));
    return result.bytes;
  }

  /**
   * Quarantine (ADR 0009) as one more deletion of the protocol above: by the process that holds the
   * data directory (serve's verified reads, `verify --repair` under the lock), with leases of the
   * digest waiting meanwhile, and the rows dropped in one synchronous step that also takes their
   * bytes off the stored total store.maxSize is checked against (and wharf_store_bytes shows).
   * The file moves first, and only if it is still the one found corrupt (`ino`); undefined when it
   * was replaced since (the rows then stay: they describe the new file).
   */
  async quarantine(
    digest: Digest,
    ino: number | undefined,
  ): Promise<{ moved: QuarantineMove; dropped: ReturnType<typeof dropBlobRows> } | undefined> {
    // A read-only store (export, ls beside serve) does not hold the data directory: moving the file
    // there would leave serve's rows pointing at nothing. It refuses the bytes and says who repairs.
    if (this.db.readonly) {
      throw new OciError(
        'UNAVAILABLE',
        `blob ${digest} failed verification; left in place: \`wharf verify --repair\` (or serve, when it reads it) quarantines it`,
        { detail: { digest } },
      );
    }
    return this.guard.removing(digest, async () => {
      const moved = await this.files.quarantine(digest, ino);
      if (!moved.moved && moved.why === 'replaced') return undefined;
      const dropped = this.index.runInTransaction(() => dropBlobRows(this.db, digest));
      this.index.forgetBytes(dropped.bytes);
      return { moved, dropped };
    });
  }

  /** Mark and sweep (gc-plan.ts), then files without rows; with dryRun, only says what would go. */
  async gc(
    options: GcOptions,
    abandonedUploads: (dryRun: boolean) => Promise<{ id: string; size: number }[]>,
  ): Promise<GcReport> {
    const now = options.now ?? Date.now();
    const cutoff = now - options.graceMs;
    const dryRun = options.dryRun === true;
    if (!dryRun) this.guard.flush();
    const inUse = this.guard.inUse();
    const plan = () => planGc(this.db, { cutoff, inUse, isPinned: this.isPinned });
    let found;
    if (dryRun) {
      found = plan();
    } else {
      found = this.index.runInTransaction(() => {
        const marked = plan();
        applyGcPlan(this.db);
        const blobs = marked.blobs.filter((blob) => deleteGcBlob(this.db, blob.digest));
        return { ...marked, blobs };
      });
      this.index.forgetBytes(found.blobs.reduce((sum, b) => sum + b.size, 0));
      await this.guard.unlinkAll(
        found.blobs.map((b) => b.digest),
        (digest) => this.files.remove(digest),
      );
    }
    const unindexed = await this.sweepUnindexed(cutoff, dryRun);
    const uploads = await abandonedUploads(dryRun);
    const report: GcReport = {
      dryRun,
      manifests: found.manifests,
      links: found.links,
      blobs: found.blobs,
      unindexed,
      uploads,
      bytes: [...found.blobs, ...unindexed, ...uploads].reduce((sum, b) => sum + b.size, 0),
    };
    if (!dryRun) {
      this.stats.gcRuns++;
      this.stats.gcBytes += report.bytes;
    }
    return report;
  }

  /**
   * Files under blobs/ named by a digest that has no row, last written before the cutoff and not
   * leased: what a crash between rename and insert leaves. Checked and marked for unlinking in one
   * step, so a write that brings the digest back waits for the unlink (content-guard.ts).
   */
  private async sweepUnindexed(cutoff: number, dryRun: boolean): Promise<GcBlob[]> {
    const found: GcBlob[] = [];
    for await (const file of this.files.listBlobFiles()) {
      const digest = file.digest;
      if (digest === undefined || !file.isFile || this.index.blobSize(digest) !== undefined) continue;
      const info = await this.files.blobFileStat(digest);
      if (info === undefined || !info.isFile || info.writtenAt >= cutoff) continue;
      // Checked again after the await: a write may have indexed it, or be about to.
      if (this.index.blobSize(digest) !== undefined || this.guard.isInUse(digest)) continue;
      found.push({ digest, size: info.size });
      if (!dryRun) await this.guard.unlinkAll([digest], (d: Digest) => this.files.remove(d));
    }
    return found;
  }
}

function describe(image: EvictedImage): string {
  return `${image.repository}@${image.digest}`;
}
