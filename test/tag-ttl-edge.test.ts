/**
 * A fetched tag's TTL at its edge, on a ProxySource built by hand with its own clock (round 6 of the
 * planted-bug audit, docs/mutation-testing.md): a tag confirmed `tagTtlMs` ago is stale and asks the
 * upstream; one millisecond earlier it is served without a request. A `<=` for `<` passed every
 * test, since a wharf in process runs on the real clock.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseTag, requireRepoName, type Tag } from '../src/oci/reference.js';
import { ProxySource } from '../src/proxy/proxy-source.js';
import { Router } from '../src/proxy/router.js';
import { LocalStore } from '../src/store/local-store.js';
import { UpstreamRegistry } from '../src/upstream/upstream-registry.js';
import { sendManifest, sha256, startScriptedRegistry } from './support/scripted-registry.js';

const ociManifest = 'application/vnd.oci.image.manifest.v1+json';
const tagTtlMs = 60_000;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('tag TTL', () => {
  it('serves a tag confirmed tagTtlMs - 1 ago from the store, and revalidates one confirmed tagTtlMs ago', async () => {
    const bytes = JSON.stringify({
      schemaVersion: 2,
      mediaType: ociManifest,
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256('{}'), size: 2 },
      layers: [],
    });
    const server = await startScriptedRegistry({
      '/v2/team/app/manifests/v1': (_req, res) => sendManifest(res, bytes, ociManifest),
    });
    cleanups.push(() => server.close());
    const dir = await mkdtemp(join(tmpdir(), 'wharf-tag-ttl-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const store = await LocalStore.open(dir);
    cleanups.push(async () => store.close());
    const client = new UpstreamRegistry({ host: 'ttl.example.test', url: server.url });
    cleanups.push(() => client.close());
    const router = new Router([
      { host: 'ttl.example.test', client, tagTtlMs, notFoundTtlMs: 0, private: false, prefetch: false },
    ]);
    let now = Date.now();
    const proxy = new ProxySource(store, router, { logger: pino({ level: 'silent' }), now: () => now });
    cleanups.push(() => proxy.settle());
    const name = requireRepoName('ttl.example.test/team/app');
    const v1 = parseTag('v1') as Tag;

    expect((await proxy.getManifest(name, v1, { accept: [ociManifest] }))?.digest).toBe(sha256(bytes));
    const requests = (): number => server.requestsTo('/v2/team/app/manifests/v1').length;
    expect(requests()).toBe(1);
    const confirmedAt = store.tagState(name, v1)?.confirmed_at;
    if (confirmedAt === undefined || confirmedAt === null) throw new Error('tag not confirmed');

    now = confirmedAt + tagTtlMs - 1;
    await proxy.getManifest(name, v1, { accept: [ociManifest] });
    expect(requests()).toBe(1);
    now = confirmedAt + tagTtlMs;
    await proxy.getManifest(name, v1, { accept: [ociManifest] });
    await proxy.settle();
    expect(requests()).toBe(2);
  });
});
