/**
 * Durability order of a copy into an OCI layout folder (`wharf copy … oci:<dir>`, `wharf export -o
 * <dir>/`; issue 13, round 3's one survivor): every blob and manifest file is fsynced under its temp
 * name before it is renamed into place; at commit oci-layout, manifest.json and index.json are each
 * fsynced then renamed, index.json last; the layout's directory, blobs/ and blobs/sha256 are fsynced
 * before index.json is renamed (so it never names a blob whose rename a crash could lose), and the
 * layout's directory again after. A kill -9 test cannot show this (the page cache survives it), so the writer's fs calls
 * are watched through its one seam for them, `LayoutFs`: Node's calls, wrapped to log each completed
 * sync and rename. Real parts: a LocalStore as the reader, the transfer engine, the directory writer.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OciLayoutDirWriter } from '../src/archive/oci-layout-dir-writer.js';
import type { RepoName, Tag } from '../src/oci/reference.js';
import type { LocalStore } from '../src/store/local-store.js';
import { copyImages } from '../src/transfer/copy-images.js';
import { storeHolding } from './support/layout-store.js';
import { loggingFs } from './support/logging-output-fs.js';
import { allBlobsOf, makeImage, testSeed, type TestImage } from './support/make-image.js';

const source = 'registry.example.test/team/source' as RepoName;
const target = 'team/app' as RepoName;

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

const temp = /^\.wharf-[0-9a-f-]{36}\.part$/;

/**
 * Checks that each rename's source was synced before it (once, under the temp name) and returns the
 * renames' targets in order.
 */
function checkSyncedBeforeRename(steps: string[]): string[] {
  const targets: string[] = [];
  steps.forEach((step, at) => {
    const renamed = /^rename (\S+) -> (\S+)$/.exec(step);
    if (renamed === null) return;
    const [, from = '', to = ''] = renamed;
    expect(from).toMatch(temp);
    expect(steps.filter((s) => s === `sync ${from}`)).toHaveLength(1);
    expect(steps.indexOf(`sync ${from}`), `${to}: synced before its rename`).toBeLessThan(at);
    targets.push(to);
  });
  return targets;
}

/**
 * The last steps of a commit: `before` (the top-level files other than index.json) each synced then
 * renamed; the layout's directory, blobs/ and blobs/sha256 synced, so every rename so far is durable
 * before index.json names it; index.json synced and renamed; the layout's directory synced again.
 */
function commitTail(before: string[]): unknown[] {
  const syncThenRename = (file: string): unknown[] => [
    expect.stringMatching(/^sync \.wharf-[0-9a-f-]{36}\.part$/) as unknown,
    expect.stringMatching(
      new RegExp(`^rename \\.wharf-[0-9a-f-]{36}\\.part -> ${file.replace('.', '\\.')}$`),
    ) as unknown,
  ];
  return [
    ...before.flatMap(syncThenRename),
    'sync .',
    'sync blobs',
    'sync blobs/sha256',
    ...syncThenRename('index.json'),
    'sync .',
  ];
}

function blobFilesOf(image: TestImage): string[] {
  return [...allBlobsOf(image).keys()].map((d) => `blobs/sha256/${d.slice('sha256:'.length)}`);
}

describe('a copy into an OCI layout folder is durable in order', () => {
  let work: string;
  let store: LocalStore;
  let first: TestImage;
  let second: TestImage;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-layout-durable-'));
    const seed = testSeed('layout durability');
    first = await makeImage({ seed: `${seed}-first`, layers: 2 });
    second = await makeImage({
      seed: `${seed}-second`,
      layers: 1,
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' },
      ],
    });
    store = await storeHolding(work, source, { first, second });
  });

  afterAll(async () => {
    store?.close();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('into a new folder: every file synced before its rename, the directories before index.json, index.json last', async () => {
    const dir = join(work, 'new');
    const steps: string[] = [];
    await copyImages(store, new OciLayoutDirWriter(dir, {}, loggingFs(dir, steps)), [
      { from: { name: source, reference: 'first' as Tag }, to: { name: target, reference: 'v1' as Tag } },
    ]);

    const renamed = checkSyncedBeforeRename(steps);
    const files = await filesUnder(dir);
    expect(files).toEqual([...blobFilesOf(first), 'index.json', 'manifest.json', 'oci-layout'].sort());
    // Every file there came by one rename, and nothing else was renamed.
    expect([...renamed].sort()).toEqual(files);
    expect(steps.slice(-10)).toEqual(commitTail(['oci-layout', 'manifest.json']));
    expect(steps).toHaveLength(2 * files.length + 4);
  });

  it('into a folder that holds a layout: the new blobs synced before their renames, index.json replaced durably', async () => {
    const dir = join(work, 'existing');
    await copyImages(store, new OciLayoutDirWriter(dir), [
      { from: { name: source, reference: 'first' as Tag }, to: { name: target, reference: 'v1' as Tag } },
    ]);
    const before = await filesUnder(dir);

    const steps: string[] = [];
    await copyImages(store, new OciLayoutDirWriter(dir, {}, loggingFs(dir, steps)), [
      { from: { name: source, reference: 'second' as Tag }, to: { name: target, reference: 'v2' as Tag } },
    ]);

    const renamed = checkSyncedBeforeRename(steps);
    const added = blobFilesOf(second);
    expect(added.filter((f) => before.includes(f))).toEqual([]);
    // A multi-platform image: no docker manifest.json entry, so only index.json is rewritten.
    expect([...renamed].sort()).toEqual([...added, 'index.json'].sort());
    expect(steps.slice(-6)).toEqual(commitTail([]));
    expect(steps).toHaveLength(2 * renamed.length + 4);
  });
});
