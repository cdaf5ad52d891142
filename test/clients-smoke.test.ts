/**
 * @module test/clients-smoke.test
 * Proves the real-client helpers (a private containerd with `ctr image pull --hosts-dir`, podman
 * with a temp registries.conf) and the configs `formatMirrorConfig` writes, against plain CNCF
 * distribution as the mirror: if these pass, a failure of the same pull through wharf is wharf's.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatMirrorConfig } from '../src/cli/mirror-config.js';
import { startContainerd, writeHostsToml, type ContainerdHandle } from './support/containerd.js';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { makeImage, testSeed, writeOciLayout, type Platform, type TestImage } from './support/make-image.js';
import { podmanCleanup, podmanImageDigest, podmanImageInspect, podmanPull } from './support/podman.js';
import { run } from './support/run.js';

const registryHost = 'registry.example.test';
const repository = 'smoke/app';
const ref = `${registryHost}/${repository}:v1`;
const twoPlatforms: Platform[] = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64', variant: 'v8' },
];
const testTimeoutMs = 180_000;

/** Access-log request lines (`"GET /v2/… HTTP/1.1"`) of distribution, in order. */
function requestLines(logs: string): string[] {
  return [...logs.matchAll(/"((?:GET|HEAD) \/v2\/[^"]*) HTTP\/1\.1"/g)].map((match) => match[1] ?? '');
}

/** The lines logged since `before` characters of output. */
function requestsSince(distribution: DistributionHandle, before: number): string[] {
  return requestLines(distribution.logs().slice(before));
}

/** The image's index, config and layer digests for one platform: what a single-platform pull must fetch. */
function digestsFor(image: TestImage, platform: Platform): string[] {
  const instance = image.images.find((i) => i.platform.architecture === platform.architecture);
  if (instance === undefined || image.index === undefined) throw new Error('test image lacks the platform');
  return [
    image.index.digest,
    instance.manifest.digest,
    instance.config.digest,
    ...instance.layers.map((l) => l.digest),
  ];
}

/** Writes formatMirrorConfig's files for containerd under `root` instead of /etc/containerd/certs.d. */
async function writeUnder(root: string, files: ReadonlyArray<{ path: string; content: string }>): Promise<void> {
  for (const file of files) {
    const target = join(root, relative('/etc/containerd/certs.d', file.path));
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, file.content);
  }
}

