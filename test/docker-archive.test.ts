/**
 * Issue 10, slice 2: `docker save` tars from a real Docker Engine (a private dockerd,
 * Debian's 20.10, which writes the legacy `<id>/layer.tar` form) import into wharf,
 * one image and several in one tar, named as docker names them (`tiny:single` →
 * docker.io/library/tiny:single), and are served `--offline` to skopeo by tag and by
 * digest: the config digest is docker's image id and the layers are its diff ids. A
 * flipped byte in a layer.tar is refused with the store unchanged. And the other way:
 * a wharf export of a single-platform image carries a docker manifest.json, so
 * `docker load` takes it with the right image id.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { startDockerd, type DockerdHandle } from './support/dockerd.js';
import { makeImage, sha256Digest, testSeed, type TestImage } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { run, withDeadline } from './support/run.js';
import { runWharf, spawnWharf } from './support/spawn-wharf.js';
import { snapshotStore } from './support/store-snapshot.js';
import { readTar, writeTar } from './support/tar-surgery.js';
import { startWharf } from './support/wharf.js';

const timeoutMs = 240_000;

interface Schema2 {
  mediaType: string;
  config: { digest: string };
  layers: { mediaType: string; digest: string }[];
}

function skopeo(args: string[]): ReturnType<typeof run> {
  return run('skopeo', args, { timeoutMs: 60_000 });
}

describe.sequential('docker save tars into wharf, wharf exports into docker load', () => {
  let work: string;
  let upstream: DistributionHandle;
  let docker: DockerdHandle;
  let tiny: TestImage;
  let other: TestImage;

  const inspect = async (ref: string, format: string): Promise<string> =>
    (await docker.docker(['image', 'inspect', '--format', format, ref])).stdout.trim();

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-docker-archive-'));
    upstream = await startDistribution();
    tiny = await makeImage({ seed: testSeed('docker-archive tiny'), layers: 2, mediaTypes: 'docker' });
    other = await makeImage({ seed: testSeed('docker-archive other'), layers: 1, mediaTypes: 'docker' });
    await pushTestImage(upstream.url, 'library/tiny', 'single', tiny);
    await pushTestImage(upstream.url, 'library/other', 'v1', other);
    docker = await startDockerd({ insecureRegistries: [upstream.host] });
    // Pulled from the loopback registry, then named as a Docker Hub image would be.
    for (const [from, to] of [
      [`${upstream.host}/library/tiny:single`, 'tiny:single'],
      [`${upstream.host}/library/other:v1`, 'other:v1'],
    ] as const) {
      await docker.docker(['pull', from]);
      await docker.docker(['tag', from, to]);
    }
  }, timeoutMs);

  afterAll(async () => {
    await docker?.close();
    await upstream?.close();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  /** Serves `data` offline and checks `name:tag` against docker's own image. */
  async function expectServed(data: string, name: string, tag: string, dockerRef: string): Promise<void> {
    const served = await spawnWharf(['--data', data, '--offline']);
    try {
      const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${served.host}/${name}:${tag}`]);
      const manifest = JSON.parse(raw.stdout) as Schema2;
      expect(manifest.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
      expect(manifest.config.digest).toBe(await inspect(dockerRef, '{{.Id}}'));
      expect(manifest.layers.map((l) => l.digest)).toEqual(
        JSON.parse(await inspect(dockerRef, '{{json .RootFS.Layers}}')) as string[],
      );
      expect(manifest.layers.every((l) => l.mediaType === 'application/vnd.docker.image.rootfs.diff.tar')).toBe(true);
      const digest = sha256Digest(raw.stdoutBuffer);
      const byDigest = await skopeo([
        'inspect',
        '--raw',
        '--tls-verify=false',
        `docker://${served.host}/${name}@${digest}`,
      ]);
      expect(sha256Digest(byDigest.stdoutBuffer)).toBe(digest);
      // A full copy: skopeo verifies every blob wharf serves.
      await skopeo([
        'copy',
        '--src-tls-verify=false',
        `docker://${served.host}/${name}:${tag}`,
        `oci:${join(work, `pulled-${tag}`)}:x`,
      ]);
    } finally {
      await withDeadline(served.kill(), 15_000, 'wharf serve exiting');
    }
  }

  it(
    'imports a one-image docker save tar under docker.io/library/…, served offline by tag and digest',
    async () => {
      const archive = join(work, 'one.tar');
      await docker.docker(['save', '--output', archive, 'tiny:single']);
      const data = join(work, 'one-store');
      const imported = await runWharf(['import', archive, '--data', data], { timeoutMs: 60_000 });
      expect(imported.stderr).not.toContain('error');
      expect(imported.stdout).toContain('imported docker.io/library/tiny:single (sha256:');
      expect(imported.code).toBe(0);
      await expectServed(data, 'docker.io/library/tiny', 'single', 'tiny:single');
      // The same tar twice gives the same manifest: wharf builds it deterministically.
      const again = await runWharf(['import', archive, '--data', join(work, 'one-again')], { timeoutMs: 60_000 });
      expect(again.stdout.split('\n')[0]).toBe(imported.stdout.split('\n')[0]);
    },
    timeoutMs,
  );

  it(
    'imports several images from one docker save tar; --name overrides the repository',
    async () => {
      const archive = join(work, 'two.tar');
      await docker.docker(['save', '--output', archive, 'tiny:single', 'other:v1']);
      const data = join(work, 'two-store');
      const imported = await runWharf(['import', archive, '--data', data, '--quiet'], { timeoutMs: 60_000 });
      expect(imported.stderr).toBe('');
      expect(imported.code).toBe(0);
      await expectServed(data, 'docker.io/library/other', 'v1', 'other:v1');
      await expectServed(data, 'docker.io/library/tiny', 'single', 'tiny:single');

      const renamed = await runWharf(['import', archive, '--data', join(work, 'renamed'), '--name', 'team/app'], {
        timeoutMs: 60_000,
      });
      expect(renamed.stdout).toContain('imported team/app:single');
      expect(renamed.stdout).toContain('imported team/app:v1');
    },
    timeoutMs,
  );

  it(
    'refuses a docker save tar with a flipped byte in a layer.tar, the store unchanged',
    async () => {
      const archive = join(work, 'flip-src.tar');
      await docker.docker(['save', '--output', archive, 'tiny:single']);
      const entries = await readTar(archive);
      const layer = entries.find((e) => e.header.name.endsWith('/layer.tar') && e.data.length > 600);
      if (layer === undefined) throw new Error('no layer.tar entry');
      layer.data[550] = (layer.data[550] ?? 0) ^ 0xff;
      const damaged = join(work, 'flipped.tar');
      await writeTar(damaged, entries);
      const data = join(work, 'one-store');
      const before = await snapshotStore(data);
      const result = await runWharf(['import', damaged, '--data', data, '--quiet'], { timeoutMs: 60_000 });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(
        /^error: DIGEST_INVALID: layer \w+\/layer\.tar hashes to sha256:\w+, its config says/,
      );
      expect(result.stderr.split('\n')).toHaveLength(2);
      expect(await snapshotStore(data)).toEqual(before);
    },
    timeoutMs,
  );

  it(
    'a wharf export of a single-platform image loads with docker load, image id = config digest',
    async () => {
      const source = await startWharf();
      const image = await makeImage({ seed: testSeed('docker-archive load'), layers: 2, mediaTypes: 'docker' });
      try {
        await pushTestImage(source.url, 'team/loaded', 'v1', image);
        const bundle = join(work, 'for-docker.tar');
        const exported = await runWharf([
          'export',
          'team/loaded:v1',
          '-o',
          bundle,
          '--data',
          source.dataDir,
          '--quiet',
        ]);
        expect(exported.code).toBe(0);
      } finally {
        await source.close();
      }
      const bundle = join(work, 'for-docker.tar');
      const loaded = await docker.docker(['load', '--input', bundle]);
      expect(loaded.stdout).toContain('Loaded image: team/loaded:v1');
      const config = image.images[0]?.config.digest;
      expect(await inspect('team/loaded:v1', '{{.Id}}')).toBe(config);
      expect(JSON.parse(await inspect('team/loaded:v1', '{{json .RootFS.Layers}}'))).toEqual(image.images[0]?.diffIds);
    },
    timeoutMs,
  );
});
