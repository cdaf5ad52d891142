/**
 * Round 9a of the planted-bug audit (docs/mutation-testing.md): the import side at the edges the
 * other import tests leave out, each an input a real tool writes that wharf's own export never does.
 * - A gzip'd tar whose first read is one byte (a pipe on stdin); a tar whose first entry is `oci-layout`;
 *   a manifest that arrives in two chunks; an `oci-layout` of exactly its 64 KiB cap.
 * - An index.json entry with a ref.name whose manifest has a subject (a tagged artifact) is an image with
 *   its tag, not a referrer; `only` picks docker 25's entry by its ref.name as written (`3.20`).
 * - A layer with a non-distributable media type, absent from the layout, and a layer the store holds
 *   already, absent from the layout, are not refused.
 * - A multi-platform layout imported again under a second name writes its platforms under that name too.
 * - A legacy docker save tar: `<id>/json` is metadata, not a blob; `"RepoTags": null` (docker's untagged
 *   image) with --name is stored by digest; the schema2 manifest built is docker's three-space form.
 * - A commit whose transaction fails (another writer holds the index: SQLITE_BUSY, a plain Error) is
 *   aborted like any failure; `wharf import` releases the data directory's lock when it fails, and
 *   takes `--local`.
 * Real parts: a LocalStore (real files, real SQLite), the archive readers, entries built in memory.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { importArchive } from '../src/archive/import-archive.js';
import type { LayoutEntry } from '../src/archive/layout-entry.js';
import { readTarEntries } from '../src/archive/tar-entries.js';
import { runImport } from '../src/cli/import-command.js';
import { lockFileName } from '../src/cli/data-dir-lock.js';
import type { Digest } from '../src/oci/digest.js';
import type { RepoName, Tag } from '../src/oci/reference.js';
import type { TransferEvent } from '../src/oci/transfer-events.js';
import { blobFiles } from './support/blob-file.js';
import {
  allBlobsOf,
  makeImage,
  refNameAnnotation,
  sha256Digest,
  tarOf,
  testSeed,
  writeOciLayout,
  type TestImage,
} from './support/make-image.js';
import { list, file, blobName, scratchStore } from './support/archive-entries.js';

const ociIndex = 'application/vnd.oci.image.index.v1+json';
const ociManifest = 'application/vnd.oci.image.manifest.v1+json';
const layoutVersion = Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' }));

const { work, openStore } = scratchStore('wharf-import-edges-');

interface IndexEntry {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

function indexJson(entries: readonly IndexEntry[]): Buffer {
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: ociIndex, manifests: entries }));
}

function rootEntry(image: TestImage, annotations: Record<string, string>): IndexEntry {
  return { mediaType: image.root.mediaType, digest: image.root.digest, size: image.root.size, annotations };
}

/** The files of a layout holding `blobs` and naming `entries`, oci-layout and index.json after the blobs. */
function layoutFiles(
  blobs: ReadonlyMap<string, Buffer>,
  entries: readonly IndexEntry[],
): { name: string; data: Buffer }[] {
  return [
    ...[...blobs].map(([digest, data]) => ({ name: blobName(digest), data })),
    { name: 'oci-layout', data: layoutVersion },
    { name: 'index.json', data: indexJson(entries) },
  ];
}

function entriesOf(files: readonly { name: string; data: Buffer }[]): LayoutEntry[] {
  return files.map((f) => file(f.name, f.data));
}

