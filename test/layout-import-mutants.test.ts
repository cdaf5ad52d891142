/**
 * The archive-import scope's survivors in import-archive.ts, import-layout.ts and write-image-tree.ts
 * (docs/mutation-testing.md, "The archive-import scope"): in-process, so Stryker sees them.
 * - What a listener receives for a layout (blob-start, blob-progress, blob-done or blob-skipped, image-done
 *   with the image's bytes), what the writer is asked (hasBlob once per blob entry, blobs, manifests children
 *   first, tags, commit), and the result's counts.
 * - Each refusal with its code, message and detail, and the writer aborted, never committed: a bad
 *   oci-layout, no or a non-index index.json, duplicate blob entries with other bytes, a blob the writer
 *   finds wrong (relabelled by its entry), a manifest or blob missing or of another size, indexes nested
 *   too deep, an unsafe path before the first file, `only` on a docker save tar.
 * - Referrers (an unnamed index.json entry whose manifest has a subject): placed where their subject went,
 *   a referrer of a referrer listed first, one whose subject is not in the layout (under --name, or left
 *   out with `only`).
 * Real parts: the archive readers, a LocalStore where the store's own checks matter, else an in-memory
 * writer that records what it is asked (the ImageWriter contract, nothing mocked).
 */
import { mkdir, readdir, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { importArchive } from '../src/archive/import-archive.js';
import { readDirEntries } from '../src/archive/dir-entries.js';
import type { LayoutEntry } from '../src/archive/layout-entry.js';
import { readTarEntries } from '../src/archive/tar-entries.js';
import type { Digest } from '../src/oci/digest.js';
import { OciError } from '../src/oci/errors.js';
import type { BlobInfo, ManifestContent } from '../src/oci/image-source.js';
import type { DigestingImageWriter, UnnamedBlob } from '../src/oci/image-transfer.js';
import type { RepoName, Tag } from '../src/oci/reference.js';
import type { TransferEvent } from '../src/oci/transfer-events.js';
import { progressStepBytes } from '../src/oci/count-progress.js';
import {
  allBlobsOf,
  makeImage,
  refNameAnnotation,
  sha256Digest,
  tarOf,
  testSeed,
  type TestImage,
} from './support/make-image.js';
import { list, file, dir, blobName, scratchStore } from './support/archive-entries.js';

const ociIndex = 'application/vnd.oci.image.index.v1+json';
const ociManifest = 'application/vnd.oci.image.manifest.v1+json';
const ociConfig = 'application/vnd.oci.image.config.v1+json';
const ociLayer = 'application/vnd.oci.image.layer.v1.tar+gzip';
const layoutVersion = Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' }));

const { work, openStore } = scratchStore('wharf-layout-mutants-');

interface Desc {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  urls?: string[];
}

function descOf(mediaType: string, data: Buffer, extra: Partial<Desc> = {}): Desc {
  return { mediaType, digest: sha256Digest(data), size: data.length, ...extra };
}

function indexJson(entries: readonly Desc[], mediaType = ociIndex): Buffer {
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, manifests: entries }));
}

function named(image: TestImage | Desc, name: string): Desc {
  const d = 'root' in image ? image.root : image;
  return { mediaType: d.mediaType, digest: d.digest, size: d.size, annotations: { [refNameAnnotation]: name } };
}

function unnamed(d: Desc): Desc {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size };
}

/** Blob entries, then oci-layout and index.json. */
function layout(blobs: ReadonlyMap<string, Buffer>, entries: readonly Desc[]): LayoutEntry[] {
  return [
    ...[...blobs].map(([digest, data]) => file(blobName(digest), data)),
    file('oci-layout', layoutVersion),
    file('index.json', indexJson(entries)),
  ];
}

/** An OCI image manifest over `config` and `layers`, optionally with a subject; its bytes and descriptor. */
function manifestOf(config: Desc, layers: readonly Desc[], subject?: Desc): { bytes: Buffer; desc: Desc } {
  const body: Record<string, unknown> = { schemaVersion: 2, mediaType: ociManifest, config, layers };
  if (subject !== undefined) body.subject = unnamed(subject);
  const bytes = Buffer.from(JSON.stringify(body));
  return { bytes, desc: descOf(ociManifest, bytes) };
}

/** A small artifact (an SBOM, a signature) whose subject is `subject`; its blobs keyed by digest. */
function referrerOf(subject: Desc, seed: string): { desc: Desc; blobs: Map<string, Buffer> } {
  const config = Buffer.from(`{"seed":${JSON.stringify(seed)}}`);
  const layer = Buffer.from(`payload of ${seed}`);
  const m = manifestOf(descOf(ociConfig, config), [descOf('text/plain', layer)], subject);
  return {
    desc: m.desc,
    blobs: new Map([
      [sha256Digest(config), config],
      [sha256Digest(layer), layer],
      [m.desc.digest, m.bytes],
    ]),
  };
}

