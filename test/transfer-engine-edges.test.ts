/**
 * The transfer engine (src/transfer/copy-images.ts, image-plan.ts) and its progress counting, in
 * process, between real stores (round 9b of planted bugs): what must not happen once a blob failed
 * (the blobs still waiting for a place are never opened), a commit that fails with a plain Error, a
 * layer two platforms share, a referrer the source lists but lacks, a manifest named by a sha512
 * digest, and how often a long blob reports its progress. The reader is the source LocalStore,
 * wrapped only where a test must see or change what it gives; the writer is the target's ImportBatch.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countProgress } from '../src/oci/count-progress.js';
import type { Digest } from '../src/oci/digest.js';
import type { ImageReader, ImageWriter } from '../src/oci/image-transfer.js';
import type { RepoName, Tag } from '../src/oci/reference.js';
import { LocalStore } from '../src/store/local-store.js';
import { copyImages } from '../src/transfer/copy-images.js';
import { planImage } from '../src/transfer/image-plan.js';
import { blobFiles } from './support/blob-file.js';
import { blobMaker, content, manifestOf, ociIndex, ociManifest } from './support/engine-content.js';
import { withDeadline } from './support/run.js';

const name = 'team/edges' as RepoName;
const blob = blobMaker('transfer-engine-edges');

const config = blob('config', 200);
const layers = [blob('l1', 1024), blob('l2', 2048), blob('l3', 3072)];
const single = manifestOf(config, layers);
// Two platforms that share their base layer (as every image built FROM the same base does).
const base = blob('base', 4096);
const amd64Config = blob('amd64-config', 210);
const arm64Config = blob('arm64-config', 220);
const amd64 = manifestOf(amd64Config, [base, blob('amd64-top', 512)]);
const arm64 = manifestOf(arm64Config, [base, blob('arm64-top', 640)]);
const index = content(ociIndex, {
  schemaVersion: 2,
  mediaType: ociIndex,
  manifests: [
    {
      mediaType: ociManifest,
      digest: amd64.digest,
      size: amd64.size,
      platform: { os: 'linux', architecture: 'amd64' },
    },
    {
      mediaType: ociManifest,
      digest: arm64.digest,
      size: arm64.size,
      platform: { os: 'linux', architecture: 'arm64' },
    },
  ],
});
const multiBlobs = [base, amd64Config, arm64Config, blob('amd64-top', 512), blob('arm64-top', 640)];

let work: string;
let count = 0;
const stores: LocalStore[] = [];
let source: LocalStore;

async function freshStore(): Promise<{ store: LocalStore; dir: string }> {
  const dir = join(work, `store-${count++}`);
  const store = await LocalStore.open(dir);
  stores.push(store);
  return { store, dir };
}

/** The target's import batch, its commit and abort observed (and the commit made to fail when asked). */
function observedBatch(
  target: LocalStore,
  failCommit?: Error,
): { writer: ImageWriter; aborted: () => unknown[] | undefined } {
  const batch = target.startImport();
  let abortedWith: unknown[] | undefined;
  const writer: ImageWriter = {
    verifiesBlobs: batch.verifiesBlobs,
    hasBlob: (digest) => batch.hasBlob(digest),
    writeBlob: (info, body) => batch.writeBlob(info, body),
    writeManifest: (n, manifest) => batch.writeManifest(n, manifest),
    tag: (n, reference, digest) => batch.tag(n, reference, digest),
    commit: async () => {
      if (failCommit !== undefined) throw failCommit;
      await batch.commit();
    },
    abort: async (...args: unknown[]) => {
      await batch.abort();
      abortedWith = args;
    },
  };
  return { writer, aborted: () => abortedWith };
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-transfer-edges-'));
  ({ store: source } = await freshStore());
  const batch = source.startImport();
  for (const b of [config, ...layers, ...multiBlobs]) await batch.writeBlob(b, [b.bytes]);
  await batch.writeManifest(name, single);
  await batch.tag(name, 'single' as Tag, single.digest);
  for (const manifest of [amd64, arm64, index]) await batch.writeManifest(name, manifest);
  await batch.tag(name, 'multi' as Tag, index.digest);
  await batch.commit();
});

