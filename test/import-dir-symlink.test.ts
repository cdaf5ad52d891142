/**
 * A layout folder is read with the same checks as a tar (ADR 0005): only files and directories. A
 * symlink in it is refused, never followed, even when it points at a file with the right bytes
 * outside the layout (a folder an attacker prepared could otherwise make import read any file the
 * importing user can). Round 8b planted `stat` for `lstat` in dir-entries.ts; the symlink refusals
 * were tested on tars only. Real parts: a layout on disk, the directory reader, a LocalStore.
 */
import { mkdtemp, readdir, rename, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDirEntries } from '../src/archive/dir-entries.js';
import { importArchive } from '../src/archive/import-archive.js';
import type { RepoName } from '../src/oci/reference.js';
import { LocalStore } from '../src/store/local-store.js';
import { makeImage, testSeed, writeOciLayout } from './support/make-image.js';

describe('import of a layout folder holding a symlink', () => {
  let work: string;
  let store: LocalStore;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-import-dir-symlink-'));
    store = await LocalStore.open(join(work, 'store'));
  });

  afterAll(async () => {
    store?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('refuses it, though it points at the right bytes outside the layout, and keeps nothing', async () => {
    const image = await makeImage({ seed: testSeed('import-dir-symlink'), layers: 1, layerSize: 2048 });
    const layout = join(work, 'layout');
    await writeOciLayout(image, layout, 'team/app:v1');
    // The layer's file moves out of the layout; a symlink to it takes its place.
    const layer = image.images[0]?.layers[0]?.digest ?? '';
    const hex = layer.slice('sha256:'.length);
    const inside = join(layout, 'blobs', 'sha256', hex);
    const outside = join(work, 'elsewhere');
    await rename(inside, outside);
    await symlink(outside, inside);
    await expect(
      importArchive(readDirEntries(layout), store.startImport(), { name: 'team/app' as RepoName, label: layout }),
    ).rejects.toMatchObject({
      code: 'UNSUPPORTED',
      message: `entry "blobs/sha256/${hex}" is a symlink: only regular files are accepted`,
    });
    expect(await store.listTags('team/app' as RepoName, {})).toBeUndefined();
    const files = await readdir(join(work, 'store', 'blobs'), { recursive: true, withFileTypes: true });
    expect(files.filter((f) => f.isFile()).map((f) => f.name)).toEqual([]);
  });
});
