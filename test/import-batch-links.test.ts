/**
 * Round 3 of the planted-bug audit (docs/mutation-testing.md): what an import leaves in the store.
 * An image imported under a second name whose blobs the store already holds is whole under that
 * name too (the blobs are linked to it, not only skipped), and a blob the bundle carries that no
 * manifest names is not kept. Real parts: LocalStore, its import batch, the layout reader.
 */
import { readdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDirEntries } from '../src/archive/dir-entries.js';
import { importArchive } from '../src/archive/import-archive.js';
import type { Digest } from '../src/oci/digest.js';
import type { RepoName, Tag } from '../src/oci/reference.js';
import { LocalStore } from '../src/store/local-store.js';
import { copyImages } from '../src/transfer/copy-images.js';
import {
  makeImage,
  randomBytesFor,
  sha256Digest,
  testSeed,
  writeOciLayout,
  type TestImage,
} from './support/make-image.js';

const source = 'registry.example.test/team/source' as RepoName;

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => e.name);
}

describe('an import into a store that already holds some of it', () => {
  let work: string;
  let image: TestImage;
  let layout: string;
  let from: LocalStore;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-import-links-'));
    image = await makeImage({ seed: testSeed('import links'), layers: 2 });
    layout = join(work, 'layout');
    await writeOciLayout(image, layout, `${source}:v1`);
    from = await LocalStore.open(join(work, 'from'));
    await importArchive(readDirEntries(layout), from.startImport(), { label: 'layout' });
  });

  afterAll(async () => {
    from?.close();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('serves every blob under the second name, though none was sent again', async () => {
    const store = await LocalStore.open(join(work, 'target'));
    try {
      const v1 = { name: source, reference: 'v1' as Tag };
      await copyImages(from, store.startImport(), [
        { from: v1, to: { name: 'team/one' as RepoName, reference: 'v1' as Tag } },
      ]);
      const again = await copyImages(from, store.startImport(), [
        { from: v1, to: { name: 'team/two' as RepoName, reference: 'v2' as Tag } },
      ]);
      expect(again.blobsSent).toBe(0);
      expect((await store.getManifest('team/two' as RepoName, 'v2' as Tag))?.digest).toBe(image.root.digest);
      for (const [digest, bytes] of image.blobs) {
        const info = await store.statBlob('team/two' as RepoName, digest as Digest);
        expect(info, digest).toEqual({ digest, size: bytes.length });
      }
    } finally {
      store.close();
    }
  });

  it('does not keep a blob of the bundle that no manifest names', async () => {
    const extra = randomBytesFor(`${String(image.seed)}/extra`, 4096);
    const hex = sha256Digest(extra).slice('sha256:'.length);
    await writeFile(join(layout, 'blobs', 'sha256', hex), extra);
    const data = join(work, 'with-extra');
    const store = await LocalStore.open(data);
    try {
      const result = await importArchive(readDirEntries(layout), store.startImport(), { label: 'layout' });
      // It was written while the bundle streamed in: nothing tells it is unused before the end
      // (its config and layers, its one manifest, and the extra blob).
      expect(result.blobsWritten).toBe(image.blobs.size + 2);
      expect(store.contentSize(sha256Digest(extra) as Digest)).toBeUndefined();
    } finally {
      store.close();
    }
    // …and removed at commit: no file of it anywhere in the store.
    const names = await filesUnder(data);
    expect(names).toContain(image.root.digest.slice('sha256:'.length));
    expect(names).not.toContain(hex);
  });
});
