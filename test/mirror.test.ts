/**
 * The pull-through mirror against a real upstream (CNCF distribution on
 * loopback) holding generated images: each route (path prefix, ?ns=, default
 * upstream) hits one cache entry, blobs are fetched once whatever the
 * concurrency, tags are revalidated after their TTL, and everything pulled
 * before keeps working when the upstream is gone.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { countRequests, realRequests } from './support/access-log.js';
import { blobPath, flipByte } from './support/blob-file.js';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { call, errorCode, pushImage, sha256 } from './support/http.js';
import { makeImage, testSeed, type TestImage } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const upstreamHost = 'registry.example.test';
const acceptAll = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

let upstream: DistributionHandle;
let wharf: WharfHandle;
let image: TestImage;
let crowd: TestImage;

beforeAll(async () => {
  upstream = await startDistribution();
  image = await makeImage({
    seed: testSeed('mirror'),
    layers: 3,
    platforms: [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64' },
    ],
  });
  crowd = await makeImage({ seed: testSeed('mirror-crowd'), layers: 3, layerSize: 512 * 1024 });
  await pushTestImage(upstream.url, 'team/app', 'v1', image);
  await pushTestImage(upstream.url, 'team/crowd', 'v1', crowd);
  wharf = await startWharf({ upstreams: [{ host: upstreamHost, url: upstream.url, tagTtlMs: 60_000 }] });
}, 120_000);

afterAll(async () => {
  await wharf?.close();
  await upstream?.close();
});

async function bytesOf(response: Response): Promise<Buffer> {
  return Buffer.from(await response.arrayBuffer());
}

/** A client pull: root manifest, every platform manifest, config and layers. Returns the digests seen. */
async function pull(base: string, name: string, tag: string, query = ''): Promise<string[]> {
  const seen: string[] = [];
  const root = await call(base, `/v2/${name}/manifests/${tag}${query}`, { headers: { Accept: acceptAll } });
  expect(root.status).toBe(200);
  const rootBytes = await bytesOf(root);
  seen.push(sha256(rootBytes));
  const parsed = JSON.parse(rootBytes.toString()) as { manifests?: { digest: string }[] };
  const manifests = parsed.manifests?.map((m) => m.digest) ?? [];
  const images = manifests.length > 0 ? manifests : [sha256(rootBytes)];
  for (const digest of images) {
    const response = await call(base, `/v2/${name}/manifests/${digest}${query}`, { headers: { Accept: acceptAll } });
    expect(response.status).toBe(200);
    const bytes = await bytesOf(response);
    expect(sha256(bytes)).toBe(digest);
    const manifest = JSON.parse(bytes.toString()) as { config: { digest: string }; layers: { digest: string }[] };
    for (const blob of [manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) {
      const got = await call(base, `/v2/${name}/blobs/${blob}${query}`);
      expect(got.status).toBe(200);
      expect(sha256(await bytesOf(got))).toBe(blob);
      seen.push(blob);
    }
  }
  return seen;
}

describe('pull-through', () => {
  it('serves an upstream image through a path prefix, byte for byte, and keeps it', async () => {
    const digests = await pull(wharf.url, `${upstreamHost}/team/app`, 'v1');
    expect(digests[0]).toBe(image.root.digest);
    for (const blob of image.blobs.keys()) expect(digests).toContain(blob);
    const root = await call(wharf.url, `/v2/${upstreamHost}/team/app/manifests/v1`, { headers: { Accept: acceptAll } });
    expect(root.headers.get('content-type')).toBe(image.root.mediaType);
    expect((await bytesOf(root)).equals(image.root.bytes)).toBe(true);
  });

  it('answers ?ns= from the same cache entry, echoing OCI-Namespace, without asking the upstream again', async () => {
    const before = await upstream.settledLogs();
    const digests = await pull(wharf.url, 'team/app', 'v1', `?ns=${upstreamHost}`);
    expect(digests[0]).toBe(image.root.digest);
    // Settled: a late access line must not make the zero counts pass; any method counts (HEAD too).
    const after = (await upstream.settledLogs()).slice(before.length);
    expect(realRequests(after)).toEqual([]);
    const head = await call(wharf.url, `/v2/team/app/manifests/v1?ns=${upstreamHost}`, { method: 'HEAD' });
    expect(head.headers.get('oci-namespace')).toBe(upstreamHost);
  });

  it('refuses an ns= that is not a configured upstream, with no outbound connection', async () => {
    const response = await call(wharf.url, '/v2/team/app/manifests/v1?ns=evil.example.com');
    expect(response.status).toBe(404);
    expect(await errorCode(response)).toBe('NAME_UNKNOWN');
    const prefixed = await call(wharf.url, '/v2/evil.example.com/team/app/manifests/v1');
    expect(prefixed.status).toBe(404);
    expect(await errorCode(prefixed)).toBe('MANIFEST_UNKNOWN');
  });

  it('fetches each blob once for twenty concurrent cold pulls of one image', async () => {
    const name = `${upstreamHost}/team/crowd`;
    const pulls = await Promise.all(Array.from({ length: 20 }, () => pull(wharf.url, name, 'v1')));
    for (const digests of pulls) expect(digests[0]).toBe(crowd.root.digest);
    const logs = upstream.logs();
    for (const blob of crowd.blobs.keys()) {
      expect(countRequests(logs, 'GET', `/v2/team/crowd/blobs/${blob}`), `upstream GETs of ${blob}`).toBe(1);
    }
    expect(countRequests(logs, 'GET', '/v2/team/crowd/manifests/v1')).toBe(1);
  });

  it('keeps the fill going when the first client disconnects mid-blob', async () => {
    const big = await makeImage({ seed: testSeed('mirror-disconnect'), layers: 1, layerSize: 8 * 1024 * 1024 });
    await pushTestImage(upstream.url, 'team/big', 'v1', big);
    const layer = big.images[0]?.layers[0]?.digest ?? '';
    const first = await request(`${wharf.url}/v2/${upstreamHost}/team/big/blobs/${layer}`);
    // Read one chunk, then walk away.
    for await (const _chunk of first.body) break;
    first.body.destroy();
    const second = await call(wharf.url, `/v2/${upstreamHost}/team/big/blobs/${layer}`);
    expect(sha256(await bytesOf(second))).toBe(layer);
    expect(countRequests(upstream.logs(), 'GET', `/v2/team/big/blobs/${layer}`)).toBe(1);
  });

  // Issue 8, finding 1: an anonymous push under a mirrored name replaced the image every client of the mirror got.
  it('refuses pushes, mounts and deletes under a mirrored name: it is read-only over HTTP', async () => {
    const name = `${upstreamHost}/team/app`;
    const blob = await call(wharf.url, `/v2/${name}/blobs/uploads/?digest=${sha256('evil')}`, {
      method: 'POST',
      body: 'evil',
    });
    expect(blob.status).toBe(405);
    expect(await errorCode(blob)).toBe('UNSUPPORTED');
    const session = await call(wharf.url, `/v2/${name}/blobs/uploads/`, { method: 'POST' });
    expect(session.status).toBe(405);
    const manifest = await call(wharf.url, `/v2/${name}/manifests/v1`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
      body: '{"schemaVersion":2}',
    });
    expect(manifest.status).toBe(405);
    expect(await errorCode(manifest)).toBe('UNSUPPORTED');
    const deleted = await call(wharf.url, `/v2/${name}/manifests/v1`, { method: 'DELETE' });
    expect(deleted.status).toBe(405);
    const deletedBlob = await call(wharf.url, `/v2/${name}/blobs/${image.images[0]?.config.digest}`, {
      method: 'DELETE',
    });
    expect(deletedBlob.status).toBe(405);
    // The tag still answers with the upstream's digest.
    const got = await call(wharf.url, `/v2/${name}/manifests/v1`, { headers: { Accept: acceptAll } });
    expect(got.headers.get('docker-content-digest')).toBe(image.root.digest);
  });

  it('lists the upstream tags of a mirrored name', async () => {
    const response = await call(wharf.url, `/v2/${upstreamHost}/team/app/tags/list`);
    const body = (await response.json()) as { tags: string[] };
    expect(body.tags).toEqual(['v1']);
  });
});

