/**
 * The transfer engine (src/transfer/copy-images.ts) in process, between real stores, on what the
 * transfer scope's first Stryker run found untested: a blob the target already has is neither read
 * nor sent, a blob whose size is not the manifest's is refused before a byte moves, a writer that
 * verifies gets the bytes as they come (hashed once) while one that does not gets a verified stream,
 * the exact events a listener receives (`--json` prints them; the progress bar reads them), the
 * error a blob still streaming gets once another failed, and the sparse and referrers options in
 * both directions. The reader is the source LocalStore, the writer the target's ImportBatch, each
 * wrapped only where a test must see or change a call; one writer is in memory (a writer that does
 * not verify, as an OCI layout or a registry is to the engine).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import type { BlobHandle } from '../src/oci/image-source.js';
import type { ImageReader, ImageWriter } from '../src/oci/image-transfer.js';
import type { RepoName, Tag } from '../src/oci/reference.js';
import type { TransferEvent } from '../src/oci/transfer-events.js';
import { LocalStore } from '../src/store/local-store.js';
import { copyImages } from '../src/transfer/copy-images.js';
import {
  blobMaker,
  content,
  descriptor,
  manifestOf,
  ociIndex,
  ociManifest,
  type TestBlob as Blob,
} from './support/engine-content.js';
import { withDeadline } from './support/run.js';

const name = 'team/mutants' as RepoName;
const blob = blobMaker('transfer-engine-mutants');

const config = blob('config', 300);
const l1 = blob('l1', 1500);
const l2 = blob('l2', 2500);
// Past one progress step (4 MiB): it reports its progress at least once.
const big = blob('big', 4 * 1024 * 1024 + 70_000);
const one = manifestOf(config, [l1, big]);
const two = manifestOf(config, [l1, l2]);
// A signature of `one` (a referrer: its subject is `one`).
const sigConfig = blob('sig-config', 120);
const sig = blob('sig', 700);
const signature = manifestOf(sigConfig, [sig], {
  artifactType: 'application/vnd.example.signature',
  subject: descriptor(ociManifest, one),
});
// An index of two platforms; the arm64 one is hidden by a reader in the sparse tests.
const armConfig = blob('arm-config', 140);
const armLayer = blob('arm-layer', 900);
const arm64 = manifestOf(armConfig, [armLayer]);
const index = content(ociIndex, {
  schemaVersion: 2,
  mediaType: ociIndex,
  manifests: [
    { ...descriptor(ociManifest, two), platform: { os: 'linux', architecture: 'amd64' } },
    { ...descriptor(ociManifest, arm64), platform: { os: 'linux', architecture: 'arm64' } },
  ],
});

let work: string;
let count = 0;
const stores: LocalStore[] = [];
let source: LocalStore;

async function freshStore(): Promise<LocalStore> {
  const store = await LocalStore.open(join(work, `store-${count++}`));
  stores.push(store);
  return store;
}

const ref = (reference: string): { from: { name: RepoName; reference: Tag } } => ({
  from: { name, reference: reference as Tag },
});

/** The source store, with every blob it opens recorded. */
function recordingReader(opened: Digest[], from: ImageReader = source): ImageReader {
  return {
    getManifest: (n, reference) => from.getManifest(n, reference),
    openBlob: (n, digest) => {
      opened.push(digest);
      return from.openBlob(n, digest);
    },
    listReferrers: (n, subject) => source.listReferrers(n, subject),
  };
}

/** The target's import batch, with every blob written and every hasBlob question recorded. */
function recordingWriter(target: LocalStore, log: { written: Digest[]; asked: Digest[] }): ImageWriter {
  const batch = target.startImport();
  return {
    verifiesBlobs: batch.verifiesBlobs,
    hasBlob: (digest) => {
      log.asked.push(digest);
      return batch.hasBlob(digest);
    },
    writeBlob: (info, body) => {
      log.written.push(info.digest);
      return batch.writeBlob(info, body);
    },
    writeManifest: (n, manifest) => batch.writeManifest(n, manifest),
    tag: (n, reference, digest) => batch.tag(n, reference, digest),
    commit: () => batch.commit(),
    abort: () => batch.abort(),
  };
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-transfer-mutants-'));
  source = await freshStore();
  const batch = source.startImport();
  for (const b of [config, l1, l2, big, sigConfig, sig, armConfig, armLayer]) await batch.writeBlob(b, [b.bytes]);
  for (const [manifest, tag] of [
    [one, 'one'],
    [two, 'two'],
    [signature, undefined],
    [arm64, undefined],
    [index, 'multi'],
  ] as const) {
    await batch.writeManifest(name, manifest);
    if (tag !== undefined) await batch.tag(name, tag as Tag, manifest.digest);
  }
  await batch.commit();
});

