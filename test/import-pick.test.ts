/**
 * An OCI layout read with one image picked by its ref.name (`wharf copy oci:<dir>:<ref> …`, the
 * import's `only`): the image of exactly that ref.name is written and tagged, the others (named or
 * not) are not, and a name the layout lacks is refused before anything is tagged. Real parts: a
 * layout folder on disk, the layout reader, a LocalStore's import batch.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readDirEntries } from '../src/archive/dir-entries.js';
import { importArchive } from '../src/archive/import-archive.js';
import type { Digest } from '../src/oci/digest.js';
import type { RepoName, Tag } from '../src/oci/reference.js';
import { LocalStore } from '../src/store/local-store.js';
import { makeImage, refNameAnnotation, testSeed, writeOciLayout, type TestImage } from './support/make-image.js';
import { makeSignature } from './support/make-referrer.js';

const name = 'team/app' as RepoName;
let work: string;
let store: LocalStore | undefined;
let images: Record<'a' | 'b' | 'c', TestImage>;
/** A signature of a, listed in index.json without a ref.name (a referrer goes where its subject goes). */
let signature: TestImage;

beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-import-pick-'));
  const seed = testSeed('import-pick');
  images = {
    a: await makeImage({ seed: `${seed}-a`, layers: 1 }),
    b: await makeImage({ seed: `${seed}-b`, layers: 1 }),
    c: await makeImage({ seed: `${seed}-c`, layers: 1 }),
  };
  const layout = join(work, 'layout');
  for (const [refName, image] of Object.entries(images)) await writeOciLayout(image, layout, refName);
  signature = makeSignature(images.a.root, 'signed a');
  await writeOciLayout(signature, layout, 'sig');
  // writeOciLayout writes the blobs of images and indexes; a lone artifact's manifest goes in by hand.
  await writeFile(join(layout, 'blobs', 'sha256', signature.root.digest.slice('sha256:'.length)), signature.root.bytes);
  // c and the signature without a ref.name: c is an image (it has no subject), the signature a referrer.
  const indexPath = join(layout, 'index.json');
  const index = JSON.parse(await readFile(indexPath, 'utf8')) as { manifests: { annotations?: object }[] };
  for (const entry of index.manifests) {
    const refName = (entry.annotations as Record<string, string> | undefined)?.[refNameAnnotation];
    if (refName === 'c' || refName === 'sig') delete entry.annotations;
  }
  await writeFile(indexPath, JSON.stringify(index));
  store = await LocalStore.open(join(work, 'store'));
});
afterEach(async () => {
  store?.close();
  store = undefined;
  await rm(work, { recursive: true, force: true });
});

function open(): LocalStore {
  if (store === undefined) throw new Error('no store');
  return store;
}

describe('importArchive with only', () => {
  it('writes and tags the image of exactly that ref.name, and no other', async () => {
    const result = await importArchive(readDirEntries(join(work, 'layout')), open().startImport(), {
      name,
      label: 'layout',
      only: 'b',
    });
    expect(result.images).toEqual([{ ref: `${name}:b`, digest: images.b.root.digest }]);
    expect((await open().getManifest(name, 'b' as Tag))?.digest).toBe(images.b.root.digest);
    for (const other of [images.a, images.c]) {
      expect(await open().getManifest(name, other.root.digest as Digest)).toBeUndefined();
    }
    // Round 8b: a's signature is left out with a (not filed under --name by digest).
    expect(await open().getManifest(name, signature.root.digest as Digest)).toBeUndefined();
    expect(await open().listReferrers(name, images.a.root.digest as Digest)).toEqual([]);
  });

  it('refuses a ref.name the layout lacks (normalised names do not count), and tags nothing', async () => {
    for (const missing of ['d', `${name}:b`, 'B']) {
      await expect(
        importArchive(readDirEntries(join(work, 'layout')), open().startImport(), {
          name,
          label: 'layout',
          only: missing,
        }),
      ).rejects.toMatchObject({
        code: 'MANIFEST_UNKNOWN',
        message: `layout: index.json names no image ${JSON.stringify(missing)}`,
      });
    }
    expect(await open().listTags(name, {})).toBeUndefined();
  });
});
