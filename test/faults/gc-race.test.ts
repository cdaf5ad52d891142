/**
 * gc racing traffic (issue 9): gc runs back to back with no grace period while clients push,
 * pull and fill through the mirror, and while images are deleted so that gc has real work.
 * Each round pushes and fills images that reuse the very layer gc is collecting in that round
 * (the deleted image's own layer): nothing a push, a pull or a fill uses may disappear
 * (docs/decisions/0008-gc-and-eviction.md: leases, the in-use window, one synchronous step).
 * At the end every kept image pulls whole, what was deleted is gone, and `wharf verify` is clean.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireDigest } from '../../src/oci/digest.js';
import { startDistribution, type DistributionHandle } from '../support/distribution.js';
import type { TestImage } from '../support/make-image.js';
import { pushTestImage } from '../support/push-image.js';
import { composeImage, makeLayer, type Layer } from '../support/shared-layers.js';
import { startWharf, type WharfHandle } from '../support/wharf.js';
import { sha256 } from '../support/http.js';
import { expectVerifyClean, fetchBytes } from './fault-support.js';

const rounds = 30;
const registryHost = 'registry.example.test';
/** The in-use window here: pushes in the race finish their manifest well within it. */
const inUseMs = 2_000;

/** A client's pull: the manifest by tag (with Accept, which a mirror passes upstream), then every blob by digest. */
async function expectPulls(base: string, name: string, tag: string, image: TestImage): Promise<void> {
  const manifest = await fetchBytes(`${base}/v2/${name}/manifests/${tag}`, {
    headers: { accept: image.root.mediaType },
  });
  expect(manifest.status, `GET ${name}:${tag}`).toBe(200);
  expect(manifest.body.equals(image.root.bytes), `${name}:${tag} bytes`).toBe(true);
  for (const [digest, bytes] of image.blobs) {
    const blob = await fetchBytes(`${base}/v2/${name}/blobs/${digest}`);
    expect(blob.status, `GET ${name}@${digest}`).toBe(200);
    expect(sha256(blob.body)).toBe(sha256(bytes));
  }
}

describe('gc racing pushes, pulls and fills', () => {
  let upstream: DistributionHandle;
  let work: string;
  let wharf: WharfHandle;
  let base: Layer;
  const own: Layer[] = [];
  const old: TestImage[] = [];
  const mirrored: TestImage[] = [];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-gc-race-'));
    upstream = await startDistribution();
    base = await makeLayer('gc-race/base', 16 * 1024);
    for (let i = 0; i < rounds; i++) {
      own.push(await makeLayer(`gc-race/own-${i}`, 12 * 1024));
      old.push(composeImage(`gc-race/old-${i}`, [base, own[i] as Layer]));
      const fresh = await makeLayer(`gc-race/mirror-${i}`, 12 * 1024);
      const image = composeImage(`gc-race/mirrored-${i}`, [base, own[i] as Layer, fresh]);
      mirrored.push(image);
      await pushTestImage(upstream.url, `library/m${i}`, 'v1', image);
    }
    wharf = await startWharf({
      dataDir: join(work, 'data'),
      upstreams: [{ host: registryHost, url: upstream.url }],
      lifecycle: { inUseMs },
    });
    for (let i = 0; i < rounds; i++) await pushTestImage(wharf.url, `team/old-${i}`, 'v1', old[i] as TestImage);
    // Out of the in-use window: from now on, only what the race itself touches is protected.
    await new Promise((resolve) => setTimeout(resolve, inUseMs + 200));
  }, 180_000);

  afterAll(async () => {
    await wharf?.close();
    await upstream?.close();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  }, 60_000);

  it('nothing in use disappears; what was deleted is collected', async () => {
    let stop = false;
    let gcRuns = 0;
    let freed = 0;
    const gcLoop = (async () => {
      while (!stop) {
        const report = await wharf.server.runGc({ graceMs: 0 });
        gcRuns++;
        freed += report.bytes;
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    const pushed: TestImage[] = [];
    try {
      for (let i = 0; i < rounds; i++) {
        const oldImage = old[i] as TestImage;
        // The same layer the deleted image leaves for gc, pushed again under a new name...
        const again = composeImage(`gc-race/again-${i}`, [base, own[i] as Layer]);
        pushed.push(again);
        await Promise.all([
          (async () => {
            const deleted = await fetchBytes(`${wharf.url}/v2/team/old-${i}/manifests/${oldImage.root.digest}`, {
              method: 'DELETE',
            });
            expect(deleted.status).toBe(202);
          })(),
          (async () => {
            await pushTestImage(wharf.url, `team/again-${i}`, 'v1', again);
            await expectPulls(wharf.url, `team/again-${i}`, 'v1', again);
          })(),
          // ...and filled from the upstream for a mirrored name (held for others: linked, or filled).
          expectPulls(wharf.url, `${registryHost}/library/m${i}`, 'v1', mirrored[i] as TestImage),
          // A warm pull of an image that stays.
          i > 0 ? expectPulls(wharf.url, `team/again-${i - 1}`, 'v1', pushed[i - 1] as TestImage) : undefined,
        ]);
      }
    } finally {
      stop = true;
      await gcLoop;
    }
    // gc ran during the race (how often depends on the machine's load: runs are one at a time).
    expect(gcRuns).toBeGreaterThanOrEqual(2);

    // Everything kept pulls whole, after the race too.
    for (let i = 0; i < rounds; i++) {
      await expectPulls(wharf.url, `team/again-${i}`, 'v1', pushed[i] as TestImage);
      await expectPulls(wharf.url, `${registryHost}/library/m${i}`, 'v1', mirrored[i] as TestImage);
    }
    // Once out of the in-use window, the deleted images' manifests and configs go; their layers are
    // still named by the images pushed again, so they stay.
    await new Promise((resolve) => setTimeout(resolve, inUseMs + 200));
    const last = await wharf.server.runGc({ graceMs: 0 });
    freed += last.bytes;
    for (let i = 0; i < rounds; i++) {
      const oldImage = old[i] as TestImage;
      expect((await fetchBytes(`${wharf.url}/v2/team/old-${i}/manifests/${oldImage.root.digest}`)).status).toBe(404);
      expect(wharf.server.store.contentSize(requireDigest(oldImage.root.digest)), `old-${i}`).toBeUndefined();
    }
    expect(freed).toBeGreaterThan(0);
    await wharf.close();
    await expectVerifyClean(join(work, 'data'));
  });
});