/**
 * An in-memory writer that keeps the ImageWriter contract (hasBlob: held before, or written in this
 * batch) and records each call, so a test can say exactly what the import asked for.
 */
class RecordingWriter implements DigestingImageWriter {
  readonly calls: string[] = [];
  readonly hasBlobCalls: string[] = [];
  readonly written = new Map<string, Buffer>();
  readonly verifiesBlobs: boolean;
  private readonly held: ReadonlySet<string>;
  private readonly failWrite: ((digest: string) => Error | undefined) | undefined;

  constructor(
    options: {
      verifiesBlobs?: boolean;
      held?: Iterable<string>;
      failWrite?: (digest: string) => Error | undefined;
    } = {},
  ) {
    this.verifiesBlobs = options.verifiesBlobs ?? false;
    this.held = new Set(options.held ?? []);
    this.failWrite = options.failWrite;
  }

  hasBlob(digest: Digest): Promise<boolean> {
    this.hasBlobCalls.push(digest);
    return Promise.resolve(this.held.has(digest) || this.written.has(digest));
  }

  async writeBlob(blob: BlobInfo, body: AsyncIterable<Uint8Array>): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(Buffer.from(chunk));
    const failure = this.failWrite?.(blob.digest);
    if (failure !== undefined) throw failure;
    this.written.set(blob.digest, Buffer.concat(chunks));
    this.calls.push(`blob ${blob.digest} ${blob.size}`);
  }

  writeUnnamedBlob(): Promise<UnnamedBlob> {
    return Promise.reject(new Error('not a docker archive'));
  }

  writeManifest(name: RepoName, manifest: ManifestContent): Promise<void> {
    this.calls.push(`manifest ${name} ${manifest.digest} ${manifest.mediaType} ${manifest.size}`);
    return Promise.resolve();
  }

  tag(name: RepoName, reference: Tag | Digest, digest: Digest): Promise<void> {
    this.calls.push(`tag ${name} ${reference} ${digest}`);
    return Promise.resolve();
  }

  commit(): Promise<void> {
    this.calls.push('commit');
    return Promise.resolve();
  }

  abort(error?: unknown): Promise<void> {
    this.calls.push(`abort ${error instanceof OciError ? error.code : String(error)}`);
    return Promise.resolve();
  }
}

/** The refusal `run` rejects with (fails the test when it resolves). */
async function refusal(run: Promise<unknown>): Promise<OciError> {
  const error: unknown = await run.then(
    () => new Error('expected a refusal'),
    (e: unknown) => e,
  );
  if (!(error instanceof OciError)) throw error;
  return error;
}

function imageBytes(image: TestImage): number {
  return [...image.blobs.values()].reduce((sum, b) => sum + b.length, 0);
}

