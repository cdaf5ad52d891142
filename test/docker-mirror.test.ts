/**
 * The real Docker Engine through wharf (issue 8: "the docker registry-mirrors path gets a real
 * test too"). wharf runs with `docker.io` = a CNCF distribution on loopback seeded with a small
 * generated image, `--default-upstream docker.io`, the README's docker setup, and `team/*` as
 * local names (pushed to wharf, never asked upstream); each test starts its own private dockerd
 * (test/support/dockerd.ts) whose `registry-mirrors` points at wharf.
 *
 * docker falls back to Docker Hub silently when a mirror fails, so a pull that succeeds proves
 * nothing by itself: the tests also check that the upstream was asked by wharf and that wharf's
 * store holds the image under its canonical name.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extract } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessLines, countRequests } from './support/access-log.js';
import { deadServerHost } from './support/containerd.js';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { startDockerd, type DockerdHandle } from './support/dockerd.js';
import { call } from './support/http.js';
import { makeImage, sha256Digest, tarOf, testSeed, type TestImage } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { RunError, withDeadline } from './support/run.js';
import { runWharf } from './support/spawn-wharf.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

// A Docker Hub short name: docker turns `tiny:single` into library/tiny before asking the mirror.
const shortName = 'tiny:single';
const upstreamName = 'library/tiny';
const tag = 'single';
const dockerTestTimeoutMs = 240_000;

/** The image id (config digest) of a local image. */
async function imageId(docker: DockerdHandle, ref: string): Promise<string> {
  return (await docker.docker(['image', 'inspect', '--format', '{{.Id}}', ref])).stdout.trim();
}

/** The diff ids of a local image's layers, base first. */
async function rootFsLayers(docker: DockerdHandle, ref: string): Promise<string[]> {
  const { stdout } = await docker.docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', ref]);
  return JSON.parse(stdout) as string[];
}

/** Every entry of a (small) tar file, by name. */
async function readTar(path: string): Promise<Map<string, Buffer>> {
  const entries = new Map<string, Buffer>();
  const parser = extract();
  createReadStream(path)
    .on('error', (error) => parser.destroy(error))
    .pipe(parser);
  for await (const entry of parser) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    entries.set(entry.header.name, Buffer.concat(chunks));
  }
  return entries;
}

