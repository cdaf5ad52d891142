/**
 * @module test/support/store-content
 * Small blobs and OCI manifests built in code for tests that drive a LocalStore by hand: each with
 * its wire bytes, digest and size, and the descriptor that names it.
 */
import { createHash } from 'node:crypto';
import { requireDigest, type Digest } from '../../src/oci/digest.js';

export const ociTypes = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

export interface Content {
  bytes: Buffer;
  digest: Digest;
  size: number;
}

export interface ContentDescriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
}

export function content(data: string | Buffer): Content {
  const bytes = Buffer.from(data);
  return {
    bytes,
    digest: requireDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`),
    size: bytes.length,
  };
}

export function descriptorOf(item: Content, mediaType: string): ContentDescriptor {
  return { mediaType, digest: item.digest, size: item.size };
}

/** An OCI image manifest (JSON.stringify bytes); `extra` adds or overrides fields (subject, annotations, artifactType). */
export function imageManifest(
  config: Content,
  layers: ContentDescriptor[],
  extra: Record<string, unknown> = {},
): Content {
  return content(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: ociTypes.manifest,
      config: descriptorOf(config, ociTypes.config),
      layers,
      ...extra,
    }),
  );
}

/** An OCI image index over `manifests`. */
export function imageIndex(manifests: ContentDescriptor[], extra: Record<string, unknown> = {}): Content {
  return content(JSON.stringify({ schemaVersion: 2, mediaType: ociTypes.index, manifests, ...extra }));
}

/** A body of one chunk. */
export async function* once(bytes: Buffer): AsyncGenerator<Uint8Array> {
  yield bytes;
}
