/**
 * What the inspecting client commands print, at the pure layer (round 11b of planted bugs): image
 * references normalised as docker does (Docker Hub's other names, `library/`, `localhost`, a
 * `https://` registry, a digest that pins past a tag), wharf's own names with a port, a tags page's
 * Link and its `null` tags, the sizes `wharf ls` and `wharf tree` print, and the one error line.
 */
import { describe, expect, it } from 'vitest';
import { formatTree, formatSize } from '../src/cli/client/tree-text.js';
import type { TreeNode } from '../src/cli/client/image-tree.js';
import { explainError } from '../src/cli/explain-error.js';
import { formatBytes } from '../src/cli/format-bytes.js';
import type { Digest } from '../src/oci/digest.js';
import { formatDockerRef, parseDockerRef, parseRegistryHost, refReference } from '../src/oci/docker-ref.js';
import { hasRegistryHost } from '../src/oci/image-ref.js';
import { parseNextLink, parseTagsPage } from '../src/upstream/tags-page.js';

const digest = `sha256:${'a'.repeat(64)}` as Digest;

describe('docker references', () => {
  it('folds every name of Docker Hub into docker.io with library/ for an official image', () => {
    for (const value of ['alpine', 'docker.io/alpine', 'index.docker.io/alpine', 'registry-1.docker.io/alpine']) {
      expect(formatDockerRef(parseDockerRef(value))).toBe('docker.io/library/alpine:latest');
    }
    expect(formatDockerRef(parseDockerRef('index.docker.io/user/app:1'))).toBe('docker.io/user/app:1');
  });

  it('takes localhost as a registry, and a user name as a Docker Hub namespace', () => {
    expect(parseDockerRef('localhost/team/app:v1')).toEqual({
      registry: 'localhost',
      repository: 'team/app',
      tag: 'v1',
    });
    expect(parseDockerRef('team/app')).toEqual({ registry: 'docker.io', repository: 'team/app', tag: 'latest' });
  });

  it('gives latest only when asked to, and lets a digest pin past a tag', () => {
    expect(parseDockerRef('127.0.0.1:5000/team/app')).toEqual({
      registry: '127.0.0.1:5000',
      repository: 'team/app',
      tag: 'latest',
    });
    expect(parseDockerRef('127.0.0.1:5000/team/app', { defaultTag: false })).toEqual({
      registry: '127.0.0.1:5000',
      repository: 'team/app',
    });
    const pinned = parseDockerRef(`127.0.0.1:5000/team/app:v1@${digest}`);
    expect(refReference(pinned)).toBe(digest);
    expect(formatDockerRef(pinned)).toBe(`127.0.0.1:5000/team/app:v1@${digest}`);
  });

  it('reads a registry written as a URL', () => {
    expect(parseRegistryHost('https://ghcr.io/')).toBe('ghcr.io');
    expect(parseRegistryHost('http://127.0.0.1:5000')).toBe('127.0.0.1:5000');
    expect(parseRegistryHost('https://index.docker.io')).toBe('docker.io');
  });
});

describe("wharf's own names", () => {
  it('takes a first component with a port as a registry host', () => {
    expect(hasRegistryHost('registry:5000/team/app')).toBe(true);
    expect(hasRegistryHost('team/app')).toBe(false);
  });
});

describe('a tags page', () => {
  it('follows only rel="next", whatever other links the header holds', () => {
    const base = new URL('http://127.0.0.1:5000/v2/a/b/tags/list');
    expect(parseNextLink('</v2/a/b/tags/list?last=0>; rel="prev"', base)).toBeUndefined();
    expect(
      parseNextLink('</v2/a/b/tags/list?last=0>; rel="prev", </v2/a/b/tags/list?last=9>; rel="next"', base)?.href,
    ).toBe('http://127.0.0.1:5000/v2/a/b/tags/list?last=9');
  });

  it('reads null tags (an empty repository) as an empty page', () => {
    expect(parseTagsPage(Buffer.from('{"name":"a/b","tags":null}'), 'h')).toEqual([]);
  });
});

describe('sizes for people', () => {
  it('moves to the next binary unit at exactly 1024', () => {
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1024)).toBe('1.0 KiB');
    expect(formatBytes(1024 * 1024)).toBe('1.0 MiB');
    expect(formatBytes(1024 * 1024 - 50)).toBe('1.0 MiB');
    expect(formatBytes(1024 * 1024 - 120)).toBe('1023.9 KiB');
    expect(formatBytes(3 * 1024 * 1024 * 1024)).toBe('3.0 GiB');
  });

  it('writes tree sizes in decimal units, as docker does', () => {
    expect(formatSize(999)).toBe('999 B');
    expect(formatSize(1500)).toBe('1.5 kB');
    expect(formatSize(999_960)).toBe('1.0 MB');
    expect(formatSize(999_940)).toBe('999.9 kB');
    expect(formatSize(24_100_000)).toBe('24.1 MB');
  });
});

describe('the tree as text', () => {
  it("prints an image's total, not its manifest's own size", () => {
    const leaf = (kind: 'config' | 'layer', size: number): TreeNode => ({
      kind,
      mediaType: 'application/octet-stream',
      digest,
      size,
      total: size,
      children: [],
    });
    const image: TreeNode = {
      kind: 'image',
      label: 'linux/amd64',
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest,
      size: 400,
      total: 5_500,
      children: [leaf('config', 500), leaf('layer', 5_000)],
    };
    const index: TreeNode = {
      kind: 'index',
      mediaType: 'application/vnd.oci.image.index.v1+json',
      digest,
      size: 300,
      total: 5_500,
      platforms: 1,
      children: [image],
    };
    const short = `sha256:${'a'.repeat(12)}…`;
    expect(formatTree(index, 'h/team/app:v1').split('\n')).toEqual([
      `h/team/app:v1  index  ${short}  1 platform, 5.5 kB`,
      `└── linux/amd64  ${short}  5.5 kB`,
      `    ├── config  ${short}  500 B`,
      `    └── layer   ${short}  5.0 kB`,
      '',
    ]);
  });
});

describe('the one error line', () => {
  it('keeps only the first line of a message that has several', () => {
    expect(explainError(new Error('upstream said no\n  at somewhere (x.js:1:1)'))).toBe('upstream said no');
  });
});