describe('an OCI layout at its edges', () => {
  it('imports a gzip tar whose first read is one byte (a pipe)', async () => {
    const image = await makeImage({ seed: testSeed('import-edges gzip'), layers: 1 });
    const tar = await tarOf(
      layoutFiles(allBlobsOf(image), [rootEntry(image, { [refNameAnnotation]: 'docker.io/team/app:v1' })]),
    );
    const gz = gzipSync(tar);
    const s = await openStore();
    const result = await importArchive(readTarEntries(list([gz.subarray(0, 1), gz.subarray(1)])), s.startImport(), {
      label: '-',
    });
    expect(result.images).toEqual([{ ref: 'docker.io/team/app:v1', digest: image.root.digest }]);
  });

  it('imports a tar whose first entry is oci-layout', async () => {
    const image = await makeImage({ seed: testSeed('import-edges oci-layout first'), layers: 1 });
    const files = layoutFiles(allBlobsOf(image), [rootEntry(image, { [refNameAnnotation]: 'docker.io/team/app:v1' })]);
    const layoutFirst = [files[files.length - 2], ...files.slice(0, -2), files[files.length - 1]].filter(
      (f) => f !== undefined,
    );
    expect(layoutFirst[0]?.name).toBe('oci-layout');
    const s = await openStore();
    const result = await importArchive(readTarEntries(list([await tarOf(layoutFirst)])), s.startImport(), {
      label: 'bundle.tar',
    });
    expect(result.images).toEqual([{ ref: 'docker.io/team/app:v1', digest: image.root.digest }]);
  });

  // Round 12c: an archive whose first file is index.json (`tar -cf x.tar index.json oci-layout blobs`)
  // was taken for a docker save tar and refused.
  it('imports a tar whose first entry is index.json as an OCI layout', async () => {
    const image = await makeImage({ seed: testSeed('import-edges index first'), layers: 1 });
    const files = layoutFiles(allBlobsOf(image), [rootEntry(image, { [refNameAnnotation]: 'docker.io/team/app:v1' })]);
    const indexFirst = [files[files.length - 1], ...files.slice(0, -1)].filter((f) => f !== undefined);
    expect(indexFirst[0]?.name).toBe('index.json');
    const s = await openStore();
    const result = await importArchive(readTarEntries(list([await tarOf(indexFirst)])), s.startImport(), {
      label: 'bundle.tar',
    });
    expect(result.images).toEqual([{ ref: 'docker.io/team/app:v1', digest: image.root.digest }]);
  });

  it('keeps a manifest that arrives in two chunks', async () => {
    const image = await makeImage({ seed: testSeed('import-edges chunks'), layers: 1 });
    const blobs = allBlobsOf(image);
    const manifest = image.root.bytes;
    expect(manifest[10]).not.toBe(0x7b);
    const entries = [
      ...[...image.blobs].map(([digest, data]) => file(blobName(digest), data)),
      file(blobName(image.root.digest), manifest, [manifest.subarray(0, 10), manifest.subarray(10)]),
      file('oci-layout', layoutVersion),
      file('index.json', indexJson([rootEntry(image, { [refNameAnnotation]: 'docker.io/team/app:v1' })])),
    ];
    expect(blobs.size).toBe(image.blobs.size + 1);
    const s = await openStore();
    const result = await importArchive(list(entries), s.startImport(), { label: 'layout' });
    expect(result.images).toEqual([{ ref: 'docker.io/team/app:v1', digest: image.root.digest }]);
  });

  it('takes an oci-layout of exactly 64 KiB, and refuses one byte more', async () => {
    const image = await makeImage({ seed: testSeed('import-edges oci-layout size'), layers: 1 });
    const padded = (size: number): Buffer => {
      const json = JSON.stringify({ imageLayoutVersion: '1.0.0' });
      return Buffer.from(json + ' '.repeat(size - json.length));
    };
    const entries = (layout: Buffer): LayoutEntry[] => [
      ...[...allBlobsOf(image)].map(([digest, data]) => file(blobName(digest), data)),
      file('oci-layout', layout),
      file('index.json', indexJson([rootEntry(image, { [refNameAnnotation]: 'docker.io/team/app:v1' })])),
    ];
    const s = await openStore();
    await expect(importArchive(list(entries(padded(64 * 1024 + 1))), s.startImport(), { label: 'l' })).rejects.toThrow(
      'oci-layout exceeds 65536 bytes',
    );
    const result = await importArchive(list(entries(padded(64 * 1024))), s.startImport(), { label: 'l' });
    expect(result.images.map((i) => i.digest)).toEqual([image.root.digest]);
  });
});

