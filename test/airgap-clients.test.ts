/**
 * Issue 10, scenario 1 with every client, and scenario 2's `docker load` + `docker run`.
 *
 * Online side: `wharf preload --file` from a real upstream (CNCF distribution on loopback, standing
 * in for Docker Hub and for a second registry), then `wharf export --all`. The upstream is then
 * stopped. Air-gapped side: a fresh data directory, `wharf import`, `wharf serve --offline` with the
 * upstreams still configured (they name the hosts, so containerd's `ns=docker.io` and docker's plain
 * names route to the imported content; offline, they are never dialled). Then docker (a private
 * dockerd with registry-mirrors), containerd (`ctr pull` with hosts.toml), podman (registries.conf
 * mirror with a path prefix) and skopeo pull every image by tag and by digest, and every digest is
 * the upstream's. A runnable image (Debian's static busybox as /bin/sh, built in code) runs with
 * `docker run` after a pull through the mirror, and again after `docker load` of a wharf export.
 *
 * One file, shared servers: one distribution, one spawned wharf, one dockerd, one containerd.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startContainerd, writeHostsToml, type ContainerdHandle } from './support/containerd.js';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { startDockerd, type DockerdHandle } from './support/dockerd.js';
import { makeImage, sha256Digest, testSeed, type TestImage } from './support/make-image.js';
import { podmanCleanup, podmanImageDigest, podmanPull } from './support/podman.js';
import { pushTestImage } from './support/push-image.js';
import { makeRunnableImage } from './support/runnable-image.js';
import { run, withDeadline } from './support/run.js';
import { runWharf, spawnWharf, type SpawnedWharf } from './support/spawn-wharf.js';

const otherHost = 'registry.example.test';
const timeoutMs = 240_000;

interface Pulled {
  /** The name a client asks for, with its registry host. */
  full: string;
  /** The repository path on the upstream. */
  upstreamPath: string;
  tag: string;
  image: TestImage;
}

