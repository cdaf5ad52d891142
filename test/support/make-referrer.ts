/**
 * @module test/support/make-referrer
 * A signature-like OCI artifact whose subject is a given manifest, and a push of it that works on
 * registries with and without the referrers API: distribution 2.8 has none, so the spec's fallback
 * tag index (`sha256-<hex>`) is pushed too, as clients that sign there write it.
 */
import { sha256Digest, type ManifestBlob, type TestImage } from './make-image.js';
import { pushTestImage } from './push-image.js';

export const signatureArtifactType = 'application/vnd.example.signature.v1+json';

/** A manifest or index as JSON, with its wire bytes and digest. */
export function manifestBlob(body: unknown): ManifestBlob {
  const bytes = Buffer.from(JSON.stringify(body));
  const mediaType = (body as { mediaType: string }).mediaType;
  return { mediaType, digest: sha256Digest(bytes), size: bytes.length, bytes };
}

/** An OCI artifact whose subject is `subject`: empty config, one small layer holding `text`. */
export function makeSignature(subject: ManifestBlob, text: string): TestImage {
  const config = Buffer.from('{}');
  const layer = Buffer.from(text);
  const configDescriptor = {
    mediaType: 'application/vnd.oci.empty.v1+json',
    digest: sha256Digest(config),
    size: config.length,
  };
  const layerDescriptor = { mediaType: signatureArtifactType, digest: sha256Digest(layer), size: layer.length };
  const manifest = manifestBlob({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    artifactType: signatureArtifactType,
    config: configDescriptor,
    layers: [layerDescriptor],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
  });
  return {
    seed: text,
    mediaTypes: 'oci',
    blobs: new Map([
      [configDescriptor.digest, config],
      [layerDescriptor.digest, layer],
    ]),
    images: [],
    index: undefined,
    root: manifest,
  };
}

/**
 * Pushes `signature` by digest into `name` and, with `tagSchema`, the fallback tag index naming it
 * under `sha256-<hex of its subject>` (for a registry without the referrers API).
 */
export async function pushSignature(
  base: string,
  name: string,
  subject: ManifestBlob,
  signature: TestImage,
  options: { tagSchema: boolean; headers?: Record<string, string> },
): Promise<void> {
  await pushTestImage(base, name, signature.root.digest, signature, options.headers);
  if (!options.tagSchema) return;
  const schemaIndex = manifestBlob({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      {
        mediaType: signature.root.mediaType,
        digest: signature.root.digest,
        size: signature.root.size,
        artifactType: signatureArtifactType,
      },
    ],
  });
  const tag = subject.digest.replace(':', '-');
  await pushTestImage(base, name, tag, { ...signature, blobs: new Map(), root: schemaIndex }, options.headers);
}
