/**
 * @module test/support/make-image
 * Deterministic test images and byte streams generated in code from a seed (no network, no files checked in).
 */
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';

export type Seed = string | number;

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

/** A manifest or index exactly as it goes over the wire: its digest is the sha256 of these bytes. */
export interface ManifestBlob {
  mediaType: string;
  digest: string;
  size: number;
  bytes: Buffer;
}

export interface PlatformImage {
  platform: Platform;
  manifest: ManifestBlob;
  config: Descriptor;
  layers: Descriptor[];
  /** sha256 of each uncompressed layer tar, as listed in the config's rootfs.diff_ids. */
  diffIds: string[];
}

export interface TestImage {
  seed: Seed;
  mediaTypes: 'oci' | 'docker';
  /** Configs and gzip'd layers by digest (manifests are in `images` and `index`, not here). */
  blobs: Map<string, Buffer>;
  images: PlatformImage[];
  /** Present when there is more than one platform. */
  index: ManifestBlob | undefined;
  /** What a tag points at: the index when there is one, else the only image manifest. */
  root: ManifestBlob;
}

export interface MakeImageOptions {
  seed: Seed;
  layers?: number;
  layerSize?: number;
  platforms?: Platform[];
  mediaTypes?: 'oci' | 'docker';
  /**
   * 'compact' (default): `JSON.stringify` output. 'irregular': bytes no serialiser would produce
   * (tab indentation, mediaType last, layers before config, escaped unicode in an annotation, a
   * trailing newline), so any parse-and-reserialise on a manifest path changes the digest.
   */
  manifestFormat?: 'compact' | 'irregular';
}

const types = {
  oci: {
    manifest: 'application/vnd.oci.image.manifest.v1+json',
    index: 'application/vnd.oci.image.index.v1+json',
    config: 'application/vnd.oci.image.config.v1+json',
    layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  },
  docker: {
    manifest: 'application/vnd.docker.distribution.manifest.v2+json',
    index: 'application/vnd.docker.distribution.manifest.list.v2+json',
    config: 'application/vnd.docker.container.image.v1+json',
    layer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  },
} as const;

export const refNameAnnotation = 'org.opencontainers.image.ref.name';

/** The seed's images say so in their config, so a failing test's data can be traced back to its seed. */
const seedLabel = 'org.example.wharf.test-seed';

const chunkSize = 1024 * 1024;
// One shared block of zeros: AES-CTR over zeros is the keystream itself, and reusing it keeps a 1 GiB stream cheap.
const zeros = Buffer.alloc(chunkSize);

export function sha256Digest(bytes: Buffer | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/**
 * The keystream of AES-256-CTR keyed by sha256(seed), in chunks of at most 1 MiB. A counter-mode
 * cipher is a seeded PRNG that runs at GB/s (1 GiB hashes in about a second here), and the shell
 * reproduces it: `head -c N /dev/zero | openssl enc -aes-256-ctr -K $(printf 'wharf-test-random:SEED'
 * | sha256sum | cut -c1-64) -iv 00000000000000000000000000000000`.
 */
export function* randomChunks(seed: Seed, size: number): Generator<Buffer> {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`randomChunks: bad size ${size}`);
  const key = createHash('sha256')
    .update(`wharf-test-random:${String(seed)}`)
    .digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  for (let left = size; left > 0; left -= chunkSize) {
    yield cipher.update(zeros.subarray(0, Math.min(chunkSize, left)));
  }
}

/**
 * Bytes [start, start + length) of randomChunks(seed, ...), computed without generating what comes
 * before: the counter block of AES-CTR is set to start / 16 (a 1 GiB blob's last MiB, byte for byte).
 */
export function randomSlice(seed: Seed, start: number, length: number): Buffer {
  const key = createHash('sha256')
    .update(`wharf-test-random:${String(seed)}`)
    .digest();
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64BE(BigInt(Math.floor(start / 16)), 8);
  const cipher = createCipheriv('aes-256-ctr', key, iv);
  const skip = start % 16;
  return cipher.update(Buffer.alloc(skip + length)).subarray(skip);
}

/** `size` pseudo-random bytes for `seed`, streamed in 1 MiB chunks without holding the whole body. */
export function randomStream(seed: Seed, size: number): Readable {
  return Readable.from(randomChunks(seed, size), { objectMode: false, highWaterMark: chunkSize });
}

/** The same bytes as randomStream, in one buffer: for small blobs only. */
export function randomBytesFor(seed: Seed, size: number): Buffer {
  return Buffer.concat([...randomChunks(seed, size)], size);
}

/**
 * The sha256 digest of randomStream(seed, size), hashed as it streams. It goes through the event
 * loop chunk by chunk so a test server in the same process keeps answering meanwhile.
 */
export async function digestOfRandom(seed: Seed, size: number): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of randomStream(seed, size)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

// Everything a tar header carries that could vary between runs or machines is pinned.
const fixedOwnership = { mtime: new Date(0), uid: 0, gid: 0, uname: 'root', gname: 'root' } as const;