describe.sequential('scenario 1: preload → export → offline import → every client pulls', () => {
  let work: string;
  let upstream: DistributionHandle;
  let served: SpawnedWharf;
  let docker: DockerdHandle;
  let containerd: ContainerdHandle;
  let images: Pulled[];
  let runnable: Pulled;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-airgap-'));
    upstream = await startDistribution();
    const multi = await makeImage({
      seed: testSeed('airgap multi'),
      layers: 2,
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
      ],
    });
    const tool = await makeImage({ seed: testSeed('airgap tool'), layers: 1 });
    runnable = {
      full: 'docker.io/library/runme',
      upstreamPath: 'library/runme',
      tag: 'v1',
      image: await makeRunnableImage('airgap-ok'),
    };
    images = [
      { full: 'docker.io/library/multi', upstreamPath: 'library/multi', tag: 'v1', image: multi },
      { full: `${otherHost}/team/tool`, upstreamPath: 'team/tool', tag: 'v2', image: tool },
      runnable,
    ];
    for (const entry of images) await pushTestImage(upstream.url, entry.upstreamPath, entry.tag, entry.image);

    // The online machine: preload (one by digest), export everything.
    const online = join(work, 'online');
    const list = join(work, 'images.txt');
    await writeFile(
      list,
      [
        '# what the air-gapped site needs',
        'multi:v1',
        `${otherHost}/team/tool@${tool.root.digest}`,
        `${otherHost}/team/tool:v2`,
        'docker.io/library/runme:v1',
        '',
      ].join('\n'),
    );
    const upstreamFlags = ['--upstream', `docker.io=${upstream.url}`, '--upstream', `${otherHost}=${upstream.url}`];
    const preloaded = await runWharf(
      ['preload', '--file', list, ...upstreamFlags, '--default-upstream', 'docker.io', '--data', online, '--quiet'],
      { timeoutMs: 120_000 },
    );
    expect(preloaded.stderr).toBe('');
    expect(preloaded.code).toBe(0);
    const bundle = join(work, 'site.tar');
    const exported = await runWharf(['export', '--all', '-o', bundle, '--data', online, '--quiet'], {
      timeoutMs: 120_000,
    });
    expect(exported.stderr).toBe('');
    expect(exported.code).toBe(0);

    // The air-gapped machine: no upstream reachable, import before serve, then serve offline.
    await upstream.close();
    const site = join(work, 'site');
    const imported = await runWharf(['import', bundle, '--data', site, '--quiet'], { timeoutMs: 120_000 });
    expect(imported.stderr).toBe('');
    expect(imported.code).toBe(0);
    served = await spawnWharf([
      '--data',
      site,
      '--offline',
      '--default-upstream',
      'docker.io',
      // The stopped upstream: if anything dialled out, it would fail rather than reach the network.
      ...upstreamFlags,
    ]);
    [docker, containerd] = await Promise.all([
      startDockerd({ registryMirrors: [served.url], insecureRegistries: [served.host] }),
      startContainerd(),
    ]);
  }, timeoutMs);

  afterAll(async () => {
    await Promise.allSettled([docker?.close(), containerd?.close()]);
    if (served !== undefined) await withDeadline(served.kill(), 15_000, 'wharf serve exiting');
    await upstream?.close();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  }, 120_000);

  it(
    'skopeo: every image by tag and by every manifest digest, byte for byte',
    async () => {
      await mkdir(join(work, 'skopeo'));
      for (const { full, tag, image } of images) {
        const byTag = await run(
          'skopeo',
          ['inspect', '--raw', '--tls-verify=false', `docker://${served.host}/${full}:${tag}`],
          {
            timeoutMs: 60_000,
          },
        );
        expect(sha256Digest(byTag.stdoutBuffer), `${full}:${tag}`).toBe(image.root.digest);
        for (const platform of image.images) {
          const ref = `docker://${served.host}/${full}@${platform.manifest.digest}`;
          const raw = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', ref], { timeoutMs: 60_000 });
          expect(sha256Digest(raw.stdoutBuffer), ref).toBe(platform.manifest.digest);
        }
        await run(
          'skopeo',
          [
            'copy',
            '--all',
            '--src-tls-verify=false',
            `docker://${served.host}/${full}@${image.root.digest}`,
            `oci:${join(work, 'skopeo', full.replaceAll('/', '_'))}:x`,
          ],
          { timeoutMs: 60_000 },
        );
      }
    },
    timeoutMs,
  );

  it(
    'containerd: ctr pull through hosts.toml (ns=docker.io, ns=registry.example.test), by tag and by digest',
    async () => {
      const hostsDir = join(work, 'hosts');
      await writeHostsToml(hostsDir, 'docker.io', served.url);
      await writeHostsToml(hostsDir, otherHost, served.url);
      const expected: { ref: string; digest: string }[] = [];
      for (const { full, tag, image } of images) {
        for (const ref of [`${full}:${tag}`, `${full}@${image.root.digest}`]) {
          await containerd.pull(ref, { hostsDir, allPlatforms: true });
          expected.push({ ref, digest: image.root.digest });
        }
      }
      const listed = (await containerd.imageList()).map((i) => ({ ref: i.ref, digest: i.digest }));
      const byRef = (a: { ref: string }, b: { ref: string }): number => a.ref.localeCompare(b.ref);
      expect(listed.sort(byRef)).toEqual(expected.sort(byRef));
    },
    timeoutMs,
  );

  it(
    'podman: pulls through a registries.conf mirror (path prefix), by tag and by digest',
    async () => {
      for (const { full, tag, image } of images) {
        const host = full.slice(0, full.indexOf('/'));
        const dir = join(work, 'podman', host);
        try {
          const mirror = { dir, registryPrefix: host, mirrorLocation: `${served.host}/${host}` };
          await podmanPull(`${full}:${tag}`, mirror);
          expect(await podmanImageDigest(`${full}:${tag}`, { dir }), `${full}:${tag}`).toBe(image.root.digest);
          await podmanPull(`${full}@${image.root.digest}`, mirror);
          expect(await podmanImageDigest(`${full}@${image.root.digest}`, { dir })).toBe(image.root.digest);
        } finally {
          await podmanCleanup(dir);
        }
      }
    },
    timeoutMs,
  );

  it(
    'docker: pulls the docker.io images through registry-mirrors by tag and by digest, and runs one',
    async () => {
      for (const { full, tag, image } of images.filter((i) => i.full.startsWith('docker.io/'))) {
        const short = full.slice('docker.io/library/'.length);
        await docker.docker(['pull', `${short}:${tag}`]);
        await docker.docker(['pull', `${short}@${image.root.digest}`]);
        const inspect = await docker.docker([
          'image',
          'inspect',
          '--format',
          '{{json .RepoDigests}}',
          `${short}:${tag}`,
        ]);
        // The repo digest is what the mirror answered with; docker fell back nowhere (that would fail, see dockerd.ts).
        expect(JSON.parse(inspect.stdout) as string[], short).toEqual([`${short}@${image.root.digest}`]);
      }
      const ran = await docker.docker(['run', '--rm', '--network', 'none', 'runme:v1']);
      expect(ran.stdout).toBe('airgap-ok\n');
    },
    timeoutMs,
  );

  it(
    'docker load of a single-platform export, then docker run',
    async () => {
      const bundle = join(work, 'runme.tar');
      const exported = await runWharf(
        ['export', `${runnable.full}:${runnable.tag}`, '-o', bundle, '--data', join(work, 'site'), '--quiet'],
        { timeoutMs: 60_000 },
      );
      expect(exported.code).toBe(0);
      // Not the pulled copy: remove it, so what runs is what docker load brought in.
      await docker.docker(['rmi', '--force', 'runme:v1', `runme@${runnable.image.root.digest}`]);
      const loaded = await docker.docker(['load', '--input', bundle]);
      // docker prints the familiar form of the full name the export's manifest.json carries.
      expect(loaded.stdout).toBe('Loaded image: runme:v1\n');
      const id = await docker.docker(['image', 'inspect', '--format', '{{.Id}}', `${runnable.full}:${runnable.tag}`]);
      expect(id.stdout.trim()).toBe(runnable.image.images[0]?.config.digest);
      const ran = await docker.docker(['run', '--rm', '--network', 'none', `${runnable.full}:${runnable.tag}`]);
      expect(ran.stdout).toBe('airgap-ok\n');
    },
    timeoutMs,
  );
});
