/**
 * Prefetch (issue 12): an image manifest fetched from the upstream for a client starts the fills
 * of its config and layers at once, so the client's blob requests join them. Against a real CNCF
 * distribution: the blobs arrive in the store before any client asks, never for the platforms of
 * an index the client did not pick, exactly one upstream GET per blob (skopeo too); with
 * `prefetch: false`, nothing. Against a scripted upstream: a prefetch that fails keeps nothing,
 * and the client's blob request still works, later or joining the failing prefetch.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import { countRequests } from './support/access-log.js';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { call, sha256 } from './support/http.js';
import { makeImage, testSeed, type Platform, type TestImage } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { run, withDeadline } from './support/run.js';
import {
  sendBytes,
  sendManifest,
  sendServerError,
  stallBeforeHeaders,
  startScriptedRegistry,
  type ScriptedRegistry,
} from './support/scripted-registry.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const registryHost = 'registry.example.test';
const twoPlatforms: Platform[] = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64', variant: 'v8' },
];
const manifestAccept = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');
const clientTimeoutMs = 120_000;

/** Polls `check` every 20 ms until it holds; fails with `name` after `ms`. */
async function until(check: () => boolean, ms: number, name: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`deadline: ${name} did not happen within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function stored(wharf: WharfHandle, digest: string): boolean {
  return wharf.server.store.contentSize(digest as Digest) !== undefined;
}

async function getManifest(wharf: WharfHandle, path: string): Promise<Buffer> {
  const response = await call(wharf.url, path, { headers: { accept: manifestAccept } });
  expect(response.status, path).toBe(200);
  return Buffer.from(await response.arrayBuffer());
}

describe.sequential('prefetch against a real upstream (CNCF distribution)', () => {
  let upstream: DistributionHandle;
  let wharf: WharfHandle;
  let quiet: WharfHandle;
  let workDir: string;
  const images = new Map<string, TestImage>();
  const imageOf = (repo: string): TestImage => {
    const found = images.get(repo);
    if (found === undefined) throw new Error(`no image for ${repo}`);
    return found;
  };

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'wharf-prefetch-'));
    upstream = await startDistribution();
    for (const repo of ['prefetch/curl', 'prefetch/skopeo', 'prefetch/off']) {
      const image = await makeImage({
        seed: testSeed(`prefetch ${repo}`),
        layers: 4,
        layerSize: 256 * 1024,
        platforms: twoPlatforms,
      });
      images.set(repo, image);
      await pushTestImage(upstream.url, repo, 'v1', image);
    }
    wharf = await startWharf({ upstreams: [{ host: registryHost, url: upstream.url }] });
    quiet = await startWharf({ upstreams: [{ host: registryHost, url: upstream.url, prefetch: false }] });
  }, 120_000);

  afterAll(async () => {
    await wharf?.close();
    await quiet?.close();
    await upstream?.close();
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  }, 60_000);

  it('an image manifest GET fills its config and layers before any client asks, and no other platform', async () => {
    const image = imageOf('prefetch/curl');
    const [amd64, arm64] = image.images;
    if (amd64 === undefined || arm64 === undefined) throw new Error('two platforms expected');
    const prefix = `/v2/${registryHost}/prefetch/curl`;
    // The index names both platforms: nothing is prefetched from it.
    expect((await getManifest(wharf, `${prefix}/manifests/v1`)).equals(image.root.bytes)).toBe(true);
    expect(wharf.server.proxy.fills.inFlight).toBe(0);
    // The client picks amd64: its config and layers are filled with no blob request from anyone.
    await getManifest(wharf, `${prefix}/manifests/${amd64.manifest.digest}`);
    const wanted = [amd64.config.digest, ...amd64.layers.map((layer) => layer.digest)];
    await until(() => wanted.every((digest) => stored(wharf, digest)), 30_000, 'the prefetched blobs stored');
    await until(() => wharf.server.proxy.fills.inFlight === 0, 30_000, 'the fills settled');
    for (const digest of [arm64.config.digest, ...arm64.layers.map((layer) => layer.digest)]) {
      expect(stored(wharf, digest), `arm64 blob ${digest}`).toBe(false);
    }
    // The client's requests now find the blobs stored: one upstream GET per blob in all.
    for (const digest of wanted) {
      const response = await call(wharf.url, `${prefix}/blobs/${digest}`);
      expect(response.status).toBe(200);
      expect(sha256(Buffer.from(await response.arrayBuffer()))).toBe(digest);
    }
    const logs = await upstream.settledLogs();
    for (const digest of wanted) {
      expect(countRequests(logs, 'GET', `/v2/prefetch/curl/blobs/${digest}`), digest).toBe(1);
    }
    for (const digest of [arm64.config.digest, ...arm64.layers.map((layer) => layer.digest)]) {
      expect(countRequests(logs, 'GET', `/v2/prefetch/curl/blobs/${digest}`), `arm64 ${digest}`).toBe(0);
    }
    expect(wharf.server.proxy.fills.prefetchStats).toMatchObject({ started: wanted.length, failed: 0 });
  });

  it(
    'skopeo pulls one platform cold with exactly one upstream GET per blob',
    async () => {
      const image = imageOf('prefetch/skopeo');
      const before = { ...wharf.server.proxy.fills.prefetchStats };
      await run(
        'skopeo',
        [
          'copy',
          '--override-os=linux',
          '--override-arch=amd64',
          '--src-tls-verify=false',
          `docker://${wharf.host}/${registryHost}/prefetch/skopeo:v1`,
          `oci:${join(workDir, 'skopeo')}:v1`,
        ],
        { timeoutMs: clientTimeoutMs },
      );
      const amd64 = image.images[0];
      if (amd64 === undefined) throw new Error('amd64 expected');
      const pulled = [amd64.config.digest, ...amd64.layers.map((layer) => layer.digest)];
      const logs = await upstream.settledLogs();
      for (const digest of pulled) {
        expect(countRequests(logs, 'GET', `/v2/prefetch/skopeo/blobs/${digest}`), digest).toBe(1);
      }
      expect(wharf.server.proxy.fills.prefetchStats.started - before.started).toBe(pulled.length);
      expect(wharf.server.proxy.fills.prefetchStats.failed).toBe(before.failed);
    },
    clientTimeoutMs * 2,
  );

  it('prefetch: false fills nothing until the client asks', async () => {
    const image = imageOf('prefetch/off');
    const amd64 = image.images[0];
    if (amd64 === undefined) throw new Error('amd64 expected');
    const prefix = `/v2/${registryHost}/prefetch/off`;
    await getManifest(quiet, `${prefix}/manifests/v1`);
    await getManifest(quiet, `${prefix}/manifests/${amd64.manifest.digest}`);
    expect(quiet.server.proxy.fills.inFlight).toBe(0);
    expect(quiet.server.proxy.fills.prefetchStats.started).toBe(0);
    const logs = await upstream.settledLogs();
    for (const digest of image.blobs.keys()) {
      expect(countRequests(logs, 'GET', `/v2/prefetch/off/blobs/${digest}`), digest).toBe(0);
      expect(stored(quiet, digest)).toBe(false);
    }
  });
});