afterAll(async () => {
  for (const store of stores) store.close();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe('copyImages once a blob failed', () => {
  it('never opens the blobs still waiting for a place', async () => {
    const { store: target } = await freshStore();
    const opened: Digest[] = [];
    // The config (the plan's first blob) is gone from the source; the layers wait behind it (one place).
    const reader: ImageReader = {
      getManifest: (n, reference) => source.getManifest(n, reference),
      openBlob: async (n, digest) => {
        opened.push(digest);
        return digest === config.digest ? undefined : source.openBlob(n, digest);
      },
    };
    const { writer, aborted } = observedBatch(target);
    const copy = copyImages(reader, writer, [{ from: { name, reference: 'single' as Tag } }], { concurrency: 1 });
    await expect(withDeadline(copy, 60_000, 'the copy')).rejects.toMatchObject({ code: 'BLOB_UNKNOWN' });
    expect(aborted()).toBeDefined();
    // The first layer may have begun in the same tick as the failure; the ones after it never do.
    expect(opened[0]).toBe(config.digest);
    expect(opened).not.toContain(layers[1]?.digest);
    expect(opened).not.toContain(layers[2]?.digest);
  });
});

describe('copyImages to another name', () => {
  it('names each image in its summary as the writer has it (preload prints these), not as the source had it', async () => {
    const { store: target } = await freshStore();
    const to = { name: 'mirror/team/edges' as RepoName, reference: 'v9' as Tag };
    const summary = await copyImages(source, target.startImport(), [
      { from: { name, reference: 'single' as Tag }, to },
    ]);
    expect(summary.images).toEqual([{ ref: 'mirror/team/edges:v9', digest: single.digest }]);
    expect((await target.getManifest(to.name, to.reference))?.digest).toBe(single.digest);
  });
});

describe('copyImages whose last step fails', () => {
  it('aborts the writer when its commit fails with a plain Error, and leaves the target as it was', async () => {
    const { store: target, dir } = await freshStore();
    const before = await blobFiles(dir);
    const failure = new Error('ENOSPC: no space left on device');
    const { writer, aborted } = observedBatch(target, failure);
    const copy = copyImages(source, writer, [{ from: { name, reference: 'single' as Tag } }]);
    await expect(withDeadline(copy, 60_000, 'the copy')).rejects.toBe(failure);
    expect(aborted()).toEqual([failure]);
    expect(await blobFiles(dir)).toEqual(before);
    expect(await target.getManifest(name, 'single' as Tag)).toBeUndefined();
  });
});

describe('a layer two platforms of an index share', () => {
  it('is planned once, sent once and never counted as skipped', async () => {
    const plan = await planImage(source, { name, reference: 'multi' as Tag });
    const digests = plan.blobs.map((b) => b.digest);
    expect(digests.filter((d) => d === base.digest)).toHaveLength(1);
    expect(new Set(digests).size).toBe(digests.length);
    expect(digests.sort()).toEqual(multiBlobs.map((b) => b.digest).sort());

    const { store: target } = await freshStore();
    const starts: number[] = [];
    const summary = await copyImages(source, target.startImport(), [{ from: { name, reference: 'multi' as Tag } }], {
      onEvent: (event) => {
        if (event.type === 'image-start') starts.push(event.blobs, event.bytes);
      },
    });
    expect(summary.blobsSent).toBe(multiBlobs.length);
    expect(summary.blobsSkipped).toBe(0);
    expect(starts).toEqual([multiBlobs.length, multiBlobs.reduce((sum, b) => sum + b.size, 0)]);
  });
});

describe('planImage with referrers the source lists', () => {
  it('refuses a referrer the listing names but the source does not have (MANIFEST_UNKNOWN), never leaves it out', async () => {
    const missing = `sha256:${createHash('sha256').update('a signature nobody kept').digest('hex')}` as Digest;
    const reader: ImageReader = {
      getManifest: (n, reference) => source.getManifest(n, reference),
      openBlob: (n, digest) => source.openBlob(n, digest),
      listReferrers: async (_n, subject) =>
        subject === single.digest
          ? [{ mediaType: ociManifest, digest: missing, size: 300, artifactType: 'application/example' }]
          : [],
    };
    await expect(planImage(reader, { name, reference: 'single' as Tag }, { referrers: true })).rejects.toMatchObject({
      code: 'MANIFEST_UNKNOWN',
      detail: { digest: missing },
    });
  });
});

describe('planImage on a manifest named by a sha512 digest', () => {
  it('checks its bytes with sha512, the algorithm its digest names', async () => {
    const sha512 = `sha512:${createHash('sha512').update(single.bytes).digest('hex')}` as Digest;
    // A registry that keeps the manifest under its sha512 digest (distribution accepts both algorithms).
    const reader: ImageReader = {
      getManifest: async (n, reference) =>
        reference === sha512 ? { ...single, digest: sha512 } : source.getManifest(n, reference),
      openBlob: (n, digest) => source.openBlob(n, digest),
    };
    const plan = await planImage(reader, { name, reference: sha512 });
    expect(plan.root.digest).toBe(sha512);
    expect(plan.blobs.map((b) => b.digest)).toEqual([config.digest, ...layers.map((l) => l.digest)]);
    // And bytes that are not the digest's are still refused.
    const wrong: ImageReader = {
      ...reader,
      getManifest: async () => ({ ...single, digest: sha512.replace(/.$/, (c) => (c === '0' ? '1' : '0')) as Digest }),
    };
    await expect(planImage(wrong, { name, reference: sha512 })).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
  });
});

describe('countProgress', () => {
  it('reports once per step of bytes, not once per chunk after the first step', async () => {
    const reports: number[] = [];
    const chunk = new Uint8Array(100);
    async function* body(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 10; i++) yield chunk;
    }
    let bytes = 0;
    for await (const c of countProgress(body(), (done) => reports.push(done), 300)) bytes += c.byteLength;
    expect(bytes).toBe(1000);
    expect(reports).toEqual([300, 600, 900]);
  });
});
