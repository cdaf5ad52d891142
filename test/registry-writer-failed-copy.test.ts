/**
 * What a failed `wharf copy` to a registry must not leave (round 8c of planted bugs): a tag moved to an
 * image of the copy while a later image of the same copy failed (tags move only at commit, when every
 * image is there), and an upload session the registry opened (a mount it could not do) still open.
 * Real parts: wharf in process as the target registry, a LocalStore as the source, the engine; the
 * reader is the store, wrapped only to lose one layer of the second image.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import type { ImageReader } from '../src/oci/image-transfer.js';
import type { RepoName, Tag } from '../src/oci/reference.js';
import { LocalStore } from '../src/store/local-store.js';
import { copyImages } from '../src/transfer/copy-images.js';
import { RegistryClient } from '../src/upstream/registry-client.js';
import { RegistryImageWriter } from '../src/upstream/registry-image-writer.js';
import { makeImage, testSeed, type TestImage } from './support/make-image.js';
import { importTestImages } from './support/layout-store.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const name = 'team/app' as RepoName;

describe('a failed copy to a registry', () => {
  let work: string;
  let source: LocalStore;
  let wharf: WharfHandle;
  let good: TestImage;
  let broken: TestImage;
  let lost: Digest;
  const clients: RegistryClient[] = [];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-writer-failed-copy-'));
    good = await makeImage({ seed: testSeed('failed copy good'), layers: 1, layerSize: 1024 });
    broken = await makeImage({ seed: testSeed('failed copy broken'), layers: 2, layerSize: 1024 });
    const layers = [...broken.blobs.keys()].filter((d) => !good.blobs.has(d));
    lost = layers[layers.length - 1] as Digest;
    source = await LocalStore.open(join(work, 'source'));
    await importTestImages(source, name, [
      ['v1' as Tag, good],
      ['v2' as Tag, broken],
    ]);
    wharf = await startWharf();
  }, 120_000);

  afterAll(async () => {
    for (const client of clients) await client.close();
    source?.close();
    await wharf?.close();
    await rm(work, { recursive: true, force: true });
  });

  /** The source store, one layer of v2 lost (as a registry that answers 404 for it). */
  const reader: ImageReader = {
    getManifest: (n, reference) => source.getManifest(n, reference),
    openBlob: async (n, digest) => (digest === lost ? undefined : source.openBlob(n, digest)),
  };

  function writerTo(target: RepoName, mountFrom?: string): RegistryImageWriter {
    const client = new RegistryClient({
      host: wharf.host,
      url: wharf.url,
      env: { DOCKER_CONFIG: join(work, 'no-docker-config') },
    });
    clients.push(client);
    return new RegistryImageWriter(client, target, mountFrom === undefined ? {} : { mountFrom });
  }

  const requests = [{ from: { name, reference: 'v1' as Tag } }, { from: { name, reference: 'v2' as Tag } }];

  it('moves no tag, not even the one of the image that was wholly sent', async () => {
    const target = 'team/copied' as RepoName;
    await expect(copyImages(reader, writerTo(target), requests)).rejects.toMatchObject({ code: 'BLOB_UNKNOWN' });
    // v1's manifest went (by digest), but its tag waits for the commit the failure never reached.
    const byDigest = await fetch(`${wharf.url}/v2/${target}/manifests/${good.root.digest}`, {
      method: 'HEAD',
      headers: { Accept: good.root.mediaType },
    });
    expect(byDigest.status).toBe(200);
    const byTag = await fetch(`${wharf.url}/v2/${target}/manifests/v1`, {
      method: 'HEAD',
      headers: { Accept: good.root.mediaType },
    });
    expect(byTag.status).toBe(404);
  });

  it('cancels the upload session a mount it could not do left open', async () => {
    const target = 'team/mounted' as RepoName;
    const uploads = join(wharf.dataDir, 'tmp', 'uploads');
    const before = await readdir(uploads).catch(() => []);
    // A repository without those blobs: each mount is answered with a session, which takes the bytes;
    // the lost layer's session is opened and never used.
    await expect(copyImages(reader, writerTo(target, 'team/nothing'), requests)).rejects.toMatchObject({
      code: 'BLOB_UNKNOWN',
    });
    expect(await readdir(uploads).catch(() => [])).toEqual(before);
  });
  it('cancels at abort() the session of an unnamed blob (docker-archive to a registry) whose body failed', async () => {
    const uploads = join(wharf.dataDir, 'tmp', 'uploads');
    const before = await readdir(uploads).catch(() => []);
    const writer = writerTo('team/unnamed-failed' as RepoName);
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield Buffer.alloc(64 * 1024, 7);
      throw new Error('the archive ended early');
    }
    await expect(writer.writeUnnamedBlob(128 * 1024, failing())).rejects.toThrow();
    await writer.abort();
    expect(await readdir(uploads).catch(() => [])).toEqual(before);
  });

  it('refuses an unnamed blob (docker-archive to a registry) shorter than announced', async () => {
    const writer = writerTo('team/unnamed' as RepoName);
    async function* short(): AsyncGenerator<Uint8Array> {
      yield Buffer.from('five!');
    }
    await expect(writer.writeUnnamedBlob(10, short())).rejects.toMatchObject({ code: 'SIZE_INVALID' });
  });
});
