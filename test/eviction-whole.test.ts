/**
 * @module test/eviction-whole.test
 * Eviction's graph rules (store/eviction.ts, store/pinned-content.ts, ADR 0008), each on a store
 * filled through a wharf in-process from CNCF distribution: never half an image (an index stays
 * while one of its platforms does), a pinned referrer keeps its fetched subject, a pinned (preloaded
 * sparse) index keeps a platform fetched later, and an eviction stops as soon as it freed what it
 * needs; a fetched referrer goes with its subject, and a blob another repository links stays. Round 3
 * of the planted-bug audit: each of these rules could be planted away with the suite
 * green (docs/mutation-testing.md).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import { requireRepoName } from '../src/oci/reference.js';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { call } from './support/http.js';
import { makeImage, type ManifestBlob, type PlatformImage, type TestImage } from './support/make-image.js';
import { makeSignature } from './support/make-referrer.js';
import { pushTestImage } from './support/push-image.js';
import { composeImage, imageBytes, makeLayer } from './support/shared-layers.js';
import { runWharf } from './support/spawn-wharf.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const registryHost = 'registry.example.test';
const amd64 = { os: 'linux', architecture: 'amd64' };
const arm64 = { os: 'linux', architecture: 'arm64' };
/** Longer than any test here: what a process read stays in use until it exits. */
const longInUseMs = 600_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** GETs a manifest and checks its exact bytes. */
async function expectManifest(url: string, name: string, reference: string, manifest: ManifestBlob): Promise<void> {
  const got = await call(url, `/v2/${registryHost}/library/${name}/manifests/${reference}`, {
    headers: { accept: manifest.mediaType },
  });
  expect(got.status, `${name}:${reference}`).toBe(200);
  expect(Buffer.from(await got.arrayBuffer()).equals(manifest.bytes), `${name}:${reference} bytes`).toBe(true);
}

/** GETs every blob of `blobs` and checks its exact bytes. */
async function expectBlobs(url: string, name: string, blobs: ReadonlyMap<string, Buffer>): Promise<void> {
  for (const [digest, bytes] of blobs) {
    const got = await call(url, `/v2/${registryHost}/library/${name}/blobs/${digest}`);
    expect(got.status, digest).toBe(200);
    expect(Buffer.from(await got.arrayBuffer()).equals(bytes), `${digest} bytes`).toBe(true);
  }
}

/** One platform of a multi-platform image, completely: its manifest by digest, config and layers. */
async function pullPlatform(url: string, name: string, image: TestImage, platform: PlatformImage): Promise<void> {
  await expectManifest(url, name, platform.manifest.digest, platform.manifest);
  await expectBlobs(url, name, blobsOf(image, platform));
}

function blobsOf(image: TestImage, platform: PlatformImage): Map<string, Buffer> {
  const digests = [platform.config.digest, ...platform.layers.map((l) => l.digest)];
  return new Map(digests.map((d) => [d, image.blobs.get(d) as Buffer]));
}

/** The bytes of one platform's config and layers (not shared with the other platform here). */
function blobBytes(image: TestImage, platform: PlatformImage): number {
  let total = 0;
  for (const bytes of blobsOf(image, platform).values()) total += bytes.length;
  return total;
}

function platformOf(image: TestImage, architecture: string): PlatformImage {
  const found = image.images.find((i) => i.platform.architecture === architecture);
  if (found === undefined) throw new Error(`no ${architecture} in ${String(image.seed)}`);
  return found;
}

