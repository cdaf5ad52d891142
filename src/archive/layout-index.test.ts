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
import { localNameAnnotation } from './ref-names.js';

const ociManifest = 'application/vnd.oci.image.manifest.v1+json';
const ociIndex = 'application/vnd.oci.image.index.v1+json';

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

// The archive-import Stryker scope's survivors in layout-index.ts (docs/mutation-testing.md).
describe('LayoutIndex: roots and referrers', () => {
  const image = manifest('the image');
  const one = manifest('first signature', image);
  const two = manifest('second signature', image);
  const signed = (content: ManifestContent): Record<string, unknown> => ({
    ...entry(content),
    artifactType: 'application/vnd.example.signature',
  });

  it('lists each referrer once, however often it is recorded', () => {
    const index = new LayoutIndex();
    for (const content of [image, one, two, one, two]) index.recordManifest(content);
    index.tag('docker.io/team/app' as RepoName, 'v1' as Tag, image.digest);
    expect(index.indexManifests()).toStrictEqual([entry(image, 'docker.io/team/app:v1'), signed(one), signed(two)]);
  });

  it('a referrer without an artifactType (an index with a subject) is listed without one', () => {
    const body = { schemaVersion: 2, mediaType: ociIndex, manifests: [], subject: { ...entry(image) } };
    const bytes = Buffer.from(JSON.stringify(body));
    const referrer: ManifestContent = { digest: digestOf(bytes), mediaType: ociIndex, size: bytes.length, bytes };
    const index = new LayoutIndex();
    index.recordManifest(referrer);
    expect(index.indexManifests()).toStrictEqual([entry(referrer)]);
  });

  it('a referrer tagged as an image is listed once, with its name', () => {
    const index = new LayoutIndex();
    index.recordManifest(one);
    index.tag('docker.io/team/sig' as RepoName, 'v1' as Tag, one.digest);
    expect(index.indexManifests()).toStrictEqual([entry(one, 'docker.io/team/sig:v1')]);
  });

  it('tagging the same name twice records it once; a name without a host is marked local', () => {
    const index = new LayoutIndex();
    index.recordManifest(image);
    index.tag('team/app' as RepoName, 'v1' as Tag, image.digest);
    index.tag('team/app' as RepoName, 'v1' as Tag, image.digest);
    const local = entry(image, 'team/app:v1');
    local.annotations = { [refNameAnnotation]: 'team/app:v1', [localNameAnnotation]: 'true' };
    expect(index.indexManifests()).toStrictEqual([local]);
  });

  it('refuses to name a manifest it was not given', () => {
    const index = new LayoutIndex();
    expect(() => index.tag('team/app' as RepoName, 'v1' as Tag, image.digest)).toThrow(
      expect.objectContaining({ code: 'MANIFEST_UNKNOWN', message: `team/app: ${image.digest} was not written` }),
    );
  });

  it('existing entries: a named one does not stand for the referrer, an unnamed one does, odd annotations kept', () => {
    const index = new LayoutIndex();
    for (const content of [image, one, two]) index.recordManifest(content);
    const existing = [
      // `one` named by an earlier export: still listed as a referrer (unnamed) by this one.
      entry(one, 'docker.io/team/sig:v1'),
      // `two` with a ref.name that is no string: read as unnamed, so it lists the referrer already.
      { ...entry(two), annotations: { [refNameAnnotation]: 42 } },
      { ...entry(image), annotations: null },
    ];
    expect(index.indexManifests(existing)).toStrictEqual([...existing, signed(one)]);
  });
});

describe("LayoutIndex.dockerManifest: a registry's port is no tag", () => {
  it('holds no RepoTag for a ref.name whose only colon is the port', () => {
    const image = manifest('named with a port and no tag');
    const index = new LayoutIndex({ refName: () => 'example.com:5000/team/app' });
    index.recordManifest(image);
    index.tag('team/app' as RepoName, 'v1' as Tag, image.digest);
    expect(index.dockerManifest(new Set()).map((e) => e.RepoTags)).toEqual([[]]);
  });
});
