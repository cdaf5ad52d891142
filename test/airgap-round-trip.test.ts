/**
 * Round 10a of the planted-bug audit (docs/mutation-testing.md): the air-gapped site and the offline
 * CI cache end to end, through the commands their users run. A cache warmed twice must fetch nothing
 * the second time and say so; `export --all` then `import` on another data directory must keep every
 * tag of every repository, also two repositories holding the same image, with the bytes unchanged;
 * `import --json` must print nothing but JSON lines; an invalid `--name` is refused before anything
 * is written; and `wharf serve --offline` over what was imported or preloaded answers tags, manifests
 * by tag and by digest and their HEADs from the store, and a platform or tag not preloaded with the
 * offline MANIFEST_UNKNOWN, while the upstream, up all along, is asked nothing.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { realRequests } from './support/access-log.js';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { call, sha256 } from './support/http.js';
import { makeImage, testSeed, type TestImage } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { runWharf } from './support/spawn-wharf.js';
import { startWharf } from './support/wharf.js';

const timeoutMs = 240_000;
const host = 'docker.io';

interface Listed {
  repository: string;
  tag?: string;
  digest: string;
  platforms: string[];
  missingPlatforms: string[];
}

describe.sequential('the air-gapped round trip', () => {
  let work: string;
  let upstream: DistributionHandle;
  let multi: TestImage;
  let single: TestImage;
  let other: TestImage;
  /** The warmed cache every later test reads from. */
  let warmed: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-airgap-round-trip-'));
    warmed = join(work, 'warmed');
    upstream = await startDistribution();
    multi = await makeImage({
      seed: testSeed('airgap round trip multi'),
      layers: 1,
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
      ],
    });
    single = await makeImage({ seed: testSeed('airgap round trip single'), layers: 2 });
    other = await makeImage({ seed: testSeed('airgap round trip other'), layers: 1 });
    await pushTestImage(upstream.url, 'library/multi', 'v1', multi);
    await pushTestImage(upstream.url, 'library/multi', 'v2', other);
    // The same image under two repositories: one manifest, two names.
    await pushTestImage(upstream.url, 'team/one', 'v1', single);
    await pushTestImage(upstream.url, 'team/copy', 'v1', single);
    // On the upstream only: never preloaded.
    await pushTestImage(upstream.url, 'library/multi', 'v3', other);
  }, timeoutMs);

  afterAll(async () => {
    await upstream?.close();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  const wharf = (args: string[]): ReturnType<typeof runWharf> => runWharf(args, { timeoutMs: 120_000 });
  const preload = (args: string[]): ReturnType<typeof runWharf> =>
    wharf(['preload', ...args, '--upstream', `${host}=${upstream.url}`, '--default-upstream', host]);
  const list = async (data: string): Promise<Listed[]> => {
    const listed = await wharf(['ls', '--data', data, '--json']);
    expect(listed.code).toBe(0);
    return listed.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Listed)
      .map(({ repository, tag, digest, platforms, missingPlatforms }) => ({
        repository,
        tag,
        digest,
        platforms,
        missingPlatforms,
      }));
  };

  it(
    'a second preload of the same list fetches nothing, and its summary says 0 blobs fetched',
    async () => {
      const refs = ['multi:v1', 'multi:v2', 'team/one:v1', 'team/copy:v1'];
      const first = await preload([...refs, '--data', warmed, '--quiet']);
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      const before = realRequests(await upstream.settledLogs()).length;
      const second = await preload([...refs, '--data', warmed]);
      expect(second.code).toBe(0);
      const lines = second.stdout.trim().split('\n');
      expect(lines.slice(0, 4)).toEqual([
        `preloaded docker.io/library/multi:v1 (${multi.root.digest})`,
        `preloaded docker.io/library/multi:v2 (${other.root.digest})`,
        `preloaded docker.io/team/one:v1 (${single.root.digest})`,
        `preloaded docker.io/team/copy:v1 (${single.root.digest})`,
      ]);
      expect(lines[4]).toMatch(/^4 images, 0 blobs fetched \(0 B\), [1-9]\d* already here$/);
      expect(lines).toHaveLength(5);
      const asked = realRequests(await upstream.settledLogs()).slice(before);
      expect(asked.filter((line) => line.path.includes('/blobs/'))).toEqual([]);
    },
    timeoutMs,
  );

  it(
    'export --all, then import on another data directory, keeps every tag of every repository',
    async () => {
      const bundle = join(work, 'all.tar');
      const exported = await wharf(['export', '--all', '-o', bundle, '--data', warmed, '--quiet']);
      expect(exported.stderr).toBe('');
      expect(exported.code).toBe(0);
      const site = join(work, 'site');
      const imported = await wharf(['import', bundle, '--data', site, '--quiet']);
      expect(imported.stderr).toBe('');
      expect(imported.code).toBe(0);
      const expected = await list(warmed);
      expect(expected.map((i) => `${i.repository}:${i.tag}`)).toEqual([
        'docker.io/library/multi:v1',
        'docker.io/library/multi:v2',
        'docker.io/team/copy:v1',
        'docker.io/team/one:v1',
      ]);
      expect(await list(site)).toEqual(expected);
      // No lock, no temp file left in the data directory.
      expect((await readdir(site)).filter((f) => f.startsWith('wharf.lock'))).toEqual([]);
    },
    timeoutMs,
  );

  it(
    'import --json prints JSON lines only; an invalid --name is refused before the store is touched',
    async () => {
      const bundle = join(work, 'all.tar');
      const json = await wharf(['import', bundle, '--data', join(work, 'json'), '--json']);
      expect(json.code).toBe(0);
      const lines = json.stdout.trim().split('\n');
      expect(lines.length).toBeGreaterThan(0);
      for (const line of lines) expect(() => JSON.parse(line) as unknown, line).not.toThrow();

      const refusedDir = join(work, 'refused');
      const refused = await wharf(['import', bundle, '--data', refusedDir, '--name', 'Team/App']);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toBe(
        'error: NAME_INVALID: --name "Team/App" is not a repository name (lowercase a-z, 0-9, separators . _ - and /)\n',
      );
      expect(refused.stdout).toBe('');
      await expect(readdir(refusedDir)).rejects.toMatchObject({ code: 'ENOENT' });
    },
    timeoutMs,
  );

  // Found by this round: commander kept only the last --platform, so a job that gave one a line dropped the rest.
  it(
    'takes --platform given twice as both lists of platforms',
    async () => {
      const data = join(work, 'twice');
      const preloaded = await preload([
        'multi:v1',
        '--platform',
        'linux/amd64',
        '--platform',
        'linux/arm64',
        '--data',
        data,
        '--quiet',
      ]);
      expect(preloaded.stderr).toBe('');
      expect(preloaded.code).toBe(0);
      expect(await list(data)).toEqual([
        {
          repository: 'docker.io/library/multi',
          tag: 'v1',
          digest: multi.root.digest,
          platforms: ['linux/amd64', 'linux/arm64/v8'],
          missingPlatforms: [],
        },
      ]);
    },
    timeoutMs,
  );

  it(
    'serve --offline answers what was preloaded from the store, and what was not with MANIFEST_UNKNOWN, asking nothing',
    async () => {
      const sparse = join(work, 'sparse');
      const preloaded = await preload(['multi:v1', '--platform', 'linux/amd64', '--data', sparse, '--quiet']);
      expect(preloaded.code).toBe(0);
      const amd64 = multi.images.find((i) => i.platform.architecture === 'amd64');
      const arm64 = multi.images.find((i) => i.platform.architecture === 'arm64');
      if (amd64 === undefined || arm64 === undefined) throw new Error('test image without its platforms');
      const served = await startWharf({ dataDir: sparse, offline: true, upstreams: [{ host, url: upstream.url }] });
      try {
        const before = realRequests(await upstream.settledLogs()).length;
        const repo = `/v2/${host}/library/multi`;
        const tags = await call(served.url, `${repo}/tags/list`);
        expect(await tags.json()).toEqual({ name: `${host}/library/multi`, tags: ['v1'] });
        for (const reference of ['v1', multi.root.digest]) {
          const got = await call(served.url, `${repo}/manifests/${reference}`, {
            headers: { Accept: multi.root.mediaType },
          });
          expect(got.status).toBe(200);
          const bytes = Buffer.from(await got.arrayBuffer());
          expect(sha256(bytes)).toBe(multi.root.digest);
          const head = await call(served.url, `${repo}/manifests/${reference}`, {
            method: 'HEAD',
            headers: { Accept: multi.root.mediaType },
          });
          expect(head.status).toBe(200);
          expect(head.headers.get('docker-content-digest')).toBe(multi.root.digest);
          expect(head.headers.get('content-length')).toBe(String(multi.root.size));
        }
        const present = await call(served.url, `${repo}/manifests/${amd64.manifest.digest}`, {
          headers: { Accept: amd64.manifest.mediaType },
        });
        expect(present.status).toBe(200);
        await present.arrayBuffer();
        // Not preloaded: the arm64 platform (by digest), and the tag v3 the upstream has.
        for (const reference of [arm64.manifest.digest, 'v3']) {
          for (const method of ['GET', 'HEAD']) {
            const missing = await call(served.url, `${repo}/manifests/${reference}`, {
              method,
              headers: { Accept: `${arm64.manifest.mediaType}, ${multi.root.mediaType}` },
            });
            expect(missing.status, `${method} ${reference}`).toBe(404);
            if (method === 'GET') {
              expect(await missing.json()).toMatchObject({
                errors: [{ code: 'MANIFEST_UNKNOWN', detail: { offline: true, reference } }],
              });
            }
          }
        }
        expect(realRequests(await upstream.settledLogs()).slice(before)).toEqual([]);
      } finally {
        await served.close();
      }
    },
    timeoutMs,
  );
});
