/**
 * @module test/pinned-bytes.test
 * One definition of "pinned" (store/pinned-content.ts): `wharf du`'s pinned bytes are exactly the
 * bytes eviction never takes, on a store holding pushed, preloaded, fetched and store.pin content
 * that shares layers across those kinds, plus a pushed blob no manifest names (unreferenced).
 * Regression: du counted pinned by tag sources and local names while eviction obeyed
 * manifests.source and store.pin, so a store.pin repository showed as "cached" in du.
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { call, pushBlob } from './support/http.js';
import type { TestImage } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { composeImage, imageBytes, makeLayer } from './support/shared-layers.js';
import { runWharf } from './support/spawn-wharf.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const registryHost = 'registry.example.test';
const pinPattern = `${registryHost}/library/kept`;
const inUseMs = 200;

interface Usage {
  blobs: number;
  bytes: number;
}

async function filesBytes(dir: string): Promise<number> {
  let bytes = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) bytes += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return bytes;
}

describe.sequential('du pinned bytes = what eviction never takes', () => {
  let upstream: DistributionHandle;
  let work: string;
  const images = new Map<string, TestImage>();

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-pinned-'));
    upstream = await startDistribution();
    const [shared, fetchedOnly, pushedShare, kept, preloadedOnly] = await Promise.all(
      ['shared', 'fetched', 'pushed-share', 'kept', 'preloaded'].map((seed) => makeLayer(`pinned/${seed}`, 20_000)),
    );
    if (!shared || !fetchedOnly || !pushedShare || !kept || !preloadedOnly) throw new Error('layers');
    // fetched shares a layer with the preloaded image and another with the pushed one.
    images.set('fetched', composeImage('fetched', [shared, fetchedOnly, pushedShare]));
    images.set('kept', composeImage('kept', [kept]));
    images.set('pre', composeImage('pre', [shared, preloadedOnly]));
    images.set('pushed', composeImage('pushed', [pushedShare]));
    for (const name of ['fetched', 'kept', 'pre']) {
      await pushTestImage(upstream.url, `library/${name}`, 'v1', images.get(name) as TestImage);
    }
  }, 120_000);

  afterAll(async () => {
    await upstream?.close();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  }, 60_000);

  it('pinned + unreferenced bytes stay after evicting all that may go; cached bytes are what it freed', async () => {
    const dataDir = join(work, 'data');
    const env = { WHARF_UPSTREAMS: `${registryHost}=${upstream.url}`, WHARF_STORE_PIN: pinPattern };
    const preloaded = await runWharf(['preload', `${registryHost}/library/pre:v1`, '--data', dataDir], {
      env,
      timeoutMs: 60_000,
    });
    expect(preloaded.code, preloaded.stderr).toBe(0);

    const wharf: WharfHandle = await startWharf({
      dataDir,
      upstreams: [{ host: registryHost, url: upstream.url }],
      lifecycle: { pin: [pinPattern], inUseMs },
    });
    try {
      for (const name of ['fetched', 'kept']) {
        const image = images.get(name) as TestImage;
        const path = `/v2/${registryHost}/library/${name}`;
        const manifest = await call(wharf.url, `${path}/manifests/v1`, { headers: { accept: image.root.mediaType } });
        expect(manifest.status).toBe(200);
        await manifest.arrayBuffer();
        for (const digest of image.blobs.keys()) {
          const blob = await call(wharf.url, `${path}/blobs/${digest}`);
          expect(blob.status).toBe(200);
          await blob.arrayBuffer();
        }
      }
      await pushTestImage(wharf.url, 'team/app', 'v1', images.get('pushed') as TestImage);
      await pushBlob(wharf.url, 'team/loose', 'a blob no manifest names');
      // A fill's response ends before its row is written.
      const deadline = Date.now() + 10_000;
      const allBlobs = [...images.values()].flatMap((image) => [...image.blobs.keys()]) as Digest[];
      while (allBlobs.some((d) => wharf.server.store.contentSize(d) === undefined)) {
        if (Date.now() > deadline) throw new Error('deadline: fills never recorded');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }

      const du = await runWharf(['du', '--json', '--data', dataDir], { env });
      expect(du.stderr).toBe('');
      const report = JSON.parse(du.stdout) as Record<'total' | 'pinned' | 'cached' | 'unreferenced', Usage>;
      expect(report.unreferenced.blobs).toBe(1);
      expect(report.cached.bytes).toBeGreaterThan(0);
      // The store.pin image, though fetched, is pinned.
      expect(report.pinned.bytes).toBeGreaterThanOrEqual(
        imageBytes(images.get('kept') as TestImage) + imageBytes(images.get('pushed') as TestImage),
      );
      expect(report.pinned.bytes + report.cached.bytes + report.unreferenced.bytes).toBe(report.total.bytes);

      await new Promise((resolve) => setTimeout(resolve, inUseMs * 2));
      const freed = await wharf.server.store.lifecycle.evict(Number.MAX_SAFE_INTEGER);
      expect(freed).toBe(report.cached.bytes);
      expect(await filesBytes(join(dataDir, 'blobs'))).toBe(report.pinned.bytes + report.unreferenced.bytes);

      const after = await runWharf(['du', '--json', '--data', dataDir], { env });
      const again = JSON.parse(after.stdout) as Record<'pinned' | 'cached' | 'unreferenced', Usage>;
      expect(again.cached).toEqual({ blobs: 0, bytes: 0 });
      expect(again.pinned).toEqual(report.pinned);
      expect(again.unreferenced).toEqual(report.unreferenced);
    } finally {
      await wharf.close();
    }
  }, 180_000);
});
