import { describe, expect, it } from 'vitest';
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import type { ParsedManifest } from '../oci/manifest.js';
import { mediaTypes } from '../oci/media-types.js';
import { buildDockerLoadManifest, mergeDockerLoadManifest, singleImage } from './docker-load-manifest.js';

const d = (c: string): Digest => `sha256:${c.repeat(64)}` as Digest;
const gzipLayer = 'application/vnd.oci.image.layer.v1.tar+gzip';
const image = (config: Digest, layers: Digest[], layerType = gzipLayer): ParsedManifest => ({
  mediaType: mediaTypes.ociManifest,
  kind: 'image',
  references: [
    { mediaType: mediaTypes.ociConfig, digest: config, size: 1 },
    ...layers.map((digest): Descriptor => ({ mediaType: layerType, digest, size: 1 })),
  ],
});
const index = (children: Descriptor[]): ParsedManifest => ({
  mediaType: mediaTypes.ociIndex,
  kind: 'index',
  references: children,
});
const child = (digest: Digest, os: string, architecture: string): Descriptor => ({
  mediaType: mediaTypes.ociManifest,
  digest,
  size: 1,
  platform: { os, architecture },
});

describe('the docker manifest.json of an export', () => {
  const written = new Set([d('c'), d('1'), d('2'), d('e')]);

  it('one entry per single image, tags merged, paths into blobs/', () => {
    const manifests = new Map([[d('a'), image(d('c'), [d('1'), d('2')])]]);
    const roots = [
      { digest: d('a'), refName: 'docker.io/library/x:1', tagged: true },
      { digest: d('a'), refName: 'docker.io/library/x:latest', tagged: true },
    ];
    expect(buildDockerLoadManifest(roots, manifests, written)).toEqual([
      {
        Config: `blobs/sha256/${'c'.repeat(64)}`,
        RepoTags: ['docker.io/library/x:1', 'docker.io/library/x:latest'],
        Layers: [`blobs/sha256/${'1'.repeat(64)}`, `blobs/sha256/${'2'.repeat(64)}`],
      },
    ]);
  });

  it('an index with one platform besides attestations counts; two platforms do not', () => {
    const manifests = new Map<Digest, ParsedManifest>([
      [d('a'), image(d('c'), [d('1')])],
      [d('b'), image(d('e'), [d('2')])],
      [d('f'), index([child(d('a'), 'linux', 'amd64'), child(d('b'), 'unknown', 'unknown')])],
      [d('9'), index([child(d('a'), 'linux', 'amd64'), child(d('b'), 'linux', 'arm64')])],
    ]);
    const one = buildDockerLoadManifest([{ digest: d('f'), refName: 'a/b:1', tagged: true }], manifests, written);
    expect(one.map((e) => e.Config)).toEqual([`blobs/sha256/${'c'.repeat(64)}`]);
    expect(buildDockerLoadManifest([{ digest: d('9'), refName: 'a/b:2', tagged: true }], manifests, written)).toEqual(
      [],
    );
  });

  it('leaves out images docker cannot load: zstd layers, layers not in the bundle', () => {
    const zstd = new Map([[d('a'), image(d('c'), [d('1')], 'application/vnd.oci.image.layer.v1.tar+zstd')]]);
    expect(buildDockerLoadManifest([{ digest: d('a'), refName: 'a/b:1', tagged: true }], zstd, written)).toEqual([]);
    const absent = new Map([[d('a'), image(d('c'), [d('7')])]]);
    expect(buildDockerLoadManifest([{ digest: d('a'), refName: 'a/b:1', tagged: true }], absent, written)).toEqual([]);
  });
});

// Round 9a: the merge dropped every old entry left without a RepoTag, also one that never had any (an
// image exported by digest, which `docker load` still loads, untagged).
describe('manifest.json merged into a layout folder that had one', () => {
  it('keeps an old untagged entry, drops an old entry whose RepoTags all moved, and moves the RepoTags', () => {
    const entry = (c: string, tags: string[]): { Config: string; RepoTags: string[]; Layers: string[] } => ({
      Config: `blobs/sha256/${c.repeat(64)}`,
      RepoTags: tags,
      Layers: [`blobs/sha256/${c.repeat(63)}1`],
    });
    const existing = [entry('a', []), entry('b', ['team/app:v1']), entry('c', ['team/app:v2', 'team/app:latest'])];
    const added = [entry('d', ['team/app:v1', 'team/app:latest'])];
    expect(mergeDockerLoadManifest(existing, added)).toEqual([
      entry('a', []),
      entry('c', ['team/app:v2']),
      entry('d', ['team/app:v1', 'team/app:latest']),
    ]);
  });
});

