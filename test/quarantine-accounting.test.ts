/**
 * @module test/quarantine-accounting.test
 * Quarantine is one more deletion of the lifecycle (store/lifecycle.ts): the bytes it drops come
 * off the stored total that store.maxSize is checked against and wharf_store_bytes shows.
 * Regression: a verified read in serve dropped the rows straight in SQL, so the in-memory total
 * (counted once at open) kept the quarantined bytes: the gauge drifted from the index, and
 * eviction ran (or refused with 507) early. Also: after `verify --repair`, a serve started on the
 * data counts what the index holds, and eviction still works there.
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import { blobPath, flipByte } from './support/blob-file.js';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { call } from './support/http.js';
import type { TestImage } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { composeImage, makeLayer } from './support/shared-layers.js';
import { runWharf } from './support/spawn-wharf.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const registryHost = 'registry.example.test';
const layerSize = 40_000;
const inUseMs = 200;

/** Bytes of the blob rows in the index (read-only, beside the server). */
function indexBytes(dataDir: string): number {
  const db = new Database(join(dataDir, 'index.db'), { readonly: true });
  try {
    return (db.prepare('SELECT coalesce(sum(size), 0) AS n FROM blobs').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

async function filesBytes(dir: string): Promise<number> {
  let bytes = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) bytes += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return bytes;
}

async function storeBytesMetric(wharf: WharfHandle): Promise<number> {
  const text = await (await call(wharf.url, '/metrics')).text();
  const match = /^wharf_store_bytes (\d+)$/m.exec(text);
  if (match === null) throw new Error('no wharf_store_bytes');
  return Number(match[1]);
}

async function pull(wharf: WharfHandle, name: string, image: TestImage): Promise<void> {
  const path = `/v2/${registryHost}/${name}`;
  const manifest = await call(wharf.url, `${path}/manifests/v1`, { headers: { accept: image.root.mediaType } });
  expect(manifest.status).toBe(200);
  await manifest.arrayBuffer();
  for (const digest of image.blobs.keys()) {
    const blob = await call(wharf.url, `${path}/blobs/${digest}`);
    expect(blob.status, digest).toBe(200);
    await blob.arrayBuffer();
  }
  // A fill's response ends before its row is written.
  const deadline = Date.now() + 10_000;
  while ([...image.blobs.keys()].some((d) => wharf.server.store.contentSize(d as Digest) === undefined)) {
    if (Date.now() > deadline) throw new Error(`deadline: fills of ${name} never recorded`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe.sequential('quarantine keeps the stored-bytes count', () => {
  let upstream: DistributionHandle;
  let work: string;
  const images = new Map<string, TestImage>();
  const imageOf = (name: string): TestImage => images.get(name) as TestImage;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-quarantine-'));
    upstream = await startDistribution();
    for (const name of ['one', 'two', 'three']) {
      const layers = await Promise.all([1, 2].map((n) => makeLayer(`quarantine/${name}/${n}`, layerSize)));
      images.set(name, composeImage(name, layers));
      await pushTestImage(upstream.url, `library/${name}`, 'v1', imageOf(name));
    }
    images.set('pushed', composeImage('pushed', [await makeLayer('quarantine/pushed', layerSize)]));
  }, 120_000);

  afterAll(async () => {
    await upstream?.close();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  }, 60_000);

  it('after verified reads in serve quarantine blobs, wharf_store_bytes is the bytes the index holds', async () => {
    const wharf = await startWharf({ upstreams: [{ host: registryHost, url: upstream.url }] });
    try {
      await pull(wharf, 'library/one', imageOf('one'));
      const pushed = imageOf('pushed');
      await pushTestImage(wharf.url, 'team/app', 'v1', pushed);
      const [pushedLayer] = pushed.images[0]?.layers ?? [];
      const [mirroredLayer] = imageOf('one').images[0]?.layers ?? [];
      if (pushedLayer === undefined || mirroredLayer === undefined) throw new Error('layers expected');
      await flipByte(blobPath(wharf.dataDir, pushedLayer.digest), 100);
      await flipByte(blobPath(wharf.dataDir, mirroredLayer.digest), 100);

      // The pushed one is gone (BLOB_UNKNOWN); the mirrored one is fetched again at once.
      expect((await call(wharf.url, `/v2/team/app/blobs/${pushedLayer.digest}`)).status).toBe(404);
      await pull(wharf, 'library/one', imageOf('one'));
      expect(await readdir(join(wharf.dataDir, 'quarantine'))).toHaveLength(2);

      const held = indexBytes(wharf.dataDir);
      // What store.maxSize is checked against, and what the gauge shows.
      expect(wharf.server.store.lifecycle.space.used).toBe(held);
      expect(await storeBytesMetric(wharf)).toBe(held);
      expect(await filesBytes(join(wharf.dataDir, 'blobs'))).toBe(held);
    } finally {
      await wharf.close();
      await rm(wharf.dataDir, { recursive: true, force: true });
    }
  }, 60_000);

  it('an export (read-only, beside serve) refuses a corrupt blob and leaves the file and rows to serve', async () => {
    const wharf = await startWharf();
    try {
      const pushed = imageOf('pushed');
      await pushTestImage(wharf.url, 'team/app', 'v1', pushed);
      const config = pushed.images[0]?.config.digest as string;
      await flipByte(blobPath(wharf.dataDir, config), 3);
      const held = indexBytes(wharf.dataDir);
      const exported = await runWharf(
        ['export', 'team/app:v1', '-o', join(work, 'app.tar'), '--data', wharf.dataDir, '--quiet'],
        { timeoutMs: 60_000 },
      );
      expect(exported.code).not.toBe(0);
      expect(exported.stderr).toContain(`blob ${config} failed verification; left in place`);
      // Nothing moved by the process that does not hold the data directory: no row without its file.
      await stat(blobPath(wharf.dataDir, config));
      expect(indexBytes(wharf.dataDir)).toBe(held);
      // serve, which holds it, quarantines on its own read.
      expect((await call(wharf.url, `/v2/team/app/blobs/${config}`)).status).toBe(404);
      expect(await readdir(join(wharf.dataDir, 'quarantine'))).toHaveLength(1);
    } finally {
      await wharf.close();
      await rm(wharf.dataDir, { recursive: true, force: true });
    }
  }, 60_000);

  it('after verify --repair, a serve on the data counts the right size and still evicts', async () => {
    const dataDir = join(work, 'repaired');
    const upstreams = [{ host: registryHost, url: upstream.url }];
    let wharf = await startWharf({ dataDir, upstreams });
    try {
      await pull(wharf, 'library/one', imageOf('one'));
      await pull(wharf, 'library/two', imageOf('two'));
    } finally {
      await wharf.close();
    }
    const [flipped, removed] = imageOf('one').images[0]?.layers ?? [];
    if (flipped === undefined || removed === undefined) throw new Error('layers expected');
    await flipByte(blobPath(dataDir, flipped.digest), 10);
    await rm(blobPath(dataDir, removed.digest));
    const repair = await runWharf(['verify', '--repair', '--data', dataDir], {
      env: { WHARF_UPSTREAMS: `${registryHost}=${upstream.url}` },
      timeoutMs: 60_000,
    });
    expect(repair.code, repair.stderr).toBe(0);

    const held = indexBytes(dataDir);
    // Room for what is held and one more layer: the third image's pull must evict.
    const maxSizeBytes = held + layerSize;
    wharf = await startWharf({ dataDir, upstreams, lifecycle: { maxSizeBytes, inUseMs } });
    try {
      expect(await storeBytesMetric(wharf)).toBe(held);
      await new Promise((resolve) => setTimeout(resolve, inUseMs * 2));
      await pull(wharf, 'library/three', imageOf('three'));
      const metrics = await (await call(wharf.url, '/metrics')).text();
      expect(metrics).toMatch(/^wharf_evictions_total [1-9]\d*$/m);
      const now = indexBytes(dataDir);
      expect(await storeBytesMetric(wharf)).toBe(now);
      expect(now).toBeLessThanOrEqual(maxSizeBytes);
      expect(await filesBytes(join(dataDir, 'blobs'))).toBe(now);
    } finally {
      await wharf.close();
    }
  }, 120_000);
});