describe('a prefetch that fails', () => {
  const host = 'failing.example.test';
  const layers = {
    later: Buffer.alloc(512 * 1024, 7),
    joined: Buffer.alloc(512 * 1024, 8),
    hung: Buffer.alloc(512 * 1024, 9),
  };
  const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
  const manifestOf = (repo: keyof typeof layers): Buffer => {
    const layer = layers[repo];
    return Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
      }),
    );
  };
  const ociManifest = 'application/vnd.oci.image.manifest.v1+json';
  /**
   * The upstream's first GET of the layer fails, later ones serve it: 'wrong' sends other bytes of
   * the same length (the fill writes a temp file, then the digest check fails), 'slow 503' answers
   * 503 after half a second (the fill never starts; a client can join it meanwhile).
   */
  const flaky =
    (layer: Buffer, fault: 'wrong' | 'slow 503') =>
    (_req: unknown, res: ServerResponse, ctx: { count: number }): void => {
      if (ctx.count > 1) sendBytes(res, layer);
      else if (fault === 'wrong') sendBytes(res, Buffer.alloc(layer.length, 1));
      else setTimeout(() => sendServerError(res, 503), 500);
    };
  let upstream: ScriptedRegistry;
  let wharf: WharfHandle;

  beforeAll(async () => {
    upstream = await startScriptedRegistry({
      '/v2/later/manifests/v1': (_req, res) => sendManifest(res, manifestOf('later'), ociManifest),
      [`/v2/later/blobs/${sha256(config)}`]: (_req, res) => sendBytes(res, config),
      [`/v2/later/blobs/${sha256(layers.later)}`]: flaky(layers.later, 'wrong'),
      '/v2/joined/manifests/v1': (_req, res) => sendManifest(res, manifestOf('joined'), ociManifest),
      [`/v2/joined/blobs/${sha256(config)}`]: (_req, res) => sendBytes(res, config),
      [`/v2/joined/blobs/${sha256(layers.joined)}`]: flaky(layers.joined, 'slow 503'),
      '/v2/hung/manifests/v1': (_req, res) => sendManifest(res, manifestOf('hung'), ociManifest),
      [`/v2/hung/blobs/${sha256(config)}`]: (_req, res) => sendBytes(res, config),
      [`/v2/hung/blobs/${sha256(layers.hung)}`]: (_req, res) => stallBeforeHeaders(res),
    });
    wharf = await startWharf({ upstreams: [{ host, url: upstream.url }] });
  });

  afterAll(async () => {
    await wharf?.close();
    await upstream?.close();
  });

  it('keeps nothing, and the client’s later blob GET fetches it', async () => {
    const prefix = `/v2/${host}/later`;
    const layer = layers.later;
    await getManifest(wharf, `${prefix}/manifests/v1`);
    const stats = wharf.server.proxy.fills.prefetchStats;
    await until(() => stats.failed === 1, 20_000, 'the prefetch failed');
    await until(() => wharf.server.proxy.fills.inFlight === 0, 20_000, 'the fills settled');
    expect(stored(wharf, sha256(layer))).toBe(false);
    // The temp file the failed fill wrote is gone.
    expect((await readdir(join(wharf.dataDir, 'tmp'))).filter((entry) => entry.endsWith('.part'))).toEqual([]);
    const response = await call(wharf.url, `${prefix}/blobs/${sha256(layer)}`);
    expect(response.status).toBe(200);
    expect(Buffer.from(await response.arrayBuffer()).equals(layer)).toBe(true);
    expect(upstream.requestsTo(`/v2/later/blobs/${sha256(layer)}`).filter((r) => r.method === 'GET')).toHaveLength(2);
  });

  // Without the retry in FillRegistry.open, the client that joined the prefetch got its 503 (as a 502/503 of its own).
  it('a client that joined the prefetch before it failed still gets the blob', async () => {
    const prefix = `/v2/${host}/joined`;
    const layer = layers.joined;
    await getManifest(wharf, `${prefix}/manifests/v1`);
    // The prefetch is waiting for the upstream's (failing) answer: this request joins it.
    expect(wharf.server.proxy.fills.isFilling(sha256(layer) as Digest)).toBe(true);
    const response = await call(wharf.url, `${prefix}/blobs/${sha256(layer)}`);
    expect(response.status).toBe(200);
    expect(Buffer.from(await response.arrayBuffer()).equals(layer)).toBe(true);
    expect(wharf.server.proxy.fills.prefetchStats.joined).toBeGreaterThanOrEqual(1);
    expect(upstream.requestsTo(`/v2/joined/blobs/${sha256(layer)}`).filter((r) => r.method === 'GET')).toHaveLength(2);
  });

  // Without the abort in FillRegistry.settle, shutdown waited for the hung upstream's response timeout.
  it('a prefetch nobody joined does not hold shutdown, and keeps nothing', async () => {
    const own = await startWharf({
      upstreams: [{ host, url: upstream.url, timeouts: { connectMs: 5_000, headersMs: 60_000, bodyIdleMs: 60_000 } }],
    });
    try {
      await getManifest(own, `/v2/${host}/hung/manifests/v1`);
      await until(
        () => upstream.requestsTo(`/v2/hung/blobs/${sha256(layers.hung)}`).length === 1,
        10_000,
        'the prefetch reached the upstream',
      );
      await withDeadline(own.server.proxy.settle(), 5_000, 'settle with a hung prefetch');
      expect(stored(own, sha256(layers.hung))).toBe(false);
      expect(own.server.proxy.fills.inFlight).toBe(0);
    } finally {
      await own.close();
    }
  });
});

