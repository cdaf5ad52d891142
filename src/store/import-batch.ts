/**
 * @module store/import-batch
 * The local store as an ImageWriter: an import is all-or-nothing. Blob files
 * are written as they arrive, through the verified file path (temp file, hash,
 * fsync, rename); no index row appears until commit(), which checks that every
 * manifest's blobs are here and inserts the blobs, links, manifests,
 * references and tags in ONE transaction. abort() removes the files this batch
 * created that no row points at, so the store is left exactly as it was.
 * Imported tags carry source 'imported' (operator intent: a fetch never replaces them).
 */
import { digestAlgorithm, digestOf, type Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import type { BlobInfo, ManifestContent } from '../oci/image-source.js';
import type { DigestingImageWriter, UnnamedBlob } from '../oci/image-transfer.js';
import { maxManifestBytes, parseManifest, type ParsedManifest } from '../oci/manifest.js';
import { isNondistributable } from '../oci/media-types.js';
import type { RepoName, Tag } from '../oci/reference.js';
import type { BlobFiles } from './blob-files.js';
import type { StoreIndex, TagSource } from './store-index.js';

export interface ImportBatchOptions {
  /** The tags' source (default 'imported'). */
  source?: TagSource;
  /** Accept an index whose children are not all here (a platform subset). Default: refuse. */
  allowSparseIndex?: boolean;
}

interface PendingManifest {
  name: RepoName;
  content: ManifestContent;
  parsed: ParsedManifest;
  tags: Tag[];
}

export class ImportBatch implements DigestingImageWriter {
  /** files.write hashes while it streams and renames into blobs/ only after size and digest matched. */
  readonly verifiesBlobs = true;
  /** Files under blobs/ that this batch brought into existence. */
  private readonly created = new Set<Digest>();
  /** Blobs written (verified) by this batch, with their sizes. */
  private readonly written = new Map<Digest, number>();
  private readonly manifests = new Map<string, PendingManifest>();
  private finished = false;

  constructor(
    private readonly files: BlobFiles,
    private readonly index: StoreIndex,
    private readonly options: ImportBatchOptions = {},
  ) {}

  async hasBlob(digest: Digest): Promise<boolean> {
    return this.written.has(digest) || this.index.blobSize(digest) !== undefined;
  }

  async writeBlob(blob: BlobInfo, body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<void> {
    this.requireOpen();
    // A file without a row (left by a crash) is not ours to remove on abort: it was there before.
    const existed = (await this.files.blobFileSize(blob.digest)) !== undefined;
    const info = await this.files.write(body, { digest: blob.digest, size: blob.size });
    if (!existed) this.created.add(info.digest);
    this.written.set(info.digest, info.size);
  }

  async writeUnnamedBlob(size: number, body: AsyncIterable<Uint8Array>): Promise<UnnamedBlob> {
    this.requireOpen();
    const info = await this.files.write(body, { size });
    // Known only now: a blob with a row was there before and stays; one without is ours to remove on abort
    // (an orphan file a crash left with the same bytes is removed with it: it was unreachable garbage).
    const added = this.index.blobSize(info.digest) === undefined && !this.written.has(info.digest);
    if (added) this.created.add(info.digest);
    this.written.set(info.digest, info.size);
    return { ...info, added };
  }

  async writeManifest(name: RepoName, content: ManifestContent): Promise<void> {
    this.requireOpen();
    if (content.bytes.byteLength > maxManifestBytes) {
      throw new OciError('MANIFEST_INVALID', `${content.digest}: manifest exceeds ${maxManifestBytes} bytes`);
    }
    const computed = digestOf(content.bytes, digestAlgorithm(content.digest));
    if (computed !== content.digest) {
      throw new OciError('DIGEST_INVALID', `manifest ${content.digest}: its bytes hash to ${computed}`);
    }
    const parsed = parseManifest(content.bytes, content.mediaType);
    if (!(await this.hasBlob(content.digest))) {
      await this.writeBlob({ digest: content.digest, size: content.bytes.byteLength }, [content.bytes]);
    }
    const key = `${name}@${content.digest}`;
    if (!this.manifests.has(key)) this.manifests.set(key, { name, content, parsed, tags: [] });
  }

  async tag(name: RepoName, reference: Tag | Digest, digest: Digest): Promise<void> {
    this.requireOpen();
    const pending = this.manifests.get(`${name}@${digest}`);
    if (pending === undefined) {
      throw new OciError(
        'MANIFEST_UNKNOWN',
        `${name}: tag ${reference} names ${digest}, which this import did not write`,
      );
    }
    if (reference !== digest && !pending.tags.includes(reference as Tag)) pending.tags.push(reference as Tag);
  }

  async commit(): Promise<void> {
    this.requireOpen();
    for (const pending of this.manifests.values()) this.requireReferences(pending);
    this.index.runInTransaction(() => {
      for (const { name, content, parsed, tags } of this.manifests.values()) {
        if (parsed.kind === 'image') {
          for (const blob of parsed.references) {
            const size = this.written.get(blob.digest) ?? this.index.blobSize(blob.digest);
            if (size !== undefined) this.index.addBlob(name, blob.digest, size);
          }
        }
        this.index.putManifest(
          name,
          {
            digest: content.digest,
            mediaType: parsed.mediaType,
            size: content.bytes.byteLength,
            subject: parsed.subject?.digest,
            artifactType: parsed.artifactType,
            annotations: parsed.annotations,
            references: parsed.references.map((d) => d.digest),
          },
          tags,
          this.options.source ?? 'imported',
        );
      }
    });
    this.finished = true;
    // Blobs the archive carried that no manifest names: not kept.
    await this.removeUnreferenced();
  }

  async abort(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    await this.removeUnreferenced();
  }

  /** Removes the files this batch created that no index row points at. */
  private async removeUnreferenced(): Promise<void> {
    for (const digest of this.created) {
      if (this.index.blobSize(digest) === undefined) await this.files.remove(digest);
    }
    this.created.clear();
  }

  private requireReferences({ name, content, parsed }: PendingManifest): void {
    for (const ref of parsed.references) {
      if (parsed.kind === 'image') {
        if ((ref.urls !== undefined && ref.urls.length > 0) || isNondistributable(ref.mediaType)) continue;
        if (this.written.has(ref.digest) || this.index.blobSize(ref.digest) !== undefined) continue;
      } else if (
        this.options.allowSparseIndex === true ||
        this.manifests.has(`${name}@${ref.digest}`) ||
        this.index.manifestByDigest(name, ref.digest) !== undefined
      ) {
        continue;
      }
      throw new OciError('MANIFEST_BLOB_UNKNOWN', `${name}@${content.digest} names ${ref.digest}, which is missing`, {
        detail: { digest: ref.digest },
      });
    }
  }

  private requireOpen(): void {
    if (this.finished) throw new OciError('UNKNOWN', 'this import batch is already committed or aborted');
  }
}
