/**
 * index.json of an OCI layout written into a folder that already holds one (LayoutIndex.indexManifests):
 * what was there stays, an entry whose ref.name this batch takes is replaced, and the batch's
 * referrers are listed once, without a ref.name. Round 2 of the planted-bug audit: referrers left out
 * on this merge path passed every test (docs/mutation-testing.md).
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Digest } from '../oci/digest.js';
import type { ManifestContent } from '../oci/image-source.js';
import type { RepoName, Tag } from '../oci/reference.js';
import { LayoutIndex } from './layout-index.js';
import { refNameAnnotation } from './layout-names.js';

const ociManifest = 'application/vnd.oci.image.manifest.v1+json';

function manifest(seed: string, subject?: ManifestContent): ManifestContent {
  const blob = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(seed), size: seed.length };
  const body: Record<string, unknown> = { schemaVersion: 2, mediaType: ociManifest, config: blob, layers: [] };
  if (subject !== undefined) {
    body.artifactType = 'application/vnd.example.signature';
    body.subject = { mediaType: subject.mediaType, digest: subject.digest, size: subject.bytes.byteLength };
  }
  const bytes = Buffer.from(JSON.stringify(body));
  return { digest: digestOf(bytes), mediaType: ociManifest, size: bytes.length, bytes };
}

function digestOf(bytes: string | Buffer): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;
}

function entry(content: ManifestContent, refName?: string): Record<string, unknown> {
  const descriptor: Record<string, unknown> = {
    mediaType: content.mediaType,
    digest: content.digest,
    size: content.bytes.byteLength,
  };
  if (refName !== undefined) descriptor.annotations = { [refNameAnnotation]: refName };
  return descriptor;
}

describe('LayoutIndex.indexManifests into an existing layout', () => {
  const kept = manifest('an image exported earlier');
  const keptSignature = manifest('its signature', kept);
  const replaced = manifest('the v1 this export replaces');
  const image = manifest('the image exported now');
  const signature = manifest('its new signature', image);

  it('keeps what was there, replaces the entry whose ref.name it takes, and adds its referrers once', () => {
    const index = new LayoutIndex();
    for (const content of [image, signature, keptSignature]) index.recordManifest(content);
    index.tag('docker.io/team/app' as RepoName, 'v1' as Tag, image.digest);
    const existing = [
      entry(kept, 'docker.io/team/old:v1'),
      entry(keptSignature),
      entry(replaced, 'docker.io/team/app:v1'),
      { ...entry(kept, 'docker.io/team/old:v2'), platform: { os: 'linux', architecture: 'arm64' } },
    ];
    expect(index.indexManifests(existing)).toEqual([
      entry(kept, 'docker.io/team/old:v1'),
      // A referrer both runs wrote is listed once; an entry's unknown fields are kept as they were.
      entry(keptSignature),
      { ...entry(kept, 'docker.io/team/old:v2'), platform: { os: 'linux', architecture: 'arm64' } },
      entry(image, 'docker.io/team/app:v1'),
      { ...entry(signature), artifactType: 'application/vnd.example.signature' },
    ]);
  });

  it('lists every referrer of the batch in a fresh layout, after the named images', () => {
    const index = new LayoutIndex();
    for (const content of [image, signature]) index.recordManifest(content);
    index.tag('docker.io/team/app' as RepoName, 'v1' as Tag, image.digest);
    expect(index.indexManifests()).toEqual([
      entry(image, 'docker.io/team/app:v1'),
      { ...entry(signature), artifactType: 'application/vnd.example.signature' },
    ]);
  });
});

describe("LayoutIndex.dockerManifest: docker's RepoTags", () => {
  it('holds the ref.names with a tag, never a bare one (`oci-archive:<file>:v1`) nor a digest', () => {
    const one = manifest('named with a tag');
    const two = manifest('named by a bare ref.name');
    const three = manifest('asked for by digest');
    const given: Record<string, string> = { a: 'example.com:5000/team/app:v1', b: 'v1' };
    const index = new LayoutIndex({
      refName: (ref) => given[ref.reference] ?? `example.com/team/app@${ref.reference}`,
    });
    for (const content of [one, two, three]) index.recordManifest(content);
    index.tag('team/app' as RepoName, 'a' as Tag, one.digest);
    index.tag('team/app' as RepoName, 'b' as Tag, two.digest);
    index.tag('team/app' as RepoName, three.digest, three.digest);
    expect(index.dockerManifest(new Set()).map((e) => e.RepoTags)).toEqual([['example.com:5000/team/app:v1'], [], []]);
  });
});
