/**
 * UpstreamRegistry against a real CNCF distribution registry: anonymous, and behind htpasswd
 * (Basic) auth. An image is pushed with plain HTTP requests, then read back through the upstream
 * client: manifest HEAD and GET by tag and by digest, the blobs, the tags.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import { mediaTypes } from '../src/oci/media-types.js';
import { UpstreamRegistry, type UpstreamBlob } from '../src/upstream/upstream-registry.js';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { sha256 } from './support/http.js';

const timeoutMs = 30_000;
const repo = 'wharf/upstream-test';
const accept = [mediaTypes.ociManifest, mediaTypes.ociIndex, mediaTypes.dockerManifest];

interface Pushed {
  manifest: Buffer;
  digest: Digest;
  blobs: Map<Digest, Buffer>;
}

/** POST to open an upload, PUT the bytes with ?digest= (what distribution 2.8 accepts for a monolithic push). */
async function pushBlob(base: string, headers: Record<string, string>, bytes: Buffer): Promise<Digest> {
  const digest = sha256(bytes) as Digest;
  const signal = AbortSignal.timeout(timeoutMs);
  const start = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers, signal });
  await start.arrayBuffer();
  const location = start.headers.get('location');
  if (start.status !== 202 || location === null) throw new Error(`upload start: ${start.status}`);
  const url = new URL(location, base);
  url.searchParams.set('digest', digest);
  const put = await fetch(url, {
    method: 'PUT',
    headers: { ...headers, 'Content-Type': 'application/octet-stream' },
    body: bytes,
    signal,
  });
  if (put.status !== 201) throw new Error(`upload PUT: ${put.status} ${await put.text()}`);
  return digest;
}

async function pushImage(base: string, headers: Record<string, string> = {}): Promise<Pushed> {
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
  );
  const layer = Buffer.from(`a layer pushed at ${Date.now()}`);
  const blobs = new Map<Digest, Buffer>();
  for (const bytes of [config, layer]) blobs.set(await pushBlob(base, headers, bytes), bytes);
  const [configDigest, layerDigest] = [...blobs.keys()];
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: mediaTypes.ociManifest,
      config: { mediaType: mediaTypes.ociConfig, digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
    }),
  );
  const put = await fetch(`${base}/v2/${repo}/manifests/v1`, {
    method: 'PUT',
    headers: { ...headers, 'Content-Type': mediaTypes.ociManifest },
    body: manifest,
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (put.status !== 201) throw new Error(`manifest PUT: ${put.status} ${await put.text()}`);
  return { manifest, digest: sha256(manifest) as Digest, blobs };
}

async function readAll(blob: UpstreamBlob | undefined): Promise<Buffer> {
  if (blob === undefined) throw new Error('expected a blob, got undefined (a 404)');
  const chunks: Uint8Array[] = [];
  for await (const chunk of blob.body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Everything the proxy will ask of an upstream, checked against what was pushed. */
async function expectReadBack(upstream: UpstreamRegistry, pushed: Pushed): Promise<void> {
  const info = { mediaType: mediaTypes.ociManifest, digest: pushed.digest, size: pushed.manifest.length };
  expect(await upstream.headManifest(repo, 'v1', accept)).toEqual(info);
  expect(await upstream.getManifest(repo, 'v1', accept)).toEqual({ ...info, bytes: pushed.manifest });
  expect(await upstream.getManifest(repo, pushed.digest, accept)).toEqual({ ...info, bytes: pushed.manifest });
  for (const [digest, bytes] of pushed.blobs) {
    expect(await upstream.headBlob(repo, digest)).toEqual({ size: bytes.length });
    expect(await readAll(await upstream.getBlob(repo, digest))).toEqual(bytes);
  }
  expect(await upstream.headBlob(repo, sha256('absent') as Digest)).toBeUndefined();
  expect(await upstream.listTags(repo)).toEqual(['v1']);
  expect(await upstream.getManifest(repo, 'missing', accept)).toBeUndefined();
  expect(await upstream.getBlob(repo, sha256('absent') as Digest)).toBeUndefined();
  expect(await upstream.listTags('wharf/never-pushed')).toBeUndefined();
}

describe('against distribution without auth', () => {
  let distribution: DistributionHandle;
  beforeAll(async () => {
    distribution = await startDistribution();
  });
  afterAll(async () => distribution.close());

  it('reads back a pushed image anonymously', async () => {
    const pushed = await pushImage(distribution.url);
    const upstream = new UpstreamRegistry({ host: distribution.host, url: distribution.url });
    try {
      await expectReadBack(upstream, pushed);
    } finally {
      await upstream.close();
    }
  });
});

describe('against distribution with htpasswd auth', () => {
  let distribution: DistributionHandle;
  beforeAll(async () => {
    distribution = await startDistribution({ htpasswd: { user: 'user', password: 'pass' } });
  });
  afterAll(async () => {
    await distribution?.close();
  });

  it('reads back a pushed image with Basic credentials, and is DENIED without them', async () => {
    const basic = { Authorization: `Basic ${Buffer.from('user:pass').toString('base64')}` };
    const pushed = await pushImage(distribution.url, basic);
    const upstream = new UpstreamRegistry({
      host: distribution.host,
      url: distribution.url,
      username: 'user',
      password: 'pass',
    });
    const anonymous = new UpstreamRegistry({ host: distribution.host, url: distribution.url });
    try {
      await expectReadBack(upstream, pushed);
      await expect(anonymous.getManifest(repo, 'v1', accept)).rejects.toMatchObject({ code: 'DENIED', status: 403 });
    } finally {
      await upstream.close();
      await anonymous.close();
    }
  });
});
