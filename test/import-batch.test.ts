/**
 * The store's import batch in process (issue 13, content scope): every refusal with its exact code,
 * message and detail, and exactly what the store holds after a commit or an abort. The end-to-end
 * import tests spawn wharf, which the mutation run cannot see; these run the same checks on a real
 * LocalStore (real files, real SQLite), driving its ImportBatch by hand.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import type { ManifestContent } from '../src/oci/image-source.js';
import { maxManifestBytes } from '../src/oci/manifest.js';
import type { RepoName, Tag } from '../src/oci/reference.js';
import { LocalStore } from '../src/store/local-store.js';
import { blobPath } from './support/blob-file.js';
import { randomBytesFor, sha256Digest } from './support/make-image.js';
import { snapshotStore } from './support/store-snapshot.js';
import { exists } from './support/exists.js';

const name = 'team/app' as RepoName;
const ociManifest = 'application/vnd.oci.image.manifest.v1+json';
const ociIndex = 'application/vnd.oci.image.index.v1+json';
const ociConfig = 'application/vnd.oci.image.config.v1+json';
const ociLayer = 'application/vnd.oci.image.layer.v1.tar+gzip';
const foreignLayer = 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip';

interface Blob {
  digest: Digest;
  size: number;
  bytes: Buffer;
}

function blobOf(bytes: Buffer): Blob {
  return { digest: sha256Digest(bytes) as Digest, size: bytes.length, bytes };
}

function randomBlob(label: string, size = 1024): Blob {
  return blobOf(randomBytesFor(`import-batch/${label}`, size));
}

interface LayerSpec {
  blob: Blob;
  mediaType?: string;
  urls?: string[];
}

function manifestContent(mediaType: string, body: object): ManifestContent {
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, ...body }));
  return { mediaType, digest: sha256Digest(bytes) as Digest, size: bytes.length, bytes };
}

function imageManifest(config: Blob, layers: LayerSpec[]): ManifestContent {
  return manifestContent(ociManifest, {
    config: { mediaType: ociConfig, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({
      mediaType: l.mediaType ?? ociLayer,
      digest: l.blob.digest,
      size: l.blob.size,
      ...(l.urls === undefined ? {} : { urls: l.urls }),
    })),
  });
}

function indexManifest(children: ManifestContent[]): ManifestContent {
  return manifestContent(ociIndex, {
    manifests: children.map((c, i) => ({
      mediaType: c.mediaType,
      digest: c.digest,
      size: c.bytes.length,
      platform: { os: 'linux', architecture: `arch${i}` },
    })),
  });
}

describe('ImportBatch', () => {
  let work: string;
  let count = 0;
  const stores: LocalStore[] = [];
  const config = randomBlob('config', 200);
  const layer = randomBlob('layer');
  const image = imageManifest(config, [{ blob: layer }]);

  async function freshStore(): Promise<{ store: LocalStore; dir: string }> {
    const dir = join(work, `store-${count++}`);
    const store = await LocalStore.open(dir);
    stores.push(store);
    return { store, dir };
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-import-batch-'));
  });

  afterAll(async () => {
    for (const store of stores) store.close();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('says it verifies blobs, and does: a body that does not match its digest is refused', async () => {
    const { store, dir } = await freshStore();
    const batch = store.startImport();
    expect(batch.verifiesBlobs).toBe(true);
    const wrong = Buffer.from(layer.bytes);
    wrong[0] = (wrong[0] ?? 0) ^ 0xff;
    await expect(batch.writeBlob({ digest: layer.digest, size: layer.size }, [wrong])).rejects.toMatchObject({
      code: 'DIGEST_INVALID',
    });
    expect(await exists(blobPath(dir, layer.digest))).toBe(false);
  });

  it('commits blobs, links, the manifest and its tags, with source "imported" by default', async () => {
    const { store, dir } = await freshStore();
    const batch = store.startImport();
    await batch.writeBlob(config, [config.bytes]);
    await batch.writeBlob(layer, [layer.bytes]);
    await batch.writeManifest(name, image);
    await batch.tag(name, 'v1' as Tag, image.digest);
    await batch.tag(name, 'v1' as Tag, image.digest);
    // A digest "tag" is the manifest itself, not a tag.
    await batch.tag(name, image.digest, image.digest);
    // The same manifest written again keeps the tags it has so far.
    await batch.writeManifest(name, image);
    await batch.tag(name, 'v2' as Tag, image.digest);
    await batch.commit();
    expect(await store.listTags(name, {})).toEqual(['v1', 'v2']);
    expect(store.tagState(name, 'v1' as Tag)?.source).toBe('imported');
    expect((await store.getManifest(name, 'v2' as Tag))?.digest).toBe(image.digest);
    expect(await store.statBlob(name, layer.digest)).toEqual({ digest: layer.digest, size: layer.size });
    expect(await store.statBlob(name, config.digest)).toEqual({ digest: config.digest, size: config.size });
    const snapshot = await snapshotStore(dir);
    expect(snapshot.rows.tags).toHaveLength(2);
    // The layer and the config are linked to the name (the manifest's own bytes are not a blob of it).
    expect(snapshot.rows.repository_blobs).toHaveLength(2);
  });

  it('gives its tags the source it was started with', async () => {
    const { store } = await freshStore();
    const batch = store.startImport({ source: 'preloaded' });
    await batch.writeBlob(config, [config.bytes]);
    await batch.writeBlob(layer, [layer.bytes]);
    await batch.writeManifest(name, image);
    await batch.tag(name, 'v1' as Tag, image.digest);
    await batch.commit();
    expect(store.tagState(name, 'v1' as Tag)?.source).toBe('preloaded');
  });

  it('refuses a manifest over the size bound, and takes one of exactly the bound', async () => {
    const { store } = await freshStore();
    const batch = store.startImport();
    const body = JSON.stringify({
      schemaVersion: 2,
      mediaType: ociManifest,
      config: { mediaType: ociConfig, digest: config.digest, size: config.size },
      layers: [],
    });
    // JSON allows trailing white space: pad the bytes to the bound, then one more.
    const atBound = Buffer.from(body.padEnd(maxManifestBytes, ' '));
    const over = Buffer.from(body.padEnd(maxManifestBytes + 1, ' '));
    const overDigest = sha256Digest(over) as Digest;
    const failure = await batch
      .writeManifest(name, { mediaType: ociManifest, digest: overDigest, size: over.length, bytes: over })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(failure).toMatchObject({
      code: 'MANIFEST_INVALID',
      message: `${overDigest}: manifest exceeds ${maxManifestBytes} bytes`,
    });
    const atDigest = sha256Digest(atBound) as Digest;
    await batch.writeBlob(config, [config.bytes]);
    await batch.writeManifest(name, { mediaType: ociManifest, digest: atDigest, size: atBound.length, bytes: atBound });
    await batch.tag(name, 'big' as Tag, atDigest);
    await batch.commit();
    expect((await store.getManifest(name, 'big' as Tag))?.bytes.byteLength).toBe(maxManifestBytes);
  });

  it('refuses a manifest whose bytes do not hash to its digest, and writes nothing', async () => {
    const { store, dir } = await freshStore();
    const before = await snapshotStore(dir);
    const batch = store.startImport();
    const other = randomBlob('other manifest digest').digest;
    const failure = await batch.writeManifest(name, { ...image, digest: other }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(failure).toMatchObject({
      code: 'DIGEST_INVALID',
      message: `manifest ${other}: its bytes hash to ${image.digest}`,
    });
    expect(await snapshotStore(dir)).toEqual(before);
  });

  it('refuses a tag naming a manifest this batch did not write, even one the store holds', async () => {
    const { store } = await freshStore();
    const first = store.startImport();
    await first.writeBlob(config, [config.bytes]);
    await first.writeBlob(layer, [layer.bytes]);
    await first.writeManifest(name, image);
    await first.commit();
    const batch = store.startImport();
    const failure = await batch.tag(name, 'v1' as Tag, image.digest).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(failure).toMatchObject({
      code: 'MANIFEST_UNKNOWN',
      message: `${name}: tag v1 names ${image.digest}, which this import did not write`,
    });
  });

  it('refuses to commit an image whose layer is missing, with the digest in the detail; abort then leaves the store as it was', async () => {
    const { store, dir } = await freshStore();
    const before = await snapshotStore(dir);
    const batch = store.startImport();
    await batch.writeBlob(config, [config.bytes]);
    await batch.writeManifest(name, image);
    await batch.tag(name, 'v1' as Tag, image.digest);
    const failure = await batch.commit().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(failure).toMatchObject({
      code: 'MANIFEST_BLOB_UNKNOWN',
      message: `${name}@${image.digest} names ${layer.digest}, which is missing`,
      detail: { digest: layer.digest },
    });
    expect((failure as { detail: unknown }).detail).toEqual({ digest: layer.digest });
    expect(await store.getManifest(name, 'v1' as Tag)).toBeUndefined();
    await batch.abort();
    expect(await snapshotStore(dir)).toEqual(before);
  });

  it('skips layers with urls and non-distributable layers, but not a layer with an empty urls list', async () => {
    const { store, dir } = await freshStore();
    const remote = randomBlob('remote layer');
    const foreign = randomBlob('foreign layer');
    const empty = randomBlob('empty urls layer');
    const skipped = imageManifest(config, [
      { blob: layer },
      { blob: remote, urls: ['https://example.test/remote'] },
      { blob: foreign, mediaType: foreignLayer },
    ]);
    const batch = store.startImport();
    await batch.writeBlob(config, [config.bytes]);
    await batch.writeBlob(layer, [layer.bytes]);
    await batch.writeManifest(name, skipped);
    await batch.tag(name, 'v1' as Tag, skipped.digest);
    await batch.commit();
    expect((await store.getManifest(name, 'v1' as Tag))?.digest).toBe(skipped.digest);
    expect(await store.statBlob(name, remote.digest)).toBeUndefined();
    expect(await store.statBlob(name, foreign.digest)).toBeUndefined();
    expect((await snapshotStore(dir)).rows.repository_blobs).toHaveLength(2);

    const notSkipped = imageManifest(config, [{ blob: empty, urls: [] }]);
    const refused = store.startImport();
    await refused.writeManifest(name, notSkipped);
    await expect(refused.commit()).rejects.toMatchObject({
      code: 'MANIFEST_BLOB_UNKNOWN',
      detail: { digest: empty.digest },
    });
    await refused.abort();
  });

  describe('an index', () => {
    const otherLayer = randomBlob('second platform layer');
    const second = imageManifest(config, [{ blob: otherLayer }]);
    const index = indexManifest([image, second]);

    it('is refused when a child is missing, unless the batch allows a sparse index', async () => {
      const { store } = await freshStore();
      const batch = store.startImport();
      await batch.writeBlob(config, [config.bytes]);
      await batch.writeBlob(layer, [layer.bytes]);
      await batch.writeManifest(name, image);
      await batch.writeManifest(name, index);
      await expect(batch.commit()).rejects.toMatchObject({
        code: 'MANIFEST_BLOB_UNKNOWN',
        message: `${name}@${index.digest} names ${second.digest}, which is missing`,
        detail: { digest: second.digest },
      });
      await batch.abort();

      const sparse = store.startImport({ allowSparseIndex: true });
      await sparse.writeBlob(config, [config.bytes]);
      await sparse.writeBlob(layer, [layer.bytes]);
      await sparse.writeManifest(name, image);
      await sparse.writeManifest(name, index);
      await sparse.tag(name, 'multi' as Tag, index.digest);
      await sparse.commit();
      expect((await store.getManifest(name, 'multi' as Tag))?.digest).toBe(index.digest);
    });

    it('takes children the store held before, and links no child manifest as a blob', async () => {
      const { store, dir } = await freshStore();
      const first = store.startImport();
      await first.writeBlob(config, [config.bytes]);
      await first.writeBlob(layer, [layer.bytes]);
      await first.writeBlob(otherLayer, [otherLayer.bytes]);
      await first.writeManifest(name, image);
      await first.writeManifest(name, second);
      await first.commit();
      const links = (await snapshotStore(dir)).rows.repository_blobs;
      expect(links).toHaveLength(3);

      const batch = store.startImport();
      await batch.writeManifest(name, index);
      await batch.tag(name, 'multi' as Tag, index.digest);
      await batch.commit();
      expect((await store.getManifest(name, 'multi' as Tag))?.digest).toBe(index.digest);
      expect((await snapshotStore(dir)).rows.repository_blobs).toEqual(links);

      // Written in one batch with its children: still only the layers and the config are linked.
      const { store: other, dir: otherDir } = await freshStore();
      const whole = other.startImport();
      await whole.writeBlob(config, [config.bytes]);
      await whole.writeBlob(layer, [layer.bytes]);
      await whole.writeBlob(otherLayer, [otherLayer.bytes]);
      await whole.writeManifest(name, image);
      await whole.writeManifest(name, second);
      await whole.writeManifest(name, index);
      await whole.commit();
      expect((await snapshotStore(otherDir)).rows.repository_blobs).toHaveLength(3);
    });
  });

  describe('abort', () => {
    it('removes the files it created, including unnamed blobs, and leaves the store as it was', async () => {
      const { store, dir } = await freshStore();
      const before = await snapshotStore(dir);
      const unnamed = randomBlob('unnamed');
      const batch = store.startImport();
      await batch.writeBlob(config, [config.bytes]);
      expect(
        await batch.writeUnnamedBlob(unnamed.size, [unnamed.bytes] as unknown as AsyncIterable<Uint8Array>),
      ).toEqual({
        digest: unnamed.digest,
        size: unnamed.size,
        added: true,
      });
      expect(await batch.hasBlob(unnamed.digest)).toBe(true);
      await batch.writeManifest(name, image);
      expect(await exists(blobPath(dir, unnamed.digest))).toBe(true);
      expect(await exists(blobPath(dir, image.digest))).toBe(true);
      await batch.abort();
      expect(await snapshotStore(dir)).toEqual(before);
      // Twice is fine, and closes nothing it should not.
      await batch.abort();
      expect(await snapshotStore(dir)).toEqual(before);
    });

    it('keeps a file that was there before, without a row (a crash left it), whichever way it is written again', async () => {
      const { store, dir } = await freshStore();
      const leftover = randomBlob('leftover');
      const path = blobPath(dir, leftover.digest);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, leftover.bytes);
      const batch = store.startImport();
      await batch.writeBlob(leftover, [leftover.bytes]);
      await batch.writeUnnamedBlob(leftover.size, [leftover.bytes] as unknown as AsyncIterable<Uint8Array>);
      await batch.abort();
      expect(await readFile(path)).toEqual(leftover.bytes);
    });

    it('keeps a blob that has a row, written again as an unnamed blob', async () => {
      const { store, dir } = await freshStore();
      const first = store.startImport();
      await first.writeBlob(config, [config.bytes]);
      await first.writeBlob(layer, [layer.bytes]);
      await first.writeManifest(name, image);
      await first.commit();
      const before = await snapshotStore(dir);
      const batch = store.startImport();
      expect(
        await batch.writeUnnamedBlob(layer.size, [layer.bytes] as unknown as AsyncIterable<Uint8Array>),
      ).toMatchObject({ digest: layer.digest, added: false });
      await batch.abort();
      expect(await snapshotStore(dir)).toEqual(before);
    });
  });

  it('checks an unnamed blob against the size it was given', async () => {
    const { store, dir } = await freshStore();
    const before = await snapshotStore(dir);
    const batch = store.startImport();
    await expect(
      batch.writeUnnamedBlob(layer.size + 1, [layer.bytes] as unknown as AsyncIterable<Uint8Array>),
    ).rejects.toMatchObject({ code: 'SIZE_INVALID', detail: { expected: layer.size + 1, received: layer.size } });
    expect(await snapshotStore(dir)).toEqual(before);
  });

  it('refuses every write once committed or aborted', async () => {
    const closed = {
      code: 'UNKNOWN',
      message: 'this import batch is already committed or aborted',
    };
    const { store } = await freshStore();
    for (const finish of ['commit', 'abort'] as const) {
      const batch = store.startImport();
      await batch.writeBlob(config, [config.bytes]);
      await batch.writeBlob(layer, [layer.bytes]);
      await batch.writeManifest(name, image);
      await batch[finish]();
      await expect(batch.writeBlob(layer, [layer.bytes]), finish).rejects.toMatchObject(closed);
      await expect(
        batch.writeUnnamedBlob(layer.size, [layer.bytes] as unknown as AsyncIterable<Uint8Array>),
        finish,
      ).rejects.toMatchObject(closed);
      await expect(batch.writeManifest(name, image), finish).rejects.toMatchObject(closed);
      await expect(batch.tag(name, 'late' as Tag, image.digest), finish).rejects.toMatchObject(closed);
      await expect(batch.commit(), finish).rejects.toMatchObject(closed);
    }
    expect(await store.listTags(name, {})).toEqual([]);
  });
});
