/**
 * Real clients pulling through the wharf mirror from a real upstream (CNCF
 * distribution on loopback): skopeo through a path prefix, containerd's ctr
 * through a hosts.toml mirror (which sends ?ns=), podman through a
 * registries.conf mirror with a path prefix. Then the upstream is stopped and
 * everything pulled before still pulls, by tag and by digest.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countRequests } from './support/access-log.js';
import { startContainerd, writeHostsToml } from './support/containerd.js';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { makeImage, testSeed, type Platform, type TestImage } from './support/make-image.js';
import { podmanCleanup, podmanImageDigest, podmanPull } from './support/podman.js';
import { pushTestImage } from './support/push-image.js';
import { run } from './support/run.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const registryHost = 'registry.example.test';
const twoPlatforms: Platform[] = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64', variant: 'v8' },
];
const clientTimeoutMs = 120_000;

describe.sequential('real clients through the mirror', () => {
  let upstream: DistributionHandle;
  let wharf: WharfHandle;
  // One image per client, so each client's pull is cold (content is shared across names in wharf).
  const images = new Map<string, TestImage>();
  const imageOf = (repo: string): TestImage => {
    const found = images.get(repo);
    if (found === undefined) throw new Error(`no image for ${repo}`);
    return found;
  };
  let workDir: string;

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'wharf-mirror-clients-'));
    upstream = await startDistribution();
    for (const repo of ['clients/ctr', 'clients/podman', 'clients/skopeo']) {
      const image = await makeImage({ seed: testSeed(`mirror clients ${repo}`), layers: 3, platforms: twoPlatforms });
      images.set(repo, image);
      await pushTestImage(upstream.url, repo, 'v1', image);
    }
    // tagTtl 0: every tag pull asks the upstream, so the stale-if-error path is what serves once it is gone.
    wharf = await startWharf({ upstreams: [{ host: registryHost, url: upstream.url, tagTtlMs: 0 }] });
  }, 120_000);

  afterAll(async () => {
    await wharf?.close();
    await upstream?.close();
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  }, 60_000);

  it(
    'skopeo copies through a path prefix with every digest unchanged',
    async () => {
      const image = imageOf('clients/skopeo');
      const raw = await run(
        'skopeo',
        ['inspect', '--raw', '--tls-verify=false', `docker://${wharf.host}/${registryHost}/clients/skopeo:v1`],
        {
          timeoutMs: clientTimeoutMs,
        },
      );
      expect(raw.stdoutBuffer.equals(image.root.bytes)).toBe(true);
      const out = join(workDir, 'skopeo-out');
      await run(
        'skopeo',
        [
          'copy',
          '--all',
          '--src-tls-verify=false',
          `docker://${wharf.host}/${registryHost}/clients/skopeo:v1`,
          `oci:${out}:v1`,
        ],
        { timeoutMs: clientTimeoutMs },
      );
      for (const blob of image.blobs.keys()) {
        expect(countRequests(upstream.logs(), 'GET', `/v2/clients/skopeo/blobs/${blob}`), blob).toBe(1);
      }
    },
    clientTimeoutMs * 2,
  );

  it(
    'containerd pulls every platform through hosts.toml, and wharf routes by the ns= it sends',
    async () => {
      const image = imageOf('clients/ctr');
      const containerd = await startContainerd();
      try {
        const hostsDir = join(workDir, 'hosts');
        await writeHostsToml(hostsDir, registryHost, wharf.url);
        await containerd.pull(`${registryHost}/clients/ctr:v1`, { hostsDir, allPlatforms: true });
        const images = await containerd.imageList();
        expect(images.map((i) => i.digest)).toEqual([image.root.digest]);
        // The upstream saw the plain repository name: wharf took the registry from ns=.
        for (const blob of image.blobs.keys()) {
          expect(countRequests(upstream.logs(), 'GET', `/v2/clients/ctr/blobs/${blob}`), blob).toBe(1);
        }
      } finally {
        await containerd.close();
      }
    },
    clientTimeoutMs * 2,
  );

  it(
    'podman pulls through a registries.conf mirror with a path prefix',
    async () => {
      const image = imageOf('clients/podman');
      const dir = join(workDir, 'podman');
      try {
        await podmanPull(`${registryHost}/clients/podman:v1`, {
          dir,
          registryPrefix: registryHost,
          mirrorLocation: `${wharf.host}/${registryHost}`,
        });
        expect(await podmanImageDigest(`${registryHost}/clients/podman:v1`, { dir })).toBe(image.root.digest);
      } finally {
        await podmanCleanup(dir);
      }
    },
    clientTimeoutMs * 2,
  );

  it(
    'still serves every client, by tag and by digest, after the upstream is stopped',
    async () => {
      await upstream.close();
      const image = imageOf('clients/ctr');
      const containerd = await startContainerd();
      try {
        const hostsDir = join(workDir, 'hosts-offline');
        await writeHostsToml(hostsDir, registryHost, wharf.url);
        await containerd.pull(`${registryHost}/clients/ctr:v1`, { hostsDir, allPlatforms: true });
        await containerd.pull(`${registryHost}/clients/ctr@${image.root.digest}`, { hostsDir, allPlatforms: true });
        // Exactly the two references pulled, both at the root digest (an empty list must not pass).
        const listed = (await containerd.imageList()).map((i) => ({ ref: i.ref, digest: i.digest }));
        expect(listed.sort((a, b) => a.ref.localeCompare(b.ref))).toEqual(
          [`${registryHost}/clients/ctr:v1`, `${registryHost}/clients/ctr@${image.root.digest}`]
            .sort((a, b) => a.localeCompare(b))
            .map((ref) => ({ ref, digest: image.root.digest })),
        );
      } finally {
        await containerd.close();
      }
      const dir = join(workDir, 'podman-offline');
      try {
        await podmanPull(`${registryHost}/clients/podman:v1`, {
          dir,
          registryPrefix: registryHost,
          mirrorLocation: `${wharf.host}/${registryHost}`,
        });
        expect(await podmanImageDigest(`${registryHost}/clients/podman:v1`, { dir })).toBe(
          imageOf('clients/podman').root.digest,
        );
      } finally {
        await podmanCleanup(dir);
      }
      const out = join(workDir, 'skopeo-offline');
      await run(
        'skopeo',
        [
          'copy',
          '--all',
          '--src-tls-verify=false',
          `docker://${wharf.host}/${registryHost}/clients/skopeo@${imageOf('clients/skopeo').root.digest}`,
          `oci:${out}:v1`,
        ],
        { timeoutMs: clientTimeoutMs },
      );
    },
    clientTimeoutMs * 3,
  );
});
