/**
 * @module test/quarantine-rows.test
 * Quarantine as a deletion of the lifecycle (store/lifecycle.ts, store/quarantine.ts, ADR 0008 and
 * 0009), in process on a real store, each case with its exact outcome: which file moves, which rows
 * go, which tags and manifests the report names, and what comes off the stored total store.maxSize
 * is checked against. A read-only store refuses and moves nothing; a file replaced since it was found
 * corrupt is left with its rows; a file already gone still takes its rows; a file with no rows moves
 * and takes nothing off the total.
 */
import { copyFile, mkdir, mkdtemp, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isOciError } from '../src/oci/errors.js';
import { requireRepoName, type Tag } from '../src/oci/reference.js';
import { LocalStore } from '../src/store/local-store.js';
import type { QuarantineResult } from '../src/store/quarantine.js';
import { blobPath } from './support/blob-file.js';
import { content, descriptorOf, imageManifest, ociTypes, once, type Content } from './support/store-content.js';
import { exists } from './support/exists.js';

const name = requireRepoName('team/app');

let root: string;
let store: LocalStore | undefined;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'wharf-quarantine-rows-'));
});
afterEach(async () => {
  store?.close();
  store = undefined;
  await rm(root, { recursive: true, force: true });
});

interface Pushed {
  config: Content;
  layer: Content;
  manifest: Content;
}

/** A pushed image tagged v1 and v2: its config, one layer, and the manifest. */
async function push(s: LocalStore): Promise<Pushed> {
  const config = content(JSON.stringify({ architecture: 'amd64', os: 'linux' }));
  const layer = content(Buffer.alloc(5_000, 3));
  const manifest = imageManifest(config, [descriptorOf(layer, ociTypes.layer)]);
  await s.putBlob(name, config.digest, once(config.bytes));
  await s.putBlob(name, layer.digest, once(layer.bytes));
  await s.putManifest(name, 'v1' as Tag, manifest.bytes, ociTypes.manifest, ['v2' as Tag]);
  return { config, layer, manifest };
}

describe('quarantine', () => {
  it('in a read-only store, refuses with UNAVAILABLE naming the digest, and moves nothing', async () => {
    const rw = await LocalStore.open(root);
    const image = await push(rw);
    rw.close();
    store = LocalStore.openReadOnly(root);
    const heldBefore = store.lifecycle.space.used;
    const refused = await store.quarantineBlob(image.layer.digest, 'digest-mismatch').then(
      () => undefined,
      (error: unknown) => error,
    );
    if (!isOciError(refused)) throw new Error(`an OciError expected, got ${String(refused)}`);
    expect(refused.code).toBe('UNAVAILABLE');
    expect(refused.status).toBe(503);
    expect(refused.message).toBe(
      `blob ${image.layer.digest} failed verification; left in place: \`wharf verify --repair\` (or serve, when it reads it) quarantines it`,
    );
    expect(refused.detail).toEqual({ digest: image.layer.digest });
    // The file and every row stay: the process that holds the data directory repairs.
    expect(await exists(blobPath(root, image.layer.digest))).toBe(true);
    expect(await exists(join(root, 'quarantine'))).toBe(false);
    expect(store.hasBlob(image.layer.digest)).toBe(true);
    expect(store.lifecycle.space.used).toBe(heldBefore);
  });

  it('leaves a file replaced since it was found corrupt, with its rows', async () => {
    store = await LocalStore.open(root);
    const image = await push(store);
    const path = blobPath(root, image.layer.digest);
    const foundCorrupt = (await stat(path)).ino;
    // A verified copy committed since: same name, another inode.
    await copyFile(path, `${path}.copy`);
    await rename(`${path}.copy`, path);
    const current = (await stat(path)).ino;
    expect(current).not.toBe(foundCorrupt);
    const heldBefore = store.lifecycle.space.used;

    const done = await store.quarantineBlob(image.layer.digest, 'digest-mismatch', foundCorrupt);

    expect(done).toBeUndefined();
    expect((await stat(path)).ino).toBe(current);
    expect(await exists(join(root, 'quarantine'))).toBe(false);
    expect(store.hasBlob(image.layer.digest)).toBe(true);
    expect(store.lifecycle.space.used).toBe(heldBefore);
  });

  it('drops the rows of a file already gone: the manifest, both its tags, and its bytes off the total', async () => {
    const told: QuarantineResult[] = [];
    store = await LocalStore.open(root, { onQuarantine: (result) => told.push(result) });
    const image = await push(store);
    await rm(blobPath(root, image.manifest.digest));
    const heldBefore = store.lifecycle.space.used;

    const done = await store.quarantineBlob(image.manifest.digest, 'missing-file');

    expect(done).toMatchObject({
      digest: image.manifest.digest,
      reason: 'missing-file',
      foundBy: 'read',
      movedTo: undefined,
      droppedTags: ['team/app:v1', 'team/app:v2'],
      droppedManifests: [`team/app@${image.manifest.digest}`],
    });
    expect(told).toEqual([done]);
    expect(store.hasBlob(image.manifest.digest)).toBe(false);
    expect(await store.getManifest(name, 'v1' as Tag)).toBeUndefined();
    expect(await store.getManifest(name, 'v2' as Tag)).toBeUndefined();
    expect(store.lifecycle.space.used).toBe(heldBefore - image.manifest.size);
    // The layers it named stay: a manifest that merely references a blob is not its bytes.
    expect(store.hasBlob(image.layer.digest)).toBe(true);
    expect(store.hasBlob(image.config.digest)).toBe(true);
  });

  it('moves a file that has no rows and takes nothing off the total', async () => {
    store = await LocalStore.open(root);
    await push(store);
    const stray = content('a file a crash left between rename and insert, found corrupt');
    const path = blobPath(root, stray.digest);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, stray.bytes);
    const heldBefore = store.lifecycle.space.used;

    const done = await store.quarantineBlob(stray.digest, 'digest-mismatch');

    const [moved] = await readdir(join(root, 'quarantine'));
    expect(moved).toMatch(new RegExp(`^sha256-${stray.digest.slice('sha256:'.length)}-\\d+$`));
    expect(done).toMatchObject({
      digest: stray.digest,
      movedTo: join(root, 'quarantine', moved ?? ''),
      droppedTags: [],
      droppedManifests: [],
    });
    expect(await exists(path)).toBe(false);
    expect(store.lifecycle.space.used).toBe(heldBefore);
  });
});
