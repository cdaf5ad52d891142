/**
 * Manifests are kept byte for byte (README promise; issue 13, survivor 1). Every fixture elsewhere
 * is compact `JSON.stringify` output, which a parse-and-reserialise gives back unchanged, so a
 * wharf that rewrote manifests passed every test. These images are written the way no serialiser
 * writes them (tabs, reversed keys, escaped unicode, a trailing newline) and go through each path
 * that stores or serves manifests: mirror (upstream → store → client, then from the store alone,
 * then after a restart with no in-memory cache) and push (client → store → client, same again).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { call } from './support/http.js';
import { makeIrregularImage, manifestsOf, testSeed, type ManifestBlob, type TestImage } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { startWharf } from './support/wharf.js';

const upstreamHost = 'registry.example.test';
const acceptAll = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

let upstream: DistributionHandle;
let image: TestImage;
let dataDir: string;

beforeAll(async () => {
  image = await makeIrregularImage(testSeed('manifest-bytes'));
  // makeIrregularImage checks that no JSON round trip gives the manifests back; and these forms are in them.
  for (const manifest of manifestsOf(image)) {
    const text = manifest.bytes.toString('utf8');
    expect(text).toMatch(/\\u00e9/);
    expect(text.endsWith('\n')).toBe(true);
  }
  upstream = await startDistribution();
  // pushTestImage sends the manifest bytes as they are; distribution stores and serves them raw.
  await pushTestImage(upstream.url, 'team/odd', 'v1', image);
  const direct = await call(upstream.url, `/v2/team/odd/manifests/v1`, { headers: { Accept: acceptAll } });
  expect(Buffer.from(await direct.arrayBuffer()).equals(image.root.bytes)).toBe(true);
  dataDir = await mkdtemp(join(tmpdir(), 'wharf-manifest-bytes-'));
}, 120_000);

afterAll(async () => {
  await upstream?.close();
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
});

/** GET and HEAD of one manifest answer exactly `expected`: body, length, digest and type. */
async function expectExactManifest(base: string, name: string, reference: string, expected: ManifestBlob) {
  const got = await call(base, `/v2/${name}/manifests/${reference}`, { headers: { Accept: acceptAll } });
  expect(got.status).toBe(200);
  const bytes = Buffer.from(await got.arrayBuffer());
  expect(bytes.toString('utf8'), `GET ${name}:${reference}`).toBe(expected.bytes.toString('utf8'));
  expect(got.headers.get('docker-content-digest')).toBe(expected.digest);
  expect(got.headers.get('content-length')).toBe(String(expected.size));
  expect(got.headers.get('content-type')).toBe(expected.mediaType);
  const head = await call(base, `/v2/${name}/manifests/${reference}`, {
    method: 'HEAD',
    headers: { Accept: acceptAll },
  });
  expect(head.status).toBe(200);
  expect(head.headers.get('docker-content-digest')).toBe(expected.digest);
  expect(head.headers.get('content-length')).toBe(String(expected.size));
}

/** The root by tag and by digest, and every platform manifest by digest. */
async function expectImageExact(base: string, name: string, tag: string): Promise<void> {
  await expectExactManifest(base, name, tag, image.root);
  for (const manifest of manifestsOf(image)) await expectExactManifest(base, name, manifest.digest, manifest);
}

describe('manifests byte for byte', () => {
  it('mirror: serves an upstream manifest as the upstream wrote it, filled, cached and after a restart', async () => {
    const name = `${upstreamHost}/team/odd`;
    const online = await startWharf({
      dataDir,
      keepData: true,
      upstreams: [{ host: upstreamHost, url: upstream.url }],
    });
    try {
      await expectImageExact(online.url, name, 'v1'); // fills from the upstream
      await expectImageExact(online.url, name, 'v1'); // served from the store (and its memory cache)
    } finally {
      await online.close();
    }
    // A new process has no manifest cache: the bytes come from the blob files alone.
    const offline = await startWharf({
      dataDir,
      keepData: true,
      upstreams: [{ host: upstreamHost, url: upstream.url }],
      offline: true,
    });
    try {
      await expectImageExact(offline.url, name, 'v1');
    } finally {
      await offline.close();
    }
  });

  it('push: a pushed manifest is stored and served as the client sent it, before and after a restart', async () => {
    const pushDir = await mkdtemp(join(tmpdir(), 'wharf-manifest-bytes-push-'));
    try {
      const first = await startWharf({ dataDir: pushDir, keepData: true });
      try {
        await pushTestImage(first.url, 'mine/odd', 'v1', image);
        await expectImageExact(first.url, 'mine/odd', 'v1');
      } finally {
        await first.close();
      }
      const second = await startWharf({ dataDir: pushDir, keepData: true });
      try {
        await expectImageExact(second.url, 'mine/odd', 'v1');
      } finally {
        await second.close();
      }
    } finally {
      await rm(pushDir, { recursive: true, force: true });
    }
  });
});