/** A tar of `files` (with their parent directories) whose bytes depend on nothing but the input. */
export async function tarOf(files: ReadonlyArray<{ name: string; data: Buffer }>): Promise<Buffer> {
  const archive = pack();
  const dirs = new Set<string>();
  for (const file of files) {
    const dir = file.name.split('/').slice(0, -1).join('/');
    if (dir !== '' && !dirs.has(dir)) {
      dirs.add(dir);
      archive.entry({ name: `${dir}/`, type: 'directory', mode: 0o755, ...fixedOwnership });
    }
    archive.entry({ name: file.name, type: 'file', mode: 0o644, size: file.data.length, ...fixedOwnership }, file.data);
  }
  archive.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of archive) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function platformKey(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant ?? ''].join('/');
}

/** An annotation with characters outside ASCII, written escaped by `irregularJson`. */
const unicodeAnnotation = { 'org.opencontainers.image.description': 'caf\u00e9 \u2693 wharf' };

/** Reverses key order at every level and escapes every non-ASCII character as \uXXXX. */
function reorder(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reorder);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .reverse()
      .map(([k, v]) => [k, reorder(v)]),
  );
}

/** JSON that `JSON.stringify(JSON.parse(x))` never gives back: tabs, reversed keys, \u escapes, trailing newline. */
export function irregularJson(body: unknown): string {
  const text = JSON.stringify(reorder(body), null, '\t');
  const escaped = text.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return `${escaped}\n`;
}

function manifestBlob(mediaType: string, body: unknown, format: 'compact' | 'irregular'): ManifestBlob {
  const text =
    format === 'irregular'
      ? irregularJson({ ...(body as object), annotations: unicodeAnnotation })
      : JSON.stringify(body);
  const bytes = Buffer.from(text, 'utf8');
  return { mediaType, digest: sha256Digest(bytes), size: bytes.length, bytes };
}

/**
 * Builds an image (or, with several platforms, an index of images) whose every byte follows from
 * the options: same options, same digests, on any run. Layers of different platforms differ.
 */
export async function makeImage(options: MakeImageOptions): Promise<TestImage> {
  const { seed, layers = 2, layerSize = 4096, platforms = [{ os: 'linux', architecture: 'amd64' }] } = options;
  const kind = options.mediaTypes ?? 'oci';
  const format = options.manifestFormat ?? 'compact';
  const t = types[kind];
  if (platforms.length === 0) throw new Error('makeImage: at least one platform');
  const blobs = new Map<string, Buffer>();
  const images: PlatformImage[] = [];

  for (const platform of platforms) {
    const key = platformKey(platform);
    const layerDescriptors: Descriptor[] = [];
    const diffIds: string[] = [];
    for (let i = 0; i < layers; i++) {
      const tar = await tarOf([
        {
          name: `wharf-test/layer-${i}/random.bin`,
          data: randomBytesFor(`${String(seed)}/${key}/layer-${i}`, layerSize),
        },
        {
          name: `wharf-test/layer-${i}/about.txt`,
          data: Buffer.from(`seed ${String(seed)} platform ${key} layer ${i}\n`),
        },
      ]);
      // gzipSync writes mtime 0 and no file name in the header, so the same tar gzips to the same bytes.
      const gz = gzipSync(tar);
      const digest = sha256Digest(gz);
      blobs.set(digest, gz);
      layerDescriptors.push({ mediaType: t.layer, digest, size: gz.length });
      diffIds.push(sha256Digest(tar));
    }

    const config = Buffer.from(
      JSON.stringify({
        created: '1970-01-01T00:00:00Z',
        architecture: platform.architecture,
        os: platform.os,
        ...(platform.variant === undefined ? {} : { variant: platform.variant }),
        config: {
          Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
          Cmd: ['/bin/sh'],
          Labels: { [seedLabel]: String(seed) },
        },
        rootfs: { type: 'layers', diff_ids: diffIds },
        history: diffIds.map((_, i) => ({ created: '1970-01-01T00:00:00Z', created_by: `wharf test layer ${i}` })),
      }),
      'utf8',
    );
    const configDescriptor: Descriptor = { mediaType: t.config, digest: sha256Digest(config), size: config.length };
    blobs.set(configDescriptor.digest, config);

    const manifest = manifestBlob(
      t.manifest,
      {
        schemaVersion: 2,
        mediaType: t.manifest,
        config: configDescriptor,
        layers: layerDescriptors,
      },
      format,
    );
    images.push({ platform, manifest, config: configDescriptor, layers: layerDescriptors, diffIds });
  }

  const index =
    images.length > 1
      ? manifestBlob(
          t.index,
          {
            schemaVersion: 2,
            mediaType: t.index,
            manifests: images.map((image) => ({
              mediaType: image.manifest.mediaType,
              digest: image.manifest.digest,
              size: image.manifest.size,
              platform: image.platform,
            })),
          },
          format,
        )
      : undefined;
  const first = images[0];
  if (first === undefined) throw new Error('makeImage: unreachable, no images');
  return { seed, mediaTypes: kind, blobs, images, index, root: index ?? first.manifest };
}

