/**
 * @module test/support/layout-store
 * A LocalStore holding test images under one name, imported in process from an OCI layout (what
 * `wharf import` does), or written straight through an import batch: the starting point of tests
 * that copy out of a store.
 */
import { join } from 'node:path';
import { readDirEntries } from '../../src/archive/dir-entries.js';
import { importArchive } from '../../src/archive/import-archive.js';
import type { Digest } from '../../src/oci/digest.js';
import type { RepoName, Tag } from '../../src/oci/reference.js';
import { LocalStore } from '../../src/store/local-store.js';
import { writeOciLayout, type TestImage } from './make-image.js';

/** A store under `work`/store with each image tagged `name:tag`, through a layout written under `work`. */
export async function storeHolding(work: string, name: string, images: Record<string, TestImage>): Promise<LocalStore> {
  const layout = join(work, 'source-layout');
  for (const [tag, image] of Object.entries(images)) await writeOciLayout(image, layout, `${name}:${tag}`);
  const store = await LocalStore.open(join(work, 'store'));
  await importArchive(readDirEntries(layout), store.startImport(), { label: 'layout' });
  return store;
}

/**
 * Writes each image's blobs and root manifest into `store` under `name` in one import batch, tagged
 * when a tag is given (undefined: kept by digest, as a referrer is).
 */
export async function importTestImages(
  store: LocalStore,
  name: RepoName,
  images: readonly (readonly [Tag | undefined, TestImage])[],
): Promise<void> {
  const batch = store.startImport();
  for (const [, image] of images) {
    for (const [digest, bytes] of image.blobs) {
      if (!(await batch.hasBlob(digest as Digest))) {
        await batch.writeBlob({ digest: digest as Digest, size: bytes.byteLength }, [bytes]);
      }
    }
    await batch.writeManifest(name, { ...image.root, digest: image.root.digest as Digest });
  }
  for (const [tag, image] of images) {
    if (tag !== undefined) await batch.tag(name, tag, image.root.digest as Digest);
  }
  await batch.commit();
}
