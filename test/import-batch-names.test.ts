/**
 * Round 10a of the planted-bug audit (docs/mutation-testing.md): one import batch that carries the
 * same manifest under two repositories, as `wharf export --all` writes it when two repositories hold
 * one image (a base image mirrored and pushed under a team's name). The batch must keep the manifest,
 * its tag and its blobs under each name: written once, named twice. Runs on a real LocalStore.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import type { ManifestContent } from '../src/oci/image-source.js';
import type { RepoName, Tag } from '../src/oci/reference.js';
import { LocalStore } from '../src/store/local-store.js';
import { randomBytesFor, sha256Digest } from './support/make-image.js';

const ociManifest = 'application/vnd.oci.image.manifest.v1+json';

function blobOf(label: string, size: number): { digest: Digest; size: number; bytes: Buffer } {
  const bytes = randomBytesFor(`import-batch-names/${label}`, size);
  return { digest: sha256Digest(bytes) as Digest, size, bytes };
}

describe('an import batch with one manifest under two names', () => {
  let work: string;
  let store: LocalStore;
  const config = blobOf('config', 150);
  const layer = blobOf('layer', 2048);
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: ociManifest,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer.digest, size: layer.size }],
    }),
  );
  const image: ManifestContent = {
    mediaType: ociManifest,
    digest: sha256Digest(bytes) as Digest,
    size: bytes.length,
    bytes,
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-import-batch-names-'));
    store = await LocalStore.open(join(work, 'store'));
  });

  afterAll(async () => {
    store?.close();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('keeps the manifest, its tag and its blobs under each repository', async () => {
    const first = 'docker.io/library/base' as RepoName;
    const second = 'team/base' as RepoName;
    const batch = store.startImport();
    await batch.writeBlob(config, [config.bytes]);
    await batch.writeBlob(layer, [layer.bytes]);
    await batch.writeManifest(first, image);
    await batch.tag(first, '1.0' as Tag, image.digest);
    await batch.writeManifest(second, image);
    await batch.tag(second, 'stable' as Tag, image.digest);
    await batch.commit();
    expect(await store.listTags(first, {})).toEqual(['1.0']);
    expect(await store.listTags(second, {})).toEqual(['stable']);
    for (const [name, tag] of [
      [first, '1.0'],
      [second, 'stable'],
    ] as const) {
      const manifest = await store.getManifest(name, tag as Tag);
      expect(manifest?.digest).toBe(image.digest);
      expect(Buffer.from(manifest?.bytes ?? []).equals(bytes)).toBe(true);
      expect(store.tagState(name, tag as Tag)?.source).toBe('imported');
      expect(await store.statBlob(name, layer.digest)).toEqual({ digest: layer.digest, size: layer.size });
      expect(await store.statBlob(name, config.digest)).toEqual({ digest: config.digest, size: config.size });
    }
  });
});
