/**
 * @module test/upload-session-space.test
 * store.maxSize counts bytes the store does not hold yet: a blob pushed through an upload session
 * (POST, PATCH, PUT: how docker pushes a layer) that the store already holds under another name
 * adds no bytes, so a full store takes it without a 507 and without evicting anything, as the
 * monolithic push does. Round 10b of the hand-planted bugs (docs/mutation-testing.md): a session
 * that reserved the blob's whole size again passed every test (only monolithic pushes were tried).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requireRepoName, type Tag } from '../src/oci/reference.js';
import { LocalStore } from '../src/store/local-store.js';
import { content, descriptorOf, imageManifest, ociTypes, once } from './support/store-content.js';

let root: string;
let store: LocalStore | undefined;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'wharf-upload-space-'));
});
afterEach(async () => {
  store?.close();
  store = undefined;
  await rm(root, { recursive: true, force: true });
});

describe('an upload session into a full store', () => {
  it('takes a blob the store already holds under another name: no 507, nothing evicted, no bytes added', async () => {
    const first = requireRepoName('team/first');
    const config = content(JSON.stringify({ architecture: 'amd64', os: 'linux' }));
    const layer = content('a layer both repositories share '.repeat(400));
    const manifest = imageManifest(config, [descriptorOf(layer, ociTypes.layer)]);
    const filling = await LocalStore.open(root);
    await filling.putBlob(first, config.digest, once(config.bytes));
    await filling.putBlob(first, layer.digest, once(layer.bytes));
    await filling.putManifest(first, 'v1' as Tag, manifest.bytes, ociTypes.manifest);
    filling.close();
    const total = config.size + layer.size + manifest.size;

    // Full to the byte; the image is pushed (pinned), so an eviction could free nothing.
    store = await LocalStore.open(root, { lifecycle: { space: { maxBytes: total, lowWaterBytes: total } } });
    expect(store.lifecycle.space.used).toBe(total);
    const second = requireRepoName('team/second');
    const session = await store.startUpload(second);
    await store.appendUpload(second, session.id, once(layer.bytes));
    const info = await store.finishUpload(second, session.id, layer.digest);
    expect(info).toEqual({ digest: layer.digest, size: layer.size });
    expect(store.lifecycle.space.used).toBe(total);
    expect(await store.statBlob(second, layer.digest)).toEqual({ digest: layer.digest, size: layer.size });
    expect(await store.statBlob(first, layer.digest)).toEqual({ digest: layer.digest, size: layer.size });
    expect((await store.getManifest(first, 'v1' as Tag))?.digest).toBe(manifest.digest);
  });
});

// Round 12b of the planted bugs: an upload commit that never gave its reservation back passed every
// test; each pushed layer then counted twice against store.maxSize until serve restarted.
describe('an upload session that adds a blob', () => {
  it('counts its bytes once: the reservation is given back when the row is written', async () => {
    const name = requireRepoName('team/counted');
    const first = content('the first layer pushed through a session '.repeat(20));
    const second = content('the second layer pushed through a session '.repeat(20));
    const limit = first.size + second.size;
    store = await LocalStore.open(root, { lifecycle: { space: { maxBytes: limit, lowWaterBytes: limit } } });

    const session = await store.startUpload(name);
    await store.appendUpload(name, session.id, once(first.bytes));
    expect(await store.finishUpload(name, session.id, first.digest)).toEqual({
      digest: first.digest,
      size: first.size,
    });
    expect(store.lifecycle.space.used).toBe(first.size);

    // Exactly what is left: fits only if the first commit's reservation was released.
    const next = await store.startUpload(name);
    await store.appendUpload(name, next.id, once(second.bytes));
    expect(await store.finishUpload(name, next.id, second.digest)).toEqual({
      digest: second.digest,
      size: second.size,
    });
    expect(store.lifecycle.space.used).toBe(limit);
  });
});
