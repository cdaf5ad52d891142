/**
 * @module bench/images
 * Generated images whose layers are streamed, never held whole: each layer is a one-file ustar
 * archive of seeded random (incompressible) bytes, regenerated on demand from its seed.
 */
import { createHash } from 'node:crypto';
import { randomChunks } from '../test/support/make-image.js';

export const mediaTypes = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
} as const;

/** What a manifest GET sends: both servers then answer with the OCI manifest as stored. */
export const manifestAccept = [
  mediaTypes.manifest,
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

export interface StreamedBlob {
  digest: string;
  size: number;
  mediaType: string;
  /** The bytes again, from the start; same bytes every time. */
  chunks(): Iterable<Buffer>;
}

export interface BenchImage {
  name: string;
  tag: string;
  manifest: { digest: string; bytes: Buffer };
  config: StreamedBlob;
  layers: StreamedBlob[];
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

/** A POSIX ustar header for one regular file, everything that could vary pinned. */
function ustarHeader(name: string, size: number): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0, 100, 'utf8');
  header.write(octal(0o644, 8), 100);
  header.write(octal(0, 8), 108);
  header.write(octal(0, 8), 116);
  header.write(octal(size, 12), 124);
  header.write(octal(0, 12), 136);
  header.write('        ', 148); // checksum is computed with its own field as spaces
  header.write('0', 156);
  header.write('ustar\x0000', 257);
  header.write('root', 265);
  header.write('root', 297);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return header;
}

/** The tar archive holding `size` random bytes of `seed` as one file. */
function* tarChunks(seed: string, size: number): Generator<Buffer> {
  yield ustarHeader(`bench/${seed}.bin`, size);
  yield* randomChunks(seed, size);
  const padding = (512 - (size % 512)) % 512;
  // Two zero records end the archive.
  yield Buffer.alloc(padding + 1024);
}

function digestOf(chunks: Iterable<Buffer>): { digest: string; size: number } {
  const hash = createHash('sha256');
  let size = 0;
  for (const chunk of chunks) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

export function tarLayer(seed: string, contentBytes: number): StreamedBlob {
  const chunks = (): Iterable<Buffer> => tarChunks(seed, contentBytes);
  return { ...digestOf(chunks()), mediaType: mediaTypes.layer, chunks };
}

function smallBlob(bytes: Buffer, mediaType: string): StreamedBlob {
  return { ...digestOf([bytes]), mediaType, chunks: () => [bytes] };
}

/** An OCI image of `layers` layers of `layerBytes` random bytes each (or of `layerSizes`), under `name:tag`. */
export function makeBenchImage(options: {
  name: string;
  tag: string;
  seed: string;
  layers: number;
  layerBytes: number;
  layerSizes?: readonly number[];
  architecture?: string;
}): BenchImage {
  const layers: StreamedBlob[] = [];
  const sizes = options.layerSizes ?? Array.from({ length: options.layers }, () => options.layerBytes);
  for (const [i, size] of sizes.entries()) layers.push(tarLayer(`${options.seed}-layer-${i}`, size));
  const config = smallBlob(
    Buffer.from(
      JSON.stringify({
        created: '1970-01-01T00:00:00Z',
        architecture: options.architecture ?? 'amd64',
        os: 'linux',
        config: { Cmd: ['/bin/sh'], Labels: { 'org.example.wharf.bench-seed': options.seed } },
        // An uncompressed tar layer's diff_id is its own digest.
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
      }),
    ),
    mediaTypes.config,
  );
  const descriptor = (b: StreamedBlob): { mediaType: string; digest: string; size: number } => ({
    mediaType: b.mediaType,
    digest: b.digest,
    size: b.size,
  });
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: mediaTypes.manifest,
      config: descriptor(config),
      layers: layers.map(descriptor),
    }),
  );
  return {
    name: options.name,
    tag: options.tag,
    manifest: { digest: digestOf([bytes]).digest, bytes },
    config,
    layers,
  };
}

export function totalBytes(image: BenchImage): number {
  return image.config.size + image.layers.reduce((sum, l) => sum + l.size, 0) + image.manifest.bytes.length;
}

/** A multi-platform image: an OCI index over one BenchImage per platform, under `name:tag`. */
export interface BenchIndex {
  name: string;
  tag: string;
  index: { digest: string; bytes: Buffer };
  /** Pushed by digest; the first is what an amd64 client pulls. */
  platforms: { architecture: string; image: BenchImage }[];
}

/**
 * Layer sizes (MB of content) shaped like a language runtime image: a distribution base of ~29 MB,
 * packages, the runtime itself (~43 MB), a few small layers of configuration and one near-empty
 * one; about 110 MiB in 10 layers, each one a separate download.
 */
export const runtimeLayerMb = [29.1, 15.8, 3.6, 42.7, 0.9, 9.4, 0.2, 2.3, 11.2, 0.004];

export function makeRuntimeIndex(options: { name: string; tag: string; seed: string }): BenchIndex {
  const sizes = runtimeLayerMb.map((mb) => Math.round(mb * 1e6));
  const platforms = ['amd64', 'arm64'].map((architecture) => ({
    architecture,
    image: makeBenchImage({
      name: options.name,
      tag: options.tag,
      seed: `${options.seed}-${architecture}`,
      layers: sizes.length,
      layerBytes: 0,
      layerSizes: sizes,
      architecture,
    }),
  }));
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: platforms.map(({ architecture, image }) => ({
        mediaType: mediaTypes.manifest,
        digest: image.manifest.digest,
        size: image.manifest.bytes.length,
        platform: { os: 'linux', architecture },
      })),
    }),
  );
  return { name: options.name, tag: options.tag, index: { digest: digestOf([bytes]).digest, bytes }, platforms };
}