describe('a layout read into a writer: events, calls and counts', () => {
  it('says what it does for each blob and each image, and asks hasBlob once per blob entry', async () => {
    // One layer over the 4 MiB progress step (one blob-progress), the others under it (none).
    const image = await makeImage({
      seed: testSeed('layout-mutants events'),
      layers: 2,
      layerSize: progressStepBytes + 4096,
    });
    const blobs = allBlobsOf(image);
    const events: TransferEvent[] = [];
    const writer = new RecordingWriter();
    const result = await importArchive(list(layout(blobs, [named(image, 'docker.io/team/app:v1')])), writer, {
      label: 'app.tar',
      onEvent: (e) => events.push(e),
    });
    const expected: TransferEvent[] = [];
    for (const [digest, data] of blobs) {
      expected.push({ type: 'blob-start', image: 'app.tar', digest: digest as Digest, size: data.length });
      if (data.length >= progressStepBytes) {
        expected.push({
          type: 'blob-progress',
          image: 'app.tar',
          digest: digest as Digest,
          size: data.length,
          done: data.length,
        });
      }
      expected.push({ type: 'blob-done', image: 'app.tar', digest: digest as Digest, size: data.length });
    }
    expected.push({
      type: 'image-done',
      image: 'docker.io/team/app:v1',
      digest: image.root.digest as Digest,
      bytes: imageBytes(image),
    });
    expect(events).toEqual(expected);
    expect(events.filter((e) => e.type === 'blob-progress')).toHaveLength(2);
    const total = [...blobs.values()].reduce((sum, b) => sum + b.length, 0);
    expect(result).toEqual({
      images: [{ ref: 'docker.io/team/app:v1', digest: image.root.digest }],
      blobsWritten: blobs.size,
      bytesWritten: total,
    });
    // One look per blob entry while the blobs stream; the tree then trusts what it saw in the layout.
    expect(writer.hasBlobCalls).toEqual([...blobs.keys()]);
    expect(writer.calls).toEqual([
      ...[...blobs].map(([digest, data]) => `blob ${digest} ${data.length}`),
      `manifest docker.io/team/app ${image.root.digest} ${ociManifest} ${image.root.size}`,
      `tag docker.io/team/app v1 ${image.root.digest}`,
      'commit',
    ]);
    // Buffer.equals: toEqual walks a 4 MiB buffer byte by byte, for a minute.
    for (const [digest, data] of blobs) expect(writer.written.get(digest)?.equals(data)).toBe(true);
  });

  it('reads past a blob the writer holds: blob-skipped, not counted, not written', async () => {
    const image = await makeImage({
      seed: testSeed('layout-mutants skipped'),
      layers: 1,
      layerSize: progressStepBytes + 4096,
    });
    const blobs = allBlobsOf(image);
    const layer = image.images[0]!.layers[0]!;
    const events: TransferEvent[] = [];
    const writer = new RecordingWriter({ held: [layer.digest] });
    const result = await importArchive(list(layout(blobs, [named(image, 'docker.io/team/app:v1')])), writer, {
      label: 'l',
      onEvent: (e) => events.push(e),
    });
    const ofLayer = events.filter((e) => 'digest' in e && e.digest === layer.digest);
    expect(ofLayer).toEqual([
      { type: 'blob-start', image: 'l', digest: layer.digest, size: layer.size },
      { type: 'blob-progress', image: 'l', digest: layer.digest, size: layer.size, done: layer.size },
      { type: 'blob-skipped', image: 'l', digest: layer.digest, size: layer.size },
    ]);
    expect(writer.written.has(layer.digest)).toBe(false);
    expect(result.blobsWritten).toBe(blobs.size - 1);
    expect(result.bytesWritten).toBe([...blobs.values()].reduce((s, b) => s + b.length, 0) - layer.size);
    // image-done still counts every blob the image names.
    expect(events.at(-1)).toMatchObject({ type: 'image-done', bytes: imageBytes(image) });
  });

  it('writes each platform of an index before the index, and counts the bytes of all of them', async () => {
    const image = await makeImage({
      seed: testSeed('layout-mutants index'),
      layers: 1,
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' },
      ],
    });
    const events: TransferEvent[] = [];
    const writer = new RecordingWriter();
    await importArchive(list(layout(allBlobsOf(image), [named(image, 'docker.io/team/multi:v1')])), writer, {
      label: 'l',
      onEvent: (e) => events.push(e),
    });
    expect(events.at(-1)).toEqual({
      type: 'image-done',
      image: 'docker.io/team/multi:v1',
      digest: image.root.digest,
      bytes: imageBytes(image),
    });
    expect(writer.calls.filter((c) => !c.startsWith('blob '))).toEqual([
      ...image.images.map(
        (p) => `manifest docker.io/team/multi ${p.manifest.digest} ${ociManifest} ${p.manifest.size}`,
      ),
      `manifest docker.io/team/multi ${image.root.digest} ${ociIndex} ${image.root.size}`,
      `tag docker.io/team/multi v1 ${image.root.digest}`,
      'commit',
    ]);
  });

  it('takes a sparse index (a platform wholly absent stays absent)', async () => {
    const image = await makeImage({
      seed: testSeed('layout-mutants sparse'),
      layers: 1,
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' },
      ],
    });
    const blobs = allBlobsOf(image);
    const gone = image.images[1]!;
    for (const d of [gone.manifest.digest, gone.config.digest, ...gone.layers.map((l) => l.digest)]) blobs.delete(d);
    const writer = new RecordingWriter();
    await importArchive(list(layout(blobs, [named(image, 'docker.io/team/multi:v1')])), writer, { label: 'l' });
    expect(writer.calls.filter((c) => c.startsWith('manifest '))).toEqual([
      `manifest docker.io/team/multi ${image.images[0]!.manifest.digest} ${ociManifest} ${image.images[0]!.manifest.size}`,
      `manifest docker.io/team/multi ${image.root.digest} ${ociIndex} ${image.root.size}`,
    ]);
  });

  it('reads past a file that is neither a blob nor the layout files, in a tar too', async () => {
    const image = await makeImage({ seed: testSeed('layout-mutants other'), layers: 1 });
    const files = [
      ...[...allBlobsOf(image)].map(([d, data]) => ({ name: blobName(d), data })),
      { name: 'index.json', data: indexJson([named(image, 'docker.io/team/app:v1')]) },
      { name: 'oci-layout', data: layoutVersion },
      { name: 'repositories', data: Buffer.from('{"docker.io/team/app":{"v1":"x"}}\n'.repeat(100)) },
      { name: 'zz-notes.txt', data: Buffer.from('written by hand') },
    ];
    const writer = new RecordingWriter();
    const result = await importArchive(readTarEntries(list([await tarOf(files)])), writer, { label: 'l' });
    expect(result.images).toEqual([{ ref: 'docker.io/team/app:v1', digest: image.root.digest }]);
    expect(writer.calls.at(-1)).toBe('commit');
  });

  it('verifies blobs itself for a writer that does not (and not twice for one that does)', async () => {
    const image = await makeImage({ seed: testSeed('layout-mutants verify'), layers: 1 });
    const blobs = allBlobsOf(image);
    const layer = image.images[0]!.layers[0]!;
    const bad = Buffer.from(blobs.get(layer.digest)!);
    bad[0] = bad[0]! ^ 0xff;
    blobs.set(layer.digest, bad);
    const entries = (): LayoutEntry[] => layout(blobs, [named(image, 'docker.io/team/app:v1')]);
    const plain = new RecordingWriter();
    const error = await refusal(importArchive(list(entries()), plain, { label: 'l' }));
    expect(error.code).toBe('DIGEST_INVALID');
    expect(error.message).toBe(
      `${blobName(layer.digest)}: content does not match its digest (computed ${sha256Digest(bad)})`,
    );
    expect(error.detail).toEqual({ expected: layer.digest, computed: sha256Digest(bad) });
    expect(plain.written.has(layer.digest)).toBe(false);
    expect(plain.calls.at(-1)).toBe('abort DIGEST_INVALID');
    expect(plain.calls).not.toContain('commit');
    // A writer that hashes as it writes gets the bytes as they are: it is the one to check them.
    const verifying = new RecordingWriter({ verifiesBlobs: true });
    await importArchive(list(entries()), verifying, { label: 'l' });
    expect(verifying.written.get(layer.digest)?.equals(bad)).toBe(true);
  });
});

