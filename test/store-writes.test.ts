/**
 * The index's write paths in process (store/local-store.ts putBlob, putManifest, putFetchedManifest,
 * and the rows store/store-index.ts writes for them): what store.maxSize counts (a declared size
 * once, content the store already holds not at all, a blob without a declared size once its bytes
 * are known, and nothing kept when it does not fit), the references a pushed manifest must find
 * (exact MANIFEST_BLOB_UNKNOWN) and their second check in the same step as the rows, what a fetched
 * manifest leaves (bytes wharf cannot parse included), referrers' descriptors, tag sources, tag and
 * repository listings, and the stored-bytes total. Real temp dirs and SQLite. Written for the
 * survivors of the index scope's mutation run (docs/mutation-testing.md); each asserts the exact answer.
 */
import { mkdtemp, open, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isOciError, type OciError } from '../src/oci/errors.js';
import { requireRepoName, type Tag } from '../src/oci/reference.js';
import type { DurableFs } from '../src/store/blob-files.js';
import { LocalStore, type LocalStoreOptions } from '../src/store/local-store.js';
import { blobPath } from './support/blob-file.js';
import { withDeadline } from './support/run.js';
import {
  content,
  descriptorOf,
  imageIndex,
  imageManifest,
  ociTypes,
  once,
  type Content,
} from './support/store-content.js';

const name = requireRepoName('writes/app');
const deadlineMs = 20_000;

let root: string;
let store: LocalStore | undefined;
async function openStore(options: LocalStoreOptions = {}): Promise<LocalStore> {
  store?.close();
  store = await LocalStore.open(root, options);
  return store;
}
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'wharf-store-writes-'));
});
afterEach(async () => {
  store?.close();
  store = undefined;
  await rm(root, { recursive: true, force: true });
});

async function refusal(run: () => Promise<unknown>): Promise<OciError> {
  const error = await run().then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isOciError(error)) throw new Error(`expected an OciError, got ${String(error)}`);
  return error;
}

function describeRefusal(error: OciError): unknown {
  return { code: error.code, status: error.status, message: error.message, detail: error.detail };
}

async function fileExists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function pushBlob(target: LocalStore, item: Content): Promise<void> {
  await target.putBlob(name, item.digest, once(item.bytes), item.size);
}

const config = content('{}');
const layer = content('layer bytes');

describe('store.maxSize and blob writes', () => {
  const limited = { lifecycle: { space: { maxBytes: 100, lowWaterBytes: 50 } } };

  it('counts a declared size once, nothing for a blob the store holds, and refuses one that does not fit', async () => {
    const s = await openStore(limited);
    const x = content('x'.repeat(60));
    expect(await s.putBlob(name, x.digest, once(x.bytes), 60)).toEqual({ digest: x.digest, size: 60 });
    // Stored, and the reservation given back.
    expect(s.lifecycle.space.used).toBe(60);
    expect(await s.putBlob(name, x.digest, once(x.bytes), 60)).toEqual({ digest: x.digest, size: 60 });
    expect(s.lifecycle.space.used).toBe(60);

    const y = content('y'.repeat(60));
    const full = await refusal(() => s.putBlob(name, y.digest, once(y.bytes), 60));
    expect({ code: full.code, status: full.status }).toEqual({ code: 'UNAVAILABLE', status: 507 });
    expect(s.hasBlob(y.digest)).toBe(false);
    expect(await fileExists(blobPath(root, y.digest))).toBe(false);
    expect(s.lifecycle.space.used).toBe(60);
  });

  it('counts a blob without a declared size once its bytes are known, and removes it when they do not fit', async () => {
    const s = await openStore(limited);
    const x = content('x'.repeat(60));
    await pushBlob(s, x);
    const z = content('z'.repeat(30));
    expect(await s.putBlob(name, z.digest, once(z.bytes))).toEqual({ digest: z.digest, size: 30 });
    expect(s.lifecycle.space.used).toBe(90);
    // Held already: not counted again (90 + 30 would not fit), and its file stays.
    expect(await s.putBlob(name, z.digest, once(z.bytes))).toEqual({ digest: z.digest, size: 30 });
    expect(s.lifecycle.space.used).toBe(90);
    expect(await fileExists(blobPath(root, z.digest))).toBe(true);
    expect(await s.statBlob(name, z.digest)).toEqual({ digest: z.digest, size: 30 });

    const w = content('w'.repeat(20));
    const full = await refusal(() => s.putBlob(name, w.digest, once(w.bytes)));
    expect({ code: full.code, status: full.status }).toEqual({ code: 'UNAVAILABLE', status: 507 });
    expect(s.hasBlob(w.digest)).toBe(false);
    expect(await fileExists(blobPath(root, w.digest))).toBe(false);
    expect(s.lifecycle.space.used).toBe(90);
  });

  it('refuses bytes that do not hash to the digest when no size is declared', async () => {
    const s = await openStore();
    const claimed = content('abc');
    const sent = content('abd');
    const error = await refusal(() => s.putBlob(name, claimed.digest, once(sent.bytes)));
    expect(describeRefusal(error)).toEqual({
      code: 'DIGEST_INVALID',
      status: 400,
      message: 'provided digest did not match uploaded content',
      detail: { expected: claimed.digest, computed: sent.digest },
    });
    expect(s.hasBlob(sent.digest)).toBe(false);
    expect(s.hasBlob(claimed.digest)).toBe(false);
  });
});

