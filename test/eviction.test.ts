/**
 * @module test/eviction.test
 * store.maxSize with reference-aware LRU eviction (issue 9), against CNCF distribution as the
 * upstream and real clients: images share a base layer; after eviction the store is under its
 * limit, every image still listed pulls completely from the store alone (a wharf --offline on the
 * same data) with skopeo and containerd's ctr, pinned images (pushed, store.pin) are untouched,
 * and a fill that cannot fit even after eviction is a 507 that keeps nothing.
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireDigest } from '../src/oci/digest.js';
import { startContainerd } from './support/containerd.js';
import { writeHostsToml } from './support/containerd.js';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { call, sha256 } from './support/http.js';
import type { TestImage } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { run } from './support/run.js';
import { runWharf } from './support/spawn-wharf.js';
import { composeImage, imageBytes, makeLayer, type Layer } from './support/shared-layers.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const registryHost = 'registry.example.test';
const layerSize = 64 * 1024;
/** Reads keep content from eviction this long here; the test waits longer between pulls. */
const inUseMs = 300;
const clientTimeoutMs = 120_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function filesUnder(dir: string): Promise<{ count: number; bytes: number }> {
  let count = 0;
  let bytes = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    count++;
    bytes += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return { count, bytes };
}

function skopeoCopy(from: string, dir: string): Promise<unknown> {
  return run('skopeo', ['copy', '--src-tls-verify=false', from, `dir:${dir}`], { timeoutMs: clientTimeoutMs });
}

/** Every file skopeo wrote for the image has the bytes the image has. */
async function expectCopied(dir: string, image: TestImage): Promise<void> {
  for (const [digest, bytes] of image.blobs) {
    const got = await stat(join(dir, digest.slice('sha256:'.length)));
    expect(got.size, digest).toBe(bytes.length);
  }
}

