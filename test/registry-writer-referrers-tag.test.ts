/**
 * The push end of `wharf copy` (RegistryImageWriter) with a referrer: a registry that handles the
 * subject (answers the PUT with OCI-Subject, as wharf does) gets the manifest alone; one without the
 * referrers API (CNCF distribution 2.8) also gets the spec's fallback tag index `sha256-<hex>`
 * naming it, or the signature is invisible to every client there. Round 8b inverted that test;
 * the copy tests sent referrers to wharf only. Real parts: distribution, wharf in process, a
 * LocalStore as the source, the engine.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import type { RepoName, Tag } from '../src/oci/reference.js';
import { LocalStore } from '../src/store/local-store.js';
import { copyImages } from '../src/transfer/copy-images.js';
import { RegistryClient } from '../src/upstream/registry-client.js';
import { RegistryImageWriter } from '../src/upstream/registry-image-writer.js';
import { startDistribution, type DistributionHandle } from './support/distribution.js';
import { makeImage, testSeed, type TestImage } from './support/make-image.js';
import { importTestImages } from './support/layout-store.js';
import { makeSignature } from './support/make-referrer.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const name = 'team/app' as RepoName;
const target = 'team/signed' as RepoName;
const ociIndex = 'application/vnd.oci.image.index.v1+json';

describe('RegistryImageWriter and the referrers tag schema', () => {
  let work: string;
  let source: LocalStore;
  let distribution: DistributionHandle;
  let wharf: WharfHandle;
  let image: TestImage;
  let signature: TestImage;
  const clients: RegistryClient[] = [];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-writer-referrers-tag-'));
    image = await makeImage({ seed: testSeed('writer referrers tag'), layers: 1, layerSize: 1024 });
    signature = makeSignature(image.root, 'signed for the writer test');
    source = await LocalStore.open(join(work, 'source'));
    await importTestImages(source, name, [
      ['v1' as Tag, image],
      [undefined, signature],
    ]);
    distribution = await startDistribution();
    wharf = await startWharf();
  }, 120_000);

  afterAll(async () => {
    for (const client of clients) await client.close();
    source?.close();
    await wharf?.close();
    await distribution?.close();
    await rm(work, { recursive: true, force: true });
  });

  async function copyTo(host: string, url: string): Promise<void> {
    const client = new RegistryClient({ host, url, env: { DOCKER_CONFIG: join(work, 'no-docker-config') } });
    clients.push(client);
    await copyImages(source, new RegistryImageWriter(client, target), [
      { from: { name, reference: 'v1' as Tag } },
      { from: { name, reference: signature.root.digest as Digest } },
    ]);
  }

  const fallbackTag = (): string => image.root.digest.replace(':', '-');

  it('writes the sha256-<hex> index to a registry without the referrers API', async () => {
    await copyTo(distribution.host, distribution.url);
    const response = await fetch(`${distribution.url}/v2/${target}/manifests/${fallbackTag()}`, {
      headers: { Accept: ociIndex },
    });
    expect(response.status).toBe(200);
    const index = (await response.json()) as { manifests: { digest: string }[] };
    expect(index.manifests.map((m) => m.digest)).toEqual([signature.root.digest]);
  });

  it('writes no such tag to a registry that handled the subject, which lists the referrer itself', async () => {
    await copyTo(new URL(wharf.url).host, wharf.url);
    const tagged = await fetch(`${wharf.url}/v2/${target}/manifests/${fallbackTag()}`, {
      headers: { Accept: ociIndex },
    });
    expect(tagged.status).toBe(404);
    await tagged.arrayBuffer();
    const listed = await fetch(`${wharf.url}/v2/${target}/referrers/${image.root.digest}`);
    const index = (await listed.json()) as { manifests: { digest: string }[] };
    expect(index.manifests.map((m) => m.digest)).toEqual([signature.root.digest]);
  });
});
