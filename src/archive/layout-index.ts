/**
 * @module archive/layout-index
 * What an OCI layout writer records about the images it writes, whatever
 * carries the layout (a tar, a directory): the manifests, the named roots
 * (each with its full reference in `org.opencontainers.image.ref.name`, a local
 * name marked as such: ref-names.ts), the referrers (listed without a ref.name,
 * so an import finds them), and from these index.json's entries and docker's
 * manifest.json. A directory that already holds a layout merges into it.
 */
import type { Descriptor } from '../oci/descriptor.js';
import { parseDigest, type Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import { formatImageRef, hasRegistryHost, type ImageRef } from '../oci/image-ref.js';
import type { ManifestContent } from '../oci/image-source.js';
import { parseManifest, type ParsedManifest } from '../oci/manifest.js';
import type { RepoName, Tag } from '../oci/reference.js';
import { buildDockerLoadManifest, type DockerLoadEntry } from './docker-load-manifest.js';
import { refNameAnnotation } from './layout-names.js';
import { localNameAnnotation } from './ref-names.js';

export interface LayoutIndexOptions {
  /**
   * The ref.name an image gets; `name:tag` or `name@digest` by default. `wharf copy` from a
   * registry with a port names the image fully (`127.0.0.1:5000/team/run:v1`, as docker's
   * RepoTags and the spec's ref.name grammar allow), which no repository name can hold.
   */
  refName?: (ref: ImageRef) => string;
}

interface Root {
  descriptor: Descriptor;
  refName: string;
  /** False for an image asked for by digest: docker's RepoTags hold tags only. */
  tagged: boolean;
}

export class LayoutIndex {
  private readonly manifests = new Map<Digest, { mediaType: string; size: number }>();
  /** Parsed manifests (small), for docker's manifest.json. */
  private readonly parsed = new Map<Digest, ParsedManifest>();
  private readonly roots: Root[] = [];
  private readonly referrers: Descriptor[] = [];
  private readonly formatRefName: (ref: ImageRef) => string;

  constructor(options: LayoutIndexOptions = {}) {
    this.formatRefName = options.refName ?? formatImageRef;
  }

  recordManifest(manifest: ManifestContent): void {
    const size = manifest.bytes.byteLength;
    this.manifests.set(manifest.digest, { mediaType: manifest.mediaType, size });
    const parsed = parseManifest(manifest.bytes, manifest.mediaType);
    this.parsed.set(manifest.digest, parsed);
    if (parsed.subject !== undefined && !this.referrers.some((d) => d.digest === manifest.digest)) {
      const descriptor: Descriptor = { mediaType: parsed.mediaType, digest: manifest.digest, size };
      if (parsed.artifactType !== undefined) descriptor.artifactType = parsed.artifactType;
      this.referrers.push(descriptor);
    }
  }

  tag(name: RepoName, reference: Tag | Digest, digest: Digest): void {
    const manifest = this.manifests.get(digest);
    if (manifest === undefined) throw new OciError('MANIFEST_UNKNOWN', `${name}: ${digest} was not written`);
    const refName = this.formatRefName({ name, reference });
    if (this.roots.some((r) => r.refName === refName)) return;
    // A name without a registry host is a local one in wharf's store: said so, or an import would read it as Docker Hub's.
    const annotations: Record<string, string> = { [refNameAnnotation]: refName };
    if (!hasRegistryHost(refName)) annotations[localNameAnnotation] = 'true';
    // docker load refuses a RepoTag without a tag (a bare `v1` from `oci-archive:<file>:v1`).
    const tagged = parseDigest(reference) === undefined && /:[^/]+$/.test(refName);
    this.roots.push({ descriptor: { ...manifest, digest, annotations }, refName, tagged });
  }

  /**
   * index.json's `manifests`: the existing entries (a layout directory written before) with those
   * whose ref.name an image of this batch takes left out, then the named images, then the referrers
   * no entry lists yet. An entry is kept as it was read, fields wharf does not know included.
   */
  indexManifests(existing: readonly Record<string, unknown>[] = []): Record<string, unknown>[] {
    const taken = new Set(this.roots.map((r) => r.refName));
    const kept = existing.filter((entry) => !taken.has(refNameOf(entry) ?? ''));
    const named = new Set(this.roots.map((r) => r.descriptor.digest));
    const listed = new Set(kept.filter((e) => refNameOf(e) === undefined).map((e) => e.digest));
    const referrers = this.referrers.filter((d) => !named.has(d.digest) && !listed.has(d.digest));
    return [...kept, ...this.roots.map((r) => ({ ...r.descriptor })), ...referrers.map((d) => ({ ...d }))];
  }

  /** docker's manifest.json entries for the single-platform images; `present` is every blob the layout holds. */
  dockerManifest(present: ReadonlySet<Digest>): DockerLoadEntry[] {
    const roots = this.roots.map((r) => ({ digest: r.descriptor.digest, refName: r.refName, tagged: r.tagged }));
    return buildDockerLoadManifest(roots, this.parsed, present);
  }
}

function refNameOf(entry: Record<string, unknown>): string | undefined {
  const annotations = entry.annotations;
  if (typeof annotations !== 'object' || annotations === null) return undefined;
  const value = (annotations as Record<string, unknown>)[refNameAnnotation];
  return typeof value === 'string' ? value : undefined;
}