describe('store.maxSize and manifest writes', () => {
  it("counts a new manifest's bytes, and nothing for one the store holds", async () => {
    const m = imageManifest(config, []);
    const bigger = imageManifest(config, [], { annotations: { n: '2' } });
    expect(m.size).toBeGreaterThan(100);
    const s = await openStore({ lifecycle: { space: { maxBytes: config.size + m.size + 100, lowWaterBytes: 0 } } });
    await pushBlob(s, config);
    await s.putManifest(name, 'v1' as Tag, m.bytes, ociTypes.manifest);
    expect(s.lifecycle.space.used).toBe(config.size + m.size);
    // Held: 0 more bytes (m.size more would not fit).
    await s.putManifest(name, 'v2' as Tag, m.bytes, ociTypes.manifest);
    expect(s.lifecycle.space.used).toBe(config.size + m.size);

    const full = await refusal(() => s.putManifest(name, 'v3' as Tag, bigger.bytes, ociTypes.manifest));
    expect({ code: full.code, status: full.status }).toEqual({ code: 'UNAVAILABLE', status: 507 });
    expect(s.hasBlob(bigger.digest)).toBe(false);
    expect(await s.listTags(name, {})).toEqual(['v1', 'v2']);
  });

  it('writes the file of a manifest the store holds only once', async () => {
    const opened: string[] = [];
    const countingFs: DurableFs = {
      open: async (path, flags) => {
        // A write creates its temp file first (BlobFiles.write).
        if (flags === 'wx') opened.push(path);
        return open(path, flags);
      },
      rename,
      remove: (path) => rm(path, { force: true }),
    };
    const s = await openStore({ blobFs: countingFs });
    await pushBlob(s, config);
    const m = imageManifest(config, []);
    const before = opened.length;
    await s.putManifest(name, 'v1' as Tag, m.bytes, ociTypes.manifest);
    expect(opened.length).toBe(before + 1);
    await s.putManifest(name, 'v2' as Tag, m.bytes, ociTypes.manifest);
    await s.putManifest(name, m.digest, m.bytes, ociTypes.manifest);
    expect(opened.length).toBe(before + 1);
  });
});

