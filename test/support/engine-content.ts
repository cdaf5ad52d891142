/**
 * @module test/support/engine-content
 * Blobs and manifests for the transfer engine's in-process tests: seeded random blobs and compact
 * OCI image manifests over them, each with its digest, as an ImageReader hands them out.
 */
import type { Digest } from '../../src/oci/digest.js';
import type { ManifestContent } from '../../src/oci/image-source.js';
import { randomBytesFor, sha256Digest } from './make-image.js';

export const ociManifest = 'application/vnd.oci.image.manifest.v1+json';
export const ociIndex = 'application/vnd.oci.image.index.v1+json';

export interface TestBlob {
  digest: Digest;
  size: number;
  bytes: Buffer;
}

/** A maker of blobs whose bytes follow from `seed` and each blob's label: the same on every run. */
export function blobMaker(seed: string): (label: string, size: number) => TestBlob {
  return (label, size) => {
    const bytes = randomBytesFor(`${seed}/${label}`, size);
    return { digest: sha256Digest(bytes) as Digest, size, bytes };
  };
}

/** `body` as compact JSON, with its digest. */
export function content(mediaType: string, body: unknown): ManifestContent {
  const bytes = Buffer.from(JSON.stringify(body));
  return { mediaType, digest: sha256Digest(bytes) as Digest, size: bytes.length, bytes };
}

export const descriptor = (mediaType: string, b: { digest: Digest; size: number }): object => ({
  mediaType,
  digest: b.digest,
  size: b.size,
});

/** An OCI image manifest of `config` and `layers`; `extra` adds fields (a subject, an artifactType). */
export function manifestOf(config: TestBlob, layers: readonly TestBlob[], extra: object = {}): ManifestContent {
  return content(ociManifest, {
    schemaVersion: 2,
    mediaType: ociManifest,
    config: descriptor('application/vnd.oci.image.config.v1+json', config),
    layers: layers.map((l) => descriptor('application/vnd.oci.image.layer.v1.tar+gzip', l)),
    ...extra,
  });
}
