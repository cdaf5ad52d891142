/**
 * Round 3 of the planted-bug audit (docs/mutation-testing.md): writing into an OCI layout folder that
 * already holds one. An image takes over the ref.name it names (index.json keeps one entry per
 * ref.name, the newest), index.json's other fields (another tool's annotations) stay, and docker's
 * manifest.json moves each RepoTag to the image that now has it, dropping an entry left with none.
 * An image asked for by digest gets a ref.name but no RepoTag (docker's RepoTags hold tags only).
 * Real parts: a LocalStore as the reader, OciLayoutDirWriter as the writer, the transfer engine between.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OciLayoutDirWriter } from '../src/archive/oci-layout-dir-writer.js';
import type { Digest } from '../src/oci/digest.js';
import type { RepoName, Tag } from '../src/oci/reference.js';
import type { LocalStore } from '../src/store/local-store.js';
import { copyImages } from '../src/transfer/copy-images.js';
import { storeHolding } from './support/layout-store.js';
import { makeImage, refNameAnnotation, testSeed, type TestImage } from './support/make-image.js';

const source = 'registry.example.test/team/source' as RepoName;
const target = 'team/app' as RepoName;

interface IndexJson {
  annotations?: Record<string, string>;
  manifests: { digest: string; annotations?: Record<string, string> }[];
}

interface DockerEntry {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

describe('copying into an existing OCI layout folder', () => {
  let work: string;
  let store: LocalStore;
  let first: TestImage;
  let second: TestImage;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-layout-merge-'));
    const seed = testSeed('layout merge');
    first = await makeImage({ seed: `${seed}-first`, layers: 1 });
    second = await makeImage({ seed: `${seed}-second`, layers: 1 });
    store = await storeHolding(work, source, { first, second });
  });

  afterAll(async () => {
    store?.close();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('replaces the entry whose ref.name it takes, keeps index.json annotations, and moves the RepoTag', async () => {
    const dir = join(work, 'out');
    await copyImages(store, new OciLayoutDirWriter(dir), [
      { from: { name: source, reference: 'first' as Tag }, to: { name: target, reference: 'v1' as Tag } },
    ]);
    // Another tool's annotation on the layout itself.
    const written = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as IndexJson;
    await writeFile(
      join(dir, 'index.json'),
      JSON.stringify({ ...written, annotations: { 'org.example.note': 'kept' } }),
    );

    const secondDigest = second.root.digest as Digest;
    await copyImages(store, new OciLayoutDirWriter(dir), [
      { from: { name: source, reference: 'second' as Tag }, to: { name: target, reference: 'v1' as Tag } },
      { from: { name: source, reference: secondDigest }, to: { name: target, reference: secondDigest } },
    ]);

    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as IndexJson;
    expect(index.annotations).toEqual({ 'org.example.note': 'kept' });
    expect(index.manifests.map((m) => [m.digest, m.annotations?.[refNameAnnotation]])).toEqual([
      [second.root.digest, `${target}:v1`],
      [second.root.digest, `${target}@${second.root.digest}`],
    ]);

    const docker = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as DockerEntry[];
    const config = second.images[0]?.config.digest ?? '';
    // The first image's entry lost its only RepoTag: gone. The digest form is no RepoTag.
    expect(docker).toEqual([
      {
        Config: `blobs/sha256/${config.slice('sha256:'.length)}`,
        RepoTags: [`${target}:v1`],
        Layers: (second.images[0]?.layers ?? []).map((l) => `blobs/sha256/${l.digest.slice('sha256:'.length)}`),
      },
    ]);
  });
});
