/**
 * The archive-import Stryker scope's survivors in the docker save reader (import-docker-archive.ts,
 * docker-manifest.ts, docker-names.ts), killed in process: the spawned import tests reach the same
 * code, but Stryker cannot see a child process fail. docker save tars built in memory, read by
 * importArchive into a LocalStore's import; each refusal is asserted with its exact code and message,
 * and after it nothing is kept (no blob file, no image).
 * - What a good tar gives: the images under their RepoTags, the counts, the events (types, digests,
 *   sizes, the image's total bytes) and the schema2 manifest's exact bytes; skopeo's form (top-level
 *   `<hex>.tar` layers); a config not named by its digest; a file or config seen twice with the same bytes.
 * - Symlinks (docker links a layer two images share): `.`, `..`, `//`, a trailing '/', three levels
 *   deep, a chain of 8; refused when they leave the archive, are absolute, chain 9 deep or loop.
 * - Every refusal of the reader: an entry neither file, directory nor symlink, a config whose name
 *   is not its digest, the same path twice with different bytes, no manifest.json, a config or layer
 *   named but missing, diff_ids and layers of different counts, a layer whose digest is not its diff_id,
 *   manifest.json and configs malformed in each way, a RepoTag that is not name:tag, an untagged image
 *   without --name, a manifest.json over its cap.
 * Real parts: a LocalStore (real files, real SQLite), the archive readers, entries built in memory.
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readDirEntries } from '../src/archive/dir-entries.js';
import { importArchive, type ImportArchiveOptions } from '../src/archive/import-archive.js';
import type { LayoutEntry, EntryType } from '../src/archive/layout-entry.js';
import { readTarEntries } from '../src/archive/tar-entries.js';
import { OciError } from '../src/oci/errors.js';
import type { RepoName, Tag } from '../src/oci/reference.js';
import type { TransferEvent } from '../src/oci/transfer-events.js';
import type { LocalStore } from '../src/store/local-store.js';
import { blobFiles } from './support/blob-file.js';
import { sha256Digest, tarOf } from './support/make-image.js';
import { list, file, scratchStore } from './support/archive-entries.js';

const dockerManifestType = 'application/vnd.docker.distribution.manifest.v2+json';
const dockerConfigType = 'application/vnd.docker.container.image.v1+json';
const dockerLayerType = 'application/vnd.docker.image.rootfs.diff.tar';
const idA = 'a'.repeat(64);
const idB = 'b'.repeat(64);

const { work, openStore, closeStore } = scratchStore('wharf-docker-mutants-');

function entry(path: string, type: EntryType, linkTarget?: string): LayoutEntry {
  return { path, type, size: 0, body: list([]), ...(linkTarget === undefined ? {} : { linkTarget }) };
}

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

function hexName(bytes: Buffer): string {
  return `${sha256Digest(bytes).slice('sha256:'.length)}.json`;
}

function configOf(layers: readonly Buffer[]): Buffer {
  return json({
    architecture: 'amd64',
    os: 'linux',
    config: {},
    rootfs: { type: 'layers', diff_ids: layers.map(sha256Digest) },
  });
}

async function layerOf(text: string): Promise<Buffer> {
  return tarOf([{ name: 'etc/motd', data: Buffer.from(text) }]);
}

/** One image, one layer at `<idA>/layer.tar`, its config named by its digest; manifest.json last. */
async function oneImage(repoTags: unknown = ['team/tool:v1']): Promise<{
  layer: Buffer;
  config: Buffer;
  configName: string;
  entries: (manifest?: unknown) => LayoutEntry[];
}> {
  const layer = await layerOf('hello\n');
  const config = configOf([layer]);
  const configName = hexName(config);
  const manifest = [{ Config: configName, RepoTags: repoTags, Layers: [`${idA}/layer.tar`] }];
  return {
    layer,
    config,
    configName,
    entries: (m: unknown = manifest) => [
      file(`${idA}/layer.tar`, layer),
      file(configName, config),
      file('manifest.json', json(m)),
    ],
  };
}

async function run(
  entries: readonly LayoutEntry[],
  options: Partial<ImportArchiveOptions> = {},
): Promise<{ result: Awaited<ReturnType<typeof importArchive>>; events: TransferEvent[]; s: LocalStore }> {
  const s = await openStore();
  const events: TransferEvent[] = [];
  const result = await importArchive(list(entries), s.startImport(), {
    label: 'old.tar',
    onEvent: (e) => events.push(e),
    ...options,
  });
  return { result, events, s };
}