describe.sequential('real clients against plain distribution', () => {
  let distribution: DistributionHandle;
  let workDir: string;
  let image: TestImage;
  let indexDigest: string;

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'wharf-clients-smoke-'));
    distribution = await startDistribution();
    image = await makeImage({ seed: testSeed('clients smoke'), platforms: twoPlatforms });
    if (image.index === undefined) throw new Error('expected an index for two platforms');
    indexDigest = image.index.digest;
    const layout = join(workDir, 'layout');
    await writeOciLayout(image, layout, 'v1');
    // Under the plain name for containerd (?ns= routing) and podman without a path prefix, and under
    // `<registry host>/<repo>` for podman's path-prefix mirror: distribution takes it as a 3-part repository name.
    for (const target of [repository, `${registryHost}/${repository}`]) {
      await run(
        'skopeo',
        ['copy', '--all', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${distribution.host}/${target}:v1`],
        { timeoutMs: 60_000 },
      );
    }
  }, 120_000);

  afterAll(async () => {
    await distribution?.close();
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  }, 30_000);

  describe.sequential('containerd', () => {
    let containerd: ContainerdHandle | undefined;

    afterAll(async () => {
      await containerd?.close();
    }, 30_000);

    it(
      'ctr pulls all platforms through a hosts.toml mirror, sending ?ns=<registry host>',
      async () => {
        // A fresh daemon per test: containerd never fetches content it already holds.
        containerd = await startContainerd();
        const hostsDir = join(workDir, 'hosts');
        await writeHostsToml(hostsDir, registryHost, distribution.url);
        const before = distribution.logs().length;

        await containerd.pull(ref, { hostsDir, allPlatforms: true });

        const images = await containerd.imageList();
        expect(images).toEqual([
          expect.objectContaining({ ref, digest: indexDigest, mediaType: 'application/vnd.oci.image.index.v1+json' }),
        ]);
        expect(images[0]?.platforms.sort()).toEqual(['linux/amd64', 'linux/arm64/v8']);
        const content = new Set((await containerd.contentList()).map((c) => c.digest));
        for (const digest of [...image.blobs.keys(), ...image.images.map((i) => i.manifest.digest), indexDigest]) {
          expect(content.has(digest), `content store holds ${digest}`).toBe(true);
        }

        const requests = requestsSince(distribution, before);
        expect(requests).toContain(`HEAD /v2/${repository}/manifests/v1?ns=${registryHost}`);
        for (const line of requests)
          expect(line, 'every request to the mirror names its registry').toMatch(/\?ns=registry\.example\.test$/);

        await containerd.close();
        containerd = undefined;
      },
      testTimeoutMs,
    );

    it(
      "formatMirrorConfig('containerd') output works as ctr's --hosts-dir",
      async () => {
        containerd = await startContainerd();
        const config = formatMirrorConfig('containerd', { url: distribution.url, registries: [registryHost] });
        const hostsDir = join(workDir, 'certs.d');
        await writeUnder(hostsDir, config.files);
        const before = distribution.logs().length;

        await containerd.pull(ref, { hostsDir, platform: 'linux/amd64' });

        const images = await containerd.imageList();
        expect(images.map((i) => [i.ref, i.digest])).toEqual([[ref, indexDigest]]);
        const content = new Set((await containerd.contentList()).map((c) => c.digest));
        for (const digest of digestsFor(image, { os: 'linux', architecture: 'amd64' })) {
          expect(content.has(digest), `content store holds ${digest}`).toBe(true);
        }
        // Proof that the bytes came through the mirror entry, not from the (unresolvable) server.
        expect(requestsSince(distribution, before)).toContain(
          `GET /v2/${repository}/manifests/${indexDigest}?ns=${registryHost}`,
        );

        await containerd.close();
        containerd = undefined;
      },
      testTimeoutMs,
    );
  });

  describe.sequential('podman', () => {
    const dirs: string[] = [];

    afterAll(async () => {
      for (const dir of dirs) await podmanCleanup(dir);
    }, 60_000);

    it(
      'podman pulls through a registries.conf mirror without a path prefix',
      async () => {
        const dir = await mkdtemp(join(tmpdir(), 'wharf-podman-'));
        dirs.push(dir);
        const before = distribution.logs().length;

        const pulled = await podmanPull(ref, { dir, registryPrefix: registryHost, mirrorLocation: distribution.host });

        const inspected = await podmanImageInspect(ref, { dir });
        expect(inspected.digest).toBe(indexDigest);
        expect(pulled.imageId).toBe(inspected.id);
        const requests = requestsSince(distribution, before);
        expect(requests).toContain(`GET /v2/${repository}/manifests/v1`);
        for (const line of requests) expect(line, 'podman sends no ns=').not.toContain('ns=');
      },
      testTimeoutMs,
    );

    it(
      "formatMirrorConfig('podman') output routes by path prefix (/v2/<registry host>/<repo>)",
      async () => {
        const dir = await mkdtemp(join(tmpdir(), 'wharf-podman-'));
        dirs.push(dir);
        const config = formatMirrorConfig('podman', { url: distribution.url, registries: [registryHost] });
        const dropIn = config.files[0];
        if (dropIn === undefined) throw new Error('no podman file');
        // The drop-in goes after the top-level keys a main registries.conf holds (TOML keys before tables).
        const registriesConf = `unqualified-search-registries = []\nshort-name-mode = "disabled"\n\n${dropIn.content}`;
        const before = distribution.logs().length;

        await podmanPull(ref, { dir, registriesConf });

        expect(await podmanImageDigest(ref, { dir })).toBe(indexDigest);
        expect(requestsSince(distribution, before)).toContain(`GET /v2/${registryHost}/${repository}/manifests/v1`);
      },
      testTimeoutMs,
    );
  });
});