/** Every manifest of the image, the index first when there is one. */
export function manifestsOf(image: TestImage): ManifestBlob[] {
  return [...(image.index === undefined ? [] : [image.index]), ...image.images.map((i) => i.manifest)];
}

/** Every blob the image's layout holds: configs, layers, manifests and the index, by digest. */
export function allBlobsOf(image: TestImage): Map<string, Buffer> {
  const all = new Map(image.blobs);
  for (const manifest of manifestsOf(image)) all.set(manifest.digest, manifest.bytes);
  return all;
}

export interface OciLayoutIndex {
  schemaVersion: number;
  mediaType?: string;
  manifests: Descriptor[];
}

function blobPath(dir: string, digest: string): string {
  const [algorithm, encoded] = digest.split(':');
  if (algorithm === undefined || encoded === undefined) throw new Error(`not a digest: ${digest}`);
  return join(dir, 'blobs', algorithm, encoded);
}

export async function readLayoutIndex(dir: string): Promise<OciLayoutIndex> {
  return JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as OciLayoutIndex;
}

/** The descriptor that index.json names `tag`, or undefined. */
export async function layoutRef(dir: string, tag: string): Promise<Descriptor | undefined> {
  const index = await readLayoutIndex(dir);
  return index.manifests.find((d) => d.annotations?.[refNameAnnotation] === tag);
}

export function readLayoutBlob(dir: string, digest: string): Promise<Buffer> {
  return readFile(blobPath(dir, digest));
}

/**
 * Writes the image as an OCI image layout (image-spec image-layout.md) that `skopeo copy
 * oci:<dir>:<tag>` reads. Writing a second tag into the same dir keeps the first (a tag of the
 * same name is replaced), so one layout can hold several test images.
 */
export async function writeOciLayout(image: TestImage, dir: string, tag: string): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  for (const [digest, bytes] of allBlobsOf(image)) await writeFile(blobPath(dir, digest), bytes);

  let existing: Descriptor[] = [];
  try {
    existing = (await readLayoutIndex(dir)).manifests;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const root = image.root;
  const only = image.index === undefined ? image.images[0] : undefined;
  const entry: Descriptor = {
    mediaType: root.mediaType,
    digest: root.digest,
    size: root.size,
    ...(only === undefined ? {} : { platform: only.platform }),
    annotations: { [refNameAnnotation]: tag },
  };
  const index: OciLayoutIndex = {
    schemaVersion: 2,
    mediaType: types.oci.index,
    manifests: [...existing.filter((d) => d.annotations?.[refNameAnnotation] !== tag), entry],
  };
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
}

/**
 * The seed for a test: WHARF_TEST_SEED when set (to replay a failure), else a fresh one. Logged
 * either way, since a failure on generated data can only be reproduced with its seed.
 */
export function testSeed(name: string): string {
  const seed = process.env['WHARF_TEST_SEED'] ?? randomBytes(6).toString('hex');
  console.info(`[${name}] seed=${seed} (replay with WHARF_TEST_SEED=${seed})`);
  return seed;
}

/**
 * Writes the image in containers/image's `dir:` transport format (version file, `manifest.json`
 * for the root, `<hex>.manifest.json` per instance, blobs by hex digest). skopeo 1.9's `oci:`
 * transport only resolves OCI media types, so Docker schema2 images go in and out through this.
 */
export async function writeDirLayout(image: TestImage, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'version'), 'Directory Transport Version: 1.1\n');
  for (const [digest, bytes] of image.blobs) await writeFile(join(dir, hexOf(digest)), bytes);
  await writeFile(join(dir, 'manifest.json'), image.root.bytes);
  if (image.index !== undefined) {
    for (const { manifest } of image.images)
      await writeFile(join(dir, `${hexOf(manifest.digest)}.manifest.json`), manifest.bytes);
  }
}

/** The path of a blob, or of an instance manifest (`manifest: true`), in a `dir:` layout. */
export function dirLayoutPath(dir: string, digest: string, options: { manifest?: boolean } = {}): string {
  return join(dir, options.manifest === true ? `${hexOf(digest)}.manifest.json` : hexOf(digest));
}

function hexOf(digest: string): string {
  const [algorithm, encoded] = digest.split(':');
  if (algorithm !== 'sha256' || encoded === undefined) throw new Error(`not a sha256 digest: ${digest}`);
  return encoded;
}

/**
 * A two-platform image whose manifests (manifestFormat 'irregular') no JSON round trip gives back:
 * what the byte-for-byte tests send. Throws if one would survive `JSON.stringify(JSON.parse(…))`,
 * since a test with such a fixture would prove nothing.
 */
export async function makeIrregularImage(seed: string): Promise<TestImage> {
  const image = await makeImage({
    seed,
    layers: 1,
    layerSize: 512,
    platforms: [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64' },
    ],
    manifestFormat: 'irregular',
  });
  for (const manifest of manifestsOf(image)) {
    const text = manifest.bytes.toString('utf8');
    if (JSON.stringify(JSON.parse(text)) === text)
      throw new Error(`${manifest.digest}: a JSON round trip gives it back`);
  }
  return image;
}
