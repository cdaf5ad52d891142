/**
 * ADR 0011: a child of an index that is wholly absent from a layout is a platform not taken (the
 * index is imported sparse), but a child whose digest IS in the layout and is not a manifest is
 * refused: the layout is damaged, not sparse. Round 8b planted "absent" read as "no manifest
 * under that digest", which imported such an index as sparse. Real parts: a layout folder, the
 * directory reader, a LocalStore's import batch.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDirEntries } from '../src/archive/dir-entries.js';
import { importArchive } from '../src/archive/import-archive.js';
import type { RepoName } from '../src/oci/reference.js';
import { LocalStore } from '../src/store/local-store.js';
import { makeImage, refNameAnnotation, testSeed, writeOciLayout, type PlatformImage } from './support/make-image.js';

const ociIndex = 'application/vnd.oci.image.index.v1+json';
const name = 'registry.example.test/team/app' as RepoName;

describe('import of an index whose child is in the layout but is not a manifest', () => {
  let work: string;
  let store: LocalStore;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-import-index-children-'));
    store = await LocalStore.open(join(work, 'store'));
  });

  afterAll(async () => {
    store?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('is refused as damaged, not imported as a sparse index, and keeps nothing', async () => {
    const image = await makeImage({
      seed: testSeed('import-index-children'),
      layers: 1,
      layerSize: 1024,
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' },
      ],
    });
    const layout = join(work, 'layout');
    await writeOciLayout(image, layout, `${name}:v1`);
    const [amd64, arm64] = image.images as [PlatformImage, PlatformImage];
    // An index whose arm64 entry names arm64's layer (in the layout, a blob, no manifest).
    const layer = arm64.layers[0];
    if (layer === undefined) throw new Error('no layer');
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: ociIndex,
        manifests: [
          {
            mediaType: amd64.manifest.mediaType,
            digest: amd64.manifest.digest,
            size: amd64.manifest.size,
            platform: amd64.platform,
          },
          { mediaType: arm64.manifest.mediaType, digest: layer.digest, size: layer.size, platform: arm64.platform },
        ],
      }),
    );
    const hex = createHash('sha256').update(index).digest('hex');
    await writeFile(join(layout, 'blobs', 'sha256', hex), index);
    await writeFile(
      join(layout, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        mediaType: ociIndex,
        manifests: [
          {
            mediaType: ociIndex,
            digest: `sha256:${hex}`,
            size: index.length,
            annotations: { [refNameAnnotation]: `${name}:v1` },
          },
        ],
      }),
    );
    await expect(importArchive(readDirEntries(layout), store.startImport(), { label: layout })).rejects.toMatchObject({
      code: 'MANIFEST_BLOB_UNKNOWN',
      message: `manifest ${layer.digest} of ${name} is not a manifest`,
    });
    expect(await store.listTags(name, {})).toBeUndefined();
    const files = await readdir(join(work, 'store', 'blobs'), { recursive: true, withFileTypes: true });
    expect(files.filter((f) => f.isFile())).toEqual([]);
  });
});
