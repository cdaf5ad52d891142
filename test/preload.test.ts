/**
 * Issue 10, slice 2: `wharf preload` fetches images from a real upstream (CNCF
 * distribution on loopback) into the store, all platforms by default or only
 * some with --platform (the index kept byte for byte), tags recorded as
 * 'preloaded'; then `serve --offline` serves them to skopeo by tag and digest.
 * It takes the data directory's lock: it refuses while serve runs.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { allBlobsOf, layoutRef, makeImage, sha256Digest, testSeed, type TestImage } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { run, withDeadline } from './support/run.js';
import { runWharf, spawnWharf } from './support/spawn-wharf.js';

const timeoutMs = 180_000;

function skopeo(args: string[]): ReturnType<typeof run> {
  return run('skopeo', args, { timeoutMs: 60_000 });
}

describe.sequential('wharf preload', () => {
  let work: string;
  let upstream: DistributionHandle;
  let multi: TestImage;
  let single: TestImage;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-preload-'));
    upstream = await startDistribution();
    multi = await makeImage({
      seed: testSeed('preload multi'),
      layers: 2,
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
      ],
    });
    single = await makeImage({ seed: testSeed('preload single'), layers: 1, mediaTypes: 'docker' });
    await pushTestImage(upstream.url, 'library/multi', 'v1', multi);
    await pushTestImage(upstream.url, 'team/single', 'v2', single);
  }, timeoutMs);

  afterAll(async () => {
    await upstream?.close();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  const raw = async (host: string, ref: string): Promise<Buffer> =>
    (await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${host}/${ref}`])).stdoutBuffer;

  it(
    'preloads every platform, tags as preloaded, serves offline by tag and digest; refuses while serve runs',
    async () => {
      const data = join(work, 'all');
      const preloaded = await runWharf(
        [
          'preload',
          'docker.io/library/multi:v1',
          `docker.io/team/single@${single.root.digest}`,
          '--upstream',
          `docker.io=${upstream.url}`,
          '--data',
          data,
        ],
        { timeoutMs: 60_000 },
      );
      expect(preloaded.stdout).toContain(`preloaded docker.io/library/multi:v1 (${multi.root.digest})`);
      expect(preloaded.code).toBe(0);

      const db = new Database(join(data, 'index.db'), { readonly: true });
      try {
        expect(db.prepare('SELECT name, source FROM tags').all()).toEqual([{ name: 'v1', source: 'preloaded' }]);
      } finally {
        db.close();
      }

      const served = await spawnWharf(['--data', data, '--offline']);
      try {
        expect(sha256Digest(await raw(served.host, 'docker.io/library/multi:v1'))).toBe(multi.root.digest);
        for (const platform of multi.images) {
          const bytes = await raw(served.host, `docker.io/library/multi@${platform.manifest.digest}`);
          expect(sha256Digest(bytes)).toBe(platform.manifest.digest);
        }
        expect(sha256Digest(await raw(served.host, `docker.io/team/single@${single.root.digest}`))).toBe(
          single.root.digest,
        );
        await skopeo([
          'copy',
          '--all',
          '--src-tls-verify=false',
          `docker://${served.host}/docker.io/library/multi:v1`,
          `oci:${join(work, 'pulled')}:v1`,
        ]);

        const refused = await runWharf(
          ['preload', 'docker.io/library/multi:v1', '--upstream', `docker.io=${upstream.url}`, '--data', data],
          { timeoutMs: 30_000 },
        );
        expect(refused.code).toBe(1);
        expect(refused.stderr).toMatch(/^error: data directory .* is in use by wharf \(pid \d+\)[^\n]*\n$/);
      } finally {
        await withDeadline(served.kill(), 15_000, 'wharf serve exiting');
      }
    },
    timeoutMs,
  );

  it(
    '--file and --platform: only arm64 is fetched, the index stays byte for byte (sparse)',
    async () => {
      const data = join(work, 'arm');
      const list = join(work, 'images.txt');
      await writeFile(list, '# the CI cache\nmulti:v1\n\n');
      const preloaded = await runWharf(
        [
          'preload',
          '--file',
          list,
          '--platform',
          'linux/arm64',
          '--upstream',
          `docker.io=${upstream.url}`,
          '--default-upstream',
          'docker.io',
          '--data',
          data,
          '--quiet',
        ],
        { timeoutMs: 60_000 },
      );
      expect(preloaded.stderr).toBe('');
      expect(preloaded.code).toBe(0);
      const served = await spawnWharf([
        '--data',
        data,
        '--offline',
        '--default-upstream',
        'docker.io',
        '--upstream',
        `docker.io=${upstream.url}`,
      ]);
      try {
        expect(sha256Digest(await raw(served.host, 'docker.io/library/multi:v1'))).toBe(multi.root.digest);
        const [amd64, arm64] = multi.images;
        if (amd64 === undefined || arm64 === undefined) throw new Error('two platforms expected');
        expect(sha256Digest(await raw(served.host, `multi@${arm64.manifest.digest}`))).toBe(arm64.manifest.digest);
        const missing = await fetch(`${served.url}/v2/docker.io/library/multi/manifests/${amd64.manifest.digest}`, {
          method: 'HEAD',
          signal: AbortSignal.timeout(30_000),
        });
        expect(missing.status).toBe(404);
      } finally {
        await withDeadline(served.kill(), 15_000, 'wharf serve exiting');
      }
    },
    timeoutMs,
  );

  it(
    'wharf ls lists tags and digests, kinds, platforms (sparse ones marked), sizes and sources; read-only beside serve',
    async () => {
      const listed = await runWharf(['ls', '--data', join(work, 'all'), '--json'], { timeoutMs: 30_000 });
      expect(listed.code).toBe(0);
      const rows = listed.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(rows).toHaveLength(2);
      const totalBytes = (image: TestImage): number =>
        [...allBlobsOf(image).values()].reduce((sum, bytes) => sum + bytes.length, 0);
      expect(rows[0]).toMatchObject({
        repository: 'docker.io/library/multi',
        tag: 'v1',
        digest: multi.root.digest,
        kind: 'index',
        platforms: ['linux/amd64', 'linux/arm64/v8'],
        missingPlatforms: [],
        source: 'preloaded',
        size: totalBytes(multi),
      });
      expect(rows[1]).toMatchObject({
        repository: 'docker.io/team/single',
        digest: single.root.digest,
        kind: 'manifest',
        size: totalBytes(single),
      });
      expect(rows[1]?.tag).toBeUndefined();

      const sparse = await runWharf(['ls', 'docker.io/library/*', '--data', join(work, 'arm')], { timeoutMs: 30_000 });
      expect(sparse.code).toBe(0);
      const lines = sparse.stdout.trim().split('\n');
      expect(lines[0]).toMatch(/^IMAGE\s+DIGEST\s+KIND\s+PLATFORMS\s+SIZE\s+SOURCE\s+LAST PULLED$/);
      expect(lines.slice(1)).toHaveLength(1);
      // The earlier test pulled it through serve: LAST PULLED says when.
      expect(lines[1]).toMatch(
        /^docker\.io\/library\/multi:v1\s+sha256:\w{12}\s+index\s+linux\/arm64\/v8 \(\+1 not here\)\s+\S+ \w+\s+preloaded\s+\d{4}-\d\d-\d\d \d\d:\d\dZ$/,
      );

      const none = await runWharf(['ls', 'team/*', '--data', join(work, 'all')], { timeoutMs: 30_000 });
      expect(none.stdout.trim().split('\n')).toHaveLength(1);

      // Beside a running serve (no lock taken): a pushed image shows as pushed.
      const pushed = await spawnWharf(['--data', join(work, 'pushed')]);
      try {
        await pushTestImage(pushed.url, 'team/app', 'v3', single);
        const beside = await runWharf(['ls', '--data', join(work, 'pushed'), '--json'], { timeoutMs: 30_000 });
        expect(beside.code).toBe(0);
        expect(JSON.parse(beside.stdout)).toMatchObject({ repository: 'team/app', tag: 'v3', source: 'pushed' });
      } finally {
        await withDeadline(pushed.kill(), 15_000, 'wharf serve exiting');
      }
    },
    timeoutMs,
  );

  // Issue 10: a sparse index (preload --platform) exported and imported elsewhere was refused: export wanted every
  // child of the index, import wanted every child in the layout. It now travels sparse, like preload's result.
  it(
    'preload --platform linux/amd64 → export → import: a sparse index stays sparse; amd64 pulls offline by tag',
    async () => {
      await pushTestImage(upstream.url, 'library/sparse', 'v1', multi);
      const [amd64, arm64] = multi.images;
      if (amd64 === undefined || arm64 === undefined) throw new Error('two platforms expected');
      const data = join(work, 'sparse-amd64');
      const preloaded = await runWharf(
        [
          'preload',
          'docker.io/library/sparse:v1',
          '--platform',
          'linux/amd64',
          '--upstream',
          `docker.io=${upstream.url}`,
          '--data',
          data,
          '--quiet',
        ],
        { timeoutMs: 60_000 },
      );
      expect(preloaded.stderr).toBe('');
      const bundle = join(work, 'sparse.tar');
      const exported = await runWharf([
        'export',
        'docker.io/library/sparse:v1',
        '-o',
        bundle,
        '--data',
        data,
        '--quiet',
      ]);
      expect(exported.stderr).toBe('');
      expect(exported.code).toBe(0);
      const fresh = join(work, 'sparse-fresh');
      const imported = await runWharf(['import', bundle, '--data', fresh]);
      expect(imported.code).toBe(0);
      expect(imported.stdout).toContain(`imported docker.io/library/sparse:v1 (${multi.root.digest})`);

      const listed = await runWharf(['ls', '--data', fresh, '--json']);
      expect(JSON.parse(listed.stdout)).toMatchObject({
        digest: multi.root.digest,
        platforms: ['linux/amd64'],
        missingPlatforms: ['linux/arm64/v8'],
      });
      const offline = await spawnWharf(['--data', fresh, '--offline']);
      try {
        expect(sha256Digest(await raw(offline.host, 'docker.io/library/sparse:v1'))).toBe(multi.root.digest);
        const pulled = join(work, 'sparse-pulled');
        await skopeo([
          'copy',
          '--override-os',
          'linux',
          '--override-arch',
          'amd64',
          '--src-tls-verify=false',
          `docker://${offline.host}/docker.io/library/sparse:v1`,
          `oci:${pulled}:v1`,
        ]);
        expect((await layoutRef(pulled, 'v1'))?.digest).toBe(amd64.manifest.digest);
        const absent = await fetch(`${offline.url}/v2/docker.io/library/sparse/manifests/${arm64.manifest.digest}`, {
          method: 'HEAD',
          signal: AbortSignal.timeout(30_000),
        });
        expect(absent.status).toBe(404);
      } finally {
        await withDeadline(offline.kill(), 15_000, 'wharf serve exiting');
      }
      // Online, the platform left out is fetched on demand from the upstream, as after preload.
      const online = await spawnWharf(['--data', fresh, '--upstream', `docker.io=${upstream.url}`]);
      try {
        const bytes = await raw(online.host, `docker.io/library/sparse@${arm64.manifest.digest}`);
        expect(sha256Digest(bytes)).toBe(arm64.manifest.digest);
      } finally {
        await withDeadline(online.kill(), 15_000, 'wharf serve exiting');
      }
    },
    timeoutMs,
  );

  it(
    'online: a sparse platform is fetched on demand, and a preloaded tag is not revalidated when the upstream moves it',
    async () => {
      const data = join(work, 'arm');
      const served = await spawnWharf(['--data', data, '--upstream', `docker.io=${upstream.url}`]);
      try {
        const amd64 = multi.images[0];
        if (amd64 === undefined) throw new Error('no amd64 image');
        const onDemand = await skopeo([
          'inspect',
          '--raw',
          '--tls-verify=false',
          `docker://${served.host}/docker.io/library/multi@${amd64.manifest.digest}`,
        ]);
        expect(sha256Digest(onDemand.stdoutBuffer)).toBe(amd64.manifest.digest);
        // The upstream's tag now names another image; the preloaded pin stays.
        await pushTestImage(upstream.url, 'library/multi', 'v1', single);
        expect(sha256Digest(await raw(served.host, 'docker.io/library/multi:v1'))).toBe(multi.root.digest);
      } finally {
        await withDeadline(served.kill(), 15_000, 'wharf serve exiting');
      }
    },
    timeoutMs,
  );

  it(
    'preload → export → import into a fresh store → serve --offline: same digests by tag and digest, tags imported',
    async () => {
      const bundle = join(work, 'ci-cache.tar');
      const exported = await runWharf(['export', '--all', '-o', bundle, '--data', join(work, 'all'), '--quiet']);
      expect(exported.code).toBe(0);
      const fresh = join(work, 'fresh');
      const imported = await runWharf(['import', bundle, '--data', fresh, '--quiet']);
      expect(imported.code).toBe(0);
      const served = await spawnWharf(['--data', fresh, '--offline']);
      try {
        expect(sha256Digest(await raw(served.host, 'docker.io/library/multi:v1'))).toBe(multi.root.digest);
        for (const platform of multi.images) {
          const bytes = await raw(served.host, `docker.io/library/multi@${platform.manifest.digest}`);
          expect(sha256Digest(bytes)).toBe(platform.manifest.digest);
        }
      } finally {
        await withDeadline(served.kill(), 15_000, 'wharf serve exiting');
      }
      const listed = await runWharf(['ls', '--data', fresh, '--json']);
      expect(JSON.parse(listed.stdout.trim().split('\n')[0] ?? '{}')).toMatchObject({ source: 'imported' });
    },
    timeoutMs,
  );
});
