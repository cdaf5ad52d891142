/**
 * Round 7b of the planted-bug audit (docs/mutation-testing.md): archives at the air-gapped site, at
 * the edges the other archive tests leave out.
 * - A legacy `docker save` tar built here entry by entry: every RepoTag of an image is served; a
 *   second `<id>/layer.tar` entry with other bytes, and a config listing more diff_ids than
 *   manifest.json lists layers, are refused with one line and the store left as it was.
 * - An OCI layout tarred by hand (`tar -C layout -cf bundle.tar .` in directory order, index.json
 *   first) imports like wharf's own export.
 * - `export` writes each blob and manifest once into a tar, two tags of one image too; it refuses `--all` beside references and an `--all` that finds no tagged image, with one
 *   line and no output file; a failed export into a layout folder leaves what the folder held.
 */
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Header } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage, sha256Digest, tarOf, testSeed, type TestImage } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { runWharf } from './support/spawn-wharf.js';
import { snapshotStore } from './support/store-snapshot.js';
import { readTar, writeTar, type TarEntry } from './support/tar-surgery.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const timeout = 120_000;
let work: string;
let source: WharfHandle;
let image: TestImage;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-archive-edges-'));
  source = await startWharf();
  image = await makeImage({ seed: testSeed('archive edges'), layers: 1 });
  await pushTestImage(source.url, 'team/app', 'v1', image);
}, timeout);

afterAll(async () => {
  await source?.close();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

function file(name: string, data: Buffer): TarEntry {
  return { header: { name, type: 'file', mode: 0o644, size: data.length } as Header, data };
}

/** A legacy docker-archive (docker ≤ 24): `<id>/layer.tar`, `<config hex>.json`, manifest.json last. */
async function legacyArchive(options: { repoTags: string[]; extraDiffId?: boolean }): Promise<{
  entries: TarEntry[];
  layerPath: string;
}> {
  const layer = await tarOf([{ name: 'etc/motd', data: Buffer.from('hello from the air gap\n') }]);
  const diffIds = [sha256Digest(layer)];
  if (options.extraDiffId === true) diffIds.push(sha256Digest('a layer manifest.json does not list'));
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: diffIds } }),
  );
  const configName = `${sha256Digest(config).slice('sha256:'.length)}.json`;
  const layerPath = `${'1'.repeat(64)}/layer.tar`;
  const manifest = Buffer.from(
    JSON.stringify([{ Config: configName, RepoTags: options.repoTags, Layers: [layerPath] }]),
  );
  return {
    layerPath,
    entries: [file(layerPath, layer), file(configName, config), file('manifest.json', manifest)],
  };
}

async function expectRefused(bundle: string, data: string, why: RegExp): Promise<void> {
  const before = await snapshotStore(data);
  const result = await runWharf(['import', bundle, '--data', data, '--quiet'], { timeoutMs: 60_000 });
  expect(result.code).toBe(1);
  expect(result.stderr).toMatch(/^error: [^\n]+\n$/);
  expect(result.stderr).toMatch(why);
  expect(await snapshotStore(data)).toEqual(before);
}

describe('a legacy docker save tar', () => {
  it(
    'serves every RepoTag of an image; refuses a second layer entry with other bytes and a config with more diff_ids',
    async () => {
      const data = join(work, 'docker-store');
      const { entries, layerPath } = await legacyArchive({ repoTags: ['team/tool:v1', 'team/tool:latest'] });
      const good = join(work, 'legacy.tar');
      await writeTar(good, entries);
      const imported = await runWharf(['import', good, '--data', data]);
      expect(imported.stderr).not.toContain('error');
      expect(imported.code).toBe(0);
      const listed = await runWharf(['ls', '--data', data, '--json']);
      const rows = listed.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { repository: string; tag?: string; digest: string });
      expect(rows.map((r) => `${r.repository}:${r.tag}`).sort()).toEqual([
        'docker.io/team/tool:latest',
        'docker.io/team/tool:v1',
      ]);
      expect(new Set(rows.map((r) => r.digest)).size).toBe(1);

      const layerEntry = entries[0];
      if (layerEntry === undefined) throw new Error('no layer entry');
      const other = await tarOf([{ name: 'etc/motd', data: Buffer.from('hello from somewhere else\n') }]);
      const duplicate = join(work, 'duplicate-layer.tar');
      await writeTar(duplicate, [layerEntry, file(layerPath, other), ...entries.slice(1)]);
      await expectRefused(
        duplicate,
        data,
        new RegExp(`^error: DIGEST_INVALID: duplicate entry ${layerPath} with different bytes\\n$`),
      );

      const more = await legacyArchive({ repoTags: ['team/tool:v2'], extraDiffId: true });
      const extra = join(work, 'extra-diff-id.tar');
      await writeTar(extra, more.entries);
      await expectRefused(
        extra,
        data,
        /^error: MANIFEST_INVALID: \w+\.json lists 2 diff_ids, manifest\.json 1 layers\n$/,
      );
    },
    timeout,
  );
});