describe('a writer refusing a blob', () => {
  it("names the store's digest mismatch by the entry it came from, and keeps nothing", async () => {
    const image = await makeImage({ seed: testSeed('layout-mutants store mismatch'), layers: 1 });
    const blobs = allBlobsOf(image);
    const layer = image.images[0]!.layers[0]!;
    const bad = Buffer.from(blobs.get(layer.digest)!);
    bad[bad.length - 1] = bad[bad.length - 1]! ^ 0x01;
    blobs.set(layer.digest, bad);
    const s = await openStore();
    const error = await refusal(
      importArchive(list(layout(blobs, [named(image, 'docker.io/team/app:v1')])), s.startImport(), { label: 'l' }),
    );
    expect(error.code).toBe('DIGEST_INVALID');
    expect(error.message).toBe(
      `${blobName(layer.digest)}: content does not match its digest (computed ${sha256Digest(bad)})`,
    );
    expect((error.detail as { computed?: string }).computed).toBe(sha256Digest(bad));
    expect(error.cause).toBeInstanceOf(OciError);
    expect(await s.getManifest('docker.io/team/app' as RepoName, 'v1' as Tag)).toBeUndefined();
    expect(await s.statBlob('docker.io/team/app' as RepoName, image.images[0]!.config.digest as Digest)).toBe(
      undefined,
    );
  });

  it('relabels a digest mismatch that carries no detail', async () => {
    const image = await makeImage({ seed: testSeed('layout-mutants no detail'), layers: 1 });
    const layer = image.images[0]!.layers[0]!;
    const cause = new OciError('DIGEST_INVALID', 'mismatch');
    const writer = new RecordingWriter({
      verifiesBlobs: true,
      failWrite: (d) => (d === layer.digest ? cause : undefined),
    });
    const error = await refusal(
      importArchive(list(layout(allBlobsOf(image), [named(image, 'docker.io/team/app:v1')])), writer, {
        label: 'l',
      }),
    );
    expect(error.message).toBe(`${blobName(layer.digest)}: content does not match its digest (computed undefined)`);
    expect(error.cause).toBe(cause);
  });

  it('passes any other failure of the writer on as it is: another code, a plain Error', async () => {
    const image = await makeImage({ seed: testSeed('layout-mutants other failure'), layers: 1 });
    const layer = image.images[0]!.layers[0]!;
    for (const failure of [new OciError('SIZE_INVALID', 'short'), new Error('ENOSPC: no space left on device')]) {
      const writer = new RecordingWriter({ failWrite: (d) => (d === layer.digest ? failure : undefined) });
      const got = await importArchive(
        list(layout(allBlobsOf(image), [named(image, 'docker.io/team/app:v1')])),
        writer,
        { label: 'l' },
      ).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(got).toBe(failure);
      expect(writer.calls.at(-1)).toBe(`abort ${failure instanceof OciError ? failure.code : String(failure)}`);
      expect(writer.calls).not.toContain('commit');
    }
  });
});