describe.sequential('store.maxSize: LRU eviction, reference-aware', () => {
  let upstream: DistributionHandle;
  let work: string;
  const layers = new Map<string, Layer>();
  const apps = new Map<string, TestImage>();
  let pinned: TestImage;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-eviction-'));
    upstream = await startDistribution();
    for (const seed of ['L1', 'L2', 'X1', 'X2', 'X3', 'Y1', 'Y2', 'P1']) {
      layers.set(seed, await makeLayer(`eviction/${seed}`, layerSize));
    }
    const of = (...seeds: string[]): Layer[] => seeds.map((s) => layers.get(s) as Layer);
    apps.set('app1', composeImage('app1', of('L1', 'L2', 'X1')));
    apps.set('app2', composeImage('app2', of('L1', 'L2', 'X2')));
    apps.set('app3', composeImage('app3', of('L1', 'X3')));
    apps.set('app4', composeImage('app4', of('Y1', 'Y2')));
    pinned = composeImage('pinned', of('P1'));
    for (const [name, image] of apps) await pushTestImage(upstream.url, `library/${name}`, 'v1', image);
  }, 120_000);

  afterAll(async () => {
    await upstream?.close();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  }, 60_000);

  it(
    'evicts the least recently used images whole, keeps shared layers and pinned images, and everything still listed pulls from the store alone',
    async () => {
      const dataDir = join(work, 'data');
      const layer = layers.get('L1')?.bytes.length ?? 0;
      const app = (name: string): TestImage => apps.get(name) as TestImage;
      // Everything but app4, and room for one more layer and a half: app4's second layer passes it.
      const before =
        imageBytes(pinned) +
        imageBytes(app('app1')) +
        imageBytes(app('app2')) -
        2 * layer +
        imageBytes(app('app3')) -
        layer;
      const maxSizeBytes = before + Math.floor(1.5 * layer);
      const upstreams = [{ host: registryHost, url: upstream.url }];
      let wharf: WharfHandle = await startWharf({
        dataDir,
        upstreams,
        lifecycle: { maxSizeBytes, pin: [`${registryHost}/library/app3`], inUseMs },
      });
      try {
        await pushTestImage(wharf.url, 'team/pinned', 'v1', pinned);
        for (const name of ['app1', 'app2', 'app3', 'app4']) {
          await sleep(inUseMs * 2);
          await skopeoCopy(`docker://${wharf.host}/${registryHost}/library/${name}:v1`, join(work, `cold-${name}`));
          await expectCopied(join(work, `cold-${name}`), app(name));
        }
        const metrics = await (await call(wharf.url, '/metrics')).text();
        expect(metrics).toMatch(/^wharf_evictions_total 2$/m);
        expect(metrics).toMatch(new RegExp(`^wharf_store_limit_bytes ${maxSizeBytes}$`, 'm'));
      } finally {
        await wharf.close();
      }

      // The store is under its limit, the index and the files agree.
      expect((await filesUnder(join(dataDir, 'blobs'))).bytes).toBeLessThanOrEqual(maxSizeBytes);
      wharf = await startWharf({ dataDir, upstreams, offline: true });
      try {
        const listed = await wharf.server.store.listImages();
        // app1 (least recently used) went, then app2; app3 is pinned by pattern, team/pinned was pushed.
        expect(listed.map((image) => `${image.repository}:${image.tag ?? ''}`).sort()).toEqual([
          `${registryHost}/library/app3:v1`,
          `${registryHost}/library/app4:v1`,
          'team/pinned:v1',
        ]);
        const byName: Record<string, TestImage> = {
          [`${registryHost}/library/app3`]: app('app3'),
          [`${registryHost}/library/app4`]: app('app4'),
          'team/pinned': pinned,
        };
        // From the store alone (offline: nothing is fetched again), with skopeo...
        for (const image of listed) {
          const out = join(work, `offline-${image.repository.replaceAll('/', '_')}`);
          await skopeoCopy(`docker://${wharf.host}/${image.repository}:v1`, out);
          await expectCopied(out, byName[image.repository] as TestImage);
        }
        // ...and with containerd, which unpacks every layer.
        const containerd = await startContainerd();
        try {
          const hostsDir = join(work, 'hosts');
          await writeHostsToml(hostsDir, registryHost, wharf.url);
          for (const name of ['app3', 'app4']) {
            await containerd.pull(`${registryHost}/library/${name}:v1`, { hostsDir });
          }
          expect((await containerd.imageList()).map((i) => i.digest).sort()).toEqual(
            [app('app3').root.digest, app('app4').root.digest].sort(),
          );
        } finally {
          await containerd.close();
        }
        // The evicted ones are gone whole: no tag, no manifest; the base layer app3 needs stays.
        expect((await call(wharf.url, `/v2/${registryHost}/library/app1/manifests/v1`)).status).toBe(404);
        expect(
          (await call(wharf.url, `/v2/${registryHost}/library/app3/blobs/${layers.get('L1')?.descriptor.digest}`))
            .status,
        ).toBe(200);
      } finally {
        await wharf.close();
      }
    },
    clientTimeoutMs * 3,
  );

  it(
    'refuses a fill that cannot fit even after eviction with 507, and keeps nothing of it',
    async () => {
      const dataDir = join(work, 'full');
      const layer = layers.get('Y1')?.bytes.length ?? 0;
      // Room for the pinned image and half a layer more: app4's layers cannot fit, and nothing may go.
      // No prefetch: the manifest's GET would start fills of the config and layers, and the config's
      // temp file (it fits) could still be there when the refused layer is checked below.
      const wharf = await startWharf({
        dataDir,
        upstreams: [{ host: registryHost, url: upstream.url, prefetch: false }],
        lifecycle: { maxSizeBytes: imageBytes(pinned) + Math.floor(layer / 2), inUseMs },
      });
      try {
        await pushTestImage(wharf.url, 'team/pinned', 'v1', pinned);
        const app4 = apps.get('app4') as TestImage;
        const manifest = await call(wharf.url, `/v2/${registryHost}/library/app4/manifests/v1`, {
          headers: { accept: app4.root.mediaType },
        });
        expect(manifest.status).toBe(200);
        const y1 = layers.get('Y1')?.descriptor.digest ?? '';
        const refused = await call(wharf.url, `/v2/${registryHost}/library/app4/blobs/${y1}`);
        expect(refused.status).toBe(507);
        const body = (await refused.json()) as { errors: { code: string; message: string }[] };
        expect(body.errors[0]?.code).toBe('UNAVAILABLE');
        expect(body.errors[0]?.message).toMatch(/store\.maxSize reached: .* nothing was kept/);
        // Nothing of it: no blob file, no temp file, no row; the pinned image is whole.
        const hex = y1.slice('sha256:'.length);
        await expect(stat(join(dataDir, 'blobs', 'sha256', hex.slice(0, 2), hex))).rejects.toThrow();
        expect((await readdir(join(dataDir, 'tmp'))).filter((f) => f.endsWith('.part'))).toEqual([]);
        expect(wharf.server.store.contentSize(requireDigest(y1))).toBeUndefined();
        for (const [digest, bytes] of pinned.blobs) {
          const blob = await call(wharf.url, `/v2/team/pinned/blobs/${digest}`);
          expect(Buffer.from(await blob.arrayBuffer()).equals(bytes)).toBe(true);
        }
      } finally {
        await wharf.close();
      }
    },
    clientTimeoutMs,
  );

  it(
    'refuses a push past store.maxSize with 507 (monolithic or chunked), ending the session and keeping nothing',
    async () => {
      const dataDir = join(work, 'push');
      const wharf = await startWharf({ dataDir, lifecycle: { maxSizeBytes: 10_000, inUseMs } });
      try {
        const big = Buffer.alloc(20_000, 7);
        const digest = sha256(big);
        const monolithic = await call(wharf.url, `/v2/team/big/blobs/uploads/?digest=${digest}`, {
          method: 'POST',
          body: big,
        });
        expect(monolithic.status).toBe(507);
        expect(((await monolithic.json()) as { errors: { code: string }[] }).errors[0]?.code).toBe('UNAVAILABLE');
        const started = await call(wharf.url, '/v2/team/big/blobs/uploads/', { method: 'POST' });
        expect(started.status).toBe(202);
        const location = new URL(started.headers.get('location') ?? '', wharf.url);
        const patched = await call(wharf.url, location.pathname + location.search, {
          method: 'PATCH',
          body: big,
          headers: { 'content-type': 'application/octet-stream' },
        });
        expect(patched.status).toBe(202);
        const next = new URL(patched.headers.get('location') ?? '', wharf.url);
        next.searchParams.set('digest', digest);
        const closed = await call(wharf.url, next.pathname + next.search, { method: 'PUT' });
        expect(closed.status).toBe(507);
        expect((await call(wharf.url, location.pathname)).status).toBe(404);
        expect((await call(wharf.url, `/v2/team/big/blobs/${digest}`)).status).toBe(404);
        expect((await filesUnder(join(dataDir, 'blobs'))).count).toBe(0);
        expect(await readdir(join(dataDir, 'tmp', 'uploads'))).toEqual([]);
        // A blob that fits is taken.
        const small = Buffer.alloc(1_000, 1);
        const fits = await call(wharf.url, `/v2/team/big/blobs/uploads/?digest=${sha256(small)}`, {
          method: 'POST',
          body: small,
        });
        expect(fits.status).toBe(201);
      } finally {
        await wharf.close();
      }
    },
    clientTimeoutMs,
  );
  // Round 2 of the planted-bug audit (docs/mutation-testing.md): an eviction that took the most
  // recently used image first, one that ignored the in-use window, and one that took preloaded
  // (operator-placed) images all passed the test above, where two images go whichever order is used.
  it(
    'evicts exactly the least recently used image, nothing read within the in-use window, never a preloaded one',
    async () => {
      const dataDir = join(work, 'lru');
      const upstreams = [{ host: registryHost, url: upstream.url }];
      const image = async (name: string): Promise<TestImage> => {
        const built = composeImage(`lru/${name}`, [await makeLayer(`eviction/lru-${name}`, layerSize)]);
        await pushTestImage(upstream.url, `library/lru-${name}`, 'v1', built);
        return built;
      };
      const [a, b, kept] = [await image('a'), await image('b'), await image('kept')];
      const preloaded = await runWharf([
        'preload',
        `${registryHost}/library/lru-kept:v1`,
        '--upstream',
        `${registryHost}=${upstream.url}`,
        '--data',
        dataDir,
      ]);
      expect(preloaded.code, preloaded.stderr).toBe(0);
      const pull = async (url: string, name: string, pulled: TestImage): Promise<void> => {
        const manifest = await call(url, `/v2/${registryHost}/library/${name}/manifests/v1`, {
          headers: { accept: pulled.root.mediaType },
        });
        expect(manifest.status).toBe(200);
        await manifest.arrayBuffer();
        for (const digest of pulled.blobs.keys()) {
          const blob = await call(url, `/v2/${registryHost}/library/${name}/blobs/${digest}`);
          expect(blob.status).toBe(200);
          await blob.arrayBuffer();
        }
      };
      const listed = async (handle: WharfHandle): Promise<string[]> =>
        (await handle.server.store.listImages())
          .map((i) => i.repository.slice(`${registryHost}/library/`.length))
          .sort();

      // Every read is in use for a minute: an eviction takes nothing, however much it is asked for.
      let wharf = await startWharf({ dataDir, upstreams, lifecycle: { inUseMs: 60_000 } });
      try {
        await pull(wharf.url, 'lru-a', a);
        await sleep(20);
        await pull(wharf.url, 'lru-b', b);
        await sleep(20);
        // a is read again: b is now the least recently used.
        const again = await call(wharf.url, `/v2/${registryHost}/library/lru-a/manifests/${a.root.digest}`);
        expect(again.status).toBe(200);
        await again.arrayBuffer();
        expect(await wharf.server.store.lifecycle.evict(Number.MAX_SAFE_INTEGER)).toBe(0);
        expect(await listed(wharf)).toEqual(['lru-a', 'lru-b', 'lru-kept']);
      } finally {
        await wharf.close();
      }

      // The same store, nothing in use: one byte needed takes the least recently used image, whole.
      wharf = await startWharf({ dataDir, upstreams, lifecycle: { inUseMs: 0 } });
      try {
        await sleep(5);
        expect(await wharf.server.store.lifecycle.evict(1)).toBe(imageBytes(b));
        expect(await listed(wharf)).toEqual(['lru-a', 'lru-kept']);
        // Everything that may go: a; the preloaded image stays, whole.
        expect(await wharf.server.store.lifecycle.evict(Number.MAX_SAFE_INTEGER)).toBe(imageBytes(a));
        expect(await listed(wharf)).toEqual(['lru-kept']);
        expect(wharf.server.store.lifecycle.stats.evictions).toBe(2);
        await pull(wharf.url, 'lru-kept', kept);
      } finally {
        await wharf.close();
      }
    },
    clientTimeoutMs,
  );
});