describe('which entries of index.json are images', () => {
  it('imports a named entry whose manifest has a subject as an image, with its tag', async () => {
    const image = await makeImage({ seed: testSeed('import-edges named artifact'), layers: 1 });
    const emptyConfig = Buffer.from('{}');
    const sbom = Buffer.from('{"sbom":"a list of packages"}');
    const artifact = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: ociManifest,
        artifactType: 'application/vnd.example.sbom',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256Digest(emptyConfig), size: 2 },
        layers: [{ mediaType: 'application/vnd.example.sbom', digest: sha256Digest(sbom), size: sbom.length }],
        subject: { mediaType: image.root.mediaType, digest: image.root.digest, size: image.root.size },
      }),
    );
    const blobs = new Map([
      ...allBlobsOf(image),
      [sha256Digest(emptyConfig), emptyConfig],
      [sha256Digest(sbom), sbom],
      [sha256Digest(artifact), artifact],
    ]);
    const entries = [
      rootEntry(image, { [refNameAnnotation]: 'docker.io/team/app:v1' }),
      {
        mediaType: ociManifest,
        digest: sha256Digest(artifact),
        size: artifact.length,
        annotations: { [refNameAnnotation]: 'docker.io/team/app:v1-sbom' },
      },
    ];
    const s = await openStore();
    const result = await importArchive(list(entriesOf(layoutFiles(blobs, entries))), s.startImport(), {
      label: 'layout',
    });
    expect(result.images.map((i) => i.ref).sort()).toEqual(['docker.io/team/app:v1', 'docker.io/team/app:v1-sbom']);
    const tagged = await s.getManifest('docker.io/team/app' as RepoName, 'v1-sbom' as Tag);
    expect(tagged?.digest).toBe(sha256Digest(artifact));
  });

  it('picks with `only` the entry whose ref.name is as written, beside io.containerd.image.name', async () => {
    const image = await makeImage({ seed: testSeed('import-edges only'), layers: 1 });
    const entries = [
      rootEntry(image, {
        [refNameAnnotation]: '3.20',
        'io.containerd.image.name': 'docker.io/library/alpine:3.20',
      }),
    ];
    const s = await openStore();
    const result = await importArchive(list(entriesOf(layoutFiles(allBlobsOf(image), entries))), s.startImport(), {
      label: 'docker25.tar',
      only: '3.20',
    });
    expect(result.images).toEqual([{ ref: 'docker.io/library/alpine:3.20', digest: image.root.digest }]);
    expect((await s.getManifest('docker.io/library/alpine' as RepoName, '3.20' as Tag))?.digest).toBe(
      image.root.digest,
    );
  });
});

