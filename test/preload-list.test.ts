/**
 * Round 7b of the planted-bug audit (docs/mutation-testing.md): `wharf preload` as the offline CI
 * cache is warmed, from a list. preload.test.ts covers one platform and whole-line comments; this
 * covers what a real images.txt holds and what a job relies on: a comment after a reference, CRLF
 * line ends, several platforms in one `--platform` (each taken, a variant told apart from another),
 * and all or nothing: one image the upstream lacks fails the run with one line and exit 1, and the
 * images before it are not kept either. `--offline`, WHARF_OFFLINE and `offline: true` in the config
 * are refused before anything is asked.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { realRequests } from './support/access-log.js';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { makeImage, testSeed, type TestImage } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { runWharf } from './support/spawn-wharf.js';
import { snapshotStore } from './support/store-snapshot.js';

const timeoutMs = 180_000;

describe.sequential('wharf preload from a list', () => {
  let work: string;
  let upstream: DistributionHandle;
  let tri: TestImage;
  let one: TestImage;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-preload-list-'));
    upstream = await startDistribution();
    tri = await makeImage({
      seed: testSeed('preload list tri'),
      layers: 1,
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
        { os: 'linux', architecture: 'arm', variant: 'v7' },
      ],
    });
    one = await makeImage({ seed: testSeed('preload list one'), layers: 1 });
    await pushTestImage(upstream.url, 'library/tri', 'v1', tri);
    await pushTestImage(upstream.url, 'team/one', 'v1', one);
  }, timeoutMs);

  afterAll(async () => {
    await upstream?.close();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  const preload = (args: string[], env: Record<string, string> = {}): ReturnType<typeof runWharf> =>
    runWharf(['preload', ...args, '--upstream', `docker.io=${upstream.url}`, '--default-upstream', 'docker.io'], {
      timeoutMs: 60_000,
      env,
    });

  it(
    'reads a reference with a comment after it and CRLF line ends; takes each platform listed, variants exact',
    async () => {
      const data = join(work, 'platforms');
      const list = join(work, 'images.txt');
      await writeFile(list, '# warmed nightly\r\n\r\n  tri:v1   # the base image\r\n');
      // linux/arm64/v7 names no platform of the index: arm64/v8 is another variant and stays out.
      const preloaded = await preload([
        '--file',
        list,
        '--platform',
        'linux/amd64,linux/arm/v7,linux/arm64/v7',
        '--data',
        data,
        '--quiet',
      ]);
      expect(preloaded.stderr).toBe('');
      expect(preloaded.code).toBe(0);
      const listed = await runWharf(['ls', '--data', data, '--json']);
      expect(listed.code).toBe(0);
      expect(JSON.parse(listed.stdout)).toMatchObject({
        repository: 'docker.io/library/tri',
        tag: 'v1',
        digest: tri.root.digest,
        platforms: ['linux/amd64', 'linux/arm/v7'],
        missingPlatforms: ['linux/arm64/v8'],
        source: 'preloaded',
      });
    },
    timeoutMs,
  );

  // Round 9a: platforms split on `,` but kept their spaces (` linux/arm/v7` matched nothing, left out, exit 0).
  it(
    'takes `--platform "linux/amd64, linux/arm/v7"` with a space after the comma as both platforms',
    async () => {
      const data = join(work, 'platforms-spaced');
      const preloaded = await preload(['tri:v1', '--platform', 'linux/amd64, linux/arm/v7', '--data', data, '--quiet']);
      expect(preloaded.stderr).toBe('');
      expect(preloaded.code).toBe(0);
      const listed = await runWharf(['ls', '--data', data, '--json']);
      expect(JSON.parse(listed.stdout)).toMatchObject({
        platforms: ['linux/amd64', 'linux/arm/v7'],
        missingPlatforms: ['linux/arm64/v8'],
      });
    },
    timeoutMs,
  );

  it(
    'fetches and lists an image named twice (a repeated line, two spellings of one name) once',
    async () => {
      const data = join(work, 'twice');
      const list = join(work, 'twice.txt');
      await writeFile(list, 'team/one:v1\ndocker.io/team/one:v1\n');
      const preloaded = await preload(['team/one:v1', '--file', list, '--data', data]);
      expect(preloaded.code).toBe(0);
      // The progress lines on stderr start the image once.
      expect(preloaded.stderr.match(/^\S+: \d+ blobs, /gm)).toHaveLength(1);
      const lines = preloaded.stdout.trimEnd().split('\n');
      expect(lines).toEqual([
        `preloaded docker.io/team/one:v1 (${one.root.digest})`,
        expect.stringMatching(/^1 images, [1-9]\d* blobs fetched \(.+\), 0 already here$/),
      ]);
    },
    timeoutMs,
  );

  // Round 12c: a platform matched on architecture and variant only took windows/amd64 for linux/amd64.
  it(
    'matches the os too: --platform linux/amd64 leaves the windows/amd64 image of the index out',
    async () => {
      const mixed = await makeImage({
        seed: testSeed('preload list os'),
        layers: 1,
        platforms: [
          { os: 'windows', architecture: 'amd64' },
          { os: 'linux', architecture: 'amd64' },
        ],
      });
      await pushTestImage(upstream.url, 'team/mixed', 'v1', mixed);
      const data = join(work, 'platforms-os');
      const preloaded = await preload(['team/mixed:v1', '--platform', 'linux/amd64', '--data', data, '--quiet']);
      expect(preloaded.stderr).toBe('');
      expect(preloaded.code).toBe(0);
      const listed = await runWharf(['ls', '--data', data, '--json']);
      expect(JSON.parse(listed.stdout)).toMatchObject({
        repository: 'docker.io/team/mixed',
        digest: mixed.root.digest,
        platforms: ['linux/amd64'],
        missingPlatforms: ['windows/amd64'],
      });
    },
    timeoutMs,
  );

  it(
    'all or nothing: an image the upstream lacks fails the run (one line, exit 1) and keeps none of the list',
    async () => {
      const data = join(work, 'partial');
      // A store with something in it, so "unchanged" means something.
      const first = await preload(['team/one:v1', '--data', data, '--quiet']);
      expect(first.code).toBe(0);
      const before = await snapshotStore(data);
      const list = join(work, 'with-missing.txt');
      await writeFile(list, 'tri:v1\nteam/absent:v1\n');
      const failed = await preload(['--file', list, '--data', data, '--quiet']);
      expect(failed.code).toBe(1);
      expect(failed.stderr).toMatch(/^error: MANIFEST_UNKNOWN: [^\n]*team\/absent[^\n]*\n$/);
      expect(failed.stdout).toBe('');
      expect(await snapshotStore(data)).toEqual(before);
    },
    timeoutMs,
  );

  it(
    'refuses --offline with one line before asking any upstream',
    async () => {
      const data = join(work, 'offline');
      const before = realRequests(await upstream.settledLogs()).length;
      const refused = await preload(['tri:v1', '--offline', '--data', data]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toBe('error: preload fetches from upstreams: --offline does not apply\n');
      expect(realRequests(await upstream.settledLogs())).toHaveLength(before);

      // Offline from the environment or the config file: refused the same way, nothing asked.
      const config = join(work, 'offline.yaml');
      await writeFile(config, 'offline: true\n');
      const offlineLine =
        'error: preload fetches from upstreams, and this config is offline (offline: true or WHARF_OFFLINE)\n';
      for (const [args, env] of [
        [['tri:v1', '--data', data], { WHARF_OFFLINE: '1' }],
        [['tri:v1', '--data', data, '--config', config], {}],
      ] as const) {
        const offline = await preload([...args], env);
        expect(offline.code).toBe(1);
        expect(offline.stderr).toBe(offlineLine);
      }
      expect(realRequests(await upstream.settledLogs())).toHaveLength(before);
    },
    timeoutMs,
  );

  it(
    "refuses a --platform that is not os/arch as copy does (one line, the spec's code) before asking any upstream",
    async () => {
      const data = join(work, 'bad-platform');
      const before = realRequests(await upstream.settledLogs()).length;
      const refused = await preload(['tri:v1', '--platform', 'linux/amd64,linux', '--data', data]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toBe('error: UNSUPPORTED: --platform: "linux" is not os/arch or os/arch/variant\n');
      expect(realRequests(await upstream.settledLogs())).toHaveLength(before);
    },
    timeoutMs,
  );
});