describe('duplicate blob entries', () => {
  it('takes a second entry with the same bytes once', async () => {
    const image = await makeImage({ seed: testSeed('layout-mutants dup'), layers: 1 });
    const blobs = allBlobsOf(image);
    const layer = image.images[0]!.layers[0]!;
    const entries = layout(blobs, [named(image, 'docker.io/team/app:v1')]);
    entries.splice(1, 0, file(blobName(layer.digest), blobs.get(layer.digest)!));
    const events: TransferEvent[] = [];
    const writer = new RecordingWriter();
    const result = await importArchive(list(entries), writer, { label: 'l', onEvent: (e) => events.push(e) });
    expect(result.blobsWritten).toBe(blobs.size);
    expect(events.filter((e) => e.type === 'blob-start' && e.digest === layer.digest)).toHaveLength(1);
    expect(writer.calls.filter((c) => c.startsWith(`blob ${layer.digest}`))).toHaveLength(1);
  });

  it('refuses a second entry with other bytes, and keeps nothing', async () => {
    const image = await makeImage({ seed: testSeed('layout-mutants dup bad'), layers: 1 });
    const blobs = allBlobsOf(image);
    const layer = image.images[0]!.layers[0]!;
    const other = Buffer.from(blobs.get(layer.digest)!);
    other[0] = other[0]! ^ 0x10;
    const entries = layout(blobs, [named(image, 'docker.io/team/app:v1')]);
    entries.splice(entries.length - 2, 0, file(blobName(layer.digest), other));
    const s = await openStore();
    const error = await refusal(importArchive(list(entries), s.startImport(), { label: 'l' }));
    expect(error.code).toBe('DIGEST_INVALID');
    expect(error.message).toBe(`duplicate blob entry ${blobName(layer.digest)} with different bytes`);
    expect(error.cause).toBeInstanceOf(OciError);
    expect((error.cause as OciError).code).toBe('DIGEST_INVALID');
    expect(await s.getManifest('docker.io/team/app' as RepoName, 'v1' as Tag)).toBeUndefined();
    expect(await s.statBlob('docker.io/team/app' as RepoName, layer.digest as Digest)).toBeUndefined();
  });
});

describe('the layout files refused', () => {
  async function refused(entries: LayoutEntry[]): Promise<{ error: OciError; writer: RecordingWriter }> {
    const writer = new RecordingWriter();
    const error = await refusal(importArchive(list(entries), writer, { label: 'src.tar' }));
    expect(writer.calls.at(-1)).toBe(`abort ${error.code}`);
    expect(writer.calls).not.toContain('commit');
    return { error, writer };
  }

  it('an oci-layout that is not JSON, or of another version', async () => {
    const cases: [Buffer, string, string][] = [
      [Buffer.from('{not json'), 'MANIFEST_INVALID', 'oci-layout is not valid JSON'],
      [
        Buffer.from('{"imageLayoutVersion":"2.0.0"}'),
        'UNSUPPORTED',
        'oci-layout: unsupported imageLayoutVersion "2.0.0"',
      ],
      [Buffer.from('{"imageLayoutVersion":1}'), 'UNSUPPORTED', 'oci-layout: unsupported imageLayoutVersion 1'],
      [Buffer.from('{}'), 'UNSUPPORTED', 'oci-layout: unsupported imageLayoutVersion undefined'],
    ];
    for (const [data, code, message] of cases) {
      const { error } = await refused([file('oci-layout', data), file('index.json', indexJson([]))]);
      expect([error.code, error.message]).toEqual([code, message]);
      if (code === 'MANIFEST_INVALID') expect(error.cause).toBeInstanceOf(SyntaxError);
    }
  });

  it('no index.json', async () => {
    const { error } = await refused([file('oci-layout', layoutVersion)]);
    expect([error.code, error.message]).toEqual([
      'MANIFEST_UNKNOWN',
      'src.tar: no index.json, not a complete OCI image layout',
    ]);
  });

  it('only directories, or nothing at all: no index.json either', async () => {
    for (const entries of [[dir('blobs'), dir('blobs/sha256')], []]) {
      const { error } = await refused(entries);
      expect([error.code, error.message]).toEqual([
        'MANIFEST_UNKNOWN',
        'src.tar: no index.json, not a complete OCI image layout',
      ]);
    }
  });

  it('an index.json that is an image manifest', async () => {
    const { error } = await refused([
      file('oci-layout', layoutVersion),
      file(
        'index.json',
        Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: ociManifest,
            config: { mediaType: ociConfig, digest: sha256Digest('x'), size: 1 },
            layers: [],
          }),
        ),
      ),
    ]);
    // Parsed as an index, a body of another mediaType is refused by the parser itself.
    expect([error.code, error.message]).toEqual([
      'MANIFEST_INVALID',
      `Content-Type ${ociIndex} does not match the manifest's mediaType ${ociManifest}`,
    ]);
  });

  it('an index.json over its cap is named as index.json', async () => {
    const { error } = await refused([file('index.json', Buffer.alloc(4 * 1024 * 1024 + 1, 0x20))]);
    expect(error.code).toBe('MANIFEST_INVALID');
    expect(error.message).toBe(`index.json exceeds ${4 * 1024 * 1024} bytes`);
  });

  it('an unsafe path among the directories before the first file aborts the writer', async () => {
    const { error, writer } = await refused([dir('blobs'), dir('../escape'), file('index.json', indexJson([]))]);
    expect([error.code, error.message]).toEqual(['NAME_INVALID', 'entry "../escape" escapes the layout (..)']);
    expect(writer.calls).toEqual(['abort NAME_INVALID']);
  });

  it('a layout whose first file is index.json is a layout', async () => {
    const image = await makeImage({ seed: testSeed('layout-mutants index first'), layers: 1 });
    const entries = layout(allBlobsOf(image), [named(image, 'docker.io/team/app:v1')]);
    const writer = new RecordingWriter();
    const result = await importArchive(list([dir('blobs'), entries.at(-1)!, ...entries.slice(0, -1)]), writer, {
      label: 'l',
    });
    expect(result.images).toEqual([{ ref: 'docker.io/team/app:v1', digest: image.root.digest }]);
  });

  it('`only` on a docker save tar: refused before anything is read', async () => {
    const writer = new RecordingWriter();
    const error = await refusal(
      importArchive(list([file('manifest.json', Buffer.from('[]'))]), writer, { label: 'old.tar', only: 'v1' }),
    );
    expect([error.code, error.message]).toEqual([
      'UNSUPPORTED',
      'old.tar: a docker save tar, whose images have no ref.name to pick "v1" by',
    ]);
    expect(writer.calls).toEqual(['abort UNSUPPORTED']);
  });
});