// Round 5 of the planted-bug audit (docs/mutation-testing.md): a manifest's word does not open
// unbounded fills. Prefetch takes the first maxPrefetchBlobs (128) of its blobs; the rest wait for clients.
describe('prefetch of a manifest with many blobs', () => {
  it('starts at most 128 fills: the config and the first 127 layers', async () => {
    const host = 'many.example.test';
    const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
    const layers = Array.from({ length: 200 }, (_, i) => Buffer.from(`layer number ${i}`));
    const blobs = new Map([config, ...layers].map((bytes) => [sha256(bytes), bytes]));
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
        layers: layers.map((l) => ({
          mediaType: 'application/vnd.oci.image.layer.v1.tar',
          digest: sha256(l),
          size: l.length,
        })),
      }),
    );
    const upstream = await startScriptedRegistry((_req, res, ctx) => {
      if (ctx.request.path === '/v2/many/manifests/v1') {
        return sendManifest(res, manifest, 'application/vnd.oci.image.manifest.v1+json');
      }
      const bytes = blobs.get(ctx.request.path.slice('/v2/many/blobs/'.length));
      if (bytes === undefined) return sendServerError(res, 404);
      sendBytes(res, bytes);
    });
    const wharf = await startWharf({ upstreams: [{ host, url: upstream.url }] });
    try {
      await getManifest(wharf, `/v2/${host}/many/manifests/v1`);
      const fills = wharf.server.proxy.fills;
      await until(() => fills.prefetchStats.started >= 128 && fills.inFlight === 0, 30_000, 'the prefetches settled');
      expect(fills.prefetchStats).toEqual({ started: 128, joined: 0, failed: 0 });
      const fetched = upstream.requests.filter((r) => r.path.startsWith('/v2/many/blobs/')).map((r) => r.path);
      const expected = [config, ...layers.slice(0, 127)].map((b) => `/v2/many/blobs/${sha256(b)}`);
      expect(fetched.sort()).toEqual(expected.sort());
      expect(stored(wharf, sha256(layers[127] ?? ''))).toBe(false);
    } finally {
      await wharf.close();
      await upstream.close();
    }
  });
});

