/**
 * Issue 10 / ARCHITECTURE ("one contract suite runs against every implementation"): one contract
 * for every ImageReader the transfer engine reads from: the local store, the client's registry
 * reader (`wharf copy`, against CNCF distribution, and against a wharf mirror over HTTP), the
 * configured upstreams as preload reads them, and the pull-through proxy (cold: every answer is a
 * fill). The same image is behind each: a two-platform index with a signature whose subject is the
 * index (distribution 2.8 has no referrers API, so it carries the spec's fallback tag).
 * The ImageSource extras (stat, tags, ranges) run against the store and the proxy, the two sources.
 * The archive readers are single-pass streams into a writer, not random-access readers: they are
 * covered by the writer contract and the import tests instead.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUpstreamRouter } from '../src/cli/upstream-router.js';
import type { Digest } from '../src/oci/digest.js';
import type { ImageSource } from '../src/oci/image-source.js';
import type { ImageReader } from '../src/oci/image-transfer.js';
import type { RepoName, Tag } from '../src/oci/reference.js';
import { UpstreamReader } from '../src/proxy/upstream-reader.js';
import { LocalStore } from '../src/store/local-store.js';
import { copyImages } from '../src/transfer/copy-images.js';
import { RegistryClient } from '../src/upstream/registry-client.js';
import { RegistryImageReader } from '../src/upstream/registry-image-reader.js';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { makeImage, sha256Digest, testSeed, type TestImage } from './support/make-image.js';
import { makeSignature, pushSignature, signatureArtifactType } from './support/make-referrer.js';
import { pushTestImage } from './support/push-image.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const timeoutMs = 120_000;
const host = 'registry.example.test';
const repo = 'team/app';
const tag = 'v1' as Tag;
const absentDigest = `sha256:${'0'.repeat(64)}` as Digest;

interface Opened {
  reader: ImageReader;
  /** Present when the reader is also an ImageSource (the store, the proxy). */
  source?: ImageSource;
  /** The name the image has in this reader. */
  name: RepoName;
}

interface Shared {
  work: string;
  distribution: DistributionHandle;
  /** Everything to close after the suite, newest first. */
  cleanups: (() => Promise<void>)[];
}

const silent = pino({ level: 'silent' });

function registryClient(shared: Shared, where: { host: string; url: string }): RegistryClient {
  // An empty DOCKER_CONFIG: the test's registries need no credentials, and the user's file stays unread.
  const client = new RegistryClient({ ...where, env: { DOCKER_CONFIG: join(shared.work, 'no-docker-config') } });
  shared.cleanups.push(() => client.close());
  return client;
}

function upstreamSettings(url: string): Parameters<typeof createUpstreamRouter>[0][number] {
  return { host, url, dockerConfig: false, public: false, tagTtlMs: 60_000, notFoundTtlMs: 1_000, prefetch: false };
}

async function wharfMirror(shared: Shared): Promise<WharfHandle> {
  const wharf = await startWharf({ upstreams: [{ host, url: shared.distribution.url, prefetch: false }] });
  shared.cleanups.push(() => wharf.close());
  return wharf;
}

interface ReaderCase {
  label: string;
  /** An ImageSource too (the store, the proxy): what the HTTP routes read. */
  isSource: boolean;
  open: (shared: Shared) => Promise<Opened>;
}

const cases: ReaderCase[] = [
  {
    label: 'local store (filled by a copy from distribution)',
    isSource: true,
    async open(shared) {
      const store = await LocalStore.open(await mkdtemp(join(shared.work, 'store-')));
      shared.cleanups.push(async () => store.close());
      const name = `${host}/${repo}` as RepoName;
      const from = new RegistryImageReader(registryClient(shared, { host, url: shared.distribution.url }));
      await copyImages(
        from,
        store.startImport(),
        [{ from: { name: repo as RepoName, reference: tag }, to: { name, reference: tag } }],
        {
          referrers: true,
        },
      );
      return { reader: store, source: store, name };
    },
  },
  {
    label: 'registry client (wharf copy) against distribution',
    isSource: false,
    async open(shared) {
      const client = registryClient(shared, { host: shared.distribution.host, url: shared.distribution.url });
      return { reader: new RegistryImageReader(client), name: repo as RepoName };
    },
  },
  {
    label: 'registry client (wharf copy) against a wharf mirror over HTTP',
    isSource: false,
    async open(shared) {
      const wharf = await wharfMirror(shared);
      const client = registryClient(shared, { host: wharf.host, url: wharf.url });
      return { reader: new RegistryImageReader(client), name: `${host}/${repo}` as RepoName };
    },
  },
  {
    label: 'configured upstreams (wharf preload)',
    isSource: false,
    async open(shared) {
      const { router, clients } = createUpstreamRouter(
        [upstreamSettings(shared.distribution.url)],
        undefined,
        [],
        silent,
      );
      shared.cleanups.push(async () => {
        for (const { client } of clients) await client.close();
      });
      return { reader: new UpstreamReader(router), name: `${host}/${repo}` as RepoName };
    },
  },
  {
    label: 'pull-through proxy (cold)',
    isSource: true,
    async open(shared) {
      const wharf = await wharfMirror(shared);
      return { reader: wharf.server.proxy, source: wharf.server.proxy, name: `${host}/${repo}` as RepoName };
    },
  },
];

