/**
 * @module test/referrers-tag-update.test
 * The referrers tag schema with more than one referrer (upstream/referrers-tag.ts): copying two
 * signatures of one image to a registry without the referrers API (CNCF distribution) leaves one
 * `sha256-<hex>` index that lists both, each with its artifactType and annotations (what `cosign
 * tree` and `oras discover` filter on), and copying them again adds nothing. Round 11d of the
 * hand-planted bugs (docs/mutation-testing.md): dropping the index already there, or the
 * annotations, passed every test (the existing one copies a single, unannotated signature).
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
import { importTestImages } from './support/layout-store.js';
import { makeImage, testSeed, type TestImage } from './support/make-image.js';
import { makeSignature, manifestBlob, signatureArtifactType } from './support/make-referrer.js';

const name = 'team/app' as RepoName;
const target = 'team/signed' as RepoName;
const ociIndex = 'application/vnd.oci.image.index.v1+json';
const annotations = { 'org.example.signed-by': 'release team' };

describe('the referrers tag index with two referrers', () => {
  let work: string;
  let source: LocalStore;
  let distribution: DistributionHandle;
  let client: RegistryClient;
  let image: TestImage;
  let plain: TestImage;
  let annotated: TestImage;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'wharf-referrers-tag-update-'));
    image = await makeImage({ seed: testSeed('referrers tag update'), layers: 1, layerSize: 512 });
    plain = makeSignature(image.root, 'first signature');
    const second = makeSignature(image.root, 'second signature');
    const body = JSON.parse(second.root.bytes.toString('utf8')) as Record<string, unknown>;
    annotated = { ...second, root: manifestBlob({ ...body, annotations }) };
    source = await LocalStore.open(join(work, 'source'));
    await importTestImages(source, name, [
      ['v1' as Tag, image],
      [undefined, plain],
      [undefined, annotated],
    ]);
    distribution = await startDistribution();
    client = new RegistryClient({
      host: distribution.host,
      url: distribution.url,
      env: { DOCKER_CONFIG: join(work, 'no-docker-config') },
    });
  }, 120_000);

  afterAll(async () => {
    await client?.close();
    source?.close();
    await distribution?.close();
    await rm(work, { recursive: true, force: true });
  });

  async function copyAll(): Promise<void> {
    await copyImages(source, new RegistryImageWriter(client, target), [
      { from: { name, reference: 'v1' as Tag } },
      { from: { name, reference: plain.root.digest as Digest } },
      { from: { name, reference: annotated.root.digest as Digest } },
    ]);
  }

  async function fallbackIndex(): Promise<unknown> {
    const tag = image.root.digest.replace(':', '-');
    const response = await fetch(`${distribution.url}/v2/${target}/manifests/${tag}`, {
      headers: { Accept: ociIndex },
    });
    expect(response.status).toBe(200);
    return response.json();
  }

  it('lists both, each with its artifactType and annotations, and a second copy adds nothing', async () => {
    await copyAll();
    const expected = {
      schemaVersion: 2,
      mediaType: ociIndex,
      manifests: [
        {
          mediaType: plain.root.mediaType,
          digest: plain.root.digest,
          size: plain.root.size,
          artifactType: signatureArtifactType,
        },
        {
          mediaType: annotated.root.mediaType,
          digest: annotated.root.digest,
          size: annotated.root.size,
          artifactType: signatureArtifactType,
          annotations,
        },
      ],
    };
    expect(await fallbackIndex()).toEqual(expected);
    await copyAll();
    expect(await fallbackIndex()).toEqual(expected);
  });
});