/** The import is refused with exactly this code and message, and leaves the store empty. */
async function refused(
  entries: readonly LayoutEntry[],
  code: string,
  message: string,
  options: Partial<ImportArchiveOptions> = {},
): Promise<OciError> {
  const s = await openStore();
  const error: unknown = await importArchive(list(entries), s.startImport(), { label: 'old.tar', ...options }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(OciError);
  expect({ code: (error as OciError).code, message: (error as OciError).message }).toEqual({ code, message });
  expect(await blobFiles(join(work(), 'store'))).toEqual([]);
  expect(await s.listImages()).toEqual([]);
  return error as OciError;
}

describe('a good docker save tar', () => {
  it('gives its images, counts, events and the exact schema2 manifest', async () => {
    const l1 = await layerOf('first\n');
    const l2 = await layerOf('second layer\n');
    const config = configOf([l1, l2]);
    const configName = hexName(config);
    const manifest = [
      {
        Config: configName,
        RepoTags: ['team/tool:v1', 'team/tool:v2'],
        Layers: [`${idA}/layer.tar`, `${idB}/layer.tar`],
      },
    ];
    const { result, events, s } = await run([
      { path: `${idA}/`, type: 'directory', size: 0, body: list([]) },
      file(`${idA}/VERSION`, Buffer.from('1.0')),
      file(`${idA}/json`, json({ id: idA })),
      file(`${idA}/layer.tar`, l1),
      file(`${idB}/layer.tar`, l2),
      file(configName, config),
      file('manifest.json', json(manifest)),
      file('repositories', Buffer.from('{}')),
    ]);
    const expected = Buffer.from(
      JSON.stringify(
        {
          schemaVersion: 2,
          mediaType: dockerManifestType,
          config: { mediaType: dockerConfigType, size: config.length, digest: sha256Digest(config) },
          layers: [
            { mediaType: dockerLayerType, size: l1.length, digest: sha256Digest(l1) },
            { mediaType: dockerLayerType, size: l2.length, digest: sha256Digest(l2) },
          ],
        },
        null,
        3,
      ),
    );
    const digest = sha256Digest(expected);
    expect(result).toEqual({
      images: [
        { ref: 'docker.io/team/tool:v1', digest },
        { ref: 'docker.io/team/tool:v2', digest },
      ],
      blobsWritten: 3,
      bytesWritten: l1.length + l2.length + config.length,
    });
    const total = config.length + l1.length + l2.length;
    expect(events).toEqual([
      { type: 'blob-done', image: 'old.tar', digest: sha256Digest(l1), size: l1.length },
      { type: 'blob-done', image: 'old.tar', digest: sha256Digest(l2), size: l2.length },
      { type: 'image-done', image: 'docker.io/team/tool:v1', digest, bytes: total },
      { type: 'image-done', image: 'docker.io/team/tool:v2', digest, bytes: total },
    ]);
    const stored = await s.getManifest('docker.io/team/tool' as RepoName, 'v2' as Tag);
    expect(Buffer.from(stored?.bytes ?? []).toString('utf8')).toBe(expected.toString('utf8'));
    expect(stored?.mediaType).toBe(dockerManifestType);
  });

  it("takes skopeo's form: layers as top-level <hex>.tar files", async () => {
    const layer = await layerOf('skopeo\n');
    const config = configOf([layer]);
    const layerName = `${sha256Digest(layer).slice('sha256:'.length)}.tar`;
    const { result, events } = await run([
      file(layerName, layer),
      file(hexName(config), config),
      file('manifest.json', json([{ Config: hexName(config), RepoTags: ['app:1'], Layers: [layerName] }])),
    ]);
    expect(result.images.map((i) => i.ref)).toEqual(['docker.io/library/app:1']);
    expect(result.blobsWritten).toBe(2);
    expect(events.filter((e) => e.type === 'blob-done').map((e) => e.digest)).toEqual([sha256Digest(layer)]);
  });

  it('takes a config not named by its digest, and a config or layer seen twice with the same bytes', async () => {
    const { layer, config } = await oneImage();
    const { result } = await run([
      file(`${idA}/layer.tar`, layer),
      file(`${idA}/layer.tar`, layer),
      file('config.json', config),
      file('config.json', config),
      file(
        'manifest.json',
        json([{ Config: 'config.json', RepoTags: ['team/tool:v1'], Layers: [`${idA}/layer.tar`] }]),
      ),
    ]);
    expect(result.images.map((i) => i.ref)).toEqual(['docker.io/team/tool:v1']);
    expect(result.blobsWritten).toBe(2);
    expect(result.bytesWritten).toBe(layer.length + config.length);
  });

  it('skips a directory and docker v1 metadata read from a real tar', async () => {
    const { layer, config, configName } = await oneImage();
    const tar = await tarOf([
      { name: `${idA}/layer.tar`, data: layer },
      { name: `${idB}/json`, data: json({ id: idB }) },
      { name: configName, data: config },
      {
        name: 'manifest.json',
        data: json([{ Config: configName, RepoTags: ['team/tool:v1'], Layers: [`${idA}/layer.tar`] }]),
      },
      { name: 'repositories', data: Buffer.from('{"team/tool":{"v1":"x"}}') },
    ]);
    const s = await openStore();
    const result = await importArchive(readTarEntries(list([tar])), s.startImport(), { label: 'old.tar' });
    expect(result.images.map((i) => i.ref)).toEqual(['docker.io/team/tool:v1']);
    expect(result.blobsWritten).toBe(2);
  });
});

describe('an unpacked docker save folder', () => {
  it('closes the files it skips (repositories, <id>/json, <id>/VERSION)', async () => {
    const { layer, config, configName } = await oneImage();
    const dir = join(work(), 'saved');
    await mkdir(join(dir, idA), { recursive: true });
    await writeFile(join(dir, idA, 'layer.tar'), layer);
    await writeFile(join(dir, idA, 'json'), json({ id: idA }));
    await writeFile(join(dir, idA, 'VERSION'), '1.0');
    await writeFile(join(dir, configName), config);
    await writeFile(
      join(dir, 'manifest.json'),
      json([{ Config: configName, RepoTags: ['team/tool:v1'], Layers: [`${idA}/layer.tar`] }]),
    );
    await writeFile(join(dir, 'repositories'), '{}');
    const s = await openStore();
    const before = (await readdir('/proc/self/fd')).length;
    const result = await importArchive(readDirEntries(dir), s.startImport(), { label: dir });
    expect(result.images.map((i) => i.ref)).toEqual(['docker.io/team/tool:v1']);
    // A stream opened and never read keeps its descriptor: give any close a moment, then count.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await readdir('/proc/self/fd')).length).toBeLessThanOrEqual(before);
  });
});

describe('symlinks in a docker save tar', () => {
  /** Two images sharing a layer: the second's layer is a symlink to the first's. */
  async function linked(linkPath: string, target: string, extra: LayoutEntry[] = []): Promise<LayoutEntry[]> {
    const layer = await layerOf('shared\n');
    const config = configOf([layer]);
    return [
      file(`${idA}/layer.tar`, layer),
      ...extra,
      entry(linkPath, 'symlink', target),
      file(hexName(config), config),
      file(
        'manifest.json',
        json([
          { Config: hexName(config), RepoTags: ['team/one:v1'], Layers: [`${idA}/layer.tar`] },
          { Config: hexName(config), RepoTags: ['team/two:v1'], Layers: [linkPath] },
        ]),
      ),
    ];
  }

  it.each([
    ['a sibling directory', `${idB}/layer.tar`, `../${idA}/layer.tar`],
    ['. and //', `${idB}/layer.tar`, `./../${idA}//layer.tar`],
    ['a trailing /', `${idB}/layer.tar`, `../${idA}/layer.tar/`],
    ['three levels deep', `x/${idB}/layer.tar`, `../../${idA}/layer.tar`],
    ['the top level', 'shared.tar', `${idA}/layer.tar`],
  ])('follows one from %s', async (_name, linkPath, target) => {
    const { result } = await run(await linked(linkPath, target));
    expect(result.images.map((i) => i.ref)).toEqual(['docker.io/team/one:v1', 'docker.io/team/two:v1']);
    expect(result.images[0]?.digest).toBe(result.images[1]?.digest);
    expect(result.blobsWritten).toBe(2);
  });

  it('follows a chain of 8 and refuses one of 9', async () => {
    const chain = (n: number): LayoutEntry[] =>
      Array.from({ length: n - 1 }, (_, i) =>
        entry(`l${i + 1}.tar`, 'symlink', i === n - 2 ? `${idA}/layer.tar` : `l${i + 2}.tar`),
      );
    const { result } = await run(await linked('l0.tar', 'l1.tar', chain(8)));
    expect(result.images).toHaveLength(2);
    closeStore();
    await rm(join(work(), 'store'), { recursive: true, force: true });
    await refused(await linked('l0.tar', 'l1.tar', chain(9)), 'NAME_INVALID', 'l0.tar: too many symlinks');
  });

  it('refuses a loop', async () => {
    await refused(
      await linked('l0.tar', 'l1.tar', [entry('l1.tar', 'symlink', 'l0.tar')]),
      'NAME_INVALID',
      'l0.tar: too many symlinks',
    );
  });

  it.each([
    ['leaves the archive', `x/${idB}/layer.tar`, `../../../${idA}/layer.tar`],
    ['is absolute', `x/${idB}/layer.tar`, `/${idA}/layer.tar`],
    ['is absolute and climbs', `x/${idB}/layer.tar`, `/../${idA}/layer.tar`],
  ])('refuses one that %s', async (_name, linkPath, target) => {
    await refused(
      await linked(linkPath, target),
      'NAME_INVALID',
      `symlink ${linkPath} points outside the archive (${target})`,
    );
  });
});

describe('a docker save tar refused', () => {
  it.each([
    ['link', 'a hard link'],
    ['other', 'a device'],
  ] as const)('for an entry that is a %s (%s)', async (type, _what) => {
    const { entries } = await oneImage();
    const [first, ...rest] = entries();
    await refused(
      [first as LayoutEntry, entry(`${idB}/dev`, type), ...rest],
      'UNSUPPORTED',
      `entry "${idB}/dev" is a ${type}: only files, directories and symlinks are accepted`,
    );
  });

  it('for a config whose name is not its digest', async () => {
    const { layer, config } = await oneImage();
    const name = `${'c'.repeat(64)}.json`;
    await refused(
      [file(`${idA}/layer.tar`, layer), file(name, config), file('manifest.json', json([]))],
      'DIGEST_INVALID',
      `${name}: content does not match its name (computed ${sha256Digest(config)})`,
    );
  });

  it('for a config or a layer seen twice with different bytes', async () => {
    const { layer, config } = await oneImage();
    await refused(
      [
        file(`${idA}/layer.tar`, layer),
        file('config.json', config),
        file('config.json', json({})),
        file('manifest.json', json([])),
      ],
      'DIGEST_INVALID',
      'duplicate entry config.json with different bytes',
    );
    closeStore();
    await refused(
      [
        file(`${idA}/layer.tar`, layer),
        file(`${idA}/layer.tar`, await layerOf('other\n')),
        file('manifest.json', json([])),
      ],
      'DIGEST_INVALID',
      `duplicate entry ${idA}/layer.tar with different bytes`,
    );
  });

  it('without manifest.json', async () => {
    const { entries } = await oneImage();
    await refused(entries().slice(0, 2), 'MANIFEST_UNKNOWN', 'old.tar: no manifest.json, not a docker-archive');
  });

  it('for a manifest.json over its cap', async () => {
    const { entries } = await oneImage();
    const big = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
    await refused(
      [...entries().slice(0, 2), file('manifest.json', big)],
      'MANIFEST_INVALID',
      'manifest.json exceeds 4194304 bytes',
    );
  });

  it('for a config or a layer named but missing', async () => {
    const { entries, configName } = await oneImage();
    const missingConfig = `${'d'.repeat(64)}.json`;
    await refused(
      entries([{ Config: missingConfig, RepoTags: ['team/tool:v1'], Layers: [`${idA}/layer.tar`] }]),
      'MANIFEST_BLOB_UNKNOWN',
      `manifest.json names config ${missingConfig}, which is missing`,
    );
    closeStore();
    await refused(
      entries([{ Config: configName, RepoTags: ['team/tool:v1'], Layers: [`${idB}/layer.tar`] }]),
      'MANIFEST_BLOB_UNKNOWN',
      `manifest.json names layer ${idB}/layer.tar, which is missing`,
    );
  });

  it('for diff_ids and layers of different counts', async () => {
    const { entries, configName } = await oneImage();
    await refused(
      entries([{ Config: configName, RepoTags: ['team/tool:v1'], Layers: [`${idA}/layer.tar`, `${idA}/layer.tar`] }]),
      'MANIFEST_INVALID',
      `${configName} lists 1 diff_ids, manifest.json 2 layers`,
    );
  });

  it('for a layer whose digest is not its diff_id', async () => {
    const layer = await layerOf('real\n');
    const claimed = await layerOf('claimed\n');
    const config = configOf([claimed]);
    await refused(
      [
        file(`${idA}/layer.tar`, layer),
        file(hexName(config), config),
        file(
          'manifest.json',
          json([{ Config: hexName(config), RepoTags: ['team/tool:v1'], Layers: [`${idA}/layer.tar`] }]),
        ),
      ],
      'DIGEST_INVALID',
      `layer ${idA}/layer.tar hashes to ${sha256Digest(layer)}, its config says ${sha256Digest(claimed)} (damaged, or a compressed layer)`,
    );
  });

  it('for a manifest.json that is not JSON, keeping the parse error as its cause', async () => {
    const { entries } = await oneImage();
    const error = await refused(
      [...entries().slice(0, 2), file('manifest.json', Buffer.from('[{'))],
      'MANIFEST_INVALID',
      'manifest.json is not valid JSON',
    );
    expect(error.cause).toBeInstanceOf(SyntaxError);
  });

  it.each([
    ['not a list', { Config: 'x.json' }, 'manifest.json is not a list of images'],
    ['a null image', [null], 'manifest.json: image 0 lacks Config, Layers or valid RepoTags'],
    ['no Config', [{ RepoTags: ['a:1'], Layers: [] }], 'manifest.json: image 0 lacks Config, Layers or valid RepoTags'],
    [
      'Layers a string',
      [{ Config: 'x.json', RepoTags: ['a:1'], Layers: 'l.tar' }],
      'manifest.json: image 0 lacks Config, Layers or valid RepoTags',
    ],
    [
      'Layers not strings',
      [{ Config: 'x.json', RepoTags: ['a:1'], Layers: [1] }],
      'manifest.json: image 0 lacks Config, Layers or valid RepoTags',
    ],
    [
      'RepoTags a string',
      [{ Config: 'x.json', RepoTags: 'a:1', Layers: [] }],
      'manifest.json: image 0 lacks Config, Layers or valid RepoTags',
    ],
    [
      'RepoTags not strings',
      [{ Config: 'x.json', RepoTags: [7], Layers: [] }],
      'manifest.json: image 0 lacks Config, Layers or valid RepoTags',
    ],
  ])('for a manifest.json with %s', async (_name, manifest, message) => {
    const { entries } = await oneImage();
    await refused(entries(manifest), 'MANIFEST_INVALID', message);
  });

  it('for a manifest.json whose second image is bad, naming it', async () => {
    const { entries, configName } = await oneImage();
    await refused(
      entries([{ Config: configName, RepoTags: ['a:1'], Layers: [`${idA}/layer.tar`] }, { Config: 1 }]),
      'MANIFEST_INVALID',
      'manifest.json: image 1 lacks Config, Layers or valid RepoTags',
    );
  });

  it.each([
    ['not JSON', Buffer.from('{"rootfs"'), 'is not valid JSON'],
    ['null', Buffer.from('null'), 'has no rootfs.diff_ids'],
    ['without rootfs', json({ os: 'linux' }), 'has no rootfs.diff_ids'],
    ['with diff_ids not strings', json({ rootfs: { diff_ids: [1] } }), 'has no rootfs.diff_ids'],
  ])('for a config %s', async (_name, config, tail) => {
    const { layer } = await oneImage();
    const name = hexName(config);
    const error = await refused(
      [
        file(`${idA}/layer.tar`, layer),
        file(name, config),
        file('manifest.json', json([{ Config: name, RepoTags: ['a:1'], Layers: [`${idA}/layer.tar`] }])),
      ],
      'MANIFEST_INVALID',
      `${name} ${tail}`,
    );
    if (tail === 'is not valid JSON') expect(error.cause).toBeInstanceOf(SyntaxError);
  });

  it('for a RepoTag that is not name:tag, quoting its first 300 characters', async () => {
    const { entries, configName } = await oneImage();
    const tag = `Team/${'x'.repeat(400)}:v1`;
    await refused(
      entries([{ Config: configName, RepoTags: [tag], Layers: [`${idA}/layer.tar`] }]),
      'NAME_INVALID',
      `manifest.json: RepoTag ${JSON.stringify(tag.slice(0, 300))} is not name:tag`,
    );
  });

  it('for an untagged image without --name', async () => {
    const { entries, layer, config, configName } = await oneImage([]);
    const manifest = Buffer.from(
      JSON.stringify(
        {
          schemaVersion: 2,
          mediaType: dockerManifestType,
          config: { mediaType: dockerConfigType, size: config.length, digest: sha256Digest(config) },
          layers: [{ mediaType: dockerLayerType, size: layer.length, digest: sha256Digest(layer) }],
        },
        null,
        3,
      ),
    );
    await refused(
      entries([{ Config: configName, Layers: [`${idA}/layer.tar`] }]),
      'NAME_INVALID',
      `manifest.json: image ${sha256Digest(manifest)} has no RepoTags: pass --name`,
    );
  });
});
