/**
 * `wharf du` and `wharf stats` (issue 9) on a store that holds a mirrored image
 * (pulled through wharf from CNCF distribution) and a pushed one: bytes in all,
 * pinned (pushed) against cached (fetched), by upstream and by repository, and
 * the hit ratio that `stats` asks of the running server's /metrics.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { makeImage, testSeed, type TestImage } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { runWharf } from './support/spawn-wharf.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const registryHost = 'registry.example.test';

let upstream: DistributionHandle;
let wharf: WharfHandle;
let dataDir: string;
let mirrored: TestImage;
let pushed: TestImage;

/** Bytes of an image as the store keeps them: its blobs and its manifest. */
function bytesOf(image: TestImage): number {
  return [...image.blobs.values()].reduce((sum, b) => sum + b.length, 0) + image.root.size;
}

async function get(path: string, accept?: string): Promise<void> {
  const response = await request(`${wharf.url}${path}`, {
    headers: accept === undefined ? {} : { accept },
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
  });
  await response.body.arrayBuffer();
  if (response.statusCode !== 200) throw new Error(`GET ${path}: ${response.statusCode}`);
}

/** A pull by hand: the manifest by tag, then every blob. */
async function pull(): Promise<void> {
  await get(`/v2/${registryHost}/stats/app/manifests/v1`, mirrored.root.mediaType);
  for (const digest of mirrored.blobs.keys()) await get(`/v2/${registryHost}/stats/app/blobs/${digest}`);
}

/** A fill's response ends before its blob is recorded: wait until the store has every one. */
async function committed(): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ([...mirrored.blobs.keys()].some((d) => wharf.server.store.contentSize(d as Digest) === undefined)) {
    if (Date.now() > deadline) throw new Error('deadline: fills never recorded');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function stats(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runWharf([...args, '--data', dataDir], { env: { WHARF_UPSTREAMS: `${registryHost}=${upstream.url}` } });
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'wharf-stats-'));
  upstream = await startDistribution();
  mirrored = await makeImage({ seed: testSeed('stats mirrored'), layers: 2 });
  pushed = await makeImage({ seed: testSeed('stats pushed'), layers: 1, layerSize: 1000 });
  await pushTestImage(upstream.url, 'stats/app', 'v1', mirrored);
  // No prefetch: a blob the manifest's GET prefetched would count as a hit or a miss by timing.
  wharf = await startWharf({ dataDir, upstreams: [{ host: registryHost, url: upstream.url, prefetch: false }] });
  await pull();
  await committed();
  await pull();
  await pushTestImage(wharf.url, 'team/app', 'v1', pushed);
}, 120_000);

afterAll(async () => {
  await wharf?.close();
  await upstream?.close();
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
}, 60_000);

describe.sequential('wharf du and wharf stats', () => {
  it('stats --json: pinned and cached bytes, by upstream and repository, and the server hit ratio', async () => {
    const out = await stats('stats', '--json', '--url', wharf.url);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    const report = JSON.parse(out.stdout) as Record<string, unknown>;
    const mirroredBytes = bytesOf(mirrored);
    const pushedBytes = bytesOf(pushed);
    const blobs = (image: TestImage): number => image.blobs.size + 1;
    expect(report).toMatchObject({
      total: { blobs: blobs(mirrored) + blobs(pushed), bytes: mirroredBytes + pushedBytes },
      cached: { blobs: blobs(mirrored), bytes: mirroredBytes },
      pinned: { blobs: blobs(pushed), bytes: pushedBytes },
      unreferenced: { blobs: 0, bytes: 0 },
      upstreams: [
        { upstream: registryHost, repositories: 1, blobs: blobs(mirrored), bytes: mirroredBytes },
        { upstream: 'local', repositories: 1, blobs: blobs(pushed), bytes: pushedBytes },
      ],
      repositories: [
        {
          name: `${registryHost}/stats/app`,
          upstream: registryHost,
          bytes: mirroredBytes,
          manifests: 1,
          tags: 1,
          tagSources: { fetched: 1 },
        },
        { name: 'team/app', bytes: pushedBytes, manifests: 1, tags: 1, tagSources: { pushed: 1 } },
      ],
      // Two pulls of a manifest and its blobs: the first filled from the upstream, the second hit.
      hits: { url: wharf.url, hits: blobs(mirrored), misses: blobs(mirrored), ratio: 0.5 },
    });
    const stored = report.stored as { oldest: number; newest: number };
    expect(stored.oldest).toBeLessThanOrEqual(stored.newest);
    expect(stored.newest).toBeLessThanOrEqual(Date.now());
  }, 60_000);

  it('du: the same bytes for people, without asking the server', async () => {
    const out = await stats('du');
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/^pinned: 3 blobs, /m);
    expect(out.stdout).toMatch(/^cached: 4 blobs, /m);
    expect(out.stdout).toMatch(new RegExp(`^${registryHost.replace(/\./g, '\\.')}\\s+1\\s+4\\s`, 'm'));
    expect(out.stdout).toMatch(/^team\/app\s+local\s+3\s+.*1 pushed$/m);
    expect(out.stdout).not.toContain('hits:');
  }, 60_000);

  it('stats without a running server says where hit counters live, and still exits 0', async () => {
    await wharf.close();
    const out = await stats('stats');
    expect(out.code).toBe(0);
    expect(out.stdout).toContain(`hits: unknown: no wharf serve holds ${dataDir}`);
  }, 60_000);
});
