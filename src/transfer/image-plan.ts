/**
 * @module transfer/image-plan
 * Reads an image's manifests (small, buffered) into the list of what a copy
 * moves: the manifests to write, children before parents, and the blobs they
 * need. With a platform filter, an index keeps its bytes (and so its digest)
 * and only the chosen platforms' manifests are taken: a sparse index. With
 * referrers, the manifests naming any of those as their subject come too.
 * With `sparse`, children the reader does not hold are left out the same way
 * (exporting a sparse index the store holds: preload --platform).
 */
import type { Descriptor, Platform } from '../oci/descriptor.js';
import { digestAlgorithm, digestOf, type Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import type { ManifestContent } from '../oci/image-source.js';
import type { ImageReader } from '../oci/image-transfer.js';
import { maxManifestBytes, parseManifest } from '../oci/manifest.js';
import { isNondistributable } from '../oci/media-types.js';
import type { ImageRef } from '../oci/image-ref.js';

export interface PlanOptions {
  /** Which platforms of an index to take; all when absent. */
  platforms?: (platform: Platform) => boolean;
  /** Also the referrers of every manifest taken, and theirs. */
  referrers?: boolean;
  /** A child of an index that the reader does not have is left out (the index keeps its bytes), not an error. */
  sparse?: boolean;
}

export interface ImagePlan {
  root: ManifestContent;
  /** Children first, the root last: a writer never sees a manifest before what it names. */
  manifests: ManifestContent[];
  /** Configs and layers, each once. */
  blobs: Descriptor[];
  /** How many of the manifests are referrers (taken with `referrers`). */
  referrers: number;
}

/** An index nests indexes at most this deep (image-spec allows nesting; a loop must not recurse forever). */
const maxDepth = 4;

/** Referrers of referrers are followed; a chain or a fan-out past this many manifests is refused, not followed forever. */
const maxReferrers = 1000;

export async function planImage(reader: ImageReader, ref: ImageRef, options: PlanOptions = {}): Promise<ImagePlan> {
  const root = await reader.getManifest(ref.name, ref.reference);
  if (root === undefined) throw new OciError('MANIFEST_UNKNOWN', `${ref.name}: no manifest for ${ref.reference}`);
  const plan: ImagePlan = { root, manifests: [], blobs: [], referrers: 0 };
  const seen = new Set<Digest>();
  await walk(reader, ref, root, plan, seen, options, 0);
  if (options.referrers === true) await addReferrers(reader, ref, plan, seen, options);
  return plan;
}

/**
 * Adds the referrers (signatures, SBOMs, attestations) of every manifest taken,
 * and theirs in turn, with their blobs: after their subjects in the plan, so a
 * writer sees a subject before what refers to it.
 */
async function addReferrers(
  reader: ImageReader,
  ref: ImageRef,
  plan: ImagePlan,
  seen: Set<Digest>,
  options: PlanOptions,
): Promise<void> {
  if (reader.listReferrers === undefined) return;
  let added = 0;
  // for…of over an array reads its length at every step: the referrers pushed while it runs are
  // visited too, so referrers of referrers are followed.
  for (const subject of plan.manifests) {
    for (const descriptor of await reader.listReferrers(ref.name, subject.digest)) {
      if (seen.has(descriptor.digest)) continue;
      if (++added > maxReferrers) {
        throw new OciError('UNSUPPORTED', `${ref.name}: more than ${maxReferrers} referrer manifests`);
      }
      const content = await reader.getManifest(ref.name, descriptor.digest);
      if (content === undefined) {
        throw new OciError('MANIFEST_UNKNOWN', `${ref.name}: referrer ${descriptor.digest} is not available`, {
          detail: { digest: descriptor.digest },
        });
      }
      await walk(reader, ref, content, plan, seen, options, 0);
      plan.referrers++;
    }
  }
}

async function walk(
  reader: ImageReader,
  ref: ImageRef,
  manifest: ManifestContent,
  plan: ImagePlan,
  seen: Set<Digest>,
  options: PlanOptions,
  depth: number,
): Promise<void> {
  if (seen.has(manifest.digest)) return;
  seen.add(manifest.digest);
  if (manifest.bytes.byteLength > maxManifestBytes) {
    throw new OciError('MANIFEST_INVALID', `${manifest.digest}: manifest exceeds ${maxManifestBytes} bytes`);
  }
  // Byte-exact manifests: what is copied must hash to the digest it will be known by.
  const computed = digestOf(manifest.bytes, digestAlgorithm(manifest.digest));
  if (computed !== manifest.digest) {
    throw new OciError('DIGEST_INVALID', `${manifest.digest}: manifest bytes hash to ${computed}`);
  }
  const parsed = parseManifest(manifest.bytes, manifest.mediaType);
  if (parsed.kind === 'index') {
    if (depth >= maxDepth) throw new OciError('MANIFEST_INVALID', `${manifest.digest}: indexes nested too deep`);
    const { platforms } = options;
    for (const child of parsed.references) {
      if (child.platform !== undefined && platforms !== undefined && !platforms(child.platform)) continue;
      const content = await reader.getManifest(ref.name, child.digest);
      if (content === undefined && options.sparse === true) continue;
      if (content === undefined) {
        throw new OciError('MANIFEST_UNKNOWN', `${ref.name}: manifest ${child.digest} of the index is not available`, {
          detail: { digest: child.digest },
        });
      }
      await walk(reader, ref, content, plan, seen, options, depth + 1);
    }
  } else {
    for (const blob of parsed.references) {
      // Layers a registry is not expected to hold are fetched by clients from their urls.
      if ((blob.urls !== undefined && blob.urls.length > 0) || isNondistributable(blob.mediaType)) continue;
      if (seen.has(blob.digest)) continue;
      seen.add(blob.digest);
      plan.blobs.push(blob);
    }
  }
  plan.manifests.push(manifest);
}
