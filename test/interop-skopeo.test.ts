/**
 * @module test/interop-skopeo.test
 * skopeo (containers/image) pushing to and pulling from a real wharf, and relaying between wharf
 * and CNCF distribution: every manifest and blob must come back with the digest it went in with.
 */
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import {
  allBlobsOf,
  dirLayoutPath,
  layoutRef,
  makeImage,
  readLayoutBlob,
  sha256Digest,
  testSeed,
  writeDirLayout,
  writeOciLayout,
  type Platform,
  type TestImage,
} from './support/make-image.js';
import { run, type RunResult } from './support/run.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const skopeoTimeoutMs = 60_000;
const testTimeoutMs = 180_000;
const twoPlatforms: Platform[] = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64', variant: 'v8' },
];
const dockerManifest = 'application/vnd.docker.distribution.manifest.v2+json';
const dockerConfig = 'application/vnd.docker.container.image.v1+json';
const acceptAnyManifest = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest,
].join(', ');

// Registries here are plain HTTP on loopback; skopeo refuses them without these flags.
function skopeo(args: string[]): Promise<RunResult> {
  return run('skopeo', args, { timeoutMs: skopeoTimeoutMs });
}

function copy(src: string, dest: string, extra: string[] = []): Promise<RunResult> {
  return skopeo(['copy', '--src-tls-verify=false', '--dest-tls-verify=false', ...extra, src, dest]);
}

async function inspectRaw(ref: string): Promise<Buffer> {
  return (await skopeo(['inspect', '--raw', '--tls-verify=false', ref])).stdoutBuffer;
}

interface Manifest {
  mediaType?: string;
  config: { mediaType: string; digest: string; size: number };
  layers: Array<{ mediaType: string; digest: string; size: number }>;
}

async function fetchBytes(url: string, accept?: string): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const response = await fetch(url, {
    headers: accept === undefined ? {} : { accept },
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, headers: response.headers, body: Buffer.from(await response.arrayBuffer()) };
}

/**
 * Reads every manifest and blob of `image` from a registry over plain HTTP and compares bytes,
 * so a failure names the exact object rather than "skopeo copy failed".
 */
async function expectRegistryHolds(registryUrl: string, repo: string, image: TestImage): Promise<void> {
  for (const manifest of [
    ...(image.index === undefined ? [] : [image.index]),
    ...image.images.map((i) => i.manifest),
  ]) {
    const url = `${registryUrl}/v2/${repo}/manifests/${manifest.digest}`;
    const got = await fetchBytes(url, acceptAnyManifest);
    expect(got.status, `GET ${url}`).toBe(200);
    expect(got.headers.get('content-type'), `Content-Type of GET ${url}`).toBe(manifest.mediaType);
    expect(got.headers.get('docker-content-digest'), `Docker-Content-Digest of GET ${url}`).toBe(manifest.digest);
    expect(sha256Digest(got.body), `body digest of GET ${url}`).toBe(manifest.digest);
  }
  for (const [digest, bytes] of image.blobs) {
    const url = `${registryUrl}/v2/${repo}/blobs/${digest}`;
    const got = await fetchBytes(url);
    expect(got.status, `GET ${url}`).toBe(200);
    expect(got.body.length, `length of GET ${url}`).toBe(bytes.length);
    expect(sha256Digest(got.body), `body digest of GET ${url}`).toBe(digest);
  }
}