describe('blobs a layout may leave out', () => {
  it('does not refuse a non-distributable layer the layout lacks', async () => {
    const image = await makeImage({ seed: testSeed('import-edges foreign'), layers: 1 });
    const config = image.images[0]?.config;
    const layer = image.images[0]?.layers[0];
    if (config === undefined || layer === undefined) throw new Error('no image');
    const foreign = {
      mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
      digest: sha256Digest('a Windows base layer, never redistributed'),
      size: 4096,
    };
    const manifest = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: ociManifest, config, layers: [foreign, layer] }),
    );
    const blobs = new Map([...image.blobs, [sha256Digest(manifest), manifest]]);
    const entries = [
      {
        mediaType: ociManifest,
        digest: sha256Digest(manifest),
        size: manifest.length,
        annotations: { [refNameAnnotation]: 'docker.io/team/win:v1' },
      },
    ];
    const s = await openStore();
    const result = await importArchive(list(entriesOf(layoutFiles(blobs, entries))), s.startImport(), {
      label: 'layout',
    });
    expect(result.images).toEqual([{ ref: 'docker.io/team/win:v1', digest: sha256Digest(manifest) }]);
  });

  it('does not refuse a layer the layout lacks when the store holds it', async () => {
    const image = await makeImage({ seed: testSeed('import-edges held layer'), layers: 2 });
    const layer = image.images[0]?.layers[0];
    if (layer === undefined) throw new Error('no layer');
    const s = await openStore();
    const name = (ref: string): IndexEntry[] => [rootEntry(image, { [refNameAnnotation]: ref })];
    await importArchive(
      list(entriesOf(layoutFiles(allBlobsOf(image), name('docker.io/team/app:v1')))),
      s.startImport(),
      {
        label: 'full',
      },
    );
    const thin = new Map(allBlobsOf(image));
    thin.delete(layer.digest);
    const result = await importArchive(
      list(entriesOf(layoutFiles(thin, name('docker.io/team/other:v1')))),
      s.startImport(),
      {
        label: 'thin',
      },
    );
    expect(result.images).toEqual([{ ref: 'docker.io/team/other:v1', digest: image.root.digest }]);
    expect(await s.statBlob('docker.io/team/other' as RepoName, layer.digest as Digest)).toEqual({
      digest: layer.digest,
      size: layer.size,
    });
  });

  it('writes every platform of an index imported again under a second name', async () => {
    const image = await makeImage({
      seed: testSeed('import-edges again'),
      layers: 1,
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' },
      ],
    });
    const s = await openStore();
    for (const ref of ['docker.io/team/app:v1', 'docker.io/team/copy:v1']) {
      const files = layoutFiles(allBlobsOf(image), [rootEntry(image, { [refNameAnnotation]: ref })]);
      // As `wharf import` opens its batch: a sparse index is taken as sparse.
      await importArchive(list(entriesOf(files)), s.startImport({ allowSparseIndex: true }), { label: ref });
    }
    for (const platform of image.images) {
      const child = await s.getManifest('docker.io/team/copy' as RepoName, platform.manifest.digest as Digest);
      expect(child?.digest).toBe(platform.manifest.digest);
    }
  });
});

/** A legacy docker save tar's entries (docker ≤ 24): v1 metadata beside each layer, manifest.json last. */
async function legacyEntries(
  repoTags: unknown,
): Promise<{ entries: LayoutEntry[]; layerDigest: string; configDigest: string }> {
  const layer = await tarOf([{ name: 'etc/motd', data: Buffer.from('hello from an old docker\n') }]);
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: [sha256Digest(layer)] },
    }),
  );
  const configName = `${sha256Digest(config).slice('sha256:'.length)}.json`;
  const id = '2'.repeat(64);
  const manifest = Buffer.from(
    JSON.stringify([{ Config: configName, RepoTags: repoTags, Layers: [`${id}/layer.tar`] }]),
  );
  return {
    layerDigest: sha256Digest(layer),
    configDigest: sha256Digest(config),
    entries: [
      { path: `${id}/`, type: 'directory', size: 0, body: list([]) },
      file(`${id}/VERSION`, Buffer.from('1.0')),
      file(`${id}/json`, Buffer.from(JSON.stringify({ id, created: '2024-01-01T00:00:00Z' }))),
      file(`${id}/layer.tar`, layer),
      file(configName, config),
      file('manifest.json', manifest),
      file('repositories', Buffer.from('{}')),
    ],
  };
}

