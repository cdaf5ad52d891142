/**
 * What `wharf ls` shows (store/image-listing.ts), in process: a real LocalStore on a temp directory
 * filled through its own write paths (pushes, and fetched manifests as the mirror keeps them), then
 * listed through LocalStore.openReadOnly as `wharf ls` does, and each row compared whole: kind,
 * platforms here and missing, bytes counted once, tag source and times, last pull. The last-read
 * times are written into the index directly (as the batched flush would), so each is exact.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireDigest, type Digest } from '../src/oci/digest.js';
import { mediaTypes } from '../src/oci/media-types.js';
import { requireRepoName, type RepoName, type Tag } from '../src/oci/reference.js';
import { indexPath } from '../src/store/database.js';
import { formatPlatform, type ImageListing } from '../src/store/image-listing.js';
import { LocalStore } from '../src/store/local-store.js';
import { makeImage, type ManifestBlob, type PlatformImage, type TestImage } from './support/make-image.js';

const app = requireRepoName('team/app');
const odd = requireRepoName('team/odd');
const edges = requireRepoName('team/platforms');
const sparse = requireRepoName('team/sparse');

function digestOf(bytes: Buffer): Digest {
  return requireDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
}

async function* once(bytes: Buffer): AsyncGenerator<Uint8Array> {
  yield bytes;
}

async function putBlobs(store: LocalStore, name: RepoName, blobs: Iterable<Buffer>): Promise<void> {
  for (const bytes of blobs) await store.putBlob(name, digestOf(bytes), once(bytes), bytes.byteLength);
}

/** Bytes of the configs and layers of `images`. */
function blobBytes(...images: PlatformImage[]): number {
  return images.reduce((sum, i) => sum + i.config.size + i.layers.reduce((s, l) => s + l.size, 0), 0);
}

function blobsOf(image: TestImage, platform: PlatformImage): Buffer[] {
  return [platform.config, ...platform.layers].map((d) => {
    const bytes = image.blobs.get(d.digest);
    if (bytes === undefined) throw new Error(`no blob ${d.digest}`);
    return bytes;
  });
}

function only(image: TestImage): PlatformImage {
  const first = image.images[0];
  if (first === undefined || image.images.length !== 1) throw new Error('one platform expected');
  return first;
}

/** An image manifest naming `config` (of `configType`) and one small layer; both blobs are returned. */
function imageWithConfig(config: Buffer, configType: string = 'application/vnd.oci.image.config.v1+json') {
  const layer = Buffer.from(`layer beside a ${config.byteLength}-byte config`);
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: mediaTypes.ociManifest,
      config: { mediaType: configType, digest: digestOf(config), size: config.byteLength },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(layer), size: layer.length }],
    }),
  );
  return { bytes, digest: digestOf(bytes), blobs: [config, layer], size: bytes.length + config.length + layer.length };
}

/** A config of exactly `size` bytes for linux/s390x (padded with a field no one reads). */
function configOfSize(size: number): Buffer {
  const head = '{"os":"linux","architecture":"s390x","pad":"';
  const tail = '"}';
  return Buffer.from(head + 'x'.repeat(size - head.length - tail.length) + tail);
}

function descriptor(manifest: ManifestBlob, platform?: object): object {
  return {
    mediaType: manifest.mediaType,
    digest: manifest.digest,
    size: manifest.size,
    ...(platform === undefined ? {} : { platform }),
  };
}

function row(fields: Partial<ImageListing> & Pick<ImageListing, 'repository' | 'digest'>): ImageListing {
  return {
    tag: undefined,
    mediaType: mediaTypes.ociManifest,
    kind: 'manifest',
    platforms: [],
    missingPlatforms: [],
    size: 0,
    source: undefined,
    updatedAt: undefined,
    lastPulledAt: undefined,
    ...fields,
  };
}

