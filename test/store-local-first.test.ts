/**
 * Pushed (local) content first, in the store itself (issue 13, round 4 of the planted-bug audit).
 * The mirror never asks the upstream about a tag an admin pushed or imported under a mirrored name,
 * so a fetched write over it comes only from a race (a fill that started before the push). The store
 * is the last line: a fetched tag never moves a pushed one, and a manifest fetched again after a push
 * stays pushed, so eviction keeps it. A real LocalStore on a temp directory.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requireDigest, type Digest } from '../src/oci/digest.js';
import { requireRepoName, type Tag } from '../src/oci/reference.js';
import { LocalStore } from '../src/store/local-store.js';

const name = requireRepoName('registry.example.test/team/app');
const tag = 'v1' as Tag;
const manifestType = 'application/vnd.oci.image.manifest.v1+json';

let work: string;
let store: LocalStore;

beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-local-first-'));
  // No in-use window: a read does not keep content from eviction here.
  store = await LocalStore.open(work, { inUseMs: 0 });
});
afterEach(async () => {
  store.close();
  await rm(work, { recursive: true, force: true });
});

function digestOf(bytes: Buffer): Digest {
  return requireDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
}

async function* once(bytes: Buffer): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** A one-layer image whose blobs are in the store under `name`; its manifest is not. */
async function image(seed: string): Promise<{ bytes: Buffer; digest: Digest }> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed }));
  const layer = Buffer.from(`layer ${seed}`);
  for (const blob of [config, layer]) await store.putBlob(name, digestOf(blob), once(blob), blob.byteLength);
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: manifestType,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(layer), size: layer.length }],
    }),
  );
  return { bytes, digest: digestOf(bytes) };
}

describe('the store keeps pushed content first', () => {
  it('a fetched tag never moves a pushed one', async () => {
    const pushed = await image('pushed');
    const fetched = await image('fetched');
    await store.putManifest(name, tag, pushed.bytes, manifestType);
    await store.putFetchedManifest(
      name,
      { digest: fetched.digest, mediaType: manifestType, bytes: fetched.bytes },
      tag,
    );
    expect(store.tagState(name, tag)).toMatchObject({ digest: pushed.digest, source: 'pushed' });
    expect((await store.getManifest(name, tag))?.digest).toBe(pushed.digest);
    // The fetched manifest is kept by digest, untagged.
    expect((await store.getManifest(name, fetched.digest))?.digest).toBe(fetched.digest);
  });

  it('a pushed manifest fetched again stays pinned: eviction keeps it and its blobs', async () => {
    const pushed = await image('pinned');
    await store.putManifest(name, tag, pushed.bytes, manifestType);
    await store.putFetchedManifest(name, { digest: pushed.digest, mediaType: manifestType, bytes: pushed.bytes });
    expect(await store.lifecycle.evict(Number.MAX_SAFE_INTEGER)).toBe(0);
    expect(store.lifecycle.stats.evictions).toBe(0);
    expect((await store.getManifest(name, tag))?.digest).toBe(pushed.digest);
  });
});
