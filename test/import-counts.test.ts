/**
 * What an import reports (round 8c of planted bugs): `blobsWritten` and the bytes are what this import
 * wrote, so an archive imported a second time writes nothing and says so; the blobs the store held
 * are read past, not counted. Real parts: a layout folder, the layout reader, a LocalStore.
 */
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { readDirEntries } from '../src/archive/dir-entries.js';
import { importArchive } from '../src/archive/import-archive.js';
import type { RepoName } from '../src/oci/reference.js';
import { scratchStore } from './support/archive-entries.js';
import { makeImage, testSeed, writeOciLayout, type TestImage } from './support/make-image.js';

const { work, openStore } = scratchStore('wharf-import-counts-');
let image: TestImage;

beforeEach(async () => {
  image = await makeImage({ seed: testSeed('import-counts'), layers: 2 });
  await writeOciLayout(image, join(work(), 'layout'), 'v1');
});

describe('the counts of an import', () => {
  it('are the blobs this import wrote: all the first time, none the second', async () => {
    const store = await openStore();
    const options = { name: 'team/app' as RepoName, label: 'layout' };
    const first = await importArchive(readDirEntries(join(work(), 'layout')), store.startImport(), options);
    // The config, the layers and the manifest are blob entries of the layout.
    const sizes = [...image.blobs.values()].map((b) => b.byteLength);
    expect(first.blobsWritten).toBe(image.blobs.size + 1);
    expect(first.bytesWritten).toBe(sizes.reduce((a, b) => a + b, 0) + image.root.size);
    const second = await importArchive(readDirEntries(join(work(), 'layout')), store.startImport(), options);
    expect(second.images.map((i) => i.digest)).toEqual([image.root.digest]);
    expect(second.blobsWritten).toBe(0);
    expect(second.bytesWritten).toBe(0);
  });
});
