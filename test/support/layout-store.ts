/**
 * @module test/support/layout-store
 * A LocalStore holding test images under one name, imported in process from an OCI layout (what
 * `wharf import` does): the starting point of tests that copy out of a store into a layout.
 */
import { join } from 'node:path';
import { readDirEntries } from '../../src/archive/dir-entries.js';
import { importArchive } from '../../src/archive/import-archive.js';
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