afterAll(async () => {
  for (const store of stores) store.close();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe('copyImages to a target that already has some blobs', () => {
  it('neither reads nor sends them: they are counted and reported as skipped', async () => {
    const target = await freshStore();
    // The target holds `two` (config, l1, l2) from an earlier copy.
    await copyImages(source, target.startImport(), [ref('two')]);

    const opened: Digest[] = [];
    const log = { written: [] as Digest[], asked: [] as Digest[] };
    const events: TransferEvent[] = [];
    const summary = await copyImages(recordingReader(opened), recordingWriter(target, log), [ref('one')], {
      onEvent: (event) => events.push(event),
    });
    expect(opened).toEqual([big.digest]);
    expect(log.written).toEqual([big.digest]);
    expect(summary).toMatchObject({ blobsSent: 1, blobsSkipped: 2, bytes: big.size });
    expect(events.filter((e) => e.type === 'blob-skipped')).toEqual([
      { type: 'blob-skipped', image: 'team/mutants:one', digest: config.digest, size: config.size },
      { type: 'blob-skipped', image: 'team/mutants:one', digest: l1.digest, size: l1.size },
    ]);
    expect((await target.getManifest(name, 'one' as Tag))?.digest).toBe(one.digest);
  });
});

describe('copyImages of two images that share blobs', () => {
  it('asks the writer about each blob once: a later image waits on the first send, never asks again', async () => {
    const target = await freshStore();
    const opened: Digest[] = [];
    const log = { written: [] as Digest[], asked: [] as Digest[] };
    const summary = await copyImages(recordingReader(opened), recordingWriter(target, log), [ref('one'), ref('two')]);
    // One HEAD per blob to a registry target: config and l1 are not asked about a second time.
    expect([...log.asked].sort()).toEqual([config.digest, l1.digest, big.digest, l2.digest].sort());
    expect([...log.written].sort()).toEqual([...log.asked].sort());
    expect(summary).toMatchObject({ blobsSent: 4, blobsSkipped: 2 });
  });

  it('tells a listener every step, in order, with its exact fields', async () => {
    const target = await freshStore();
    const events: TransferEvent[] = [];
    await copyImages(source, target.startImport(), [ref('one'), ref('two')], {
      concurrency: 1,
      onEvent: (event) => events.push(event),
    });
    const imageOne = 'team/mutants:one';
    const imageTwo = 'team/mutants:two';
    const progress = events.filter((e) => e.type === 'blob-progress');
    expect(progress.length).toBeGreaterThan(0);
    for (const [i, event] of progress.entries()) {
      const { done: bytesDone, ...rest } = event as TransferEvent & { done: number };
      expect(rest).toEqual({ type: 'blob-progress', image: imageOne, digest: big.digest, size: big.size });
      expect(bytesDone).toBeGreaterThanOrEqual(4 * 1024 * 1024 * (i + 1));
      expect(bytesDone).toBeLessThanOrEqual(big.size);
    }
    const start = (b: Blob, image: string): TransferEvent => ({
      type: 'blob-start',
      image,
      digest: b.digest,
      size: b.size,
    });
    const done = (b: Blob, image: string): TransferEvent => ({
      type: 'blob-done',
      image,
      digest: b.digest,
      size: b.size,
    });
    const skipped = (b: Blob, image: string): TransferEvent => ({
      type: 'blob-skipped',
      image,
      digest: b.digest,
      size: b.size,
    });
    const oneBytes = config.size + l1.size + big.size;
    const twoBytes = config.size + l1.size + l2.size;
    expect(events.filter((e) => e.type !== 'blob-progress')).toEqual([
      { type: 'image-start', image: imageOne, digest: one.digest, blobs: 3, bytes: oneBytes },
      start(config, imageOne),
      done(config, imageOne),
      start(l1, imageOne),
      done(l1, imageOne),
      start(big, imageOne),
      done(big, imageOne),
      { type: 'image-done', image: imageOne, digest: one.digest, bytes: oneBytes },
      { type: 'image-start', image: imageTwo, digest: two.digest, blobs: 3, bytes: twoBytes },
      skipped(config, imageTwo),
      skipped(l1, imageTwo),
      start(l2, imageTwo),
      done(l2, imageTwo),
      { type: 'image-done', image: imageTwo, digest: two.digest, bytes: twoBytes },
    ]);
    // The progress of the big layer comes between its start and its done.
    const at = (e: TransferEvent): number => events.indexOf(e);
    const bigStart = events.findIndex((e) => e.type === 'blob-start' && e.digest === big.digest);
    const bigDone = events.findIndex((e) => e.type === 'blob-done' && e.digest === big.digest);
    for (const event of progress) expect(at(event) > bigStart && at(event) < bigDone).toBe(true);
  });
});

describe('copyImages refuses a blob the reader cannot give as the manifest names it', () => {
  it('a blob the reader does not have: BLOB_UNKNOWN naming the image and the digest', async () => {
    const target = await freshStore();
    const reader: ImageReader = {
      getManifest: (n, reference) => source.getManifest(n, reference),
      openBlob: async (n, digest) => (digest === l1.digest ? undefined : source.openBlob(n, digest)),
    };
    const copy = copyImages(reader, target.startImport(), [ref('one')], { concurrency: 1 });
    const error = await withDeadline(copy, 60_000, 'the copy').catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'BLOB_UNKNOWN',
      message: `team/mutants:one: blob ${l1.digest} is not available`,
      detail: { digest: l1.digest },
    });
  });

  it('a blob whose size is not the manifest says: SIZE_INVALID before a byte is written', async () => {
    for (const delta of [1, -1]) {
      const target = await freshStore();
      const log = { written: [] as Digest[], asked: [] as Digest[] };
      // Right bytes, wrong size: the size check alone refuses it (the bytes would verify).
      const reader: ImageReader = {
        getManifest: (n, reference) => source.getManifest(n, reference),
        openBlob: async (n, digest): Promise<BlobHandle | undefined> => {
          const handle = await source.openBlob(n, digest);
          return handle === undefined || digest !== l1.digest ? handle : { ...handle, size: handle.size + delta };
        },
      };
      const copy = copyImages(reader, recordingWriter(target, log), [ref('one')], { concurrency: 1 });
      const error = await withDeadline(copy, 60_000, 'the copy').catch((e: unknown) => e);
      expect(error).toMatchObject({
        code: 'SIZE_INVALID',
        message: `team/mutants:one: blob ${l1.digest} is ${l1.size + delta} bytes, the manifest says ${l1.size}`,
      });
      expect(log.written).not.toContain(l1.digest);
      expect(await target.getManifest(name, 'one' as Tag)).toBeUndefined();
    }
  });
});

