/**
 * What an aborted copy into a layout folder must leave (round 8c of planted bugs): the folder as it
 * was. A file that was already there is not "created" by this writer, even when the copy writes the
 * same manifest again, so abort() never removes it; and a folder the user made (empty) is not removed
 * with what went into it. The writer is the real OciLayoutDirWriter on disk.
 */
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OciLayoutDirWriter } from '../src/archive/oci-layout-dir-writer.js';
import type { Digest } from '../src/oci/digest.js';
import type { RepoName, Tag } from '../src/oci/reference.js';
import { makeImage, testSeed, type TestImage } from './support/make-image.js';
import { writeTestImage } from './support/writer-output.js';

const name = 'team/app' as RepoName;
let work: string;
let image: TestImage;

beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-layout-abort-'));
  image = await makeImage({ seed: testSeed('layout-dir-abort'), layers: 2 });
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

async function filesUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (path: string): Promise<void> => {
    for (const entry of await readdir(path, { withFileTypes: true })) {
      if (entry.isDirectory()) await walk(join(path, entry.name));
      else found.push(relative(dir, join(path, entry.name)));
    }
  };
  await walk(dir);
  return found.sort();
}

describe('an aborted copy into a layout folder', () => {
  it('keeps the files that were there, the same manifest written again included', async () => {
    const dir = join(work, 'layout');
    const first = new OciLayoutDirWriter(dir);
    await writeTestImage(first, image, name);
    await first.tag(name, 'v1' as Tag, image.root.digest as Digest);
    await first.commit();
    const before = await filesUnder(dir);
    expect(before).toContain(`blobs/sha256/${image.root.digest.slice('sha256:'.length)}`);

    // The same image again (its blobs found, its manifest written again), then the copy fails.
    const second = new OciLayoutDirWriter(dir);
    await writeTestImage(second, image, name);
    await second.abort();
    expect(await filesUnder(dir)).toEqual(before);
  });

  it('does not remove an empty folder the user made, only what went into it', async () => {
    const dir = join(work, 'made-by-user');
    await mkdir(dir);
    const writer = new OciLayoutDirWriter(dir);
    await writeTestImage(writer, image, name);
    await writer.abort();
    expect((await stat(dir)).isDirectory()).toBe(true);
    expect(await filesUnder(dir)).toEqual([]);
  });
});