describe.sequential('Docker Engine through the wharf mirror', () => {
  let upstream: DistributionHandle;
  let wharf: WharfHandle;
  let image: TestImage;
  let seed: string;

  beforeAll(async () => {
    upstream = await startDistribution();
    seed = testSeed('docker mirror');
    // Docker media types, as Docker Hub serves most images; two small layers.
    image = await makeImage({ seed, layers: 2, mediaTypes: 'docker' });
    await pushTestImage(upstream.url, upstreamName, tag, image);
    // team/* is local (pushed here, never asked upstream); every other plain name is docker.io's.
    wharf = await startWharf({
      upstreams: [{ host: 'docker.io', url: upstream.url }],
      defaultUpstream: 'docker.io',
      local: ['team/*'],
    });
  });

  afterAll(async () => {
    await wharf?.close();
    await upstream?.close();
  });

  const startMirroredDockerd = (): Promise<DockerdHandle> =>
    startDockerd({ registryMirrors: [wharf.url], insecureRegistries: [wharf.host] });

  const onlyImage = (): TestImage['images'][number] => {
    const first = image.images[0];
    if (first === undefined) throw new Error('test image has no platform image');
    return first;
  };

  it(
    'pulls a docker.io short name through registry-mirrors, and wharf is what served it',
    async () => {
      const docker = await startMirroredDockerd();
      try {
        await docker.docker(['pull', shortName]);
        const inspect = await docker.docker([
          'image',
          'inspect',
          '--format',
          '{{.Id}} {{json .RepoDigests}}',
          shortName,
        ]);
        const [id, repoDigests] = inspect.stdout.trim().split(' ');
        // The image id is the config digest; the repo digest is the manifest the mirror answered with.
        expect(id).toBe(onlyImage().config.digest);
        expect(JSON.parse(repoDigests ?? '[]')).toEqual([`tiny@${image.root.digest}`]);

        // wharf asked the upstream (only wharf knows its address) for the docker.io name, with library/ added by docker.
        expect(countRequests(upstream.logs(), 'GET', `/v2/${upstreamName}/manifests/${tag}`)).toBeGreaterThanOrEqual(1);
        for (const digest of image.blobs.keys()) {
          expect(countRequests(upstream.logs(), 'GET', `/v2/${upstreamName}/blobs/${digest}`), digest).toBe(1);
        }
        // ... and keeps it under the canonical name.
        const catalog = (await (await call(wharf.url, '/v2/_catalog')).json()) as { repositories: string[] };
        expect(catalog.repositories).toContain(`docker.io/${upstreamName}`);
      } finally {
        await docker.close();
      }
    },
    dockerTestTimeoutMs,
  );

  it(
    'what `wharf mirror-config docker` prints works as printed: its daemon.json alone makes docker pull through wharf',
    async () => {
      const printed = await mkdtemp(join(tmpdir(), 'wharf-mirror-config-'));
      try {
        const out = await runWharf([
          'mirror-config',
          'docker',
          '--url',
          wharf.url,
          '--registry',
          'docker.io',
          '--out',
          printed,
        ]);
        expect(out.code, out.stderr).toBe(0);
        const daemonJson = JSON.parse(await readFile(join(printed, 'etc/docker/daemon.json'), 'utf8')) as Record<
          string,
          unknown
        >;
        const other = await makeImage({
          seed: testSeed('docker mirror-config printed'),
          layers: 1,
          mediaTypes: 'docker',
        });
        await pushTestImage(upstream.url, 'library/printed', 'v1', other);
        // Nothing of the harness's own mirror settings: only what was printed.
        const docker = await startDockerd({ daemonJson });
        try {
          await docker.docker(['pull', 'printed:v1']);
          expect(await imageId(docker, 'printed:v1')).toBe(other.images[0]?.config.digest);
          // wharf served it: it asked the upstream for the docker.io name and keeps it.
          expect(countRequests(upstream.logs(), 'GET', '/v2/library/printed/manifests/v1')).toBeGreaterThanOrEqual(1);
          const catalog = (await (await call(wharf.url, '/v2/_catalog')).json()) as { repositories: string[] };
          expect(catalog.repositories).toContain('docker.io/library/printed');
        } finally {
          await docker.close();
        }
      } finally {
        await rm(printed, { recursive: true, force: true });
      }
    },
    dockerTestTimeoutMs,
  );

  it(
    'a name wharf cannot serve fails the pull: docker falls back to Docker Hub, which the harness keeps on loopback',
    async () => {
      const docker = await startMirroredDockerd();
      try {
        const failure = await docker.docker(['pull', 'absent:v1']).then(
          () => undefined,
          (error: unknown) => error,
        );
        expect(failure).toBeInstanceOf(RunError);
        // wharf was asked first (it asked the upstream, which has no such name) ...
        expect(countRequests(upstream.logs(), 'GET', '/v2/library/absent/manifests/v1')).toBeGreaterThanOrEqual(1);
        // ... then docker tried Docker Hub, through the dead proxy: a mirror failure never reaches the network.
        expect((failure as RunError).stderr).toContain(
          `Get "https://registry-1.docker.io/v2/": proxyconnect tcp: dial tcp ${deadServerHost}`,
        );
      } finally {
        await docker.close();
      }
    },
    dockerTestTimeoutMs,
  );

  it(
    'docker save of the pulled image writes the legacy docker-archive with the original layers',
    async () => {
      const docker = await startMirroredDockerd();
      try {
        await docker.docker(['pull', shortName]);
        const archive = join(docker.dir, 'tiny.tar');
        await docker.docker(['save', '--output', archive, shortName]);
        const entries = await withDeadline(readTar(archive), 30_000, 'reading the docker save archive');
        const manifestJson = entries.get('manifest.json');
        expect(manifestJson).toBeDefined();
        const manifest = JSON.parse(manifestJson?.toString('utf8') ?? '[]') as Array<{
          Config: string;
          RepoTags: string[];
          Layers: string[];
        }>;
        expect(manifest).toHaveLength(1);
        expect(manifest[0]?.RepoTags).toEqual([shortName]);
        // Legacy form: <id>/layer.tar, uncompressed, byte for byte the tar whose digest the config lists.
        const layers = manifest[0]?.Layers ?? [];
        expect(layers.every((layer) => /^[0-9a-f]{64}\/layer\.tar$/.test(layer))).toBe(true);
        expect(layers.map((layer) => sha256Digest(entries.get(layer) ?? Buffer.alloc(0)))).toEqual(onlyImage().diffIds);
      } finally {
        await docker.close();
      }
    },
    dockerTestTimeoutMs,
  );

  it(
    // Issue 8 finding 2: with --default-upstream docker.io every plain name was mirrored, so
    // wharf answered docker's blob HEADs for team/app with 200 (the blobs were in the store for
    // docker.io/library/tiny), docker skipped the uploads and the manifest PUT failed with
    // MANIFEST_BLOB_UNKNOWN, leaving phantom docker.io/team/* repositories in _catalog. With
    // `local: ['team/*']` those names are local: the push uploads what team/app lacks, a second
    // image sharing its layers goes to team/derived, and nothing of it is sent upstream.
    'docker push of the pulled image retagged to a local name, and of a derived image sharing its layers; a fresh daemon pulls both back',
    async () => {
      const pusher = await startMirroredDockerd();
      const app = `${wharf.host}/team/app:v1`;
      const derived = `${wharf.host}/team/derived:v1`;
      const ids = new Map<string, string>();
      try {
        await pusher.docker(['pull', shortName]);
        // The pull itself may ask the upstream (tag revalidation); nothing after it may.
        const afterPull = accessLines(upstream.logs()).length;
        await pusher.docker(['tag', shortName, app]);
        await pusher.docker(['push', app]);
        // B = A's layers plus one more: a container of A, a file copied in, committed (no build, no network).
        const container = (await pusher.docker(['create', shortName, 'true'])).stdout.trim();
        const extra = join(pusher.dir, 'derived.txt');
        await writeFile(extra, `derived ${seed}\n`);
        await pusher.docker(['cp', extra, `${container}:/derived.txt`]);
        await pusher.docker(['commit', container, derived]);
        await pusher.docker(['push', derived]);
        for (const ref of [app, derived]) ids.set(ref, await imageId(pusher, ref));
        expect(ids.get(app)).toBe(onlyImage().config.digest);
        const derivedLayers = await rootFsLayers(pusher, derived);
        expect(derivedLayers.slice(0, onlyImage().diffIds.length)).toEqual(onlyImage().diffIds);
        expect(derivedLayers).toHaveLength(onlyImage().diffIds.length + 1);
        // Local names never reach the upstream: no request at all since the pull.
        expect(accessLines(upstream.logs()).slice(afterPull)).toEqual([]);
      } finally {
        await pusher.close();
      }
      const puller = await startMirroredDockerd();
      try {
        for (const ref of [app, derived]) {
          await puller.docker(['pull', ref]);
          expect(await imageId(puller, ref), ref).toBe(ids.get(ref));
        }
      } finally {
        await puller.close();
      }
      const catalog = (await (await call(wharf.url, '/v2/_catalog')).json()) as { repositories: string[] };
      expect(catalog.repositories).toEqual(expect.arrayContaining(['team/app', 'team/derived']));
      expect(catalog.repositories.filter((name) => name.startsWith('docker.io/team/'))).toEqual([]);
    },
    dockerTestTimeoutMs,
  );

  it(
    // Issue 8 finding 1: anyone could replace a mirrored image by pushing to its name. Mirrored
    // names are read-only over HTTP: docker prints wharf's 405 UNSUPPORTED message, and every
    // client keeps getting the upstream's image.
    'docker push to a mirrored plain name is refused and the mirrored tag keeps the upstream image',
    async () => {
      const docker = await startMirroredDockerd();
      const upstreamWritesBefore = accessLines(upstream.logs()).filter(
        (l) => l.method !== 'GET' && l.method !== 'HEAD',
      );
      try {
        const rootfs = await tarOf([{ name: 'wharf-test/evil.txt', data: Buffer.from(`evil ${seed}\n`) }]);
        const attempts = [
          { ref: `${wharf.host}/${upstreamName}:${tag}`, name: `docker.io/${upstreamName}` },
          { ref: `${wharf.host}/${upstreamName}:evil`, name: `docker.io/${upstreamName}` },
          { ref: `${wharf.host}/someone/x:v1`, name: 'docker.io/someone/x' },
        ];
        for (const attempt of attempts) {
          await docker.docker(['import', '-', attempt.ref], { input: rootfs });
          const failure = await docker.docker(['push', attempt.ref]).then(
            () => undefined,
            (error: unknown) => error,
          );
          expect(failure, attempt.ref).toBeInstanceOf(RunError);
          expect((failure as RunError).stderr).toContain(
            `unsupported: ${attempt.name} is mirrored from docker.io and read-only`,
          );
        }
        // The tag still resolves to the upstream's image, at wharf and upstream; no new tag anywhere.
        const accept = { Accept: image.root.mediaType };
        for (const base of [wharf.url, upstream.url]) {
          const manifest = await call(base, `/v2/${upstreamName}/manifests/${tag}`, { headers: accept });
          expect(manifest.status, base).toBe(200);
          expect(manifest.headers.get('docker-content-digest'), base).toBe(image.root.digest);
          const tags = (await (await call(base, `/v2/${upstreamName}/tags/list`)).json()) as { tags: string[] };
          expect(tags.tags, base).toEqual([tag]);
        }
        // Nothing but reads reached the upstream (its only writes are the seeding in beforeAll).
        const upstreamWrites = accessLines(upstream.logs()).filter((l) => l.method !== 'GET' && l.method !== 'HEAD');
        expect(upstreamWrites).toEqual(upstreamWritesBefore);
        const catalog = (await (await call(wharf.url, '/v2/_catalog')).json()) as { repositories: string[] };
        expect(catalog.repositories).not.toContain('docker.io/someone/x');
        expect(catalog.repositories).not.toContain('someone/x');
      } finally {
        await docker.close();
      }
    },
    dockerTestTimeoutMs,
  );

  it(
    'docker push of new content to a local name, then a second fresh daemon pulls it back from wharf',
    async () => {
      const pusher = await startMirroredDockerd();
      const target = `${wharf.host}/team/imported:v1`;
      let id: string;
      try {
        // `docker import` makes an image whose layer and config wharf has never seen, so every blob is uploaded.
        const rootfs = await tarOf([{ name: 'wharf-test/imported.txt', data: Buffer.from(`imported ${seed}\n`) }]);
        await pusher.docker(['import', '-', target], { input: rootfs });
        await pusher.docker(['push', target]);
        id = (await pusher.docker(['image', 'inspect', '--format', '{{.Id}}', target])).stdout.trim();
      } finally {
        await pusher.close();
      }
      const puller = await startMirroredDockerd();
      try {
        await puller.docker(['pull', target]);
        expect((await puller.docker(['image', 'inspect', '--format', '{{.Id}}', target])).stdout.trim()).toBe(id);
      } finally {
        await puller.close();
      }
    },
    dockerTestTimeoutMs,
  );
});