/** A reader that gives l1 in three chunks, the last with one byte flipped. */
function flippedL1Reader(): ImageReader {
  const parts = [l1.bytes.subarray(0, 500), l1.bytes.subarray(500, 1000), Buffer.from(l1.bytes.subarray(1000))];
  const last = parts[2] as Buffer;
  last[0] = (last[0] as number) ^ 0xff;
  return {
    getManifest: (n, reference) => source.getManifest(n, reference),
    openBlob: async (n, digest): Promise<BlobHandle | undefined> => {
      const handle = await source.openBlob(n, digest);
      if (handle === undefined || digest !== l1.digest) return handle;
      return {
        digest,
        size: handle.size,
        open: async function* () {
          yield* parts;
        },
      };
    },
  };
}

describe('copyImages and a writer that does not verify what it takes', () => {
  it('gives it a verified stream: wrong bytes end in DIGEST_INVALID, never in a clean end', async () => {
    const kept = new Map<Digest, Buffer>();
    // An in-memory writer that trusts its body (as a layout or registry writer does): keeps whatever ends cleanly.
    const writer: ImageWriter = {
      hasBlob: async (digest) => kept.has(digest),
      writeBlob: async (info, body) => {
        const chunks: Uint8Array[] = [];
        for await (const chunk of body) chunks.push(chunk);
        kept.set(info.digest, Buffer.concat(chunks));
      },
      writeManifest: async () => undefined,
      tag: async () => undefined,
      commit: async () => undefined,
      abort: async () => undefined,
    };
    const copy = copyImages(flippedL1Reader(), writer, [ref('two')], { concurrency: 1 });
    const error = await withDeadline(copy, 60_000, 'the copy').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'DIGEST_INVALID' });
    expect(kept.has(l1.digest)).toBe(false);
  });
});

describe('copyImages and a writer that verifies what it takes (the store)', () => {
  it('gives it the bytes as they come, not through a second hash that holds the last chunk back', async () => {
    const target = await freshStore();
    const batch = target.startImport();
    const seen: number[] = [];
    const writer: ImageWriter = {
      verifiesBlobs: batch.verifiesBlobs,
      hasBlob: (digest) => batch.hasBlob(digest),
      writeBlob: (info, body) => {
        if (info.digest !== l1.digest) return batch.writeBlob(info, body);
        return batch.writeBlob(
          info,
          (async function* () {
            for await (const chunk of body) {
              seen.push(chunk.byteLength);
              yield chunk;
            }
          })(),
        );
      },
      writeManifest: (n, manifest) => batch.writeManifest(n, manifest),
      tag: (n, reference, digest) => batch.tag(n, reference, digest),
      commit: () => batch.commit(),
      abort: () => batch.abort(),
    };
    const copy = copyImages(flippedL1Reader(), writer, [ref('two')], { concurrency: 1 });
    await expect(withDeadline(copy, 60_000, 'the copy')).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
    // All three chunks reached the store, which found the mismatch itself.
    expect(seen).toEqual([500, 500, l1.size - 1000]);
  });
});

