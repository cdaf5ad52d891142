/**
 * @module test/fixtures.test
 * Checks the test helpers themselves against real tools: generated images survive a skopeo push
 * into CNCF distribution byte for byte, and the seeded random streams are what they claim.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import {
  digestOfRandom,
  layoutRef,
  makeImage,
  randomStream,
  sha256Digest,
  testSeed,
  writeDirLayout,
  writeOciLayout,
  type Platform,
} from './support/make-image.js';
import { run } from './support/run.js';

const skopeoTimeoutMs = 60_000;
const twoPlatforms: Platform[] = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64', variant: 'v8' },
];
const acceptAnyManifest = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

async function collect(stream: AsyncIterable<unknown>): Promise<{ bytes: Buffer; chunkSizes: number[] }> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return { bytes: Buffer.concat(chunks), chunkSizes: chunks.map((c) => c.length) };
}

describe('randomStream', () => {
  it('is deterministic for a seed, differs across seeds, and digestOfRandom hashes the same bytes', async () => {
    const seed = testSeed('randomStream');
    // Not a whole number of MiB, so the short last chunk is exercised.
    const size = 3 * 1024 * 1024 + 123;
    const first = await collect(randomStream(seed, size));
    const second = await collect(randomStream(seed, size));
    const other = await collect(randomStream(`${seed}-other`, size));

    expect(first.bytes.length).toBe(size);
    expect(first.chunkSizes).toEqual([1048576, 1048576, 1048576, 123]);
    expect(first.bytes.equals(second.bytes)).toBe(true);
    expect(first.bytes.equals(other.bytes)).toBe(false);
    // A prefix of a longer stream is the shorter stream: size only cuts, it does not reseed.
    expect((await collect(randomStream(seed, 1000))).bytes.equals(first.bytes.subarray(0, 1000))).toBe(true);

    const hashed = `sha256:${createHash('sha256').update(first.bytes).digest('hex')}`;
    expect(await digestOfRandom(seed, size)).toBe(hashed);
    expect(await digestOfRandom(seed, 0)).toBe(sha256Digest(Buffer.alloc(0)));
  });
});

describe('makeImage', () => {
  it('gives the same digests for the same options and different ones for another seed', async () => {
    const seed = testSeed('makeImage determinism');
    const a = await makeImage({ seed, platforms: twoPlatforms });
    const b = await makeImage({ seed, platforms: twoPlatforms });
    const c = await makeImage({ seed: `${seed}-other`, platforms: twoPlatforms });
    expect(a.root.digest).toBe(b.root.digest);
    expect([...a.blobs.keys()]).toEqual([...b.blobs.keys()]);
    expect(a.root.digest).not.toBe(c.root.digest);
  });

  it('builds consistent descriptors: sizes and digests match bytes, diff_ids match the gunzipped layers', async () => {
    const seed = testSeed('makeImage consistency');
    const image = await makeImage({ seed, platforms: twoPlatforms, layers: 3, layerSize: 10_000 });
    expect(image.index).toBeDefined();
    expect(image.images).toHaveLength(2);
    for (const platformImage of image.images) {
      const manifest = JSON.parse(platformImage.manifest.bytes.toString('utf8')) as {
        config: { digest: string; size: number };
        layers: Array<{ digest: string; size: number }>;
      };
      expect(sha256Digest(platformImage.manifest.bytes)).toBe(platformImage.manifest.digest);
      expect(manifest.layers).toHaveLength(3);
      const config = image.blobs.get(manifest.config.digest);
      expect(config?.length).toBe(manifest.config.size);
      const parsedConfig = JSON.parse(config?.toString('utf8') ?? '{}') as { rootfs: { diff_ids: string[] } };
      manifest.layers.forEach((layer, i) => {
        const gz = image.blobs.get(layer.digest);
        if (gz === undefined) throw new Error(`layer ${layer.digest} missing from blobs`);
        expect(gz.length).toBe(layer.size);
        expect(sha256Digest(gz)).toBe(layer.digest);
        expect(sha256Digest(gunzipSync(gz))).toBe(parsedConfig.rootfs.diff_ids[i]);
      });
    }
    // Two platforms share no layer: a registry bug that mixes them up cannot hide behind equal bytes.
    const [amd, arm] = image.images;
    expect(amd?.layers.map((l) => l.digest)).not.toEqual(arm?.layers.map((l) => l.digest));
  });
});

describe('fixtures against CNCF distribution', () => {
  let distribution: DistributionHandle;
  let workDir: string;

  beforeAll(async () => {
    distribution = await startDistribution();
    workDir = await mkdtemp(join(tmpdir(), 'wharf-fixtures-'));
  }, 30_000);

  afterAll(async () => {
    await distribution?.close();
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  }, 30_000);

  it('skopeo copies a 2-platform OCI layout into distribution with every digest unchanged', async () => {
    const seed = testSeed('fixtures skopeo copy');
    const image = await makeImage({ seed, platforms: twoPlatforms });
    const index = image.index;
    if (index === undefined) throw new Error('expected an index for two platforms');
    const layout = join(workDir, 'layout');
    await writeOciLayout(image, layout, 'v1');
    expect((await layoutRef(layout, 'v1'))?.digest).toBe(index.digest);

    const ref = `docker://${distribution.host}/fixtures/app:v1`;
    await run('skopeo', ['copy', '--all', '--dest-tls-verify=false', `oci:${layout}:v1`, ref], {
      timeoutMs: skopeoTimeoutMs,
    });

    const raw = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', ref], { timeoutMs: skopeoTimeoutMs });
    expect(sha256Digest(raw.stdoutBuffer)).toBe(index.digest);
    expect(raw.stdoutBuffer.equals(index.bytes)).toBe(true);

    for (const platformImage of image.images) {
      const { manifest } = platformImage;
      const response = await fetch(`${distribution.url}/v2/fixtures/app/manifests/${manifest.digest}`, {
        headers: { accept: acceptAnyManifest },
        signal: AbortSignal.timeout(10_000),
      });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe(manifest.mediaType);
      expect(response.headers.get('docker-content-digest')).toBe(manifest.digest);
      expect(Buffer.from(await response.arrayBuffer()).equals(manifest.bytes)).toBe(true);

      for (const descriptor of [platformImage.config, ...platformImage.layers]) {
        const blob = await fetch(`${distribution.url}/v2/fixtures/app/blobs/${descriptor.digest}`, {
          signal: AbortSignal.timeout(10_000),
        });
        expect(blob.status).toBe(200);
        expect(
          Buffer.from(await blob.arrayBuffer()).equals(image.blobs.get(descriptor.digest) ?? Buffer.alloc(0)),
        ).toBe(true);
      }
    }
  }, 120_000);

  it('skopeo copies a 2-platform Docker schema2 image from a dir: layout with every digest unchanged', async () => {
    const seed = testSeed('fixtures docker dir copy');
    const image = await makeImage({ seed, platforms: twoPlatforms, mediaTypes: 'docker' });
    const index = image.index;
    if (index === undefined) throw new Error('expected a manifest list for two platforms');
    expect(index.mediaType).toBe('application/vnd.docker.distribution.manifest.list.v2+json');
    const layout = join(workDir, 'docker-dir');
    await writeDirLayout(image, layout);

    const ref = `docker://${distribution.host}/fixtures/docker:v1`;
    await run('skopeo', ['copy', '--all', '--dest-tls-verify=false', `dir:${layout}`, ref], {
      timeoutMs: skopeoTimeoutMs,
    });
    const raw = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', ref], { timeoutMs: skopeoTimeoutMs });
    expect(sha256Digest(raw.stdoutBuffer)).toBe(index.digest);

    for (const { manifest } of image.images) {
      const instance = await run(
        'skopeo',
        ['inspect', '--raw', '--tls-verify=false', `docker://${distribution.host}/fixtures/docker@${manifest.digest}`],
        { timeoutMs: skopeoTimeoutMs },
      );
      expect(instance.stdoutBuffer.equals(manifest.bytes)).toBe(true);
    }
  }, 120_000);
});