describe('an image tree refused', () => {
  const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
  const layer = Buffer.from('layer bytes, not really gzip');

  async function tree(
    blobs: Map<string, Buffer>,
    root: Desc,
    held: string[] = [],
  ): Promise<{ error?: OciError; writer: RecordingWriter }> {
    const writer = new RecordingWriter({ held });
    const error = await importArchive(list(layout(blobs, [root])), writer, { label: 'l' }).then(
      () => undefined,
      (e: unknown) => {
        if (!(e instanceof OciError)) throw e;
        return e;
      },
    );
    if (error !== undefined) {
      expect(writer.calls.at(-1)).toBe(`abort ${error.code}`);
      expect(writer.calls).not.toContain('commit');
    } else {
      expect(writer.calls.at(-1)).toBe('commit');
    }
    return { error, writer };
  }

  function blobsOf(...data: Buffer[]): Map<string, Buffer> {
    return new Map(data.map((d) => [sha256Digest(d), d]));
  }

  it('a manifest missing from the layout, or not a manifest', async () => {
    const m = manifestOf(descOf(ociConfig, config), [descOf(ociLayer, layer)]);
    const missing = await tree(blobsOf(config, layer), named(m.desc, 'docker.io/team/app:v1'));
    expect([missing.error?.code, missing.error?.message, missing.error?.detail]).toEqual([
      'MANIFEST_BLOB_UNKNOWN',
      `manifest ${m.desc.digest} of docker.io/team/app is missing from the layout`,
      { digest: m.desc.digest },
    ]);
    const notManifest = await tree(
      blobsOf(config, layer),
      named({ ...descOf(ociManifest, layer) }, 'docker.io/team/app:v1'),
    );
    expect([notManifest.error?.code, notManifest.error?.message, notManifest.error?.detail]).toEqual([
      'MANIFEST_BLOB_UNKNOWN',
      `manifest ${sha256Digest(layer)} of docker.io/team/app is not a manifest`,
      { digest: sha256Digest(layer) },
    ]);
  });

  it('a manifest whose index.json descriptor gives another size', async () => {
    const m = manifestOf(descOf(ociConfig, config), [descOf(ociLayer, layer)]);
    const { error } = await tree(
      blobsOf(config, layer, m.bytes),
      named({ ...m.desc, size: m.desc.size + 1 }, 'docker.io/team/app:v1'),
    );
    expect([error?.code, error?.message]).toEqual([
      'SIZE_INVALID',
      `manifest ${m.desc.digest}: ${m.desc.size} bytes, its descriptor says ${m.desc.size + 1}`,
    ]);
  });

  it('a blob the manifest names, missing from the layout and the writer', async () => {
    const m = manifestOf(descOf(ociConfig, config), [descOf(ociLayer, layer)]);
    const { error } = await tree(blobsOf(config, m.bytes), named(m.desc, 'docker.io/team/app:v1'));
    expect([error?.code, error?.message, error?.detail]).toEqual([
      'MANIFEST_BLOB_UNKNOWN',
      `manifest ${m.desc.digest} of docker.io/team/app names blob ${sha256Digest(layer)}, which is missing from the layout`,
      { digest: sha256Digest(layer) },
    ]);
    // Held by the writer already: taken.
    const held = await tree(blobsOf(config, m.bytes), named(m.desc, 'docker.io/team/app:v1'), [sha256Digest(layer)]);
    expect(held.error).toBeUndefined();
  });

  it('a blob of another size in the layout than in the manifest', async () => {
    const m = manifestOf(descOf(ociConfig, config), [{ ...descOf(ociLayer, layer), size: layer.length + 1 }]);
    const { error } = await tree(blobsOf(config, layer, m.bytes), named(m.desc, 'docker.io/team/app:v1'));
    expect([error?.code, error?.message]).toEqual([
      'SIZE_INVALID',
      `blob ${sha256Digest(layer)}: ${layer.length} bytes in the layout, the manifest says ${layer.length + 1}`,
    ]);
  });

  it('a foreign layer (urls) absent is taken; one with empty urls is not foreign', async () => {
    const foreign = descOf(ociLayer, layer, { urls: ['https://example.invalid/layer'] });
    const m = manifestOf(descOf(ociConfig, config), [foreign]);
    const events: TransferEvent[] = [];
    const writer = new RecordingWriter();
    await importArchive(list(layout(blobsOf(config, m.bytes), [named(m.desc, 'docker.io/team/app:v1')])), writer, {
      label: 'l',
      onEvent: (e) => events.push(e),
    });
    expect(writer.calls.at(-1)).toBe('commit');
    // The foreign layer is not counted: only the config's bytes.
    expect(events.at(-1)).toMatchObject({ type: 'image-done', bytes: config.length });
    const empty = manifestOf(descOf(ociConfig, config), [descOf(ociLayer, layer, { urls: [] })]);
    const { error } = await tree(blobsOf(config, empty.bytes), named(empty.desc, 'docker.io/team/app:v1'));
    expect(error?.code).toBe('MANIFEST_BLOB_UNKNOWN');
  });

  it('indexes nested four deep are taken, five deep refused', async () => {
    const m = manifestOf(descOf(ociConfig, config), [descOf(ociLayer, layer)]);
    function nest(levels: number): { blobs: Map<string, Buffer>; root: Desc; top: Desc[] } {
      const blobs = blobsOf(config, layer, m.bytes);
      let child = m.desc;
      const chain: Desc[] = [];
      for (let i = 0; i < levels; i++) {
        const bytes = indexJson([child]);
        child = descOf(ociIndex, bytes);
        blobs.set(child.digest, bytes);
        chain.unshift(child);
      }
      return { blobs, root: child, top: chain };
    }
    const four = nest(4);
    const ok = await tree(four.blobs, named(four.root, 'docker.io/team/deep:v1'));
    expect(ok.error).toBeUndefined();
    const five = nest(5);
    const { error } = await tree(five.blobs, named(five.root, 'docker.io/team/deep:v1'));
    expect([error?.code, error?.message]).toEqual([
      'MANIFEST_INVALID',
      `${five.top[4]!.digest}: indexes nested too deep`,
    ]);
  });
});