describe('copyImages once a blob failed while another streams', () => {
  it('ends the other body with UNKNOWN "stopped: another blob of the copy failed"', async () => {
    const target = await freshStore();
    const batch = target.startImport();
    let markFailed: () => void = () => undefined;
    const l1Failed = new Promise<void>((resolve) => {
      markFailed = resolve;
    });
    const flipped = flippedL1Reader();
    const reader: ImageReader = {
      getManifest: (n, reference) => source.getManifest(n, reference),
      openBlob: async (n, digest): Promise<BlobHandle | undefined> => {
        const handle = await flipped.openBlob(n, digest);
        if (handle === undefined || digest !== big.digest) return handle;
        return {
          digest,
          size: handle.size,
          open: async function* () {
            let chunks = 0;
            for await (const chunk of handle.open()) {
              yield chunk;
              if (++chunks === 1) {
                await withDeadline(l1Failed, 30_000, 'the l1 write failing');
                await new Promise((resolve) => setImmediate(resolve));
              }
            }
          },
        };
      },
    };
    let bigError: unknown;
    const writer: ImageWriter = {
      verifiesBlobs: batch.verifiesBlobs,
      hasBlob: (digest) => batch.hasBlob(digest),
      writeBlob: async (info, body) => {
        try {
          await batch.writeBlob(info, body);
        } catch (error) {
          if (info.digest === l1.digest) markFailed();
          if (info.digest === big.digest) bigError = error;
          throw error;
        }
      },
      writeManifest: (n, manifest) => batch.writeManifest(n, manifest),
      tag: (n, reference, digest) => batch.tag(n, reference, digest),
      commit: () => batch.commit(),
      abort: () => batch.abort(),
    };
    const copy = copyImages(reader, writer, [ref('one')]);
    // The copy fails with the first error, the one of l1.
    await expect(withDeadline(copy, 60_000, 'the copy')).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
    expect(bigError).toMatchObject({ code: 'UNKNOWN', message: 'stopped: another blob of the copy failed' });
  });
});

describe('copyImages of an index whose source lacks a platform', () => {
  const lacking: ImageReader = {
    getManifest: async (n, reference) => (reference === arm64.digest ? undefined : source.getManifest(n, reference)),
    openBlob: (n, digest) => source.openBlob(n, digest),
  };

  it('refuses it by default (MANIFEST_UNKNOWN)', async () => {
    const target = await freshStore();
    const copy = copyImages(lacking, target.startImport(), [ref('multi')]);
    await expect(withDeadline(copy, 60_000, 'the copy')).rejects.toMatchObject({
      code: 'MANIFEST_UNKNOWN',
      detail: { digest: arm64.digest },
    });
    await expect(copyImages(lacking, target.startImport(), [ref('multi')], { sparse: false })).rejects.toMatchObject({
      code: 'MANIFEST_UNKNOWN',
    });
  });

  it('copies it as it is with sparse: the platform it has, the index byte for byte', async () => {
    const target = await freshStore();
    // The store takes a sparse index only when asked (preload --platform does).
    const summary = await copyImages(lacking, target.startImport({ allowSparseIndex: true }), [ref('multi')], {
      sparse: true,
    });
    expect(summary.images).toEqual([{ ref: 'team/mutants:multi', digest: index.digest }]);
    const copied = await target.getManifest(name, 'multi' as Tag);
    expect(Buffer.from(copied?.bytes ?? []).equals(index.bytes)).toBe(true);
    expect(await target.getManifest(name, two.digest)).toBeDefined();
    expect(await target.getManifest(name, arm64.digest)).toBeUndefined();
  });
});

describe('copyImages and referrers', () => {
  it('leaves them out by default', async () => {
    const target = await freshStore();
    const summary = await copyImages(recordingReader([]), target.startImport(), [ref('one')]);
    expect(summary.referrers).toBe(0);
    expect(await target.getManifest(name, signature.digest)).toBeUndefined();
  });

  it('copies them with referrers, and counts them', async () => {
    const target = await freshStore();
    const summary = await copyImages(recordingReader([]), target.startImport(), [ref('one'), ref('two')], {
      referrers: true,
    });
    expect(summary.referrers).toBe(1);
    expect((await target.getManifest(name, signature.digest))?.digest).toBe(signature.digest);
    expect((await target.listReferrers(name, one.digest)).map((d) => d.digest)).toEqual([signature.digest]);
  });
});
