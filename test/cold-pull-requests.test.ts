/**
 * What a cold pull costs the upstream (issue 12): every request counted, for a ~10-layer,
 * 2-platform image pulled (one platform) through wharf, against the same pull through CNCF
 * distribution's proxy. wharf asks exactly: the tag, the platform manifest, the config and each
 * layer once; no /v2/ ping, no HEAD, no second token. Against a scripted upstream that wants a
 * Bearer token: one 401 and one token request for the whole pull, and connections reused.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { realRequests } from './support/access-log.js';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { makeImage, testSeed, type Platform, type TestImage } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { run } from './support/run.js';
import {
  sendBearerChallenge,
  sendBytes,
  sendManifest,
  sendToken,
  startScriptedRegistry,
  type ScriptedRegistry,
} from './support/scripted-registry.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const registryHost = 'registry.example.test';
const twoPlatforms: Platform[] = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64', variant: 'v8' },
];
const layers = 10;
const clientTimeoutMs = 120_000;
/** What wharf asks for one platform: the tag, the platform manifest, the config, the layers. */
const expectedRequests = 2 + 1 + layers;

function skopeoCopy(from: string, to: string): Promise<unknown> {
  return run(
    'skopeo',
    [
      'copy',
      '--override-os=linux',
      '--override-arch=amd64',
      '--src-tls-verify=false',
      `docker://${from}`,
      `oci:${to}:v1`,
    ],
    { timeoutMs: clientTimeoutMs },
  );
}

/** "GET /v2/…/blobs/…" and the like, with digests shortened, counted. */
function summary(lines: { method: string; path: string }[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { method, path } of lines) {
    const kind = /\/blobs\//.test(path) ? 'blob' : /\/manifests\//.test(path) ? 'manifest' : path.split('?')[0];
    const key = `${method} ${kind ?? ''}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

describe.sequential('upstream requests of a cold pull, ~10 layers, 2 platforms', () => {
  let image: TestImage;
  let workDir: string;

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'wharf-cold-requests-'));
    image = await makeImage({
      seed: testSeed('cold pull requests'),
      layers,
      layerSize: 64 * 1024,
      platforms: twoPlatforms,
    });
  }, 60_000);

  afterAll(async () => {
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  });

  describe('against CNCF distribution', () => {
    let upstream: DistributionHandle;
    let wharf: WharfHandle;
    let proxy: DistributionHandle;

    beforeAll(async () => {
      upstream = await startDistribution();
      await pushTestImage(upstream.url, 'team/wharf', 'v1', image);
      await pushTestImage(upstream.url, 'team/distribution', 'v1', image);
      wharf = await startWharf({ upstreams: [{ host: registryHost, url: upstream.url }] });
      proxy = await startDistribution({ config: { proxy: { remoteurl: upstream.url } } });
    }, 120_000);

    afterAll(async () => {
      await wharf?.close();
      await proxy?.close();
      await upstream?.close();
    }, 60_000);

    it(
      'wharf asks exactly for the tag, the platform manifest, the config and each layer, once',
      async () => {
        // The pushes are in the log too: count from here.
        const pushed = realRequests(await upstream.settledLogs()).length;
        await skopeoCopy(`${wharf.host}/${registryHost}/team/wharf:v1`, join(workDir, 'wharf'));
        await skopeoCopy(`${proxy.host}/team/distribution:v1`, join(workDir, 'distribution'));
        const logs = await upstream.settledLogs();
        const all = realRequests(logs).slice(pushed);
        const ofWharf = all.filter((line) => line.path.startsWith('/v2/team/wharf/'));
        const ofDistribution = all.filter((line) => line.path.startsWith('/v2/team/distribution/'));
        // Reported for the ADR (docs/decisions/0012-cold-path.md); distribution's count is not asserted.
        console.log(
          `cold pull, ${layers} layers, 2 platforms, one pulled: wharf ${ofWharf.length} upstream requests`,
          summary(ofWharf),
          `; distribution ${ofDistribution.length} (plus ${all.filter((l) => l.path === '/v2/').length} /v2/ pings in all)`,
          summary(ofDistribution),
        );
        expect(summary(ofWharf)).toEqual({ 'GET manifest': 2, 'GET blob': 1 + layers });
        expect(ofWharf).toHaveLength(expectedRequests);
        // Every request in the log is one of the two pulls or distribution's pings: wharf sent no /v2/.
        expect(all.length - ofWharf.length - ofDistribution.length).toBe(all.filter((l) => l.path === '/v2/').length);
        expect(ofDistribution.length).toBeGreaterThan(ofWharf.length);
      },
      clientTimeoutMs * 3,
    );
  });

  describe('against an upstream that wants a Bearer token', () => {
    let upstream: ScriptedRegistry;
    let wharf: WharfHandle;
    const token = 'tok-pull';

    beforeAll(async () => {
      const manifests = new Map([image.root, ...image.images.map((i) => i.manifest)].map((m) => [m.digest, m]));
      upstream = await startScriptedRegistry((req, res, ctx) => {
        const path = ctx.request.path;
        if (path === '/token') return sendToken(res, token, 300);
        if (req.headers.authorization !== `Bearer ${token}`) {
          return sendBearerChallenge(res, { realm: `${ctx.url}/token`, service: 'scripted' });
        }
        const reference = path.split('/').pop() ?? '';
        if (path.includes('/manifests/')) {
          const manifest = reference === 'v1' ? image.root : manifests.get(reference);
          if (manifest !== undefined) return sendManifest(res, manifest.bytes, manifest.mediaType);
        }
        const blob = path.includes('/blobs/') ? image.blobs.get(reference) : undefined;
        if (blob !== undefined) return sendBytes(res, blob);
        res.writeHead(404).end();
      });
      wharf = await startWharf({ upstreams: [{ host: registryHost, url: upstream.url }] });
    }, 60_000);

    afterAll(async () => {
      await wharf?.close();
      await upstream?.close();
    });

    it(
      'one 401, one token request, no /v2/ ping, and connections reused across the pull',
      async () => {
        await skopeoCopy(`${wharf.host}/${registryHost}/team/app:v1`, join(workDir, 'bearer'));
        const requests = upstream.requests;
        const tokenRequests = requests.filter((r) => r.path === '/token');
        const challenged = requests.filter((r) => r.path !== '/token' && r.headers.authorization === undefined);
        console.log(
          `bearer upstream: ${requests.length} requests (${tokenRequests.length} token, ${challenged.length} without a token) over ${upstream.connections()} connections`,
        );
        expect(tokenRequests).toHaveLength(1);
        expect(challenged).toHaveLength(1);
        expect(requests.filter((r) => r.path === '/v2/')).toHaveLength(0);
        // The pull itself, its 401 and the token request.
        expect(requests).toHaveLength(expectedRequests + 2);
        // At most one connection per fill running at once (8), reused for the rest.
        expect(upstream.connections()).toBeLessThanOrEqual(8);
      },
      clientTimeoutMs * 2,
    );
  });
});