describe.sequential('eviction keeps images whole, and pinned content with what it holds', () => {
  let upstream: DistributionHandle;
  let work: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-eviction-whole-'));
    upstream = await startDistribution();
  }, 120_000);

  afterAll(async () => {
    await upstream?.close();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  }, 60_000);

  /** A wharf over `dataDir` mirroring the upstream; no prefetch, so only what a test reads is stored. */
  const wharfOn = (dataDir: string, inUseMs: number, offline = false): Promise<WharfHandle> =>
    startWharf({
      dataDir,
      offline,
      upstreams: [{ host: registryHost, url: upstream.url, prefetch: false }],
      lifecycle: { inUseMs },
    });

  it('keeps an index while one of its platforms stays: evicts the unread platform only', async () => {
    const dataDir = join(work, 'half');
    const image = await makeImage({
      seed: 'eviction-whole/half',
      layers: 1,
      layerSize: 8192,
      platforms: [amd64, arm64],
    });
    await pushTestImage(upstream.url, 'library/half', 'v1', image);
    const index = image.index as ManifestBlob;
    const read = platformOf(image, 'amd64');
    const unread = platformOf(image, 'arm64');

    // Both platforms fetched whole.
    let wharf = await wharfOn(dataDir, longInUseMs);
    try {
      await expectManifest(wharf.url, 'half', 'v1', index);
      await pullPlatform(wharf.url, 'half', image, read);
      await pullPlatform(wharf.url, 'half', image, unread);
    } finally {
      await wharf.close();
    }

    // A new process reads amd64 again (in use now), then evicts everything that may go: arm64 only.
    // Its config and layers are freed; its manifest's bytes stay, as the index that stays names them.
    wharf = await wharfOn(dataDir, longInUseMs, true);
    try {
      await pullPlatform(wharf.url, 'half', image, read);
      expect(await wharf.server.store.lifecycle.evict(Number.MAX_SAFE_INTEGER)).toBe(blobBytes(image, unread));
      expect(wharf.server.store.lifecycle.stats.evictions).toBe(1);
      // The index still serves by its tag, and the platform read pulls completely from the store alone.
      await expectManifest(wharf.url, 'half', 'v1', index);
      await expectManifest(wharf.url, 'half', index.digest, index);
      await pullPlatform(wharf.url, 'half', image, read);
      const gone = await call(wharf.url, `/v2/${registryHost}/library/half/manifests/${unread.manifest.digest}`, {
        headers: { accept: unread.manifest.mediaType },
      });
      expect(gone.status).toBe(404);
      expect(wharf.server.store.contentSize(unread.config.digest as Digest)).toBeUndefined();
    } finally {
      await wharf.close();
    }
  });

  it("keeps a fetched image whose signature was pushed: a pinned referrer's subject stays, and so does the referrer", async () => {
    const dataDir = join(work, 'signed');
    const image = composeImage('eviction-whole/signed', [await makeLayer('eviction-whole/signed', 8192)]);
    await pushTestImage(upstream.url, 'library/signed', 'v1', image);
    const signature = makeSignature(image.root, 'signed by the operator');
    const name = requireRepoName(`${registryHost}/library/signed`);

    let wharf = await wharfOn(dataDir, 0);
    try {
      await expectManifest(wharf.url, 'signed', 'v1', image.root);
      await expectBlobs(wharf.url, 'signed', image.blobs);
      // What an admin's push of a signature onto the mirrored image stores (source: pushed).
      for (const [digest, bytes] of signature.blobs) {
        await wharf.server.store.putBlob(name, digest as Digest, Readable.from([bytes]), bytes.length);
      }
      await wharf.server.store.putManifest(
        name,
        signature.root.digest as Digest,
        signature.root.bytes,
        signature.root.mediaType,
      );
    } finally {
      await wharf.close();
    }

    // Nothing in use: the fetched image would be the first to go, but its pinned signature holds it.
    wharf = await wharfOn(dataDir, 0, true);
    try {
      await sleep(5);
      expect(await wharf.server.store.lifecycle.evict(Number.MAX_SAFE_INTEGER)).toBe(0);
      expect(wharf.server.store.lifecycle.stats.evictions).toBe(0);
      await expectManifest(wharf.url, 'signed', 'v1', image.root);
      await expectBlobs(wharf.url, 'signed', image.blobs);
      await expectManifest(wharf.url, 'signed', signature.root.digest, signature.root);
      await expectBlobs(wharf.url, 'signed', signature.blobs);
      const referrers = await call(wharf.url, `/v2/${registryHost}/library/signed/referrers/${image.root.digest}`);
      expect(referrers.status).toBe(200);
      const listed = (await referrers.json()) as { manifests: { digest: string }[] };
      expect(listed.manifests.map((m) => m.digest)).toEqual([signature.root.digest]);
    } finally {
      await wharf.close();
    }
  });

  // Round 3 of the planted-bug audit: an evicted image's referrers stayed behind (their subject gone,
  // their bytes never freed) when removeManifest stopped following them.
  it('evicts a fetched signature with its fetched subject, freeing the bytes of both', async () => {
    const dataDir = join(work, 'fetched-signature');
    const image = composeImage('eviction-whole/fetched-sig', [await makeLayer('eviction-whole/fetched-sig', 8192)]);
    await pushTestImage(upstream.url, 'library/fetched-sig', 'v1', image);
    const signature = makeSignature(image.root, 'signed upstream');
    await pushTestImage(upstream.url, 'library/fetched-sig', 'sig', signature);

    let wharf = await wharfOn(dataDir, 0);
    try {
      await expectManifest(wharf.url, 'fetched-sig', 'v1', image.root);
      await expectBlobs(wharf.url, 'fetched-sig', image.blobs);
      await expectManifest(wharf.url, 'fetched-sig', signature.root.digest, signature.root);
      await expectBlobs(wharf.url, 'fetched-sig', signature.blobs);
    } finally {
      await wharf.close();
    }

    wharf = await wharfOn(dataDir, 0, true);
    try {
      await sleep(5);
      expect(await wharf.server.store.lifecycle.evict(Number.MAX_SAFE_INTEGER)).toBe(
        imageBytes(image) + imageBytes(signature),
      );
      expect(wharf.server.store.lifecycle.stats.evictions).toBe(1);
      expect(await wharf.server.store.listImages()).toEqual([]);
      for (const digest of [signature.root.digest, ...signature.blobs.keys()]) {
        expect(wharf.server.store.contentSize(digest as Digest), digest).toBeUndefined();
      }
      const gone = await call(wharf.url, `/v2/${registryHost}/library/fetched-sig/manifests/${signature.root.digest}`, {
        headers: { accept: signature.root.mediaType },
      });
      expect(gone.status).toBe(404);
    } finally {
      await wharf.close();
    }
  });

  // Round 3: a blob row was deleted while another repository still linked it (without a manifest
  // naming it there: a blob pulled by digest alone) when the repository_blobs check was dropped.
  it('keeps a blob that another repository still links, though the evicted image named it', async () => {
    const dataDir = join(work, 'linked');
    const image = composeImage('eviction-whole/linked', [await makeLayer('eviction-whole/linked', 8192)]);
    await pushTestImage(upstream.url, 'library/linked', 'v1', image);
    await pushTestImage(upstream.url, 'library/linked-too', 'v1', image);
    const [layer, bytes] = [...image.blobs].find(([, b]) => b.length > 4096) ?? [];
    if (layer === undefined || bytes === undefined) throw new Error('no layer');

    let wharf = await wharfOn(dataDir, 0);
    try {
      await expectManifest(wharf.url, 'linked', 'v1', image.root);
      await expectBlobs(wharf.url, 'linked', image.blobs);
      // The layer alone under a second name (its upstream confirms it): linked there, no manifest.
      await expectBlobs(wharf.url, 'linked-too', new Map([[layer, bytes]]));
    } finally {
      await wharf.close();
    }

    wharf = await wharfOn(dataDir, 0, true);
    try {
      await sleep(5);
      expect(await wharf.server.store.lifecycle.evict(Number.MAX_SAFE_INTEGER)).toBe(imageBytes(image) - bytes.length);
      await expectBlobs(wharf.url, 'linked-too', new Map([[layer, bytes]]));
    } finally {
      await wharf.close();
    }
  });

  it('keeps a platform fetched through serve below a preloaded sparse index (a child of a pinned index)', async () => {
    const dataDir = join(work, 'sparse');
    const image = await makeImage({
      seed: 'eviction-whole/sparse',
      layers: 1,
      layerSize: 8192,
      platforms: [amd64, arm64],
    });
    await pushTestImage(upstream.url, 'library/sparse', 'v1', image);
    const index = image.index as ManifestBlob;
    const preloadedPlatform = platformOf(image, 'amd64');
    const fetchedPlatform = platformOf(image, 'arm64');
    const preloaded = await runWharf([
      'preload',
      `${registryHost}/library/sparse:v1`,
      '--platform',
      'linux/amd64',
      '--upstream',
      `${registryHost}=${upstream.url}`,
      '--data',
      dataDir,
    ]);
    expect(preloaded.code, preloaded.stderr).toBe(0);

    // arm64, listed in the preloaded index but not stored, is fetched on demand (source: fetched).
    let wharf = await wharfOn(dataDir, 0);
    try {
      await pullPlatform(wharf.url, 'sparse', image, fetchedPlatform);
    } finally {
      await wharf.close();
    }

    // Nothing in use, and still nothing may go: arm64 is below a pinned index, so it is pinned too.
    wharf = await wharfOn(dataDir, 0, true);
    try {
      await sleep(5);
      expect(await wharf.server.store.lifecycle.evict(Number.MAX_SAFE_INTEGER)).toBe(0);
      await expectManifest(wharf.url, 'sparse', 'v1', index);
      await pullPlatform(wharf.url, 'sparse', image, fetchedPlatform);
      await pullPlatform(wharf.url, 'sparse', image, preloadedPlatform);
    } finally {
      await wharf.close();
    }
  });

  it('stops as soon as it freed what it needs: a need of exactly one image takes that image alone', async () => {
    const dataDir = join(work, 'exact');
    const image = async (name: string): Promise<TestImage> => {
      const built = composeImage(`eviction-whole/${name}`, [await makeLayer(`eviction-whole/${name}`, 8192)]);
      await pushTestImage(upstream.url, `library/${name}`, 'v1', built);
      return built;
    };
    const [older, newer] = [await image('exact-older'), await image('exact-newer')];
    const wharf = await wharfOn(dataDir, 0);
    try {
      await expectManifest(wharf.url, 'exact-older', 'v1', older.root);
      await expectBlobs(wharf.url, 'exact-older', older.blobs);
      await sleep(20);
      await expectManifest(wharf.url, 'exact-newer', 'v1', newer.root);
      await expectBlobs(wharf.url, 'exact-newer', newer.blobs);
      await sleep(5);
      expect(await wharf.server.store.lifecycle.evict(imageBytes(older))).toBe(imageBytes(older));
      expect(wharf.server.store.lifecycle.stats.evictions).toBe(1);
      expect((await wharf.server.store.listImages()).map((i) => i.repository)).toEqual([
        `${registryHost}/library/exact-newer`,
      ]);
    } finally {
      await wharf.close();
    }
  });
});
