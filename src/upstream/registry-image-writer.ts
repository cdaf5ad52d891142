/**
 * @module upstream/registry-image-writer
 * A registry repository as the transfer engine's ImageWriter (the push end of `wharf copy` and
 * `push-dir`). A blob the repository has is not sent (HEAD first); one that another repository
 * of the same registry has is mounted (no bytes move); the rest stream in one PUT each.
 * Manifests go byte for byte, by digest, skipped when present; tags move last, at commit, so a
 * tag never points at a half-written image. A registry is not transactional: abort() cancels
 * open upload sessions, and what was already pushed stays (unreferenced blobs, which the
 * registry's garbage collection removes).
 */
import { parseDigest, type Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import type { BlobInfo, ManifestContent } from '../oci/image-source.js';
import type { DigestingImageWriter, UnnamedBlob } from '../oci/image-transfer.js';
import { parseManifest } from '../oci/manifest.js';
import type { RepoName, Tag } from '../oci/reference.js';
import { discardBody } from './read-body.js';
import { pushScope, type RegistryClient } from './registry-client.js';
import { headBlob, headManifest } from './registry-reads.js';
import { updateReferrersTag } from './referrers-tag.js';
import { putBlob, putManifest, putUnnamedBlob, startUpload, type UploadSession } from './registry-writes.js';

export interface RegistryWriterOptions {
  /** Another repository of the same registry holding the source: blobs are mounted from it. */
  mountFrom?: string;
  /**
   * The tag every image is put under, instead of its own reference (copy to `repo:tag`); with
   * several images, each keeps its own tag.
   */
  tag?: Tag;
}

export interface RegistryWriterCounts {
  blobsPresent: number;
  blobsMounted: number;
  manifestsPresent: number;
}

export class RegistryImageWriter implements DigestingImageWriter {
  readonly counts: RegistryWriterCounts = { blobsPresent: 0, blobsMounted: 0, manifestsPresent: 0 };
  readonly tagged: { reference: string; digest: Digest }[] = [];
  private readonly present = new Set<Digest>();
  private readonly sessions = new Map<Digest, UploadSession>();
  /** Sessions whose PUT is under way (named or not): one that fails leaves the session open, and abort() cancels it. */
  private readonly putting = new Set<UploadSession>();
  private readonly manifests = new Map<Digest, ManifestContent>();
  private readonly tags: { reference: Tag | Digest; digest: Digest }[] = [];

  constructor(
    private readonly client: RegistryClient,
    readonly repo: RepoName,
    private readonly options: RegistryWriterOptions = {},
  ) {}

  async hasBlob(digest: Digest): Promise<boolean> {
    if (this.present.has(digest)) return true;
    if ((await headBlob(this.client, this.repo, digest)) !== undefined) {
      this.counts.blobsPresent++;
      this.present.add(digest);
      return true;
    }
    const from = this.options.mountFrom;
    if (from === undefined || from === this.repo) return false;
    const started = await startUpload(this.client, this.repo, { digest, from });
    if (started.mounted) {
      this.counts.blobsMounted++;
      this.present.add(digest);
      return true;
    }
    // Not mountable: the session the registry opened instead takes the bytes.
    this.sessions.set(digest, started.session);
    return false;
  }

  async writeBlob(blob: BlobInfo, body: AsyncIterable<Uint8Array>): Promise<void> {
    const session = this.sessions.get(blob.digest) ?? (await this.openSession());
    this.sessions.delete(blob.digest);
    await this.put(session, () => putBlob(this.client, this.repo, session, blob.digest, blob.size, body));
    this.present.add(blob.digest);
  }

  async writeUnnamedBlob(size: number, body: AsyncIterable<Uint8Array>): Promise<UnnamedBlob> {
    const session = await this.openSession();
    const written = await this.put(session, () => putUnnamedBlob(this.client, this.repo, session, body));
    if (written.size !== size) {
      throw new OciError('SIZE_INVALID', `a blob of ${written.size} bytes where ${size} were announced`);
    }
    // The bytes went over the wire either way; a registry does not say whether it held them.
    const added = !this.present.has(written.digest);
    this.present.add(written.digest);
    return { ...written, added };
  }

  /** Every manifest goes to this writer's repository, whatever repository the source named. */
  async writeManifest(_name: RepoName, manifest: ManifestContent): Promise<void> {
    this.manifests.set(manifest.digest, manifest);
    const existing = await headManifest(this.client, this.repo, manifest.digest);
    if (existing !== undefined) {
      this.counts.manifestsPresent++;
      return;
    }
    const answer = await putManifest(this.client, this.repo, manifest.digest, manifest.bytes, manifest.mediaType);
    const subject = parseManifest(manifest.bytes, manifest.mediaType).subject;
    // A registry without the referrers API: keep the spec's fallback tag index up to date.
    if (subject !== undefined && !answer.subjectHandled) {
      await updateReferrersTag(this.client, this.repo, subject.digest, manifest);
    }
  }

  async tag(_name: RepoName, reference: Tag | Digest, digest: Digest): Promise<void> {
    this.tags.push({ reference, digest });
  }

  async commit(): Promise<void> {
    const roots = new Set(this.tags.map((t) => t.digest));
    for (const { reference, digest } of this.tags) {
      const target = this.options.tag !== undefined && roots.size === 1 ? this.options.tag : reference;
      if (parseDigest(target) !== undefined) {
        this.tagged.push({ reference: target, digest });
        continue;
      }
      const manifest = this.manifests.get(digest);
      if (manifest === undefined)
        throw new OciError('MANIFEST_UNKNOWN', `tag ${target}: manifest ${digest} was not written`);
      await putManifest(this.client, this.repo, target, manifest.bytes, manifest.mediaType);
      this.tagged.push({ reference: target, digest });
    }
  }

  async abort(): Promise<void> {
    const open = [...this.sessions.values(), ...this.putting];
    this.sessions.clear();
    this.putting.clear();
    await Promise.allSettled(
      open.map(async (session) => {
        const response = await this.client.send({
          method: 'DELETE',
          target: session.location,
          from: session.from,
          scope: pushScope(this.repo),
        });
        await discardBody(response.body);
      }),
    );
  }

  /** Runs a PUT on `session`, listed in `putting` until it succeeds (the body stopped or the connection cut: abort() cancels it). */
  private async put<T>(session: UploadSession, send: () => Promise<T>): Promise<T> {
    this.putting.add(session);
    const result = await send();
    this.putting.delete(session);
    return result;
  }

  private async openSession(): Promise<UploadSession> {
    const started = await startUpload(this.client, this.repo);
    // Stryker disable next-line ConditionalExpression,StringLiteral: startUpload answers `mounted` only when asked to mount (registry-writes.ts: a 201 and a mount); asked for none, this line only narrows the type.
    if (started.mounted) throw new OciError('UNKNOWN', 'an upload without mount was answered as a mount');
    return started.session;
  }
}
