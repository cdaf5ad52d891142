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

/** An OCI image of `layers` layers of `layerBytes` random bytes each, under `name:tag`. */
export function makeBenchImage(options: {
  name: string;
  tag: string;
  seed: string;
  layers: number;
  layerBytes: number;
}): BenchImage {
  const layers: StreamedBlob[] = [];
  for (let i = 0; i < options.layers; i++) layers.push(tarLayer(`${options.seed}-layer-${i}`, options.layerBytes));
  const config = smallBlob(
    Buffer.from(
      JSON.stringify({
        created: '1970-01-01T00:00:00Z',
        architecture: 'amd64',
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