describe('tags and the upstream going away', () => {
  it('revalidates a tag with HEAD after its TTL and follows it when it moves', async () => {
    const quick = await startWharf({ upstreams: [{ host: upstreamHost, url: upstream.url, tagTtlMs: 0 }] });
    try {
      const one = await makeImage({ seed: testSeed('mirror-move-1') });
      const two = await makeImage({ seed: testSeed('mirror-move-2') });
      await pushTestImage(upstream.url, 'team/moving', 'latest', one);
      const name = `${upstreamHost}/team/moving`;
      expect((await pull(quick.url, name, 'latest'))[0]).toBe(one.root.digest);
      const before = upstream.logs().length;
      expect((await pull(quick.url, name, 'latest'))[0]).toBe(one.root.digest);
      const revalidation = upstream.logs().slice(before);
      expect(countRequests(revalidation, 'HEAD', '/v2/team/moving/manifests/latest')).toBe(1);
      expect(countRequests(revalidation, 'GET', '/v2/team/moving/manifests/latest')).toBe(0);
      await pushTestImage(upstream.url, 'team/moving', 'latest', two);
      expect((await pull(quick.url, name, 'latest'))[0]).toBe(two.root.digest);
    } finally {
      await quick.close();
    }
  });

  it('serves everything pulled before, by tag and by digest, when the upstream is down (stale-if-error)', async () => {
    const own = await startDistribution();
    const quick = await startWharf({ upstreams: [{ host: upstreamHost, url: own.url, tagTtlMs: 0 }] });
    try {
      await pushTestImage(own.url, 'team/app', 'v1', image);
      const name = `${upstreamHost}/team/app`;
      await pull(quick.url, name, 'v1');
      await own.close();
      expect((await pull(quick.url, name, 'v1'))[0]).toBe(image.root.digest);
      expect((await pull(quick.url, name, image.root.digest))[0]).toBe(image.root.digest);
      // Never pulled before and no upstream: a clear error, not a hang.
      const missing = await call(quick.url, `/v2/${name}/manifests/never-pulled`);
      expect(missing.status).toBe(503);
      expect(await errorCode(missing)).toBe('UNAVAILABLE');
    } finally {
      await quick.close();
      await own.close();
    }
  });

  it('fetches a cached manifest again when its file on disk is found corrupt, by tag and by digest', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'wharf-corrupt-manifest-'));
    const name = `${upstreamHost}/team/app`;
    const child = image.images[0]?.manifest.digest;
    if (child === undefined) throw new Error('the test image has no platform manifest');
    try {
      const first = await startWharf({ dataDir, upstreams: [{ host: upstreamHost, url: upstream.url }] });
      await pull(first.url, name, 'v1');
      await first.close();
      // The disk damages both stored manifests: the index (fresh tag) and one platform's manifest.
      for (const digest of [image.root.digest, child]) await flipByte(blobPath(dataDir, digest), 10);
      const again = await startWharf({
        dataDir,
        upstreams: [{ host: upstreamHost, url: upstream.url, tagTtlMs: 60_000 }],
      });
      try {
        const before = (await upstream.settledLogs()).length;
        const root = await call(again.url, `/v2/${name}/manifests/v1`, { headers: { Accept: acceptAll } });
        expect(root.status).toBe(200);
        expect((await bytesOf(root)).equals(image.root.bytes)).toBe(true);
        const platform = await call(again.url, `/v2/${name}/manifests/${child}`, { headers: { Accept: acceptAll } });
        expect(platform.status).toBe(200);
        expect(sha256(await bytesOf(platform))).toBe(child);
        // Each damaged manifest was asked of the upstream once more; nothing else was.
        const asked = realRequests((await upstream.settledLogs()).slice(before)).map((r) => `${r.method} ${r.path}`);
        expect(asked.sort()).toEqual([`GET /v2/team/app/manifests/v1`, `GET /v2/team/app/manifests/${child}`].sort());
      } finally {
        await again.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('offline: serves only what is local and never dials out', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'wharf-offline-'));
    const name = `${upstreamHost}/team/app`;
    try {
      const online = await startWharf({ dataDir, upstreams: [{ host: upstreamHost, url: upstream.url }] });
      await pull(online.url, name, 'v1');
      await online.close();
      const offline = await startWharf({
        dataDir,
        upstreams: [{ host: upstreamHost, url: upstream.url, tagTtlMs: 0 }],
        offline: true,
      });
      try {
        const before = (await upstream.settledLogs()).length;
        expect((await pull(offline.url, name, 'v1'))[0]).toBe(image.root.digest);
        const missing = await call(offline.url, `/v2/${upstreamHost}/team/crowd/manifests/v1`);
        expect(missing.status).toBe(404);
        expect(realRequests((await upstream.settledLogs()).slice(before))).toEqual([]);
      } finally {
        await offline.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('default upstream', () => {
  it('routes names without a registry host to the default upstream, under the canonical name', async () => {
    const viaDefault = await startWharf({
      upstreams: [{ host: upstreamHost, url: upstream.url }],
      defaultUpstream: upstreamHost,
      local: ['mine/*'],
    });
    try {
      expect((await pull(viaDefault.url, 'team/app', 'v1'))[0]).toBe(image.root.digest);
      const catalog = (await (await call(viaDefault.url, '/v2/_catalog')).json()) as { repositories: string[] };
      expect(catalog.repositories).toContain(`${upstreamHost}/team/app`);
      // A plain name is mirrored: a push there would shadow the upstream for every client.
      const refused = await call(viaDefault.url, `/v2/team/app/blobs/uploads/?digest=${sha256('x')}`, {
        method: 'POST',
        body: 'x',
      });
      expect(refused.status).toBe(405);
      expect(await errorCode(refused)).toBe('UNSUPPORTED');
    } finally {
      await viaDefault.close();
    }
  });

  // Issue 13, survivor 2: the same tag on both sides with different digests. A local pattern broad
  // enough to match the canonical name must not pull a path-prefixed or ?ns= request away from
  // the upstream, and the mirrored tag is never written by a push under any spelling.
  it('never lets a local name shadow a mirrored one: same tag on both sides, different digests', async () => {
    const viaDefault = await startWharf({
      upstreams: [{ host: upstreamHost, url: upstream.url }],
      defaultUpstream: upstreamHost,
      local: ['team/*', '*/team/*'],
    });
    try {
      const local = await pushImage(viaDefault.url, 'team/app', 'v1', 'local-side');
      expect(local.digest).not.toBe(image.root.digest);
      const digestOf = async (path: string): Promise<string | null> => {
        const response = await call(viaDefault.url, path, { headers: { Accept: acceptAll } });
        expect(response.status, path).toBe(200);
        await response.arrayBuffer();
        return response.headers.get('docker-content-digest');
      };
      expect(await digestOf('/v2/team/app/manifests/v1')).toBe(local.digest);
      expect(await digestOf(`/v2/${upstreamHost}/team/app/manifests/v1`)).toBe(image.root.digest);
      expect(await digestOf(`/v2/team/app/manifests/v1?ns=${upstreamHost}`)).toBe(image.root.digest);
      // The local manifest is not served under the mirrored name, even by digest.
      const byDigest = await call(viaDefault.url, `/v2/${upstreamHost}/team/app/manifests/${local.digest}`);
      expect(byDigest.status).toBe(404);
      expect(await errorCode(byDigest)).toBe('MANIFEST_UNKNOWN');
      // A push of that manifest under either mirrored spelling is refused and changes nothing.
      for (const path of [
        `/v2/${upstreamHost}/team/app/manifests/v1`,
        `/v2/team/app/manifests/v1?ns=${upstreamHost}`,
      ]) {
        const put = await call(viaDefault.url, path, {
          method: 'PUT',
          headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
          body: local.bytes,
        });
        expect(put.status, path).toBe(405);
        expect(await errorCode(put)).toBe('UNSUPPORTED');
      }
      expect(await digestOf(`/v2/${upstreamHost}/team/app/manifests/v1`)).toBe(image.root.digest);
      expect(await digestOf('/v2/team/app/manifests/v1')).toBe(local.digest);
    } finally {
      await viaDefault.close();
    }
  });

  // Issue 8, finding 2: with a default upstream, a blob HEAD under a pushed name answered 200 from
  // elsewhere in the store, the client skipped the upload, and the manifest PUT failed.
  it('keeps local names local: a second image sharing a layer pushes cleanly, no phantom repositories', async () => {
    const viaDefault = await startWharf({
      upstreams: [{ host: upstreamHost, url: upstream.url }],
      defaultUpstream: upstreamHost,
      local: ['mine/*'],
    });
    try {
      const base = await pushImage(viaDefault.url, 'mine/base', 'v1', 'shared');
      const layer = base.layers[0] ?? '';
      // What a client asks before uploading: the layer is not in mine/derived yet.
      const head = await call(viaDefault.url, `/v2/mine/derived/blobs/${layer}`, { method: 'HEAD' });
      expect(head.status).toBe(404);
      const derived = await pushImage(viaDefault.url, 'mine/derived', 'v1', 'shared');
      expect(derived.layers).toEqual(base.layers);
      const got = await call(viaDefault.url, '/v2/mine/derived/manifests/v1');
      expect(got.headers.get('docker-content-digest')).toBe(derived.digest);
      const catalog = (await (await call(viaDefault.url, '/v2/_catalog')).json()) as { repositories: string[] };
      expect(catalog.repositories).toEqual(['mine/base', 'mine/derived']);
      // Local names are never sent upstream.
      const before = (await upstream.settledLogs()).length;
      expect((await call(viaDefault.url, '/v2/mine/nothing/manifests/v1')).status).toBe(404);
      expect((await call(viaDefault.url, '/v2/mine/nothing/manifests/v1', { method: 'HEAD' })).status).toBe(404);
      expect(realRequests((await upstream.settledLogs()).slice(before))).toEqual([]);
    } finally {
      await viaDefault.close();
    }
  });
});
