/**
 * @module archive/write-image-tree
 * After the blobs of a layout have streamed in: writes one image named by
 * index.json (its child manifests first, then itself), refusing when a manifest
 * or a blob it names is not in the layout (nor already in the writer).
 * One exception: a child of an index that is wholly absent (neither its
 * manifest nor anything under that digest in the layout) is a platform not
 * taken, a sparse index as `wharf preload --platform` makes and `export` writes;
 * it stays absent. image-layout.md lets a layout miss referenced blobs; an
 * image manifest missing a config or layer is still refused: it cannot be pulled.
 */
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import type { ImageWriter } from '../oci/image-transfer.js';
import { parseManifest } from '../oci/manifest.js';
import { isNondistributable } from '../oci/media-types.js';
import type { RepoName } from '../oci/reference.js';

export interface LayoutContent {
  /** Every verified blob entry, with its size. */
  blobs: Map<Digest, number>;
  /** The blob entries that parsed as manifests, byte for byte. */
  manifests: Map<Digest, Uint8Array>;
}

const maxDepth = 4;

/** Resolves to the bytes of the blobs the image names (for progress and summaries). */
export async function writeImageTree(
  writer: ImageWriter,
  name: RepoName,
  descriptor: Descriptor,
  content: LayoutContent,
  depth: number,
  /** Records which repository each manifest went to (a referrer goes where its subject went). */
  placed: Map<Digest, RepoName>,
): Promise<number> {
  const bytes = content.manifests.get(descriptor.digest);
  if (bytes === undefined) {
    const why = content.blobs.has(descriptor.digest) ? 'is not a manifest' : 'is missing from the layout';
    throw new OciError('MANIFEST_BLOB_UNKNOWN', `manifest ${descriptor.digest} of ${name} ${why}`, {
      detail: { digest: descriptor.digest },
    });
  }
  if (bytes.byteLength !== descriptor.size) {
    throw new OciError(
      'SIZE_INVALID',
      `manifest ${descriptor.digest}: ${bytes.byteLength} bytes, its descriptor says ${descriptor.size}`,
    );
  }
  const parsed = parseManifest(bytes, descriptor.mediaType);
  let total = 0;
  if (parsed.kind === 'index') {
    if (depth >= maxDepth) throw new OciError('MANIFEST_INVALID', `${descriptor.digest}: indexes nested too deep`);
    for (const child of parsed.references) {
      if (!content.blobs.has(child.digest)) continue;
      total += await writeImageTree(writer, name, child, content, depth + 1, placed);
    }
  } else {
    for (const blob of parsed.references) {
      if ((blob.urls !== undefined && blob.urls.length > 0) || isNondistributable(blob.mediaType)) continue;
      const size = content.blobs.get(blob.digest);
      if (size === undefined && !(await writer.hasBlob(blob.digest))) {
        throw new OciError(
          'MANIFEST_BLOB_UNKNOWN',
          `manifest ${descriptor.digest} of ${name} names blob ${blob.digest}, which is missing from the layout`,
          {
            detail: { digest: blob.digest },
          },
        );
      }
      if (size !== undefined && size !== blob.size) {
        throw new OciError(
          'SIZE_INVALID',
          `blob ${blob.digest}: ${size} bytes in the layout, the manifest says ${blob.size}`,
        );
      }
      total += blob.size;
    }
  }
  await writer.writeManifest(name, {
    digest: descriptor.digest,
    mediaType: parsed.mediaType,
    size: bytes.byteLength,
    bytes,
  });
  placed.set(descriptor.digest, name);
  return total;
}