describe('referrers in index.json', () => {
  it('go where their subject went, a referrer of a referrer too, whatever the order', async () => {
    const image = await makeImage({ seed: testSeed('layout-mutants referrers'), layers: 1 });
    const sbom = referrerOf(image.root, 'sbom');
    const signature = referrerOf(sbom.desc, 'signature of the sbom');
    const blobs = new Map([...allBlobsOf(image), ...sbom.blobs, ...signature.blobs]);
    const writer = new RecordingWriter();
    const result = await importArchive(
      list(layout(blobs, [unnamed(signature.desc), named(image, 'docker.io/team/app:v1'), unnamed(sbom.desc)])),
      writer,
      { label: 'l' },
    );
    expect(result.images).toEqual([{ ref: 'docker.io/team/app:v1', digest: image.root.digest }]);
    expect(writer.calls.filter((c) => !c.startsWith('blob '))).toEqual([
      `manifest docker.io/team/app ${image.root.digest} ${ociManifest} ${image.root.size}`,
      `tag docker.io/team/app v1 ${image.root.digest}`,
      `manifest docker.io/team/app ${sbom.desc.digest} ${ociManifest} ${sbom.desc.size}`,
      `manifest docker.io/team/app ${signature.desc.digest} ${ociManifest} ${signature.desc.size}`,
      'commit',
    ]);
  });

  it('one whose subject is not in the layout goes under --name; with `only` it is left out', async () => {
    const image = await makeImage({ seed: testSeed('layout-mutants orphan'), layers: 1 });
    const other = await makeImage({ seed: testSeed('layout-mutants orphan subject'), layers: 1 });
    const orphan = referrerOf(other.root, 'orphan');
    const blobs = new Map([...allBlobsOf(image), ...orphan.blobs]);
    const entries = (): LayoutEntry[] => layout(blobs, [named(image, 'docker.io/team/app:v1'), unnamed(orphan.desc)]);
    const withName = new RecordingWriter();
    await importArchive(list(entries()), withName, { label: 'l', name: 'docker.io/team/named' as RepoName });
    expect(withName.calls.filter((c) => c.startsWith('manifest ') || c.startsWith('tag '))).toEqual([
      `manifest docker.io/team/app ${image.root.digest} ${ociManifest} ${image.root.size}`,
      `tag docker.io/team/app v1 ${image.root.digest}`,
      `manifest docker.io/team/named ${orphan.desc.digest} ${ociManifest} ${orphan.desc.size}`,
    ]);
    const picked = new RecordingWriter();
    await importArchive(list(entries()), picked, {
      label: 'l',
      name: 'docker.io/team/named' as RepoName,
      only: 'docker.io/team/app:v1',
    });
    expect(picked.calls.filter((c) => c.startsWith('manifest '))).toEqual([
      `manifest docker.io/team/app ${image.root.digest} ${ociManifest} ${image.root.size}`,
    ]);
    // Without --name, there is nowhere to put it.
    const unnamedWriter = new RecordingWriter();
    const error = await refusal(importArchive(list(entries()), unnamedWriter, { label: 'l' }));
    expect([error.code, error.message]).toEqual([
      'NAME_INVALID',
      `index.json names ${orphan.desc.digest} without a ref.name annotation: pass --name`,
    ]);
    expect(unnamedWriter.calls.at(-1)).toBe('abort NAME_INVALID');
  });

  it('an unnamed image without a subject is an image under --name, tagged by digest', async () => {
    const image = await makeImage({ seed: testSeed('layout-mutants unnamed image'), layers: 1 });
    const writer = new RecordingWriter();
    const result = await importArchive(list(layout(allBlobsOf(image), [unnamed(image.root)])), writer, {
      label: 'l',
      name: 'docker.io/team/named' as RepoName,
    });
    expect(result.images).toEqual([{ ref: `docker.io/team/named@${image.root.digest}`, digest: image.root.digest }]);
    expect(writer.calls).toContain(`tag docker.io/team/named ${image.root.digest} ${image.root.digest}`);
  });

  it('an unnamed entry whose manifest is missing is refused as missing', async () => {
    const image = await makeImage({ seed: testSeed('layout-mutants unnamed missing'), layers: 1 });
    const blobs = allBlobsOf(image);
    blobs.delete(image.root.digest);
    const writer = new RecordingWriter();
    const error = await refusal(
      importArchive(list(layout(blobs, [unnamed(image.root)])), writer, {
        label: 'l',
        name: 'docker.io/team/named' as RepoName,
      }),
    );
    expect([error.code, error.message]).toEqual([
      'MANIFEST_BLOB_UNKNOWN',
      `manifest ${image.root.digest} of docker.io/team/named is missing from the layout`,
    ]);
  });
});

