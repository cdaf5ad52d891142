/**
 * The transfer engine (src/transfer/copy-images.ts) in process, between two real stores: what a
 * copy reports and what a failed copy leaves (round 8b of planted bugs). The reader is the source
 * LocalStore; the writer is the target's ImportBatch. Where a test must see the order of events
 * (a blob still streaming when another fails), the reader and writer are wrapped, each call
 * delegating to the real store, to count chunks and to tell when a write failed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlobHandle } from '../src/oci/image-source.js';
import type { ImageReader, ImageWriter } from '../src/oci/image-transfer.js';
import type { RepoName, Tag } from '../src/oci/reference.js';
import { LocalStore } from '../src/store/local-store.js';
import { copyImages } from '../src/transfer/copy-images.js';
import { blobFiles } from './support/blob-file.js';
import { blobMaker, manifestOf } from './support/engine-content.js';
import { withDeadline } from './support/run.js';

const name = 'team/app' as RepoName;
const blob = blobMaker('transfer-engine-failures');

describe('copyImages between two stores', () => {
  let work: string;
  let count = 0;
  const stores: LocalStore[] = [];
  const config = blob('config', 300);
  const shared = blob('shared', 2048);
  const big = blob('big', 8 * 1024 * 1024);
  const small = blob('small', 4096);
  const first = manifestOf(config, [shared, big]);
  const second = manifestOf(config, [shared, small]);
  const third = manifestOf(config, [big, small]);

  async function freshStore(): Promise<{ store: LocalStore; dir: string }> {
    const dir = join(work, `store-${count++}`);
    const store = await LocalStore.open(dir);
    stores.push(store);
    return { store, dir };
  }

  /** A source holding `first`, `second` and `third` as team/app:one, :two and :three. */
  async function source(): Promise<LocalStore> {
    const { store } = await freshStore();
    const batch = store.startImport();
    for (const b of [config, shared, big, small]) await batch.writeBlob(b, [b.bytes]);
    await batch.writeManifest(name, first);
    await batch.tag(name, 'one' as Tag, first.digest);
    await batch.writeManifest(name, second);
    await batch.tag(name, 'two' as Tag, second.digest);
    await batch.writeManifest(name, third);
    await batch.tag(name, 'three' as Tag, third.digest);
    await batch.commit();
    return store;
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-transfer-failures-'));
  });

  afterAll(async () => {
    for (const store of stores) store.close();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('counts a blob two images share as sent once and skipped once', async () => {
    const from = await source();
    const { store: target } = await freshStore();
    const summary = await copyImages(from, target.startImport(), [
      { from: { name, reference: 'one' as Tag } },
      { from: { name, reference: 'two' as Tag } },
    ]);
    // config, shared, big for the first image; config and shared again and small for the second.
    expect(summary.blobsSent).toBe(4);
    expect(summary.blobsSkipped).toBe(2);
    expect(summary.bytes).toBe(config.size + shared.size + big.size + small.size);
    expect((await target.getManifest(name, 'two' as Tag))?.digest).toBe(second.digest);
  });

  it('stops the other blobs at their next chunk once one fails, and leaves the target as it was before it returns', async () => {
    const from = await source();
    const { store: target, dir } = await freshStore();
    const before = await blobFiles(dir);
    let markFailed: () => void = () => undefined;
    const smallFailed = new Promise<void>((resolve) => {
      markFailed = resolve;
    });
    let bigBytesRead = 0;
    // The reader: the source store, but the small layer's bytes come flipped, and the big layer
    // waits after its first chunk until the small one's write has failed.
    const reader: ImageReader = {
      getManifest: (n, reference) => from.getManifest(n, reference),
      openBlob: async (n, digest): Promise<BlobHandle | undefined> => {
        const handle = await from.openBlob(n, digest);
        if (handle === undefined) return undefined;
        if (digest === small.digest) {
          const wrong = Buffer.from(small.bytes);
          wrong[0] = (wrong[0] ?? 0) ^ 0xff;
          return { digest, size: handle.size, open: () => [wrong] as unknown as AsyncIterable<Uint8Array> };
        }
        if (digest !== big.digest) return handle;
        return {
          digest,
          size: handle.size,
          open: async function* () {
            let chunks = 0;
            for await (const chunk of handle.open()) {
              bigBytesRead += chunk.byteLength;
              yield chunk;
              if (++chunks === 1) {
                await withDeadline(smallFailed, 30_000, 'the small layer write failing');
                // Its rejection reaches the engine in microtasks; one macrotask later it has seen it.
                await new Promise((resolve) => setImmediate(resolve));
              }
            }
          },
        };
      },
    };
    const batch = target.startImport();
    let aborted = false;
    const writer: ImageWriter = {
      verifiesBlobs: batch.verifiesBlobs,
      hasBlob: (digest) => batch.hasBlob(digest),
      writeBlob: async (info, body) => {
        try {
          await batch.writeBlob(info, body);
        } catch (error) {
          if (info.digest === small.digest) markFailed();
          throw error;
        }
      },
      writeManifest: (n, content) => batch.writeManifest(n, content),
      tag: (n, reference, digest) => batch.tag(n, reference, digest),
      commit: () => batch.commit(),
      abort: async () => {
        await batch.abort();
        aborted = true;
      },
    };
    // The third image has both: they stream at once (4 blobs in flight).
    const copy = copyImages(reader, writer, [{ from: { name, reference: 'three' as Tag } }]);
    await expect(withDeadline(copy, 60_000, 'the copy')).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
    // Not a byte more of the big layer than the chunk in flight when the failure came.
    expect(bigBytesRead).toBeLessThan(big.size);
    // The abort finished before copyImages returned (a command then exits): nothing of the batch is left.
    expect(aborted).toBe(true);
    expect(await blobFiles(dir)).toEqual(before);
    expect(await target.getManifest(name, 'three' as Tag)).toBeUndefined();
  });
  it('aborts the writer on a failure that is no OciError too (a read that breaks), and leaves the target as it was', async () => {
    const from = await source();
    const { store: target, dir } = await freshStore();
    const before = await blobFiles(dir);
    // The small layer's read breaks half-way with a plain Error, as a file or socket read does.
    const reader: ImageReader = {
      getManifest: (n, reference) => from.getManifest(n, reference),
      openBlob: async (n, digest): Promise<BlobHandle | undefined> => {
        const handle = await from.openBlob(n, digest);
        if (handle === undefined || digest !== small.digest) return handle;
        return {
          digest,
          size: handle.size,
          open: async function* () {
            yield small.bytes.subarray(0, 100);
            throw new Error('EIO: the read broke');
          },
        };
      },
    };
    const batch = target.startImport();
    let aborted = false;
    const writer: ImageWriter = {
      verifiesBlobs: batch.verifiesBlobs,
      hasBlob: (digest) => batch.hasBlob(digest),
      writeBlob: (info, body) => batch.writeBlob(info, body),
      writeManifest: (n, content) => batch.writeManifest(n, content),
      tag: (n, reference, digest) => batch.tag(n, reference, digest),
      commit: () => batch.commit(),
      abort: async () => {
        await batch.abort();
        aborted = true;
      },
    };
    const copy = copyImages(reader, writer, [{ from: { name, reference: 'two' as Tag } }]);
    await expect(withDeadline(copy, 60_000, 'the copy')).rejects.toThrow('EIO: the read broke');
    expect(aborted).toBe(true);
    expect(await blobFiles(dir)).toEqual(before);
    expect(await target.getManifest(name, 'two' as Tag)).toBeUndefined();
  });
});