describe('an OCI layout tarred by hand', () => {
  it(
    'imports with index.json as its first entry (./ names, directory order)',
    async () => {
      const exported = join(work, 'export.tar');
      const result = await runWharf(['export', 'team/app:v1', '-o', exported, '--data', source.dataDir, '--quiet']);
      expect(result.code).toBe(0);
      const entries = (await readTar(exported)).filter((e) => e.header.name !== 'manifest.json');
      const first = (name: string): number => (name === 'index.json' ? 0 : name === 'oci-layout' ? 1 : 2);
      const byHand = [...entries]
        .sort((a, b) => first(a.header.name) - first(b.header.name))
        .map((e) => ({ header: { ...e.header, name: `./${e.header.name}` }, data: e.data }));
      expect(byHand[0]?.header.name).toBe('./index.json');
      const bundle = join(work, 'by-hand.tar');
      await writeTar(bundle, byHand);
      const data = join(work, 'by-hand-store');
      const imported = await runWharf(['import', bundle, '--data', data]);
      expect(imported.stderr).not.toContain('error');
      expect(imported.stdout).toContain(`imported team/app:v1 (${image.root.digest})`);
      expect(imported.code).toBe(0);
    },
    timeout,
  );
});

describe('export to a tar', () => {
  it(
    'writes each blob and manifest once, also when two tags name the same image',
    async () => {
      await pushTestImage(source.url, 'team/app', 'v2', image);
      const bundle = join(work, 'two-tags.tar');
      const result = await runWharf([
        'export',
        'team/app:v1',
        'team/app:v2',
        '-o',
        bundle,
        '--data',
        source.dataDir,
        '--quiet',
      ]);
      expect(result.code).toBe(0);
      const names = (await readTar(bundle)).filter((e) => e.header.type === 'file').map((e) => e.header.name);
      expect(names.length).toBe(new Set(names).size);
      expect(names).toContain(`blobs/sha256/${image.root.digest.slice('sha256:'.length)}`);
    },
    timeout,
  );
});

describe('export refusals', () => {
  it(
    'refuses --all beside references, and --all on a store without a tag, with one line and no file',
    async () => {
      const both = join(work, 'both.tar');
      const refused = await runWharf(['export', '--all', 'team/app:v1', '-o', both, '--data', source.dataDir]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toBe('error: give image references or --all, not both\n');

      // A store holding only an image pushed by digest: nothing is tagged.
      const untagged = await startWharf();
      try {
        await pushTestImage(untagged.url, 'team/loose', image.root.digest, image);
        const empty = join(work, 'empty.tar');
        const none = await runWharf(['export', '--all', '-o', empty, '--data', untagged.dataDir]);
        expect(none.code).toBe(1);
        expect(none.stderr).toBe('error: the store holds no tagged image\n');
      } finally {
        await untagged.close();
      }
      expect((await readdir(work)).filter((n) => n.startsWith('both.tar') || n.startsWith('empty.tar'))).toEqual([]);
    },
    timeout,
  );

  it(
    'a failed export into a layout folder leaves the layout that was there',
    async () => {
      const out = join(work, 'layout-out');
      await mkdir(out);
      const first = await runWharf(['export', 'team/app:v1', '-o', out, '--data', source.dataDir, '--quiet']);
      expect(first.code).toBe(0);
      const index = await readFile(join(out, 'index.json'));
      const failed = await runWharf([
        'export',
        'team/app:v1',
        'team/missing:v1',
        '-o',
        out,
        '--data',
        source.dataDir,
        '--quiet',
      ]);
      expect(failed.code).toBe(1);
      expect(failed.stderr).toMatch(/^error: MANIFEST_UNKNOWN: [^\n]*team\/missing[^\n]*\n$/);
      expect(await readFile(join(out, 'index.json'))).toEqual(index);
      const blobs = await readdir(join(out, 'blobs', 'sha256'));
      expect(blobs).toContain(image.root.digest.slice('sha256:'.length));
    },
    timeout,
  );
});
