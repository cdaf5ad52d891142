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
import type { Digest } from '../src/oci/digest.js';
import { mediaTypes } from '../src/oci/media-types.js';
import { countRequests } from './support/access-log.js';
import { startContainerd, writeHostsToml } from './support/containerd.js';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { captureLog, type LogCapture } from './support/log-capture.js';
import { makeImage, testSeed, type Platform, type TestImage } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { run } from './support/run.js';
import {
  sendBearerChallenge,
  sendBytes,
  sendJson,
  sendManifest,
  sendToken,
  sha256,
  type ScriptedHandler,
} from './support/scripted-registry.js';
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

  // Regression: referrers were asked of /v2/library/alpine/referrers/… without the prefix (a local name on the central).
  it('prefixes the referrers request too', async () => {
    const subject = sha256('subject');
    const server = await serve({
      [`/v2/docker.io/library/alpine/referrers/${subject}`]: (_req, res) => sendJson(res, 200, referrersIndex),
    });
    const upstream = connect({ host: 'docker.io', url: `${server.url}/docker.io` });
    expect(await upstream.listReferrers('library/alpine', subject as Digest)).toEqual(referrersIndex.manifests);
  });
});

const referrer = { mediaType: mediaTypes.ociManifest, digest: sha256('referrer'), size: 8, artifactType: 'x/y' };
const referrersIndex = { schemaVersion: 2, mediaType: mediaTypes.ociIndex, manifests: [referrer] };

describe('an upstream marked as a mirror', () => {
  const { serve, connect } = upstreamHarness();

  it('is sent the original names with ?ns=<host> on every request, the token scoped to the name', async () => {
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: mediaTypes.ociManifest }));
    const blob = Buffer.from('layer');
    const subject = sha256('subject');
    const base = '/v2/library/alpine';
    const withNs =
      (answer: ScriptedHandler): ScriptedHandler =>
      (req, res, ctx) => {
        if (ctx.request.query.get('ns') !== 'docker.io')
          return sendJson(res, 404, { errors: [{ code: 'NAME_UNKNOWN' }] });
        if (req.headers.authorization !== 'Bearer tok') {
          return sendBearerChallenge(res, { realm: `${ctx.url}/token`, service: 'central' });
        }
        return answer(req, res, ctx);
      };
    const server = await serve({
      '/token': (_req, res) => sendToken(res, 'tok'),
      [`${base}/manifests/3.20`]: withNs((_req, res) => sendManifest(res, bytes, mediaTypes.ociManifest)),
      [`${base}/blobs/${sha256(blob)}`]: withNs((_req, res) => sendBytes(res, blob)),
      [`${base}/referrers/${subject}`]: withNs((_req, res) => sendJson(res, 200, referrersIndex)),
      // A Link that drops the ns= it was sent (wharf's own did, before ADR 0013): the next page carries it again.
      [`${base}/tags/list`]: withNs((_req, res, ctx) =>
        ctx.request.query.get('last') === null
          ? sendJson(
              res,
              200,
              { name: 'library/alpine', tags: ['3.19'] },
              {
                Link: `<${base}/tags/list?last=3.19&n=1>; rel="next"`,
              },
            )
          : sendJson(res, 200, { name: 'library/alpine', tags: ['3.20'] }),
      ),
    });
    const upstream = connect({ host: 'docker.io', url: server.url }, { namespace: 'docker.io' });
    expect((await upstream.getManifest('library/alpine', '3.20', [mediaTypes.ociManifest]))?.bytes).toEqual(bytes);
    expect(await upstream.headManifest('library/alpine', '3.20', [mediaTypes.ociManifest])).toBeDefined();
    const got = await upstream.getBlob('library/alpine', sha256(blob) as Digest);
    const chunks: Uint8Array[] = [];
    for await (const chunk of got?.body ?? []) chunks.push(chunk);
    expect(Buffer.concat(chunks)).toEqual(blob);
    expect(await upstream.listTags('library/alpine')).toEqual(['3.19', '3.20']);
    expect(await upstream.listReferrers('library/alpine', subject as Digest)).toEqual([referrer]);
    expect(server.requestsTo('/token').map((r) => r.query.get('scope'))).toEqual(['repository:library/alpine:pull']);
    for (const request of server.requests.filter((r) => r.path !== '/token')) {
      expect(request.query.get('ns'), request.url).toBe('docker.io');
    }
  });

  it('refuses a URL with a path: the name would be given twice', () => {
    expect(() =>
      connect({ host: 'docker.io', url: 'http://127.0.0.1:1/docker.io' }, { namespace: 'docker.io' }),
    ).toThrow(/a mirror \(\?ns=\) takes a URL without a path/);
  });
});

/**
 * The two ways an edge names its central (ADR 0009, ADR 0013): a URL path per upstream host, or
 * the central's bare URL marked as a mirror, sent ?ns=<host> with the original names.
 */
const tierForms = [
  { form: 'a URL path', mirror: false, centralRepository: `${registryHost}/tiers/app` },
  { form: '?ns= to a mirror upstream', mirror: true, centralRepository: 'tiers/app' },
] as const;

describe.sequential.each(tierForms)('edge wharf → central wharf → distribution, by $form', (tier) => {
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
        l['repository'] === tier.centralRepository &&
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
      upstreams: [
        tier.mirror
          ? { host: registryHost, url: central.url, mirror: true, tagTtlMs: 500 }
          : { host: registryHost, url: `${central.url}/${registryHost}`, tagTtlMs: 500 },
      ],
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

  it("the central keeps a client's ns= in its tags Link, so the next page is the same listing", async () => {
    const query = tier.mirror ? `?ns=${registryHost}&n=1` : '?n=1';
    const repository = tier.mirror ? 'tiers/app' : `${registryHost}/tiers/app`;
    await pushTestImage(origin.url, 'tiers/app', 'v2', image);
    const response = await fetch(`${central.url}/v2/${repository}/tags/list${query}`, {
      signal: AbortSignal.timeout(30_000),
    });
    expect(response.status).toBe(200);
    const link = response.headers.get('link') ?? '';
    expect(link).toMatch(/rel="next"/);
    expect(new URLSearchParams(/\?([^>]*)>/.exec(link)?.[1] ?? '').get('ns')).toBe(tier.mirror ? registryHost : null);
  });

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