let work: string;
/** When the test began writing: every tag's updatedAt is at or after it. */
let before: number;
const expected: ImageListing[] = [];
/** Filled in beforeAll: the rows the test expects of team/sparse (for the repository filter). */
let sparseRows: ImageListing[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-image-listing-'));
  const store = await LocalStore.open(work);
  before = Date.now();
  const withTime = (r: ImageListing): ImageListing => ({ ...r, updatedAt: expect.any(Number) as number });

  // team/app: a two-platform index (v1), a single arm/v7 image (v2), and a manifest pushed by digest only.
  const multi = await makeImage({
    seed: 'listing-multi',
    layers: 1,
    layerSize: 256,
    platforms: [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ],
  });
  const [amd64, arm64] = multi.images as [PlatformImage, PlatformImage];
  const arm = await makeImage({
    seed: 'listing-arm',
    layers: 2,
    layerSize: 128,
    platforms: [{ os: 'linux', architecture: 'arm', variant: 'v7' }],
  });
  const loose = await makeImage({ seed: 'listing-loose', layers: 1, layerSize: 64 });
  await putBlobs(store, app, [...multi.blobs.values(), ...arm.blobs.values(), ...loose.blobs.values()]);
  for (const image of multi.images) {
    await store.putManifest(app, image.manifest.digest as Digest, image.manifest.bytes, image.manifest.mediaType);
  }
  const index = multi.index as ManifestBlob;
  await store.putManifest(app, 'v1' as Tag, index.bytes, index.mediaType);
  await store.putManifest(app, 'v2' as Tag, arm.root.bytes, arm.root.mediaType);
  await store.putManifest(app, loose.root.digest as Digest, loose.root.bytes, loose.root.mediaType);
  expected.push(
    withTime(
      row({
        repository: app.toString(),
        tag: 'v1',
        digest: index.digest as Digest,
        mediaType: mediaTypes.ociIndex,
        kind: 'index',
        platforms: ['linux/amd64', 'linux/arm64/v8'],
        size: index.size + amd64.manifest.size + arm64.manifest.size + blobBytes(amd64, arm64),
        source: 'pushed',
        // The last pull of the index or of a platform here: the later of 1000 and 3000.
        lastPulledAt: 3000,
      }),
    ),
    withTime(
      row({
        repository: app.toString(),
        tag: 'v2',
        digest: arm.root.digest as Digest,
        platforms: ['linux/arm/v7'],
        size: arm.root.size + blobBytes(only(arm)),
        source: 'pushed',
        lastPulledAt: 2000,
      }),
    ),
    row({
      repository: app.toString(),
      digest: loose.root.digest as Digest,
      platforms: ['linux/amd64'],
      size: loose.root.size + blobBytes(only(loose)),
    }),
  );

  // team/odd: an image manifest an upstream served as application/json (kept as served: not an image
  // to wharf, only its own bytes count), and an index whose bytes do not parse.
  const json = await makeImage({ seed: 'listing-json', layers: 1, layerSize: 64 });
  await putBlobs(store, odd, json.blobs.values());
  await store.putFetchedManifest(
    odd,
    { digest: json.root.digest as Digest, mediaType: 'application/json', bytes: json.root.bytes },
    'as-json' as Tag,
  );
  const garbled = Buffer.from('{"schemaVersion": 2, "manifests": [');
  await store.putFetchedManifest(
    odd,
    { digest: digestOf(garbled), mediaType: mediaTypes.ociIndex, bytes: garbled },
    'garbled' as Tag,
  );
  expected.push(
    withTime(
      row({
        repository: odd.toString(),
        tag: 'as-json',
        digest: json.root.digest as Digest,
        mediaType: 'application/json',
        kind: 'other',
        size: json.root.size,
        source: 'fetched',
      }),
    ),
    withTime(
      row({
        repository: odd.toString(),
        tag: 'garbled',
        digest: digestOf(garbled),
        mediaType: mediaTypes.ociIndex,
        kind: 'index',
        size: garbled.length,
        source: 'fetched',
      }),
    ),
  );

  // team/platforms: what a config says, or does not, about its platform.
  const configs: [string, Buffer, string[], string?][] = [
    ['artifact', Buffer.from('{}'), [], mediaTypes.ociEmpty],
    ['at-4mib', configOfSize(4 * 1024 * 1024), ['linux/s390x']],
    ['empty-variant', Buffer.from('{"os":"linux","architecture":"amd64","variant":""}'), ['linux/amd64']],
    ['no-arch', Buffer.from('{"os":"linux"}'), []],
    ['no-os', Buffer.from('{"architecture":"amd64"}'), []],
    // Over 4 MiB the config is not read: a platform it names is not shown.
    ['over-4mib', configOfSize(4 * 1024 * 1024 + 1), []],
  ];
  for (const [tag, config, platforms, configType] of configs) {
    const image = imageWithConfig(config, configType);
    await putBlobs(store, edges, image.blobs);
    await store.putManifest(edges, tag as Tag, image.bytes, mediaTypes.ociManifest);
    expected.push(
      withTime(
        row({ repository: edges.toString(), tag, digest: image.digest, platforms, size: image.size, source: 'pushed' }),
      ),
    );
  }
  // A fetched manifest whose config never came: no platform, and its own bytes and the layer here.
  const partial = imageWithConfig(Buffer.from('{"os":"linux","architecture":"riscv64"}'));
  await putBlobs(store, edges, partial.blobs.slice(1));
  await store.putFetchedManifest(
    edges,
    { digest: partial.digest, mediaType: mediaTypes.ociManifest, bytes: partial.bytes },
    'without-config' as Tag,
  );
  expected.push(
    withTime(
      row({
        repository: edges.toString(),
        tag: 'without-config',
        digest: partial.digest,
        size: partial.bytes.length + (partial.blobs[1]?.length ?? 0),
        source: 'fetched',
      }),
    ),
  );

  // team/sparse: a fetched index with amd64 here, arm64/v8 not, an attestation (unknown/unknown, not a
  // platform) and a child listed with no platform (named by its digest).
  const pair = await makeImage({
    seed: 'listing-sparse',
    layers: 1,
    layerSize: 128,
    platforms: [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ],
  });
  const [here, away] = pair.images as [PlatformImage, PlatformImage];
  const attestation = await makeImage({ seed: 'listing-attestation', layers: 1, layerSize: 32 });
  const bare = await makeImage({ seed: 'listing-bare', layers: 1, layerSize: 48 });
  await putBlobs(store, sparse, [...blobsOf(pair, here), ...attestation.blobs.values(), ...bare.blobs.values()]);
  for (const manifest of [here.manifest, attestation.root, bare.root]) {
    await store.putFetchedManifest(sparse, {
      digest: manifest.digest as Digest,
      mediaType: manifest.mediaType,
      bytes: manifest.bytes,
    });
  }
  const sparseIndex = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: mediaTypes.ociIndex,
      manifests: [
        descriptor(here.manifest, here.platform),
        descriptor(away.manifest, away.platform),
        descriptor(attestation.root, { os: 'unknown', architecture: 'unknown' }),
        descriptor(bare.root),
      ],
    }),
  );
  await store.putFetchedManifest(
    sparse,
    { digest: digestOf(sparseIndex), mediaType: mediaTypes.ociIndex, bytes: sparseIndex },
    'latest' as Tag,
  );
  sparseRows = [
    withTime(
      row({
        repository: sparse.toString(),
        tag: 'latest',
        digest: digestOf(sparseIndex),
        mediaType: mediaTypes.ociIndex,
        kind: 'index',
        platforms: ['linux/amd64', bare.root.digest.slice(0, 19)],
        missingPlatforms: ['linux/arm64/v8'],
        size: sparseIndex.length + here.manifest.size + bare.root.size + blobBytes(here, only(bare)),
        source: 'fetched',
      }),
    ),
  ];
  expected.push(...sparseRows);
  store.close();

  // Last reads, as the batched flush writes them (content-guard.ts): the index and amd64 of v1, and v2;
  // v1's arm64 never read. A config read does not count as a pull of its image.
  const db = new Database(indexPath(work));
  try {
    const setRead = db.prepare('UPDATE blobs SET accessed_at = ? WHERE digest = ?');
    setRead.run(1000, index.digest);
    setRead.run(3000, amd64.manifest.digest);
    setRead.run(2000, arm.root.digest);
    setRead.run(9000, only(arm).config.digest);
  } finally {
    db.close();
  }
}, 120_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('listImages', () => {
  it('lists each tagged image and each untagged root, by repository then tag (untagged last), exactly', async () => {
    // Listed here, not in beforeAll: a listing that throws must fail this test (a hook's failure only
    // skips the tests, which the mutation runner counts as a survivor).
    const reader = LocalStore.openReadOnly(work);
    let listed: ImageListing[];
    try {
      listed = await reader.listImages();
    } finally {
      reader.close();
    }
    expect(listed).toEqual(expected);
    for (const r of listed.filter((l) => l.tag !== undefined)) {
      expect(r.updatedAt).toBeGreaterThanOrEqual(before);
      expect(r.updatedAt).toBeLessThanOrEqual(Date.now());
    }
  });

  it('keeps only the repositories the pattern matches', async () => {
    const reader = LocalStore.openReadOnly(work);
    try {
      expect(await reader.listImages((name) => name === sparse.toString())).toEqual(sparseRows);
      expect(await reader.listImages(() => false)).toEqual([]);
    } finally {
      reader.close();
    }
  });

  it('still lists a root manifest whose blob row is gone (what verify reports as a broken reference), never pulled', async () => {
    const loose = expected.find((r) => r.repository === app.toString() && r.tag === undefined);
    if (loose === undefined) throw new Error('the untagged root is expected');
    const db = new Database(indexPath(work));
    try {
      // Without the foreign key checks wharf's own connections keep: the damage verify finds.
      db.pragma('foreign_keys = OFF');
      db.prepare('DELETE FROM blobs WHERE digest = ?').run(loose.digest);
    } finally {
      db.close();
    }
    const reader = LocalStore.openReadOnly(work);
    try {
      const rows = await reader.listImages((name) => name === app.toString());
      expect(rows.find((r) => r.tag === undefined)).toEqual(loose);
    } finally {
      reader.close();
    }
  });
});

describe('formatPlatform', () => {
  it('os/architecture, and /variant only when there is one', () => {
    expect(formatPlatform({ os: 'linux', architecture: 'arm64', variant: 'v8' })).toBe('linux/arm64/v8');
    expect(formatPlatform({ os: 'linux', architecture: 'amd64' })).toBe('linux/amd64');
    expect(formatPlatform({ os: 'windows', architecture: 'amd64', variant: '' })).toBe('windows/amd64');
  });
});
