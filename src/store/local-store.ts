/**
 * @module store/local-store
 * The local store: content-addressed files plus the SQLite index, as an
 * ImageSource and an ImageSink. Errors are OciErrors or absence (undefined);
 * nothing here knows HTTP.
 */
import { digestAlgorithm, digestOf, parseDigest, type Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/descriptor.js';
import { OciError } from '../oci/errors.js';
import type {
  BlobFile,
  BlobHandle,
  BlobInfo,
  ChunkRange,
  ImageSink,
  ImageSource,
  ManifestContent,
  ManifestInfo,
  PageRequest,
  PutManifestResult,
  UploadState,
} from '../oci/image-source.js';
import { maxManifestBytes, parseManifest, type ParsedManifest } from '../oci/manifest.js';
import { isNondistributable } from '../oci/media-types.js';
import type { RepoName, Tag } from '../oci/reference.js';
import { BlobFiles, type DurableFs } from './blob-files.js';
import { listImages, type ImageListing } from './image-listing.js';
import { indexPath, openDatabase, openReadOnlyDatabase, type Db } from './database.js';
import { ImportBatch, type ImportBatchOptions } from './import-batch.js';
import { ManifestCache } from './manifest-cache.js';
import { StoreIndex, toManifestInfo, type ManifestRow, type TagRow } from './store-index.js';
import { BlobFill } from './blob-fill.js';
import { ContentGuard } from './content-guard.js';
import { Lifecycle, type GcOptions, type GcReport, type LifecycleSettings } from './lifecycle.js';
import type { Reservation } from './space-limit.js';
import { StoreHealth } from './store-health.js';
import { defaultUploadLimits, type UploadLimits } from './upload-quota.js';
import { findBlobHolders } from './blob-holders.js';
import { BlobScrub, type ScrubSettings } from './blob-scrub.js';
import type { Logger } from '../oci/logger.js';
import type { CorruptionReason, QuarantineResult } from './quarantine.js';
import { VerifiedFiles, type Verdict } from './verified-files.js';
import {
  awaitingFile,
  checkWhole,
  hashWholeFile,
  memoryBlob,
  smallBlobBytes,
  type OnCorrupt,
} from './verified-read.js';
import { Uploads } from './uploads.js';

export interface LocalStoreOptions {
  /** Unfinished uploads older than this are removed (default 24 h). */
  uploadMaxAgeMs?: number;
  /** Upload sessions that never received a byte are removed after this (default 10 min). */
  uploadEmptyMaxAgeMs?: number;
  /** Caps on open upload sessions (default 1000 in all, 100 per client). */
  uploadLimits?: Partial<UploadLimits>;
  manifestCacheBytes?: number;
  /**
   * Accept a pushed manifest whose blobs (or index children) are not here
   * (registry.sparseManifests; the spec lets a registry check or not). Default
   * off: a push naming a missing blob is MANIFEST_BLOB_UNKNOWN.
   */
  sparseManifests?: boolean;
  /** For tests only: the fs calls on blob files, to observe their order, hold one, or see descriptors closed (store/blob-files.ts). */
  blobFs?: DurableFs;
  /** Check blob bytes against their digest as they are read (verified-read.ts; default true). */
  verifyReads?: boolean;
  /** Told of every blob quarantined (cli/ logs it: nothing is dropped without a line). */
  onQuarantine?: (result: QuarantineResult) => void;
  /** store.maxSize, pins (lifecycle.ts); absent: no limit, nothing pinned by pattern. */
  lifecycle?: LifecycleSettings;
  /** How long a read keeps content from gc and eviction (content-guard.ts; for tests). */
  inUseMs?: number;
  /**
   * Record reads (last pulled, in-use window): serve does; the CLI's commands, which run alone or
   * read-only and read for themselves rather than for a client, do not (default false).
   */
  recordReads?: boolean;
}

const defaultUploadMaxAgeMs = 24 * 60 * 60 * 1000;
const defaultUploadEmptyMaxAgeMs = 10 * 60 * 1000;

export class LocalStore implements ImageSource, ImageSink {
  private readonly cache: ManifestCache;
  private readonly uploads: Uploads;
  /** Size and readiness, for metrics and /readyz (store-health.ts). */
  readonly health: StoreHealth;
  private readonly verifyReads: boolean;
  /** Blob files a full read in this process found whole (store.verifyReads; ADR 0009). */
  readonly verified = new VerifiedFiles();
  private readonly onQuarantine: ((result: QuarantineResult) => void) | undefined;
  /** gc, eviction, store.maxSize, and what keeps content in use away from them. */
  readonly lifecycle: Lifecycle;
  private readonly guard: ContentGuard;

  private constructor(
    readonly root: string,
    private readonly db: Db,
    private readonly files: BlobFiles,
    private readonly index: StoreIndex,
    private readonly options: LocalStoreOptions,
  ) {
    this.cache = new ManifestCache(options.manifestCacheBytes ?? 64 * 1024 * 1024);
    this.guard = new ContentGuard(db, options.inUseMs, options.recordReads ?? false);
    this.lifecycle = new Lifecycle(db, index, files, this.guard, options.lifecycle ?? {});
    this.uploads = new Uploads(
      files,
      index,
      {
        maxSessions: options.uploadLimits?.maxSessions ?? defaultUploadLimits.maxSessions,
        maxSessionsPerClient: options.uploadLimits?.maxSessionsPerClient ?? defaultUploadLimits.maxSessionsPerClient,
        maxAgeMs: options.uploadMaxAgeMs ?? defaultUploadMaxAgeMs,
        emptyMaxAgeMs: options.uploadEmptyMaxAgeMs ?? defaultUploadEmptyMaxAgeMs,
      },
      this.lifecycle,
    );
    this.health = new StoreHealth(
      db,
      () => files.probeWritable(),
      () => index.storedBytes,
    );
    this.verifyReads = options.verifyReads ?? true;
    this.onQuarantine = options.onQuarantine;
  }

  /** Opens (creating if needed) the store at root; cleans what a crash may have left. */
  static async open(root: string, options: LocalStoreOptions = {}): Promise<LocalStore> {
    const files = new BlobFiles(root, options.blobFs);
    await files.init();
    const db = openDatabase(indexPath(root));
    const store = new LocalStore(root, db, files, new StoreIndex(db), options);
    await store.uploads.truncateAll();
    await store.cleanUploads();
    return store;
  }

  /**
   * Opens an existing store for reading only (export beside a running serve):
   * no migration, and nothing cleaned, since tmp/ may hold another process's writes.
   */
  static openReadOnly(root: string, options: LocalStoreOptions = {}): LocalStore {
    const files = new BlobFiles(root);
    const db = openReadOnlyDatabase(indexPath(root));
    return new LocalStore(root, db, files, new StoreIndex(db), options);
  }

  /** An all-or-nothing import (see import-batch.ts): rows appear only on its commit(). */
  startImport(options: ImportBatchOptions = {}): ImportBatch {
    return new ImportBatch(this.files, this.index, options);
  }

  /** Every tagged image and untagged root manifest whose repository `match`es (see image-listing.ts). */
  listImages(match: (repository: string) => boolean = () => true): Promise<ImageListing[]> {
    return listImages(this.db, this.files, match);
  }

  /** Whether the store holds a blob's bytes, whatever repository links it (wharf tree --data marks these). */
  hasBlob(digest: Digest): boolean {
    return this.index.blobSize(digest) !== undefined;
  }

  cleanUploads(): Promise<number> {
    return this.uploads.clean();
  }

  /** Mark and sweep (lifecycle.ts); abandoned uploads included. */
  gc(options: GcOptions): Promise<GcReport> {
    return this.lifecycle.gc(options, async (dryRun) => {
      const abandoned = this.uploads.abandoned();
      if (!dryRun) await this.uploads.clean();
      return abandoned;
    });
  }

  /** Writes the last-read times kept in memory (batched: no database write per hit). */
  flushAccessTimes(): void {
    if (this.db.open && !this.db.readonly) this.guard.flush();
  }

  /** Counts bytes about to be written against store.maxSize (evicting first if needed; 507 if they cannot fit). */
  reserveSpace(bytes: number): Promise<Reservation> {
    return this.lifecycle.reserve(bytes);
  }

  close(): void {
    this.flushAccessTimes();
    this.db.close();
  }

  // ---- ImageSource ----

  /**
   * A blob that fails verification here is quarantined and answered as absent (small ones), or cut
   * before its last chunk (large ones): see verified-read.ts. A file that passed a full read in this
   * process is trusted while its identity is unchanged (verified-files.ts): not hashed again.
   */
  async openBlob(name: RepoName, digest: Digest): Promise<BlobHandle | undefined> {
    const size = this.index.linkedBlobSize(name, digest);
    if (size === undefined) return undefined;
    this.guard.touch(digest);
    const files = this.files;
    if (!this.verifyReads) {
      return { digest, size, open: (range) => files.openRead(digest, range), openFile: () => files.openFile(digest) };
    }
    const verified = this.verified;
    if (size <= smallBlobBytes) {
      const read = await files.readWithInode(digest);
      if (read === undefined) {
        await this.quarantineBlob(digest, 'missing-file');
        return undefined;
      }
      if (verified.trusts(digest, read.identity)) {
        verified.counts.trusted++;
        return memoryBlob(digest, read.bytes);
      }
      verified.counts.hashed++;
      const reason = checkWhole(digest, size, read.bytes);
      if (reason === undefined) {
        verified.remember(digest, read.identity);
        return memoryBlob(digest, read.bytes);
      }
      await this.quarantineBlob(digest, reason, read.ino);
      return undefined;
    }
    const onCorrupt: OnCorrupt = async (reason, ino) => {
      await this.quarantineBlob(digest, reason, ino);
    };
    return {
      digest,
      size,
      // Streams (export, copy) are verified by their consumer, the transfer engine.
      open: (range) => files.openRead(digest, range),
      openFile: async () => {
        const opened = await files.openFileWithInode(digest);
        if (opened === undefined) {
          await onCorrupt('missing-file', undefined);
          throw new OciError('BLOB_UNKNOWN', 'blob unknown to registry', { detail: { digest } });
        }
        if (verified.trusts(digest, opened.identity)) {
          verified.counts.trusted++;
          return opened.file;
        }
        const { identity } = opened;
        // One hash per file, shared by its readers (verified-files.ts); asked for once per reader.
        let shared: Promise<Verdict> | undefined;
        const verdict = (): Promise<Verdict> => {
          if (shared !== undefined) return shared;
          shared = verified.verdictOf(digest, identity);
          if (shared !== undefined) {
            verified.counts.joined++;
            return shared;
          }
          verified.counts.hashed++;
          shared = verified.verify(digest, identity, () => this.hashStoredFile(digest, size, identity, onCorrupt));
          return shared;
        };
        // When the shared hash could not finish: this reader hashes the file it holds.
        const hashOwn = async (): Promise<Verdict> => {
          verified.counts.own++;
          const outcome = await this.judgeFile(opened.file, opened.ino, digest, size, onCorrupt);
          if (outcome === 'verified') verified.remember(digest, identity);
          return outcome;
        };
        return awaitingFile(opened.file, digest, size, verdict, hashOwn);
      },
    };
  }

  /**
   * Hashes a stored blob file from a descriptor of its own (verified reads share it): 'abandoned'
   * when the file is gone or no longer the one with `identity` (its readers then hash their own).
   */
  private async hashStoredFile(digest: Digest, size: number, identity: string, onCorrupt: OnCorrupt): Promise<Verdict> {
    const opened = await this.files.openFileWithInode(digest);
    // Stryker disable next-line ConditionalExpression: without it the next line throws on the absent file, and verify() answers a throw with 'abandoned' too.
    if (opened === undefined) return 'abandoned';
    try {
      if (opened.identity !== identity) return 'abandoned';
      return await this.judgeFile(opened.file, opened.ino, digest, size, onCorrupt);
    } finally {
      await opened.file.close();
    }
  }

  /** Hashes a blob file whole; one that does not match is quarantined. */
  private async judgeFile(
    file: BlobFile,
    ino: number,
    digest: Digest,
    size: number,
    onCorrupt: OnCorrupt,
  ): Promise<'verified' | 'corrupt'> {
    const reason = await hashWholeFile(file, digest, size);
    if (reason === undefined) return 'verified';
    await onCorrupt(reason, ino);
    // Stryker disable next-line StringLiteral: every verdict but 'verified' fails the read and is not remembered.
    return 'corrupt';
  }

  async statBlob(name: RepoName, digest: Digest): Promise<BlobInfo | undefined> {
    const size = this.index.linkedBlobSize(name, digest);
    if (size === undefined) return undefined;
    this.guard.touch(digest);
    return { digest, size };
  }

  async getManifest(name: RepoName, reference: Tag | Digest): Promise<ManifestContent | undefined> {
    const row = this.findManifest(name, reference);
    if (row === undefined) return undefined;
    this.guard.touch(row.digest);
    let bytes = this.cache.get(row.digest);
    if (bytes === undefined) {
      bytes = await this.readManifestFile(row);
      if (bytes === undefined) return undefined;
      this.cache.set(row.digest, bytes);
    }
    return { ...this.answerDigest(row, reference), bytes };
  }

  /**
   * A manifest's bytes from disk, hashed before they are cached or served (ADR 0009's verified
   * reads, as for a small blob): a file whose bytes or size are wrong, or that is gone, is
   * quarantined, and the manifest is then unknown here (a mirrored one is fetched again).
   */
  private async readManifestFile(row: ManifestRow): Promise<Buffer | undefined> {
    if (!this.verifyReads) return this.files.readAll(row.digest);
    const read = await this.files.readWithInode(row.digest);
    if (read === undefined) {
      await this.quarantineBlob(row.digest, 'missing-file');
      return undefined;
    }
    const reason = checkWhole(row.digest, row.size, read.bytes);
    if (reason === undefined) return read.bytes;
    await this.quarantineBlob(row.digest, reason, read.ino);
    return undefined;
  }

  async statManifest(name: RepoName, reference: Tag | Digest): Promise<ManifestInfo | undefined> {
    const row = this.findManifest(name, reference);
    if (row === undefined) return undefined;
    this.guard.touch(row.digest);
    return this.answerDigest(row, reference);
  }

  async listTags(name: RepoName, page: PageRequest): Promise<string[] | undefined> {
    const repoId = this.index.repositoryId(name);
    if (repoId === undefined) return undefined;
    return this.index.listTags(repoId, page.last ?? '', page.n ?? -1);
  }

  async listReferrers(name: RepoName, subject: Digest, artifactType?: string): Promise<Descriptor[]> {
    const descriptors = this.index.referrers(name, subject).map(toReferrerDescriptor);
    return artifactType === undefined ? descriptors : descriptors.filter((d) => d.artifactType === artifactType);
  }

  async listRepositories(page: PageRequest): Promise<string[]> {
    return this.index.listRepositories(page.last ?? '', page.n ?? -1);
  }

  // ---- ImageSink ----

  startUpload(name: RepoName, client?: string): Promise<UploadState> {
    return this.uploads.start(name, client);
  }

  async getUpload(name: RepoName, id: string): Promise<UploadState | undefined> {
    return this.uploads.get(name, id);
  }

  appendUpload(name: RepoName, id: string, body: AsyncIterable<Uint8Array>, range?: ChunkRange): Promise<UploadState> {
    return this.uploads.append(name, id, body, range);
  }

  finishUpload(
    name: RepoName,
    id: string,
    digest: Digest,
    body?: AsyncIterable<Uint8Array>,
    range?: ChunkRange,
  ): Promise<BlobInfo> {
    return this.uploads.finish(name, id, digest, body, range);
  }

  cancelUpload(name: RepoName, id: string): Promise<boolean> {
    return this.uploads.cancel(name, id);
  }

  async putBlob(name: RepoName, digest: Digest, body: AsyncIterable<Uint8Array>, size?: number): Promise<BlobInfo> {
    // Without a declared size the bytes are counted once known, before the row is written.
    const reservation = await this.reserveSpace(this.index.blobSize(digest) === undefined ? (size ?? 0) : 0);
    try {
      const info = await this.guard.lease(digest, async () => {
        const written = await this.files.write(body, size === undefined ? { digest } : { digest, size });
        if (size === undefined && this.index.blobSize(digest) === undefined) {
          await this.reserveOrRemove(written);
        }
        this.index.addBlob(name, written.digest, written.size);
        return written;
      });
      this.guard.touch(digest);
      return info;
    } finally {
      reservation.release();
    }
  }

  async mountBlob(
    name: RepoName,
    digest: Digest,
    from: RepoName | ((candidate: RepoName) => boolean),
  ): Promise<BlobInfo | undefined> {
    const source = typeof from === 'function' ? this.index.blobHolders(digest).find(from) : from;
    const size = source === undefined ? undefined : this.index.linkedBlobSize(source, digest);
    if (size === undefined) return undefined;
    this.index.linkBlob(name, digest);
    this.guard.touch(digest);
    return { digest, size };
  }

  async deleteBlob(name: RepoName, digest: Digest): Promise<boolean> {
    return this.index.unlinkBlob(name, digest);
  }

  async putManifest(
    name: RepoName,
    reference: Tag | Digest,
    bytes: Uint8Array,
    contentType: string | undefined,
    extraTags: Tag[] = [],
  ): Promise<PutManifestResult> {
    if (bytes.byteLength > maxManifestBytes) {
      throw new OciError('MANIFEST_INVALID', `manifest exceeds ${maxManifestBytes} bytes`, { status: 413 });
    }
    const asDigest = parseDigest(reference);
    const digest = digestOf(bytes, asDigest === undefined ? 'sha256' : digestAlgorithm(asDigest));
    if (asDigest !== undefined && asDigest !== digest) {
      throw new OciError('DIGEST_INVALID', 'manifest digest does not match the reference', {
        detail: { reference: asDigest, computed: digest },
      });
    }
    const parsed = parseManifest(bytes, contentType);
    if (this.options.sparseManifests !== true) this.requireReferences(name, parsed);
    const tags = asDigest === undefined ? [reference as Tag, ...extraTags] : extraTags;
    await this.writeManifestBytes(digest, bytes, () => {
      // Again, in the same synchronous step as the insert: gc may have taken a blob during the write.
      if (this.options.sparseManifests !== true) this.requireReferences(name, parsed);
      this.index.putManifest(
        name,
        {
          digest,
          mediaType: parsed.mediaType,
          size: bytes.byteLength,
          subject: parsed.subject?.digest,
          artifactType: parsed.artifactType,
          annotations: parsed.annotations,
          references: parsed.references.map((d) => d.digest),
        },
        tags,
      );
    });
    const result: PutManifestResult = { digest, mediaType: parsed.mediaType, size: bytes.byteLength, tags };
    if (parsed.subject !== undefined) result.subject = parsed.subject.digest;
    return result;
  }

  async deleteManifest(name: RepoName, reference: Tag | Digest): Promise<boolean> {
    if (parseDigest(reference) === undefined) return this.index.deleteTag(name, reference);
    return this.index.deleteManifest(name, reference as Digest);
  }

  // ---- mirror support: what the pull-through proxy needs beyond ImageSource/ImageSink ----

  tagState(name: RepoName, tag: Tag): TagRow | undefined {
    return this.index.tag(name, tag);
  }

  confirmTag(name: RepoName, tag: Tag, at = Date.now()): void {
    this.index.confirmTag(name, tag, at);
  }

  /** The size of a blob the store holds under any name. */
  contentSize(digest: Digest): number | undefined {
    return this.index.blobSize(digest);
  }

  linkBlob(name: RepoName, digest: Digest): void {
    this.index.linkBlob(name, digest);
  }

  /**
   * Keeps a manifest fetched from an upstream, already verified against its
   * digest. Its blobs are not required: only what clients pull gets fetched.
   */
  async putFetchedManifest(
    name: RepoName,
    manifest: { digest: Digest; mediaType: string; bytes: Uint8Array },
    tag?: Tag,
  ): Promise<ManifestInfo> {
    let parsed: ParsedManifest | undefined;
    try {
      parsed = parseManifest(manifest.bytes, manifest.mediaType);
    } catch {
      // The upstream's bytes are served as they are even when wharf cannot read them (parsed stays undefined).
    }
    await this.writeManifestBytes(manifest.digest, manifest.bytes, () =>
      this.index.putManifest(
        name,
        {
          digest: manifest.digest,
          mediaType: manifest.mediaType,
          size: manifest.bytes.byteLength,
          subject: parsed?.subject?.digest,
          artifactType: parsed?.artifactType,
          annotations: parsed?.annotations,
          references: parsed?.references.map((d) => d.digest) ?? [],
        },
        tag === undefined ? [] : [tag],
        'fetched',
      ),
    );
    return { digest: manifest.digest, mediaType: manifest.mediaType, size: manifest.bytes.byteLength };
  }

  /** A temp file for a blob arriving from an upstream, readable while it grows (see blob-fill.ts). */
  startFill(digest: Digest): Promise<BlobFill> {
    return BlobFill.create(this.files, digest);
  }

  /** Positioned reads of a committed blob file, whoever links it. */
  openContentFile(digest: Digest): Promise<BlobFile> {
    return this.files.openFile(digest);
  }

  /**
   * Commits a verified fill's file and records it: the index row and the link into each name that
   * asked for it (read when the rows are written, so a name that joined meanwhile is linked too).
   */
  async commitFill(fill: BlobFill, names: Iterable<RepoName>): Promise<BlobInfo> {
    const info = await this.guard.lease(fill.digest, async () => {
      const committed = await fill.commit();
      for (const name of names) this.index.addBlob(name, committed.digest, committed.size);
      return committed;
    });
    this.guard.touch(info.digest);
    return info;
  }

  /**
   * Moves a blob's file to quarantine/ and drops the rows that say the store has it (quarantine.ts).
   * `ino`: only if the file is still the one found corrupt. undefined: nothing done (replaced since).
   */
  async quarantineBlob(
    digest: Digest,
    reason: CorruptionReason,
    ino?: number,
    foundBy: QuarantineResult['foundBy'] = 'read',
  ): Promise<QuarantineResult | undefined> {
    const holders = findBlobHolders(this.db, digest);
    this.verified.forget(digest);
    const done = await this.lifecycle.quarantine(digest, ino);
    if (done === undefined) return undefined;
    this.cache.delete(digest);
    const { moved, dropped } = done;
    const result: QuarantineResult = {
      digest,
      reason,
      foundBy,
      movedTo: moved.moved ? moved.path : undefined,
      holders,
      droppedTags: dropped.droppedTags,
      droppedManifests: dropped.droppedManifests,
    };
    this.onQuarantine?.(result);
    return result;
  }

  /** serve's background scrub over this store's blobs (blob-scrub.ts); its failures quarantine here. */
  createScrub(settings: ScrubSettings, logger?: Logger): BlobScrub {
    return new BlobScrub(
      {
        db: this.db,
        files: this.files,
        quarantine: (digest, reason, ino) => this.quarantineBlob(digest, reason, ino, 'scrub'),
        ...(logger === undefined ? {} : { logger }),
      },
      settings,
    );
  }

  // ---- helpers ----

  /**
   * Writes a manifest's file if the store lacks it, then `record`s its rows, with the digest leased
   * and its bytes counted against store.maxSize; `record` runs in the same synchronous step as the
   * last check, so gc cannot take the file between them.
   */
  private async writeManifestBytes(digest: Digest, bytes: Uint8Array, record: () => void): Promise<void> {
    const reservation = await this.reserveSpace(this.index.blobSize(digest) === undefined ? bytes.byteLength : 0);
    try {
      await this.guard.lease(digest, async () => {
        if (this.index.blobSize(digest) === undefined) {
          const info = await this.files.write([bytes], { digest });
          this.index.addContent(info.digest, info.size);
        }
        record();
      });
      this.guard.touch(digest);
    } finally {
      reservation.release();
    }
  }

  /** A blob written without a declared size: counted now, or removed (507) when it cannot fit. */
  private async reserveOrRemove(info: BlobInfo): Promise<void> {
    try {
      (await this.reserveSpace(info.size)).release();
    } catch (error) {
      await this.files.remove(info.digest);
      throw error;
    }
  }

  private findManifest(name: RepoName, reference: Tag | Digest): ManifestRow | undefined {
    const digest = parseDigest(reference);
    return digest === undefined ? this.index.manifestByTag(name, reference) : this.index.manifestByDigest(name, digest);
  }

  /** Docker-Content-Digest answers in the algorithm asked for: the reference's own, when it is a digest. */
  private answerDigest(row: ManifestRow, reference: Tag | Digest): ManifestInfo {
    const info = toManifestInfo(row);
    const digest = parseDigest(reference);
    return digest === undefined ? info : { ...info, digest };
  }

  /**
   * Everything a manifest points at must be in this repository (spec: a registry
   * that checks MUST answer MANIFEST_BLOB_UNKNOWN). Exempt: the subject, which may
   * come later, and layers a registry is not expected to hold (urls, non-distributable).
   */
  private requireReferences(name: RepoName, parsed: ParsedManifest): void {
    for (const descriptor of parsed.references) {
      if (descriptor.urls !== undefined && descriptor.urls.length > 0) continue;
      if (isNondistributable(descriptor.mediaType)) continue;
      const present =
        parsed.kind === 'index'
          ? this.index.manifestByDigest(name, descriptor.digest) !== undefined ||
            this.index.linkedBlobSize(name, descriptor.digest) !== undefined
          : this.index.linkedBlobSize(name, descriptor.digest) !== undefined;
      if (!present) {
        throw new OciError('MANIFEST_BLOB_UNKNOWN', `manifest references unknown ${descriptor.digest}`, {
          detail: { digest: descriptor.digest },
        });
      }
    }
  }
}

function toReferrerDescriptor(row: ManifestRow): Descriptor {
  const descriptor: Descriptor = { mediaType: row.media_type, digest: row.digest, size: row.size };
  if (row.artifact_type !== null) descriptor.artifactType = row.artifact_type;
  if (row.annotations !== null) descriptor.annotations = JSON.parse(row.annotations) as Record<string, string>;
  return descriptor;
}
