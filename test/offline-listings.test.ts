/**
 * Round 7b of the planted-bug audit (docs/mutation-testing.md): an offline wharf never dials out,
 * also for listings. mirror.test.ts checks manifests and blobs offline, and mirror-referrers.test.ts
 * checks an offline referrers listing only once its upstream is gone (so asking it could not be
 * seen). Here the upstream is up and holds more than the store: offline, the tag list is the
 * store's tags alone and the referrers listing the store's, and the upstream is asked nothing.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { realRequests } from './support/access-log.js';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { call } from './support/http.js';
import { makeImage, testSeed, type TestImage } from './support/make-image.js';
import { makeSignature, pushSignature } from './support/make-referrer.js';
import { pushTestImage } from './support/push-image.js';
import { startWharf } from './support/wharf.js';

const host = 'registry.example.test';
const timeout = 120_000;
let upstream: DistributionHandle;
let image: TestImage;
let dataDir: string;

beforeAll(async () => {
  upstream = await startDistribution();
  dataDir = await mkdtemp(join(tmpdir(), 'wharf-offline-listings-'));
  image = await makeImage({ seed: testSeed('offline listings'), layers: 1 });
  await pushTestImage(upstream.url, 'team/app', 'v1', image);
  // Online, the mirror fetches v1 only; the upstream also has v2 and a signature of the image.
  const online = await startWharf({ dataDir, upstreams: [{ host, url: upstream.url }] });
  try {
    const fetched = await call(online.url, `/v2/${host}/team/app/manifests/v1`, {
      headers: { Accept: image.root.mediaType },
    });
    expect(fetched.status).toBe(200);
    await fetched.arrayBuffer();
  } finally {
    await online.close();
  }
  await pushTestImage(upstream.url, 'team/app', 'v2', image);
  await pushSignature(upstream.url, 'team/app', image.root, makeSignature(image.root, 'offline listings'), {
    tagSchema: true,
  });
}, timeout);

afterAll(async () => {
  await upstream?.close();
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
});

describe('offline listings', () => {
  it(
    'lists the store’s tags and referrers only, and asks the live upstream nothing',
    async () => {
      const offline = await startWharf({ dataDir, offline: true, upstreams: [{ host, url: upstream.url }] });
      try {
        const before = realRequests(await upstream.settledLogs()).length;
        const tags = await call(offline.url, `/v2/${host}/team/app/tags/list`);
        expect(tags.status).toBe(200);
        expect(await tags.json()).toEqual({ name: `${host}/team/app`, tags: ['v1'] });
        const referrers = await call(offline.url, `/v2/${host}/team/app/referrers/${image.root.digest}`);
        expect(referrers.status).toBe(200);
        expect(((await referrers.json()) as { manifests: unknown[] }).manifests).toEqual([]);
        expect(realRequests(await upstream.settledLogs()).slice(before)).toEqual([]);
      } finally {
        await offline.close();
      }
    },
    timeout,
  );
});
