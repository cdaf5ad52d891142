import { describe, expect, it } from 'vitest';
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import type { ParsedManifest } from '../oci/manifest.js';
import { mediaTypes } from '../oci/media-types.js';
import { buildDockerLoadManifest, mergeDockerLoadManifest } from './docker-load-manifest.js';

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