describe('a legacy docker save tar', () => {
  it("reads <id>/json as metadata, not a blob, and builds docker's three-space schema2 manifest", async () => {
    const { entries, layerDigest } = await legacyEntries(['team/tool:v1']);
    const events: TransferEvent[] = [];
    const s = await openStore();
    const result = await importArchive(list(entries), s.startImport(), {
      label: 'old.tar',
      onEvent: (e) => events.push(e),
    });
    // The layer and the config: `<id>/json` is no blob.
    expect(result.blobsWritten).toBe(2);
    expect(events.filter((e) => e.type === 'blob-done').map((e) => ('digest' in e ? e.digest : ''))).toEqual([
      layerDigest,
    ]);
    const manifest = await s.getManifest('docker.io/team/tool' as RepoName, 'v1' as Tag);
    if (manifest === undefined) throw new Error('not imported');
    const text = Buffer.from(manifest.bytes).toString('utf8');
    expect(text).toBe(JSON.stringify(JSON.parse(text), null, 3));
  });

  it('counts the layer and the config it wrote, and on a second import of the same tar nothing', async () => {
    const first = await legacyEntries(['team/tool:v1']);
    const sizes = first.entries
      .filter((e) => e.path.endsWith('/layer.tar') || e.path.endsWith('.json'))
      .filter((e) => !e.path.endsWith('/json') && e.path !== 'manifest.json')
      .reduce((sum, e) => sum + e.size, 0);
    const s = await openStore();
    const once = await importArchive(list(first.entries), s.startImport(), { label: 'old.tar' });
    expect(once).toMatchObject({ blobsWritten: 2, bytesWritten: sizes });
    const again = await importArchive(list((await legacyEntries(['team/tool:v1'])).entries), s.startImport(), {
      label: 'old.tar',
    });
    expect(again).toMatchObject({ blobsWritten: 0, bytesWritten: 0 });
    expect(again.images).toEqual(once.images);
  });

  it('takes "RepoTags": null (an untagged image) with --name, by digest', async () => {
    const { entries } = await legacyEntries(null);
    const s = await openStore();
    const result = await importArchive(list(entries), s.startImport(), {
      label: 'untagged.tar',
      name: 'team/tool' as RepoName,
    });
    expect(result.images).toHaveLength(1);
    expect(result.images[0]?.ref).toMatch(/^team\/tool@sha256:[0-9a-f]{64}$/);
  });
});

describe('an import that fails late', () => {
  it('is aborted when the commit finds the index locked by another writer', { timeout: 60_000 }, async () => {
    const image = await makeImage({ seed: testSeed('import-edges busy'), layers: 2 });
    const dir = join(work(), 'store');
    const s = await openStore(dir);
    const before = await blobFiles(dir);
    const other = new Database(join(dir, 'index.db'));
    try {
      other.exec('BEGIN IMMEDIATE');
      const files = layoutFiles(allBlobsOf(image), [
        rootEntry(image, { [refNameAnnotation]: 'docker.io/team/app:v1' }),
      ]);
      await expect(importArchive(list(entriesOf(files)), s.startImport(), { label: 'layout' })).rejects.toThrow(
        /locked|busy/i,
      );
      other.exec('ROLLBACK');
    } finally {
      other.close();
    }
    expect(await blobFiles(dir)).toEqual(before);
    expect(await s.getManifest('docker.io/team/app' as RepoName, 'v1' as Tag)).toBeUndefined();
  });
});

describe('wharf import', () => {
  it('releases the data directory lock when the import fails', async () => {
    const data = join(work(), 'data');
    const layout = join(work(), 'broken');
    await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(layout, 'oci-layout'), layoutVersion);
    await expect(runImport(layout, { data, quiet: true }, {})).rejects.toThrow('no index.json');
    expect(existsSync(join(data, lockFileName))).toBe(false);
  });

  it('keeps a plain name that --local matches local', async () => {
    const image = await makeImage({ seed: testSeed('import-edges --local'), layers: 1 });
    const layout = join(work(), 'layout');
    await writeOciLayout(image, layout, 'team/app:v1');
    const data = join(work(), 'data');
    await runImport(layout, { data, local: ['team/*'], quiet: true }, {});
    const s = await openStore(data);
    expect((await s.getManifest('team/app' as RepoName, 'v1' as Tag))?.digest).toBe(image.root.digest);
    expect(await s.getManifest('docker.io/team/app' as RepoName, 'v1' as Tag)).toBeUndefined();
  });
});