describe('skopeo interop with wharf', () => {
  let wharf: WharfHandle;
  let distribution: DistributionHandle;
  let workDir: string;

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'wharf-interop-skopeo-'));
    wharf = await startWharf();
    distribution = await startDistribution();
  }, 30_000);

  afterAll(async () => {
    await wharf?.close();
    await distribution?.close();
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  }, 30_000);

  it(
    'copy --all of a 2-platform OCI index into wharf and back out to an oci: layout keeps every digest',
    async () => {
      const seed = testSeed('skopeo oci index round trip');
      const image = await makeImage({ seed, platforms: twoPlatforms });
      const index = image.index;
      if (index === undefined) throw new Error('expected an index for two platforms');
      const source = join(workDir, 'oci-in');
      const target = join(workDir, 'oci-out');
      await writeOciLayout(image, source, 'v1');
      const ref = `docker://${wharf.host}/interop/app:v1`;

      await copy(`oci:${source}:v1`, ref, ['--all']);

      const raw = await inspectRaw(ref);
      expect(sha256Digest(raw), 'digest of `skopeo inspect --raw` by tag').toBe(index.digest);
      for (const { manifest } of image.images) {
        const instance = await inspectRaw(`docker://${wharf.host}/interop/app@${manifest.digest}`);
        expect(sha256Digest(instance), `digest of instance ${manifest.digest}`).toBe(manifest.digest);
      }
      await expectRegistryHolds(wharf.url, 'interop/app', image);

      await copy(ref, `oci:${target}:v1`, ['--all']);

      expect((await layoutRef(target, 'v1'))?.digest, 'index.json ref v1 of the pulled layout').toBe(index.digest);
      for (const [digest, bytes] of allBlobsOf(image)) {
        const pulled = await readLayoutBlob(target, digest).catch(() => undefined);
        expect(pulled, `blob ${digest} in the pulled layout`).toBeDefined();
        expect(pulled?.equals(bytes), `bytes of ${digest} in the pulled layout`).toBe(true);
      }
    },
    testTimeoutMs,
  );

  it(
    'copy --format v2s2 of a single-platform image into wharf and back out keeps the Docker schema2 manifest',
    async () => {
      const seed = testSeed('skopeo v2s2 round trip');
      const image = await makeImage({ seed });
      const original = image.images[0];
      if (original === undefined) throw new Error('expected one image');
      const source = join(workDir, 'v2s2-in');
      const target = join(workDir, 'v2s2-out');
      const digestFile = join(workDir, 'v2s2.digest');
      await writeOciLayout(image, source, 'v1');
      const ref = `docker://${wharf.host}/interop/v2s2:v1`;

      // skopeo converts OCI to schema2 itself; --digestfile says which manifest digest it pushed.
      await copy(`oci:${source}:v1`, ref, ['--format', 'v2s2', '--digestfile', digestFile]);
      const pushed = (await readFile(digestFile, 'utf8')).trim();

      const raw = await inspectRaw(ref);
      expect(sha256Digest(raw), 'digest of `skopeo inspect --raw` by tag').toBe(pushed);
      const manifest = JSON.parse(raw.toString('utf8')) as Manifest;
      expect(manifest.mediaType).toBe(dockerManifest);
      expect(manifest.config.mediaType).toBe(dockerConfig);
      // Conversion rewrites the config but leaves the gzip'd layer bytes alone.
      expect(manifest.layers.map((l) => l.digest)).toEqual(original.layers.map((l) => l.digest));

      const byDigest = await fetchBytes(`${wharf.url}/v2/interop/v2s2/manifests/${pushed}`, dockerManifest);
      expect(byDigest.status).toBe(200);
      expect(byDigest.headers.get('content-type')).toBe(dockerManifest);
      expect(byDigest.body.equals(raw)).toBe(true);

      // dir: stores the manifest as pulled (oci: would convert it back to OCI).
      await copy(ref, `dir:${target}`);
      const pulledManifest = await readFile(join(target, 'manifest.json'));
      expect(sha256Digest(pulledManifest), 'digest of the pulled manifest.json').toBe(pushed);
      for (const descriptor of [manifest.config, ...manifest.layers]) {
        const pulled = await readFile(dirLayoutPath(target, descriptor.digest));
        expect(sha256Digest(pulled), `pulled blob ${descriptor.digest}`).toBe(descriptor.digest);
        expect(pulled.length).toBe(descriptor.size);
      }
    },
    testTimeoutMs,
  );

  it(
    'copy --all of a generated 2-platform Docker manifest list into wharf and back out keeps every digest',
    async () => {
      const seed = testSeed('skopeo docker list round trip');
      const image = await makeImage({ seed, platforms: twoPlatforms, mediaTypes: 'docker' });
      const index = image.index;
      if (index === undefined) throw new Error('expected a manifest list for two platforms');
      const source = join(workDir, 'docker-in');
      const target = join(workDir, 'docker-out');
      await writeDirLayout(image, source);
      const ref = `docker://${wharf.host}/interop/docker:v1`;

      await copy(`dir:${source}`, ref, ['--all']);

      expect(sha256Digest(await inspectRaw(ref)), 'digest of `skopeo inspect --raw` by tag').toBe(index.digest);
      await expectRegistryHolds(wharf.url, 'interop/docker', image);

      await copy(ref, `dir:${target}`, ['--all']);
      expect(sha256Digest(await readFile(join(target, 'manifest.json'))), 'pulled manifest.json').toBe(index.digest);
      for (const { manifest } of image.images) {
        const pulled = await readFile(dirLayoutPath(target, manifest.digest, { manifest: true }));
        expect(sha256Digest(pulled), `pulled instance ${manifest.digest}`).toBe(manifest.digest);
      }
      for (const [digest] of image.blobs) {
        expect(sha256Digest(await readFile(dirLayoutPath(target, digest))), `pulled blob ${digest}`).toBe(digest);
      }
    },
    testTimeoutMs,
  );

  it.each(['oci', 'docker'] as const)(
    'copy --all (%s media types) from wharf into CNCF distribution and back into wharf under another name keeps every digest',
    async (kind) => {
      const seed = testSeed(`skopeo relay via distribution (${kind})`);
      const image = await makeImage({ seed, platforms: twoPlatforms, mediaTypes: kind });
      const index = image.index;
      if (index === undefined) throw new Error('expected an index for two platforms');
      const source = join(workDir, `relay-${kind}`);
      let sourceRef: string;
      if (kind === 'oci') {
        await writeOciLayout(image, source, 'v1');
        sourceRef = `oci:${source}:v1`;
      } else {
        await writeDirLayout(image, source);
        sourceRef = `dir:${source}`;
      }
      const inWharf = `docker://${wharf.host}/interop/relay-${kind}:v1`;
      const inDistribution = `docker://${distribution.host}/interop/relay-${kind}:v1`;
      const backInWharf = `docker://${wharf.host}/interop/relay-${kind}-back:v2`;

      await copy(sourceRef, inWharf, ['--all']);
      await copy(inWharf, inDistribution, ['--all']);

      expect(sha256Digest(await inspectRaw(inDistribution)), 'digest in distribution').toBe(index.digest);
      await expectRegistryHolds(distribution.url, `interop/relay-${kind}`, image);

      await copy(inDistribution, backInWharf, ['--all']);

      expect(sha256Digest(await inspectRaw(backInWharf)), 'digest back in wharf').toBe(index.digest);
      await expectRegistryHolds(wharf.url, `interop/relay-${kind}-back`, image);
    },
    testTimeoutMs,
  );

  it(
    'skopeo inspect (not --raw) of a single-platform image reports its Digest, Layers and tags',
    async () => {
      const seed = testSeed('skopeo inspect');
      const image = await makeImage({ seed, layers: 3 });
      const only = image.images[0];
      if (only === undefined) throw new Error('expected one image');
      const source = join(workDir, 'inspect-in');
      await writeOciLayout(image, source, 'v1');
      const ref = `docker://${wharf.host}/interop/inspect:v1`;
      await copy(`oci:${source}:v1`, ref);

      const result = await skopeo(['inspect', '--tls-verify=false', ref]);
      const inspected = JSON.parse(result.stdout) as {
        Name: string;
        Digest: string;
        RepoTags: string[];
        Architecture: string;
        Os: string;
        Layers: string[];
        Labels: Record<string, string>;
      };
      expect(inspected.Name).toBe(`${wharf.host}/interop/inspect`);
      expect(inspected.Digest).toBe(only.manifest.digest);
      expect(inspected.Layers).toEqual(only.layers.map((l) => l.digest));
      expect(inspected.Architecture).toBe('amd64');
      expect(inspected.Os).toBe('linux');
      // Labels come from the config blob, so this proves the config was served intact.
      expect(inspected.Labels['org.example.wharf.test-seed']).toBe(seed);
      // RepoTags comes from GET /v2/<name>/tags/list.
      expect(inspected.RepoTags).toEqual(['v1']);
    },
    testTimeoutMs,
  );
});