describe('a folder layout', () => {
  it('reads a file that is not part of the layout to its end: no descriptor left open', async () => {
    const image = await makeImage({ seed: testSeed('layout-mutants folder other'), layers: 1 });
    const root = join(work(), 'layout');
    await mkdir(join(root, 'blobs', 'sha256'), { recursive: true });
    for (const [digest, data] of allBlobsOf(image)) await writeFile(join(root, blobName(digest)), data);
    await writeFile(join(root, 'oci-layout'), layoutVersion);
    await writeFile(join(root, 'index.json'), indexJson([named(image, 'docker.io/team/app:v1')]));
    const extra = join(root, 'notes.txt');
    await writeFile(extra, 'written by hand');
    const writer = new RecordingWriter();
    const result = await importArchive(readDirEntries(root), writer, { label: root });
    expect(result.images).toEqual([{ ref: 'docker.io/team/app:v1', digest: image.root.digest }]);
    // A folder's file body is a ReadStream, open from the start and closed at its end: one never read
    // keeps its descriptor (one per stray file, for as long as the process lives).
    await new Promise((resolve) => setImmediate(resolve));
    expect(await openFiles()).not.toContain(extra);
  });
});

/** What this process has open (Linux). */
async function openFiles(): Promise<string[]> {
  const fds = await readdir('/proc/self/fd');
  return Promise.all(fds.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
}
