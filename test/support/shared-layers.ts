/**
 * @module test/support/shared-layers
 * Images that share layers (a base image and apps built on it), for gc and
 * eviction tests: a layer is named by a seed, and the same seed gives the same
 * bytes (same digest) in every image that lists it.
 */
import { gzipSync } from 'node:zlib';
import { randomBytesFor, sha256Digest, tarOf, type Descriptor, type TestImage } from './make-image.js';

const layerType = 'application/vnd.oci.image.layer.v1.tar+gzip';
const manifestType = 'application/vnd.oci.image.manifest.v1+json';
const configType = 'application/vnd.oci.image.config.v1+json';

export interface Layer {
  descriptor: Descriptor;
  bytes: Buffer;
  diffId: string;
}

/** A gzip'd tar of `size` random bytes (incompressible, so its size is about `size`). */
export async function makeLayer(seed: string, size: number): Promise<Layer> {
  const tar = await tarOf([{ name: `layer/${seed}.bin`, data: randomBytesFor(seed, size) }]);
  const bytes = gzipSync(tar);
  return {
    descriptor: { mediaType: layerType, digest: sha256Digest(bytes), size: bytes.length },
    bytes,
    diffId: sha256Digest(tar),
  };
}

/** A linux/amd64 OCI image of these layers, its config labelled with `seed`. */
export function composeImage(seed: string, layers: readonly Layer[]): TestImage {
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Labels: { seed } },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    }),
  );
  const configDescriptor: Descriptor = { mediaType: configType, digest: sha256Digest(config), size: config.length };
  const manifestBytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: manifestType,
      config: configDescriptor,
      layers: layers.map((l) => l.descriptor),
    }),
  );
  const manifest = {
    mediaType: manifestType,
    digest: sha256Digest(manifestBytes),
    size: manifestBytes.length,
    bytes: manifestBytes,
  };
  const blobs = new Map<string, Buffer>([[configDescriptor.digest, config]]);
  for (const layer of layers) blobs.set(layer.descriptor.digest, layer.bytes);
  return {
    seed,
    mediaTypes: 'oci',
    blobs,
    images: [
      {
        platform: { os: 'linux', architecture: 'amd64' },
        manifest,
        config: configDescriptor,
        layers: layers.map((l) => l.descriptor),
        diffIds: layers.map((l) => l.diffId),
      },
    ],
    index: undefined,
    root: manifest,
  };
}

/** The bytes an image's files take in a store: its manifest, config and layers, each once. */
export function imageBytes(image: TestImage): number {
  let total = image.root.size;
  for (const bytes of image.blobs.values()) total += bytes.length;
  return total;
}
