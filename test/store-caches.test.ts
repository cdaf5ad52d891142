/**
 * LocalStore's two caches (store/manifest-cache.ts, store/lookup-cache.ts) never answer with what
 * the store no longer holds: manifest bytes a quarantine took away are not served after the manifest
 * is pushed again, and a second store on the same data directory (an export beside a running serve)
 * sees tags moved and manifests deleted by the first. Written for the index scope's survivors
 * (docs/mutation-testing.md); real stores on temp dirs.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requireDigest, type Digest } from '../src/oci/digest.js';
import { requireRepoName, type Tag } from '../src/oci/reference.js';
import { LocalStore } from '../src/store/local-store.js';
import { blobPath, flipByte } from './support/blob-file.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'wharf-store-caches-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const digestOf = (bytes: Buffer): Digest => requireDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
const manifestType = 'application/vnd.oci.image.manifest.v1+json';
const app = requireRepoName('caches/app');
const config = Buffer.from('{}');

/** Whether a manifest read answered exactly these bytes. */
function same(read: { bytes: Uint8Array } | undefined, want: Buffer): boolean {
  return read !== undefined && Buffer.compare(read.bytes, want) === 0;
}

async function* once(bytes: Buffer): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** An image manifest on the `{}` config, told apart by an annotation. */
function manifest(label: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: manifestType,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: 2 },
      layers: [],
      annotations: { label },
    }),
  );
}

/** Asks until `read` answers `want` (another process's write shows within a second); 15 s deadline. */
async function eventually<T>(read: () => Promise<T>, want: T): Promise<void> {
  const deadline = Date.now() + 15_000;
  let got = await read();
  while (got !== want && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    got = await read();
  }
  expect(got).toBe(want);
}

describe('manifest bytes cache', () => {
  it('after a quarantine, a manifest pushed again is served from its new file, not the damaged bytes read before', async () => {
    // Verified reads off (store.verifyReads: false): manifest reads are not hashed, so damaged bytes can be cached.
    const store = await LocalStore.open(root, { verifyReads: false });
    try {
      const good = manifest('one');
      const digest = digestOf(good);
      await store.putBlob(app, digestOf(config), once(config), config.length);
      await store.putManifest(app, 'v1' as Tag, good, manifestType);
      // The file rots on disk and a read serves it, so it is cached.
      await flipByte(blobPath(root, digest), 10);
      const damaged = await store.getManifest(app, 'v1' as Tag);
      expect(damaged?.bytes.byteLength).toBe(good.byteLength);
      expect(same(damaged, good)).toBe(false);

      expect((await store.quarantineBlob(digest, 'digest-mismatch'))?.droppedManifests).toEqual([`${app}@${digest}`]);
      expect(await store.getManifest(app, 'v1' as Tag)).toBeUndefined();

      await store.putManifest(app, 'v1' as Tag, good, manifestType);
      const served = await store.getManifest(app, 'v1' as Tag);
      expect(served?.digest).toBe(digest);
      expect(same(served, good)).toBe(true);
      expect(same(await store.getManifest(app, digest), good)).toBe(true);
    } finally {
      store.close();
    }
  });
});

describe('manifest lookups cache', () => {
  it('a write in the same store shows at once: a tag moved, a tag deleted, a manifest deleted', async () => {
    const store = await LocalStore.open(root);
    try {
      const one = manifest('one');
      const two = manifest('two');
      await store.putBlob(app, digestOf(config), once(config), config.length);
      await store.putManifest(app, 'v1' as Tag, one, manifestType);
      expect((await store.statManifest(app, 'v1' as Tag))?.digest).toBe(digestOf(one));
      expect((await store.statManifest(app, digestOf(one)))?.digest).toBe(digestOf(one));

      await store.putManifest(app, 'v1' as Tag, two, manifestType);
      expect((await store.statManifest(app, 'v1' as Tag))?.digest).toBe(digestOf(two));
      expect(same(await store.getManifest(app, 'v1' as Tag), two)).toBe(true);

      expect(await store.deleteManifest(app, 'v1' as Tag)).toBe(true);
      expect(await store.statManifest(app, 'v1' as Tag)).toBeUndefined();

      expect(await store.deleteManifest(app, digestOf(one))).toBe(true);
      expect(await store.statManifest(app, digestOf(one))).toBeUndefined();
      expect(await store.getManifest(app, digestOf(one))).toBeUndefined();
    } finally {
      store.close();
    }
  });

  it("a second store on the same data directory sees the first one's writes: a tag moved, a manifest deleted", async () => {
    const writer = await LocalStore.open(root);
    const one = manifest('one');
    const two = manifest('two');
    await writer.putBlob(app, digestOf(config), once(config), config.length);
    await writer.putManifest(app, 'v1' as Tag, one, manifestType);
    const reader = LocalStore.openReadOnly(root);
    try {
      // Both lookups are now remembered by the reader.
      expect((await reader.statManifest(app, 'v1' as Tag))?.digest).toBe(digestOf(one));
      expect(same(await reader.getManifest(app, digestOf(one)), one)).toBe(true);

      await writer.putManifest(app, 'v1' as Tag, two, manifestType);
      await eventually(async () => (await reader.statManifest(app, 'v1' as Tag))?.digest, digestOf(two));
      expect(same(await reader.getManifest(app, 'v1' as Tag), two)).toBe(true);

      expect(await writer.deleteManifest(app, digestOf(one))).toBe(true);
      await eventually(async () => (await reader.statManifest(app, digestOf(one)))?.digest, undefined);
      expect(await reader.getManifest(app, digestOf(one))).toBeUndefined();
    } finally {
      reader.close();
      writer.close();
    }
  });
});
