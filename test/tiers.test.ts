/**
 * Tiers (issue 9): an upstream may be another wharf. An upstream URL's path is
 * a prefix of every repository name asked of it, and tokens are scoped to that
 * name; so an edge wharf whose upstream is `http://central/<host>` pulls through
 * a central wharf, which pulls from CNCF distribution. skopeo and containerd
 * pull on the edge; each blob is fetched once at every tier (counted in the
 * central's access log and in distribution's), and a tag moved at the origin
 * reaches the edge through both tiers' revalidation.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mediaTypes } from '../src/oci/media-types.js';
import { countRequests } from './support/access-log.js';
import { startContainerd, writeHostsToml } from './support/containerd.js';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { captureLog, type LogCapture } from './support/log-capture.js';
import { makeImage, testSeed, type Platform, type TestImage } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { run } from './support/run.js';
import { sendBearerChallenge, sendManifest, sendToken } from './support/scripted-registry.js';
import { upstreamHarness } from './support/upstream-harness.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const registryHost = 'registry.example.test';
const clientTimeoutMs = 120_000;
const twoPlatforms: Platform[] = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64', variant: 'v8' },
];

describe('an upstream URL with a path', () => {
  const { serve, connect } = upstreamHarness();

  it('prefixes every repository name asked of the upstream, and the token scope with it', async () => {
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: mediaTypes.ociManifest }));
    const path = '/v2/docker.io/library/alpine/manifests/3.20';
    const server = await serve({
      '/token': (_req, res) => sendToken(res, 'tok'),
      [path]: (req, res, ctx) =>
        req.headers.authorization === 'Bearer tok'
          ? sendManifest(res, bytes, mediaTypes.ociManifest)
          : sendBearerChallenge(res, { realm: `${ctx.url}/token`, service: 'central' }),
    });
    const upstream = connect({ host: 'docker.io', url: `${server.url}/docker.io/` });
    expect((await upstream.getManifest('library/alpine', '3.20', [mediaTypes.ociManifest]))?.bytes).toEqual(bytes);
    expect(server.requestsTo(path)).toHaveLength(2);
    expect(server.requestsTo('/token')[0]?.query.get('scope')).toBe('repository:docker.io/library/alpine:pull');
    // A URL copied with its /v2/ is the same prefix.
    const copied = connect({ host: 'docker.io', url: `${server.url}/v2/docker.io` });
    expect(await copied.headManifest('library/alpine', '3.20', [mediaTypes.ociManifest])).toBeDefined();
    expect(() => connect({ host: 'docker.io', url: `${server.url}/Not A Name` })).toThrow(
      /not a repository name prefix/,
    );
  });
});

describe.sequential('edge wharf → central wharf → distribution', () => {
  let origin: DistributionHandle;
  let central: WharfHandle;
  let edge: WharfHandle;
  let centralLog: LogCapture;
  let image: TestImage;
  let workDir: string;

  /** Requests for this blob or manifest the central answered (its access log: one JSON line per request). */
  const centralRequests = (method: string, route: string, reference: string): number =>
    centralLog.lines.filter(
      (l) =>
        l.msg === 'request' &&
        l['method'] === method &&
        l['route'] === route &&
        l['repository'] === `${registryHost}/tiers/app` &&
        l['reference'] === reference,
    ).length;

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'wharf-tiers-'));
    origin = await startDistribution();
    image = await makeImage({ seed: testSeed('tiers'), layers: 2, platforms: twoPlatforms });
    await pushTestImage(origin.url, 'tiers/app', 'v1', image);
    centralLog = captureLog('info');
    central = await startWharf({
      upstreams: [{ host: registryHost, url: origin.url, tagTtlMs: 500 }],
      logger: centralLog.logger,
    });
    edge = await startWharf({
      upstreams: [{ host: registryHost, url: `${central.url}/${registryHost}`, tagTtlMs: 500 }],
    });
  }, 120_000);

  afterAll(async () => {
    await edge?.close();
    await central?.close();
    await origin?.close();
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  }, 60_000);

  it(
    'skopeo on the edge copies every platform; each blob is fetched once at each tier',
    async () => {
      for (const copy of ['first', 'second']) {
        await run(
          'skopeo',
          [
            'copy',
            '--all',
            '--src-tls-verify=false',
            `docker://${edge.host}/${registryHost}/tiers/app:v1`,
            `oci:${join(workDir, `skopeo-${copy}`)}:v1`,
          ],
          { timeoutMs: clientTimeoutMs },
        );
      }
      const raw = await run(
        'skopeo',
        ['inspect', '--raw', '--tls-verify=false', `docker://${edge.host}/${registryHost}/tiers/app:v1`],
        { timeoutMs: clientTimeoutMs },
      );
      expect(raw.stdoutBuffer.equals(image.root.bytes)).toBe(true);
      const logs = await origin.settledLogs();
      await centralLog.quiet();
      for (const digest of image.blobs.keys()) {
        expect(countRequests(logs, 'GET', `/v2/tiers/app/blobs/${digest}`), `origin ${digest}`).toBe(1);
        expect(centralRequests('GET', 'blob', digest), `central ${digest}`).toBe(1);
      }
    },
    clientTimeoutMs * 3,
  );

  it(
    'containerd on the edge pulls every platform through hosts.toml; nothing more reaches either tier',
    async () => {
      const containerd = await startContainerd();
      try {
        const hostsDir = join(workDir, 'hosts');
        await writeHostsToml(hostsDir, registryHost, edge.url);
        await containerd.pull(`${registryHost}/tiers/app:v1`, { hostsDir, allPlatforms: true });
        expect((await containerd.imageList()).map((i) => i.digest)).toEqual([image.root.digest]);
      } finally {
        await containerd.close();
      }
      const logs = await origin.settledLogs();
      await centralLog.quiet();
      for (const digest of image.blobs.keys()) {
        expect(countRequests(logs, 'GET', `/v2/tiers/app/blobs/${digest}`), `origin ${digest}`).toBe(1);
        expect(centralRequests('GET', 'blob', digest), `central ${digest}`).toBe(1);
      }
    },
    clientTimeoutMs * 3,
  );

  it(
    'a tag moved at the origin reaches the edge through both tiers',
    async () => {
      const moved = await makeImage({ seed: testSeed('tiers moved'), layers: 1 });
      await pushTestImage(origin.url, 'tiers/app', 'v1', moved);
      const deadline = Date.now() + 30_000;
      let digest: string | null = null;
      while (digest !== moved.root.digest) {
        if (Date.now() > deadline) throw new Error(`deadline: the edge still serves ${digest} for tiers/app:v1`);
        const response = await fetch(`${edge.url}/v2/${registryHost}/tiers/app/manifests/v1`, {
          method: 'HEAD',
          headers: { accept: [mediaTypes.ociIndex, mediaTypes.ociManifest].join(', ') },
          signal: AbortSignal.timeout(30_000),
        });
        digest = response.headers.get('docker-content-digest');
        if (digest !== moved.root.digest) await new Promise((resolve) => setTimeout(resolve, 200));
      }
      await centralLog.quiet();
      // The central was asked (by the edge's revalidation) and asked the origin in turn.
      expect(centralRequests('HEAD', 'manifest', 'v1')).toBeGreaterThan(0);
      expect(countRequests(await origin.settledLogs(), 'HEAD', '/v2/tiers/app/manifests/v1')).toBeGreaterThan(0);
    },
    clientTimeoutMs,
  );
});