// Round 7a of the planted-bug audit (docs/mutation-testing.md): prefetching a layer whose descriptor
// names `urls` (it lives elsewhere, as Windows base layers do) passed every test.
describe('prefetch of layers that live elsewhere', () => {
  it('skips a layer with urls and a non-distributable one: the client asks for them if it wants them', async () => {
    const host = 'foreign.example.test';
    const config = Buffer.from('{"architecture":"amd64","os":"windows","rootfs":{"type":"layers","diff_ids":[]}}');
    const [own, withUrls, foreign] = ['own layer', 'a layer with urls', 'a foreign layer'].map((s) => Buffer.from(s));
    if (own === undefined || withUrls === undefined || foreign === undefined) throw new Error('three layers');
    const blobs = new Map([config, own, withUrls, foreign].map((bytes) => [sha256(bytes), bytes]));
    const layer = (bytes: Buffer, mediaType: string, urls?: string[]): object => ({
      mediaType,
      digest: sha256(bytes),
      size: bytes.length,
      ...(urls === undefined ? {} : { urls }),
    });
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
        layers: [
          layer(own, 'application/vnd.oci.image.layer.v1.tar'),
          layer(withUrls, 'application/vnd.oci.image.layer.v1.tar', ['https://cdn.example.test/layer']),
          layer(foreign, 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip'),
        ],
      }),
    );
    const upstream = await startScriptedRegistry((_req, res, ctx) => {
      if (ctx.request.path === '/v2/win/manifests/v1') {
        return sendManifest(res, manifest, 'application/vnd.oci.image.manifest.v1+json');
      }
      const bytes = blobs.get(ctx.request.path.slice('/v2/win/blobs/'.length));
      if (bytes === undefined) return sendServerError(res, 404);
      sendBytes(res, bytes);
    });
    const wharf = await startWharf({ upstreams: [{ host, url: upstream.url }] });
    try {
      await getManifest(wharf, `/v2/${host}/win/manifests/v1`);
      const fills = wharf.server.proxy.fills;
      await until(() => fills.prefetchStats.started >= 2 && fills.inFlight === 0, 30_000, 'the prefetches settled');
      expect(fills.prefetchStats).toEqual({ started: 2, joined: 0, failed: 0 });
      const fetched = upstream.requests.filter((r) => r.path.startsWith('/v2/win/blobs/')).map((r) => r.path);
      expect(fetched.sort()).toEqual([config, own].map((b) => `/v2/win/blobs/${sha256(b)}`).sort());
    } finally {
      await wharf.close();
      await upstream.close();
    }
  });
});
