/**
 * An archive import whose commit fails (a full disk, an index that cannot be written) is aborted like
 * any other failure: the store is left as it was, the blobs streamed in before the commit are removed
 * (round 8c of planted bugs: commitOrAbort's commit outside its try passed every import test, since no
 * test made a commit fail). Real parts: a layout folder, the layout reader, a LocalStore's import
 * batch, wrapped only to fail its commit and to see the abort.
 */
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { readDirEntries } from '../src/archive/dir-entries.js';
import { importArchive } from '../src/archive/import-archive.js';
import type { DigestingImageWriter } from '../src/oci/image-transfer.js';
import type { RepoName, Tag } from '../src/oci/reference.js';
import { blobFiles } from './support/blob-file.js';
import { scratchStore } from './support/archive-entries.js';
import { makeImage, testSeed, writeOciLayout, type TestImage } from './support/make-image.js';

const { work, openStore } = scratchStore('wharf-import-commit-');
let image: TestImage;

beforeEach(async () => {
  image = await makeImage({ seed: testSeed('import-commit-fails'), layers: 2 });
  await writeOciLayout(image, join(work(), 'layout'), 'v1');
});

describe('an import whose commit fails', () => {
  it('is aborted: the error goes on, and the blobs written before the commit are gone', async () => {
    const store = await openStore();
    const before = await blobFiles(join(work(), 'store'));
    const batch = store.startImport();
    let aborted = 0;
    const writer: DigestingImageWriter = {
      verifiesBlobs: batch.verifiesBlobs,
      hasBlob: (digest) => batch.hasBlob(digest),
      writeBlob: (info, body) => batch.writeBlob(info, body),
      writeUnnamedBlob: (size, body) => batch.writeUnnamedBlob(size, body),
      writeManifest: (n, content) => batch.writeManifest(n, content),
      tag: (n, reference, digest) => batch.tag(n, reference, digest),
      commit: () => Promise.reject(new Error('ENOSPC: the commit failed')),
      abort: async () => {
        aborted++;
        await batch.abort();
      },
    };
    await expect(
      importArchive(readDirEntries(join(work(), 'layout')), writer, {
        name: 'team/app' as RepoName,
        label: 'layout',
      }),
    ).rejects.toThrow('ENOSPC: the commit failed');
    expect(aborted).toBe(1);
    expect(await blobFiles(join(work(), 'store'))).toEqual(before);
    expect(await store.getManifest('team/app' as RepoName, 'v1' as Tag)).toBeUndefined();
  });
});
