/**
 * `wharf copy`'s push end (src/upstream/registry-image-writer.ts) on copies that succeed (round 9b
 * of planted bugs): a second copy of an image the target already holds under another tag (its
 * manifest is present: the tag must still move), several images with the writer's `tag` option (each
 * keeps its own tag), and a copy through mounts the registry could not do (no session left open).
 * Real parts: wharf in process as the target registry, a LocalStore as the source, the engine.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RepoName, Tag } from '../src/oci/reference.js';
import { LocalStore } from '../src/store/local-store.js';
import { copyImages } from '../src/transfer/copy-images.js';
import { RegistryClient } from '../src/upstream/registry-client.js';
import { RegistryImageWriter } from '../src/upstream/registry-image-writer.js';
import { makeImage, testSeed, type TestImage } from './support/make-image.js';
import { importTestImages } from './support/layout-store.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const name = 'team/app' as RepoName;

let work: string;
let source: LocalStore;
let wharf: WharfHandle;
let first: TestImage;
let second: TestImage;
const clients: RegistryClient[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-writer-edges-'));
  first = await makeImage({ seed: testSeed('writer edges first'), layers: 2, layerSize: 1024 });
  second = await makeImage({ seed: testSeed('writer edges second'), layers: 1, layerSize: 2048 });
  source = await LocalStore.open(join(work, 'source'));
  await importTestImages(source, name, [
    ['v1' as Tag, first],
    ['v2' as Tag, second],
  ]);
  wharf = await startWharf();
}, 120_000);

afterAll(async () => {
  for (const client of clients) await client.close();
  source?.close();
  await wharf?.close();
  await rm(work, { recursive: true, force: true });
});

function writerTo(target: RepoName, options: { mountFrom?: string; tag?: Tag } = {}): RegistryImageWriter {
  const client = new RegistryClient({
    host: wharf.host,
    url: wharf.url,
    env: { DOCKER_CONFIG: join(work, 'no-docker-config') },
  });
  clients.push(client);
  return new RegistryImageWriter(client, target, options);
}

async function tagged(repo: string, tag: string, accept: string): Promise<string | undefined> {
  const response = await fetch(`${wharf.url}/v2/${repo}/manifests/${tag}`, {
    method: 'HEAD',
    headers: { Accept: accept },
  });
  return response.status === 200 ? (response.headers.get('docker-content-digest') ?? undefined) : undefined;
}

describe('a copy to a registry', () => {
  it('moves a tag onto an image whose manifest the target already holds', async () => {
    const target = 'team/again' as RepoName;
    await copyImages(source, writerTo(target), [{ from: { name, reference: 'v1' as Tag } }]);
    // The same image again, under another tag: its manifest is present (counted so), the tag still goes.
    const writer = writerTo(target);
    const summary = await copyImages(source, writer, [
      { from: { name, reference: 'v1' as Tag }, to: { name: target, reference: 'stable' as Tag } },
    ]);
    expect(summary.blobsSent).toBe(0);
    expect(writer.counts.manifestsPresent).toBe(1);
    expect(writer.tagged).toEqual([{ reference: 'stable', digest: first.root.digest }]);
    expect(await tagged(target, 'stable', first.root.mediaType)).toBe(first.root.digest);
  });

  it("puts each of several images under its own tag, not the writer's one tag", async () => {
    const target = 'team/several' as RepoName;
    const writer = writerTo(target, { tag: 'latest' as Tag });
    await copyImages(source, writer, [
      { from: { name, reference: 'v1' as Tag } },
      { from: { name, reference: 'v2' as Tag } },
    ]);
    expect(writer.tagged).toEqual([
      { reference: 'v1', digest: first.root.digest },
      { reference: 'v2', digest: second.root.digest },
    ]);
    expect(await tagged(target, 'v1', first.root.mediaType)).toBe(first.root.digest);
    expect(await tagged(target, 'v2', second.root.mediaType)).toBe(second.root.digest);
    expect(await tagged(target, 'latest', first.root.mediaType)).toBeUndefined();
    // One image: the writer's tag is the one it goes under.
    const one = writerTo('team/one' as RepoName, { tag: 'latest' as Tag });
    await copyImages(source, one, [{ from: { name, reference: 'v2' as Tag } }]);
    expect(one.tagged).toEqual([{ reference: 'latest', digest: second.root.digest }]);
  });

  it('leaves no upload session open when the registry could mount nothing and took the bytes instead', async () => {
    const uploads = join(wharf.dataDir, 'tmp', 'uploads');
    const before = await readdir(uploads).catch(() => []);
    const writer = writerTo('team/unmounted' as RepoName, { mountFrom: 'team/nothing' });
    const summary = await copyImages(source, writer, [{ from: { name, reference: 'v1' as Tag } }]);
    expect(summary.blobsSent).toBe(first.blobs.size);
    expect(writer.counts.blobsMounted).toBe(0);
    expect(await readdir(uploads).catch(() => [])).toEqual(before);
  });
});