describe('the references a pushed manifest must find', () => {
  it('refuses a missing layer with MANIFEST_BLOB_UNKNOWN naming it, before writing anything', async () => {
    const s = await openStore();
    await pushBlob(s, config);
    const m = imageManifest(config, [descriptorOf(layer, ociTypes.layer)]);
    const error = await refusal(() => s.putManifest(name, 'v1' as Tag, m.bytes, ociTypes.manifest));
    expect(describeRefusal(error)).toEqual({
      code: 'MANIFEST_BLOB_UNKNOWN',
      status: 400,
      message: `manifest references unknown ${layer.digest}`,
      detail: { digest: layer.digest },
    });
    expect(s.hasBlob(m.digest)).toBe(false);
    expect(await fileExists(blobPath(root, m.digest))).toBe(false);
    expect(await s.getManifest(name, m.digest)).toBeUndefined();
  });

  it('takes a manifest whose blobs are missing with registry.sparseManifests', async () => {
    const s = await openStore({ sparseManifests: true });
    const m = imageManifest(config, [descriptorOf(layer, ociTypes.layer)]);
    expect(await s.putManifest(name, 'v1' as Tag, m.bytes, ociTypes.manifest)).toEqual({
      digest: m.digest,
      mediaType: ociTypes.manifest,
      size: m.size,
      tags: ['v1'],
    });
    expect((await s.getManifest(name, 'v1' as Tag))?.digest).toBe(m.digest);
  });

  it('skips layers with urls and non-distributable layers, but not one with an empty urls list', async () => {
    const s = await openStore();
    await pushBlob(s, config);
    const foreign = imageManifest(config, [
      { ...descriptorOf(layer, ociTypes.layer), urls: ['https://example.invalid/l'] },
    ]);
    await s.putManifest(name, 'foreign' as Tag, foreign.bytes, ociTypes.manifest);
    const nondistributable = imageManifest(config, [
      descriptorOf(layer, 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip'),
    ]);
    await s.putManifest(name, 'nondistributable' as Tag, nondistributable.bytes, ociTypes.manifest);
    expect(await s.listTags(name, {})).toEqual(['foreign', 'nondistributable']);

    const emptyUrls = imageManifest(config, [{ ...descriptorOf(layer, ociTypes.layer), urls: [] }]);
    const error = await refusal(() => s.putManifest(name, 'empty' as Tag, emptyUrls.bytes, ociTypes.manifest));
    expect(error.code).toBe('MANIFEST_BLOB_UNKNOWN');
    expect(error.detail).toEqual({ digest: layer.digest });
  });

  it("finds an image's blobs among the repository's blobs only, an index's children among its manifests or blobs", async () => {
    const s = await openStore();
    await pushBlob(s, config);
    const m = imageManifest(config, []);
    await s.putManifest(name, 'base' as Tag, m.bytes, ociTypes.manifest);
    // A manifest of the repository is not one of its blobs.
    const onManifest = imageManifest(config, [descriptorOf(m, ociTypes.layer)]);
    const error = await refusal(() => s.putManifest(name, 'on-manifest' as Tag, onManifest.bytes, ociTypes.manifest));
    expect(error.code).toBe('MANIFEST_BLOB_UNKNOWN');
    expect(error.detail).toEqual({ digest: m.digest });

    const overManifest = imageIndex([descriptorOf(m, ociTypes.manifest)]);
    await s.putManifest(name, 'over-manifest' as Tag, overManifest.bytes, ociTypes.index);
    // A child pushed as a blob (some clients do) counts too.
    const child = imageManifest(config, [], { annotations: { pushed: 'as a blob' } });
    await pushBlob(s, child);
    const overBlob = imageIndex([descriptorOf(child, ociTypes.manifest)]);
    await s.putManifest(name, 'over-blob' as Tag, overBlob.bytes, ociTypes.index);
    expect(await s.listTags(name, {})).toEqual(['base', 'over-blob', 'over-manifest']);
  });

  it('gives a manifest pushed by digest no tag; the answer lists the tags given, and the subject', async () => {
    const s = await openStore();
    await pushBlob(s, config);
    const m = imageManifest(config, []);
    const answer = { digest: m.digest, mediaType: ociTypes.manifest, size: m.size };
    expect(await s.putManifest(name, m.digest, m.bytes, ociTypes.manifest)).toEqual({ ...answer, tags: [] });
    expect(await s.listTags(name, {})).toEqual([]);
    expect(await s.putManifest(name, 'v1' as Tag, m.bytes, ociTypes.manifest, ['v1.0' as Tag])).toEqual({
      ...answer,
      tags: ['v1', 'v1.0'],
    });
    expect(await s.listTags(name, {})).toEqual(['v1', 'v1.0']);

    const referrer = imageManifest(config, [], { subject: descriptorOf(m, ociTypes.manifest) });
    expect(await s.putManifest(name, referrer.digest, referrer.bytes, ociTypes.manifest)).toEqual({
      digest: referrer.digest,
      mediaType: ociTypes.manifest,
      size: referrer.size,
      tags: [],
      subject: m.digest,
    });
  });

  it('checks the references again in the same step as the rows (a blob unlinked while the manifest file was written)', async () => {
    let hold: { path: string; reached: () => void; gate: Promise<void> } | undefined;
    let release = (): void => undefined;
    let reached: Promise<void> = Promise.resolve();
    const holdingFs: DurableFs = {
      open,
      rename: async (from, to) => {
        if (hold !== undefined && to === hold.path) {
          const held = hold;
          hold = undefined;
          held.reached();
          await held.gate;
        }
        await rename(from, to);
      },
      remove: (path) => rm(path, { force: true }),
    };
    const s = await openStore({ blobFs: holdingFs });
    await pushBlob(s, config);
    await pushBlob(s, layer);
    const m = imageManifest(config, [descriptorOf(layer, ociTypes.layer)]);
    reached = new Promise<void>((resolve) => {
      hold = { path: blobPath(root, m.digest), reached: resolve, gate: new Promise((r) => (release = r)) };
    });
    const push = refusal(() => s.putManifest(name, 'v1' as Tag, m.bytes, ociTypes.manifest));
    await withDeadline(reached, deadlineMs, 'the manifest file rename');
    expect(await s.deleteBlob(name, layer.digest)).toBe(true);
    release();
    const error = await withDeadline(push, deadlineMs, 'the push');
    expect(describeRefusal(error)).toEqual({
      code: 'MANIFEST_BLOB_UNKNOWN',
      status: 400,
      message: `manifest references unknown ${layer.digest}`,
      detail: { digest: layer.digest },
    });
    expect(await s.getManifest(name, m.digest)).toBeUndefined();
    expect(await s.listTags(name, {})).toEqual([]);
    // The file written has its row (gc takes it like any unreferenced content), not left unindexed.
    expect(s.hasBlob(m.digest)).toBe(true);
  });
});

describe('manifests fetched from an upstream', () => {
  it('keeps bytes wharf cannot parse, with no tag and no references', async () => {
    const s = await openStore();
    const raw = content('{"schemaVersion": 2, "layers": "not a list"');
    expect(
      await s.putFetchedManifest(name, { digest: raw.digest, mediaType: ociTypes.manifest, bytes: raw.bytes }),
    ).toEqual({
      digest: raw.digest,
      mediaType: ociTypes.manifest,
      size: raw.size,
    });
    expect((await s.getManifest(name, raw.digest))?.bytes).toEqual(raw.bytes);
    expect(await s.listTags(name, {})).toEqual([]);
    const db = new Database(join(root, 'index.db'), { readonly: true });
    try {
      expect(db.prepare('SELECT digest FROM manifest_references WHERE manifest_digest = ?').all(raw.digest)).toEqual(
        [],
      );
    } finally {
      db.close();
    }
  });

  it('never moves a pushed tag; moves a fetched one; confirms fetched tags only', async () => {
    const s = await openStore();
    await pushBlob(s, config);
    const m1 = imageManifest(config, []);
    const m2 = imageManifest(config, [], { annotations: { n: '2' } });
    await s.putManifest(name, 'v1' as Tag, m1.bytes, ociTypes.manifest);
    expect(s.tagState(name, 'v1' as Tag)).toEqual({ digest: m1.digest, source: 'pushed', confirmed_at: null });
    await s.putFetchedManifest(name, { digest: m2.digest, mediaType: ociTypes.manifest, bytes: m2.bytes }, 'v1' as Tag);
    expect(s.tagState(name, 'v1' as Tag)).toEqual({ digest: m1.digest, source: 'pushed', confirmed_at: null });

    const before = Date.now();
    await s.putFetchedManifest(name, { digest: m1.digest, mediaType: ociTypes.manifest, bytes: m1.bytes }, 'f' as Tag);
    const fetched = s.tagState(name, 'f' as Tag);
    expect(fetched).toMatchObject({ digest: m1.digest, source: 'fetched' });
    expect(fetched?.confirmed_at).toBeGreaterThanOrEqual(before);
    await s.putFetchedManifest(name, { digest: m2.digest, mediaType: ociTypes.manifest, bytes: m2.bytes }, 'f' as Tag);
    expect(s.tagState(name, 'f' as Tag)).toMatchObject({ digest: m2.digest, source: 'fetched' });
  });
});

describe('referrers', () => {
  it("lists each referrer's descriptor from its row, filtered by artifactType", async () => {
    const s = await openStore();
    await pushBlob(s, config);
    const subject = imageManifest(config, []);
    await s.putManifest(name, 'v1' as Tag, subject.bytes, ociTypes.manifest);
    const signatureType = 'application/vnd.example.signature.v1+json';
    const signed = imageManifest(config, [], {
      artifactType: signatureType,
      subject: descriptorOf(subject, ociTypes.manifest),
      annotations: { 'org.example.signer': 'one' },
    });
    const plain = imageIndex([], { subject: descriptorOf(subject, ociTypes.manifest) });
    await s.putManifest(name, signed.digest, signed.bytes, ociTypes.manifest);
    await s.putManifest(name, plain.digest, plain.bytes, ociTypes.index);

    const signedDescriptor = {
      ...descriptorOf(signed, ociTypes.manifest),
      artifactType: signatureType,
      annotations: { 'org.example.signer': 'one' },
    };
    const byDigest = (a: { digest: string }, b: { digest: string }): number => a.digest.localeCompare(b.digest);
    expect((await s.listReferrers(name, subject.digest)).sort(byDigest)).toEqual(
      [signedDescriptor, descriptorOf(plain, ociTypes.index)].sort(byDigest),
    );
    expect(await s.listReferrers(name, subject.digest, signatureType)).toEqual([signedDescriptor]);
    expect(await s.listReferrers(name, subject.digest, 'application/vnd.example.other')).toEqual([]);
    expect(await s.listReferrers(requireRepoName('writes/other'), subject.digest)).toEqual([]);
  });
});

describe('tags, lookups and listings', () => {
  it('lists tags in order after `last`, up to `n`', async () => {
    const s = await openStore();
    await pushBlob(s, config);
    const m = imageManifest(config, []);
    await s.putManifest(name, 'c' as Tag, m.bytes, ociTypes.manifest, ['1.0' as Tag, 'b' as Tag]);
    expect(await s.listTags(name, {})).toEqual(['1.0', 'b', 'c']);
    expect(await s.listTags(name, { last: 'b' })).toEqual(['c']);
    expect(await s.listTags(name, { n: 1 })).toEqual(['1.0']);
    expect(await s.listTags(name, { last: '1.0', n: 1 })).toEqual(['b']);
    expect(await s.listTags(requireRepoName('writes/none'), {})).toBeUndefined();
  });

  it('lists repositories in order after `last`, up to `n`', async () => {
    const s = await openStore();
    for (const repository of ['0base/x', 'app/y', 'app/z']) {
      await s.putBlob(requireRepoName(repository), config.digest, once(config.bytes), config.size);
    }
    expect(await s.listRepositories({})).toEqual(['0base/x', 'app/y', 'app/z']);
    expect(await s.listRepositories({ n: 1 })).toEqual(['0base/x']);
    expect(await s.listRepositories({ last: '0base/x' })).toEqual(['app/y', 'app/z']);
    expect(await s.listRepositories({ last: '0base/x', n: 1 })).toEqual(['app/y']);
  });

  it('answers each tag with its own manifest, read one after the other', async () => {
    const s = await openStore();
    await pushBlob(s, config);
    const m1 = imageManifest(config, []);
    const m2 = imageManifest(config, [], { annotations: { n: '2' } });
    await s.putManifest(name, 'a' as Tag, m1.bytes, ociTypes.manifest);
    await s.putManifest(name, 'b' as Tag, m2.bytes, ociTypes.manifest);
    expect((await s.getManifest(name, 'a' as Tag))?.digest).toBe(m1.digest);
    expect((await s.getManifest(name, 'b' as Tag))?.digest).toBe(m2.digest);
    expect((await s.statManifest(name, 'a' as Tag))?.digest).toBe(m1.digest);
    expect((await s.statManifest(name, 'b' as Tag))?.digest).toBe(m2.digest);
  });

  it('deletes a tag once, and says so', async () => {
    const s = await openStore();
    await pushBlob(s, config);
    const m = imageManifest(config, []);
    await s.putManifest(name, 'v1' as Tag, m.bytes, ociTypes.manifest);
    expect(await s.deleteManifest(name, 'never' as Tag)).toBe(false);
    expect(await s.deleteManifest(name, 'v1' as Tag)).toBe(true);
    expect(await s.deleteManifest(name, 'v1' as Tag)).toBe(false);
    expect(await s.getManifest(name, 'v1' as Tag)).toBeUndefined();
    expect((await s.getManifest(name, m.digest))?.digest).toBe(m.digest);
  });
});

describe('the stored-bytes total', () => {
  it('counts each blob and manifest once, across a restart, and takes quarantined bytes off', async () => {
    let s = await openStore();
    const bytes = (): number => s.health.currentUsage().bytes;
    expect(bytes()).toBe(0);
    const ten = content('0123456789');
    await pushBlob(s, ten);
    expect(bytes()).toBe(10);
    await pushBlob(s, ten);
    await s.putBlob(requireRepoName('writes/other'), ten.digest, once(ten.bytes), 10);
    expect(bytes()).toBe(10);
    await pushBlob(s, config);
    const m = imageManifest(config, []);
    await s.putManifest(name, 'v1' as Tag, m.bytes, ociTypes.manifest);
    const total = 10 + config.size + m.size;
    expect(bytes()).toBe(total);
    expect(s.lifecycle.space.used).toBe(total);

    s = await openStore();
    expect(bytes()).toBe(total);
    expect(s.lifecycle.space.used).toBe(total);
    expect((await s.quarantineBlob(ten.digest, 'digest-mismatch'))?.digest).toBe(ten.digest);
    expect(bytes()).toBe(total - 10);
    expect(s.lifecycle.space.used).toBe(total - 10);
  });
});
