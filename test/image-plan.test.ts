/**
 * planImage on a real LocalStore: which manifests and blobs a transfer (export, copy, preload) takes
 * from an index when a platform filter is given. A child with no `platform` (an artifact, an
 * attestation some builders list without one) cannot be judged by the filter, so it is taken.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requireDigest } from '../src/oci/digest.js';
import { requireRepoName, type Tag } from '../src/oci/reference.js';
import { LocalStore } from '../src/store/local-store.js';
import type { ImageReader } from '../src/oci/image-transfer.js';
import { planImage } from '../src/transfer/image-plan.js';
import { makeImage, type ManifestBlob, type PlatformImage } from './support/make-image.js';
import { makeSignature } from './support/make-referrer.js';

const name = requireRepoName('team/plan');
let root: string;
let store: LocalStore;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'wharf-plan-'));
  store = await LocalStore.open(root);
});
afterEach(async () => {
  store.close();
  await rm(root, { recursive: true, force: true });
});

describe('planImage with a platform filter', () => {
  it('takes the chosen platform and every child without a platform, and leaves the others out', async () => {
    const image = await makeImage({
      seed: 'plan-platformless',
      layers: 1,
      layerSize: 512,
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' },
        { os: 'linux', architecture: 's390x' },
      ],
    });
    for (const [digest, bytes] of image.blobs) {
      await store.putBlob(name, requireDigest(digest), Readable.from([bytes]), bytes.byteLength);
    }
    const [amd64, arm64, s390x] = image.images as [PlatformImage, PlatformImage, PlatformImage];
    const child = (manifest: ManifestBlob, platform?: object): object => ({
      mediaType: manifest.mediaType,
      digest: manifest.digest,
      size: manifest.size,
      ...(platform === undefined ? {} : { platform }),
    });
    // arm64's manifest is listed with no platform: the filter cannot rule it out.
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          child(amd64.manifest, amd64.platform),
          child(arm64.manifest),
          child(s390x.manifest, s390x.platform),
        ],
      }),
    );
    for (const platform of [amd64, arm64, s390x]) {
      await store.putManifest(
        name,
        requireDigest(platform.manifest.digest),
        platform.manifest.bytes,
        platform.manifest.mediaType,
      );
    }
    await store.putManifest(name, 'v1' as Tag, index, 'application/vnd.oci.image.index.v1+json');

    const plan = await planImage(
      store,
      { name, reference: 'v1' as Tag },
      { platforms: (platform) => platform.architecture === 'amd64' },
    );
    expect(plan.manifests.map((m) => m.digest).sort()).toEqual(
      [amd64.manifest.digest, arm64.manifest.digest, plan.root.digest].sort(),
    );
    const wanted = [amd64, arm64].flatMap((p) => [p.config.digest, ...p.layers.map((l) => l.digest)]);
    expect(plan.blobs.map((b) => b.digest).sort()).toEqual([...new Set(wanted)].sort());
  });
});

// Round 5 of the planted-bug audit (docs/mutation-testing.md): nesting is bounded, 4 indexes deep.
describe('planImage nesting', () => {
  it('plans indexes nested 4 deep, and refuses 5', async () => {
    const image = await makeImage({ seed: 'plan-nested', layers: 1, layerSize: 256 });
    for (const [digest, bytes] of image.blobs) {
      await store.putBlob(name, requireDigest(digest), Readable.from([bytes]), bytes.byteLength);
    }
    const leaf = image.images[0] as PlatformImage;
    await store.putManifest(name, requireDigest(leaf.manifest.digest), leaf.manifest.bytes, leaf.manifest.mediaType);
    const indexType = 'application/vnd.oci.image.index.v1+json';
    let child = { mediaType: leaf.manifest.mediaType, digest: leaf.manifest.digest, size: leaf.manifest.size };
    const indexes: string[] = [];
    for (let level = 1; level <= 5; level++) {
      const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: indexType, manifests: [child] }));
      const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      await store.putManifest(name, requireDigest(digest), bytes, indexType);
      indexes.push(digest);
      child = { mediaType: indexType, digest, size: bytes.length };
    }
    const fourDeep = await planImage(store, { name, reference: requireDigest(indexes[3] ?? '') }, {});
    expect(fourDeep.manifests).toHaveLength(5);
    await expect(planImage(store, { name, reference: requireDigest(indexes[4] ?? '') }, {})).rejects.toMatchObject({
      code: 'MANIFEST_INVALID',
      message: `${indexes[0]}: indexes nested too deep`,
    });
  });
});

// Round 8b: a child the reader lacks is left out only when the copy asks for a sparse index (export
// of what preload --platform kept); `wharf copy` and preload stay strict by default.
describe('planImage with a child the reader does not hold', () => {
  it('refuses it by default, and leaves it out (the index kept byte for byte) with sparse', async () => {
    const image = await makeImage({
      seed: 'plan-sparse',
      layers: 1,
      layerSize: 512,
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' },
      ],
    });
    const [amd64, arm64] = image.images as [PlatformImage, PlatformImage];
    const batch = store.startImport({ allowSparseIndex: true });
    for (const digest of [amd64.config.digest, ...amd64.layers.map((l) => l.digest)]) {
      const bytes = image.blobs.get(digest) as Buffer;
      await batch.writeBlob({ digest: requireDigest(digest), size: bytes.byteLength }, [bytes]);
    }
    await batch.writeManifest(name, { ...amd64.manifest, digest: requireDigest(amd64.manifest.digest) });
    const index = image.index as ManifestBlob;
    await batch.writeManifest(name, { ...index, digest: requireDigest(index.digest) });
    await batch.tag(name, 'v1' as Tag, requireDigest(index.digest));
    await batch.commit();

    await expect(planImage(store, { name, reference: 'v1' as Tag })).rejects.toMatchObject({
      code: 'MANIFEST_UNKNOWN',
      detail: { digest: arm64.manifest.digest },
    });
    const plan = await planImage(store, { name, reference: 'v1' as Tag }, { sparse: true });
    expect(Buffer.from(plan.root.bytes).equals(index.bytes)).toBe(true);
    expect(plan.manifests.map((m) => m.digest)).toEqual([amd64.manifest.digest, index.digest]);
  });
});

// Round 8b: referrers are asked for every manifest taken, not only the root: an attestation or a
// signature of one platform's image names that image's manifest as its subject.
describe('planImage with referrers', () => {
  it("takes the referrers of an index's platform manifests, and of the index", async () => {
    const image = await makeImage({
      seed: 'plan-child-referrers',
      layers: 1,
      layerSize: 512,
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' },
      ],
    });
    const [amd64, arm64] = image.images as [PlatformImage, PlatformImage];
    const index = image.index as ManifestBlob;
    const ofChild = makeSignature(amd64.manifest, 'signed amd64');
    const ofIndex = makeSignature(index, 'signed the index');
    const batch = store.startImport();
    for (const source of [image, ofChild, ofIndex]) {
      for (const [digest, bytes] of source.blobs) {
        await batch.writeBlob({ digest: requireDigest(digest), size: bytes.byteLength }, [bytes]);
      }
    }
    for (const manifest of [amd64.manifest, arm64.manifest, index, ofChild.root, ofIndex.root]) {
      await batch.writeManifest(name, { ...manifest, digest: requireDigest(manifest.digest) });
    }
    await batch.tag(name, 'v1' as Tag, requireDigest(index.digest));
    await batch.commit();

    const plan = await planImage(store, { name, reference: 'v1' as Tag }, { referrers: true });
    expect(plan.referrers).toBe(2);
    expect(plan.manifests.map((m) => m.digest).sort()).toEqual(
      [amd64.manifest.digest, arm64.manifest.digest, index.digest, ofChild.root.digest, ofIndex.root.digest].sort(),
    );
  });
  it('takes a referrer a listing names twice once, and counts it once', async () => {
    const image = await makeImage({ seed: 'plan-referrer-twice', layers: 1, layerSize: 512 });
    const signature = makeSignature(image.root, 'signed once');
    const batch = store.startImport();
    for (const source of [image, signature]) {
      for (const [digest, bytes] of source.blobs) {
        await batch.writeBlob({ digest: requireDigest(digest), size: bytes.byteLength }, [bytes]);
      }
    }
    for (const manifest of [image.root, signature.root]) {
      await batch.writeManifest(name, { ...manifest, digest: requireDigest(manifest.digest) });
    }
    await batch.tag(name, 'v1' as Tag, requireDigest(image.root.digest));
    await batch.commit();
    // A registry's fallback tag index (or a sloppy referrers answer) may list a descriptor twice.
    const reader: ImageReader = {
      getManifest: (n, reference) => store.getManifest(n, reference),
      openBlob: (n, digest) => store.openBlob(n, digest),
      listReferrers: async (n, subject) => {
        const listed = await store.listReferrers(n, subject);
        return [...listed, ...listed];
      },
    };
    const plan = await planImage(reader, { name, reference: 'v1' as Tag }, { referrers: true });
    expect(plan.referrers).toBe(1);
    expect(plan.manifests.map((m) => m.digest)).toEqual([image.root.digest, signature.root.digest]);
  });
});

describe('planImage with layers a registry does not hold', () => {
  it('leaves out a non-distributable (foreign) layer and one with urls, and takes the others', async () => {
    const digestOf = (text: string): string => `sha256:${createHash('sha256').update(text).digest('hex')}`;
    const layer = (mediaType: string, text: string, urls?: string[]): object => ({
      mediaType,
      digest: digestOf(text),
      size: text.length,
      ...(urls === undefined ? {} : { urls }),
    });
    const bytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
        config: layer('application/vnd.docker.container.image.v1+json', '{}'),
        layers: [
          layer('application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', 'windows base layer'),
          layer('application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', 'licensed layer'),
          layer('application/vnd.oci.image.layer.v1.tar+gzip', 'elsewhere', ['https://example.invalid/l']),
          layer('application/vnd.oci.image.layer.v1.tar+gzip', 'ours'),
        ],
      }),
    );
    const manifest = {
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      digest: requireDigest(digestOf(bytes.toString())),
      size: bytes.byteLength,
      bytes,
    };
    // Only planImage's manifest reads are needed: the plan opens no blob.
    const reader: ImageReader = {
      getManifest: async () => manifest,
      openBlob: async () => undefined,
    };
    const plan = await planImage(reader, { name, reference: 'v1' as Tag });
    expect(plan.blobs.map((b) => b.digest)).toEqual([digestOf('{}'), digestOf('ours')]);
  });
});
