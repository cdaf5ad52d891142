/**
 * Manifests kept byte for byte through the transfer paths (issue 13, round 4 of the planted-bug
 * audit): preload from an upstream, `wharf copy` from and to a registry, export to a tar and to a
 * layout folder, and import of both. test/manifest-bytes.test.ts covers mirror and push; every other
 * fixture is compact `JSON.stringify` output, which a parse-and-reserialise gives back unchanged, so
 * a transfer path that rewrote manifests passed every test. This image is written as no serialiser
 * writes it (tabs, reversed keys, escaped unicode, a trailing newline).
 * Real parts: CNCF distribution as the registry, LocalStores, the transfer engine, the archive
 * writers and readers, the registry client.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDirEntries } from '../src/archive/dir-entries.js';
import { importArchive } from '../src/archive/import-archive.js';
import { OciLayoutDirWriter } from '../src/archive/oci-layout-dir-writer.js';
import { OciLayoutWriter } from '../src/archive/oci-layout-writer.js';
import { readTarEntries } from '../src/archive/tar-entries.js';
import { createUpstreamRouter } from '../src/cli/upstream-router.js';
import type { Digest } from '../src/oci/digest.js';
import type { RepoName, Tag } from '../src/oci/reference.js';
import { UpstreamReader } from '../src/proxy/upstream-reader.js';
import { LocalStore } from '../src/store/local-store.js';
import { copyImages } from '../src/transfer/copy-images.js';
import { RegistryClient } from '../src/upstream/registry-client.js';
import { RegistryImageReader } from '../src/upstream/registry-image-reader.js';
import { RegistryImageWriter } from '../src/upstream/registry-image-writer.js';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { call } from './support/http.js';
import { makeIrregularImage, manifestsOf, testSeed, type TestImage } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';

const host = 'registry.example.test';
const name = `${host}/team/odd` as RepoName;
const tag = 'v1' as Tag;
const acceptAll = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');
const silent = pino({ level: 'silent' });

let work: string;
let distribution: DistributionHandle;
let image: TestImage;
/** Filled by preload, the source of the exports and of the copy to a registry. */
let preloaded: LocalStore;
const cleanups: (() => Promise<void>)[] = [];

async function openStore(label: string): Promise<LocalStore> {
  const store = await LocalStore.open(await mkdtemp(join(work, `${label}-`)));
  cleanups.push(async () => store.close());
  return store;
}

function registryClient(): RegistryClient {
  const client = new RegistryClient({
    host: distribution.host,
    url: distribution.url,
    env: { DOCKER_CONFIG: join(work, 'no-docker-config') },
  });
  cleanups.push(() => client.close());
  return client;
}

/** The root by tag and every manifest by digest: the same bytes and media type as the image's. */
async function expectStoreExact(store: LocalStore, label: string): Promise<void> {
  const root = await store.getManifest(name, tag);
  expect(Buffer.from(root?.bytes ?? []).toString('utf8'), `${label}: ${name}:${tag}`).toBe(
    image.root.bytes.toString('utf8'),
  );
  expect(root?.digest).toBe(image.root.digest);
  for (const manifest of manifestsOf(image)) {
    const got = await store.getManifest(name, manifest.digest as Digest);
    expect(Buffer.from(got?.bytes ?? []).toString('utf8'), `${label}: ${manifest.digest}`).toBe(
      manifest.bytes.toString('utf8'),
    );
    expect(got?.mediaType).toBe(manifest.mediaType);
  }
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-manifest-bytes-transfer-'));
  // No JSON round trip gives its manifests back (makeIrregularImage checks), or this file proves nothing.
  image = await makeIrregularImage(testSeed('manifest-bytes-transfer'));
  distribution = await startDistribution();
  cleanups.push(() => distribution.close());
  await pushTestImage(distribution.url, 'team/odd', tag, image);

  const { router, clients } = createUpstreamRouter(
    [
      {
        host,
        url: distribution.url,
        dockerConfig: false,
        public: false,
        tagTtlMs: 60_000,
        notFoundTtlMs: 1_000,
        prefetch: false,
      },
    ],
    undefined,
    [],
    silent,
  );
  cleanups.push(async () => {
    for (const { client } of clients) await client.close();
  });
  preloaded = await openStore('preloaded');
  await copyImages(new UpstreamReader(router), preloaded.startImport(), [
    { from: { name, reference: tag }, to: { name, reference: tag } },
  ]);
}, 120_000);

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe('manifests byte for byte through the transfer paths', () => {
  it('preload from an upstream stores the upstream bytes', async () => {
    await expectStoreExact(preloaded, 'preload');
  });

  it('wharf copy from a registry into a store keeps the bytes', async () => {
    const store = await openStore('copied-in');
    await copyImages(new RegistryImageReader(registryClient()), store.startImport(), [
      { from: { name: 'team/odd' as RepoName, reference: tag }, to: { name, reference: tag } },
    ]);
    await expectStoreExact(store, 'copy from a registry');
  });

  it('export to a tar, then import of the tar, keeps the bytes', async () => {
    const file = join(work, 'odd.tar');
    const out = createWriteStream(file);
    await copyImages(preloaded, new OciLayoutWriter(out), [
      { from: { name, reference: tag }, to: { name, reference: tag } },
    ]);
    await new Promise((resolve) => out.end(resolve));
    const store = await openStore('from-tar');
    await importArchive(readTarEntries(createReadStream(file)), store.startImport(), { label: file });
    await expectStoreExact(store, 'tar export and import');
  });

  it('export to a layout folder writes each manifest file as it is; its import keeps the bytes', async () => {
    const dir = join(work, 'odd-layout');
    await copyImages(preloaded, new OciLayoutDirWriter(dir), [
      { from: { name, reference: tag }, to: { name, reference: tag } },
    ]);
    for (const manifest of manifestsOf(image)) {
      const file = await readFile(join(dir, 'blobs', 'sha256', manifest.digest.slice('sha256:'.length)));
      expect(file.toString('utf8'), `layout file of ${manifest.digest}`).toBe(manifest.bytes.toString('utf8'));
    }
    const store = await openStore('from-dir');
    await importArchive(readDirEntries(dir), store.startImport(), { label: dir });
    await expectStoreExact(store, 'folder export and import');
  });

  it('wharf copy to a registry PUTs the bytes as they are', async () => {
    const target = 'team/copied' as RepoName;
    await copyImages(preloaded, new RegistryImageWriter(registryClient(), target), [
      { from: { name, reference: tag }, to: { name: target, reference: tag } },
    ]);
    for (const [reference, manifest] of [
      [tag, image.root],
      ...manifestsOf(image).map((m) => [m.digest, m] as const),
    ] as const) {
      const got = await call(distribution.url, `/v2/${target}/manifests/${reference}`, {
        headers: { Accept: acceptAll },
      });
      expect(got.status).toBe(200);
      expect(Buffer.from(await got.arrayBuffer()).toString('utf8'), `${target}:${reference}`).toBe(
        manifest.bytes.toString('utf8'),
      );
      expect(got.headers.get('docker-content-digest')).toBe(manifest.digest);
    }
  });
});