// The archive-export Stryker scope (30 November): which images an index stands for, a layer docker
// cannot load among loadable ones, and an image the old manifest.json already lists.
describe('which image a root stands for', () => {
  const written = new Set([d('c'), d('e'), d('1'), d('2')]);
  const configOf = (roots: Digest[], manifests: ReadonlyMap<Digest, ParsedManifest>): string[] =>
    buildDockerLoadManifest(
      roots.map((digest, i) => ({ digest, refName: `a/b:${i}`, tagged: true })),
      manifests,
      written,
    ).map((e) => e.Config);

  it('a root not among the manifests gives no entry (and no crash)', () => {
    const manifests = new Map([[d('a'), image(d('c'), [d('1')])]]);
    expect(configOf([d('f'), d('a')], manifests)).toEqual([`blobs/sha256/${'c'.repeat(64)}`]);
  });

  it('an index whose one child names no platform stands for that child', () => {
    const bare: Descriptor = { mediaType: mediaTypes.ociManifest, digest: d('a'), size: 1 };
    const manifests = new Map<Digest, ParsedManifest>([
      [d('a'), image(d('c'), [d('1')])],
      [d('f'), index([bare])],
    ]);
    expect(configOf([d('f')], manifests)).toEqual([`blobs/sha256/${'c'.repeat(64)}`]);
  });

  it('only unknown/unknown is an attestation: unknown os or unknown architecture alone is a platform', () => {
    const manifests = new Map<Digest, ParsedManifest>([
      [d('a'), image(d('c'), [d('1')])],
      [d('b'), image(d('e'), [d('2')])],
      [d('f'), index([child(d('a'), 'linux', 'amd64'), child(d('b'), 'unknown', 'arm64')])],
      [d('9'), index([child(d('a'), 'linux', 'amd64'), child(d('b'), 'linux', 'unknown')])],
    ]);
    expect(configOf([d('f')], manifests)).toEqual([]);
    expect(configOf([d('9')], manifests)).toEqual([]);
  });

  it('an index whose one platform is itself an index stands for no image', () => {
    const manifests = new Map<Digest, ParsedManifest>([
      [d('a'), image(d('c'), [d('1')])],
      [d('b'), index([child(d('a'), 'linux', 'amd64')])],
      [d('f'), index([{ ...child(d('b'), 'linux', 'amd64'), mediaType: mediaTypes.ociIndex }])],
    ]);
    expect(singleImage(d('f'), manifests)).toBeUndefined();
    expect(singleImage(d('b'), manifests)).toBe(manifests.get(d('a')));
  });

  it('only an index is looked into: a schema1 root stands for no image, whatever it lists', () => {
    // parseManifest gives schema1 no references; this one is built by hand to show the kind is checked.
    const schema1: ParsedManifest = {
      mediaType: mediaTypes.dockerSchema1Signed,
      kind: 'schema1',
      references: [child(d('a'), 'linux', 'amd64')],
    };
    const manifests = new Map<Digest, ParsedManifest>([
      [d('a'), image(d('c'), [d('1')])],
      [d('f'), schema1],
    ]);
    expect(singleImage(d('f'), manifests)).toBeUndefined();
  });

  it('one layer docker cannot take leaves the image out, even beside loadable ones', () => {
    const manifests = new Map([[d('a'), image(d('c'), [d('1'), d('7')])]]);
    expect(configOf([d('a')], manifests)).toEqual([]);
  });
});

describe('manifest.json merged: an image the old file already lists', () => {
  const entry = (c: string, tags: string[]): { Config: string; RepoTags: string[]; Layers: string[] } => ({
    Config: `blobs/sha256/${c.repeat(64)}`,
    RepoTags: tags,
    Layers: [`blobs/sha256/${c.repeat(63)}1`],
  });

  it('gains the new RepoTags in its entry, not a second entry', () => {
    const existing = [entry('a', ['team/app:v1']), entry('b', ['team/app:v2'])];
    expect(mergeDockerLoadManifest(existing, [entry('a', ['team/app:latest'])])).toEqual([
      entry('a', ['team/app:v1', 'team/app:latest']),
      entry('b', ['team/app:v2']),
    ]);
  });

  it('lists each RepoTag once when the added entries name one image twice', () => {
    const existing = [entry('a', ['team/app:v1'])];
    const added = [entry('a', ['team/app:v2']), entry('a', ['team/app:v2', 'team/app:latest'])];
    expect(mergeDockerLoadManifest(existing, added)).toEqual([
      entry('a', ['team/app:v1', 'team/app:v2', 'team/app:latest']),
    ]);
  });
});