async function readAll(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

// One registry and one image for every case; each case opens its reader (and what it needs) over them.
const shared = { cleanups: [] } as unknown as Shared;
let image: TestImage;
let signature: TestImage;

beforeAll(async () => {
  shared.work = await mkdtemp(join(tmpdir(), 'wharf-reader-contract-'));
  shared.distribution = await startDistribution();
  shared.cleanups.push(() => shared.distribution.close());
  image = await makeImage({
    seed: testSeed('reader contract'),
    layers: 2,
    layerSize: 32 * 1024,
    platforms: [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64' },
    ],
  });
  signature = makeSignature(image.root, 'signed for the reader contract');
  await pushTestImage(shared.distribution.url, repo, tag, image);
  await pushSignature(shared.distribution.url, repo, image.root, signature, { tagSchema: true });
}, timeoutMs);

afterAll(async () => {
  for (const cleanup of shared.cleanups.reverse()) await cleanup();
  if (shared.work !== undefined) await rm(shared.work, { recursive: true, force: true });
});

describe.each(cases)('ImageReader contract: $label', ({ open, isSource }) => {
  let opened: Opened;

  beforeAll(async () => {
    opened = await open(shared);
  }, timeoutMs);

  it(
    'getManifest by tag and by digest: exact bytes, digest, size and media type',
    async () => {
      const { reader, name } = opened;
      const root = await reader.getManifest(name, tag);
      expect(root?.digest).toBe(image.root.digest);
      expect(root?.mediaType).toBe(image.root.mediaType);
      expect(root?.size).toBe(image.root.size);
      expect(sha256Digest(Buffer.from(root?.bytes ?? []))).toBe(image.root.digest);
      for (const platform of image.images) {
        const child = await reader.getManifest(name, platform.manifest.digest as Digest);
        expect(child?.digest).toBe(platform.manifest.digest);
        expect(child?.mediaType).toBe(platform.manifest.mediaType);
        expect(Buffer.from(child?.bytes ?? []).equals(platform.manifest.bytes)).toBe(true);
      }
    },
    timeoutMs,
  );

  it(
    'absence is undefined, not an error: an unknown tag, digest or repository',
    async () => {
      const { reader, name } = opened;
      expect(await reader.getManifest(name, 'no-such-tag' as Tag)).toBeUndefined();
      expect(await reader.getManifest(name, absentDigest)).toBeUndefined();
      expect(await reader.getManifest(`${name}-missing` as RepoName, tag)).toBeUndefined();
      expect(await reader.openBlob(name, absentDigest)).toBeUndefined();
    },
    timeoutMs,
  );

  it(
    'openBlob: the size before the bytes, then exactly the bytes of the digest',
    async () => {
      const { reader, name } = opened;
      for (const [digest, bytes] of image.blobs) {
        const handle = await reader.openBlob(name, digest as Digest);
        expect(handle?.digest).toBe(digest);
        expect(handle?.size).toBe(bytes.length);
        if (handle === undefined) continue;
        const read = await readAll(handle.open());
        expect(createHash('sha256').update(read).digest('hex')).toBe(digest.slice('sha256:'.length));
      }
    },
    timeoutMs,
  );

  it(
    'listReferrers: the signature of the index, with its artifactType; none for a manifest without',
    async () => {
      const { reader, name } = opened;
      expect(typeof reader.listReferrers).toBe('function');
      // A wharf mirror (the proxy, and the registry client against one) lists the upstream's referrers
      // before the signature was pulled through it (decision 0014), as a registry lists its own.
      const found = (await reader.listReferrers?.(name, image.root.digest as Digest)) ?? [];
      expect(found.map((d) => [d.digest, d.artifactType])).toEqual([[signature.root.digest, signatureArtifactType]]);
      const amd64 = image.images[0]?.manifest.digest as Digest;
      expect(await reader.listReferrers?.(name, amd64)).toEqual([]);
    },
    timeoutMs,
  );

  it(
    'the engine copies from it byte for byte, referrers included',
    async () => {
      const { reader, name } = opened;
      const target = await LocalStore.open(await mkdtemp(join(shared.work, 'copy-')));
      try {
        const summary = await copyImages(reader, target.startImport(), [{ from: { name, reference: tag } }], {
          referrers: true,
        });
        expect(summary.images).toEqual([{ ref: `${name}:${tag}`, digest: image.root.digest }]);
        expect((await target.getManifest(name, tag))?.digest).toBe(image.root.digest);
        expect((await target.listReferrers(name, image.root.digest as Digest)).map((d) => d.digest)).toEqual([
          signature.root.digest,
        ]);
      } finally {
        target.close();
      }
    },
    timeoutMs,
  );

  // The store and the proxy are ImageSources too: what the HTTP routes read.
  if (!isSource) return;
  it(
    'as an ImageSource: stat without bytes, tags, and a range of a blob',
    async () => {
      const { source, name } = opened;
      if (source === undefined) throw new Error('this case is an ImageSource');
      expect(await source.statManifest(name, tag)).toEqual({
        digest: image.root.digest,
        mediaType: image.root.mediaType,
        size: image.root.size,
      });
      const [digest, bytes] = [...image.blobs][0] ?? [];
      if (digest === undefined || bytes === undefined) throw new Error('the image has no blob');
      expect(await source.statBlob(name, digest as Digest)).toEqual({ digest, size: bytes.length });
      expect(await source.statBlob(name, absentDigest)).toBeUndefined();
      expect(await source.listTags(name, {})).toContain(tag);
      const handle = await source.openBlob(name, digest as Digest);
      if (handle === undefined) throw new Error(`${digest} not found`);
      const range = await readAll(handle.open({ start: 100, end: 1099 }));
      expect(range.equals(bytes.subarray(100, 1100))).toBe(true);
    },
    timeoutMs,
  );
});
