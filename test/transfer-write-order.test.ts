/**
 * The transfer engine's order of writes (src/transfer/copy-images.ts), in process: blobs first, then
 * an index's children before the index, then the tag, then the commit. Round 13d of the planted-bug
 * audit (docs/mutation-testing.md): writing the manifests root first passed every in-process test
 * (the store's import batch checks only at commit); a registry refuses an index whose children it
 * does not hold, which only the spawned client-copy-e2e test saw. The reader and the writer are
 * tables in memory that record every call in order.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import type { ManifestContent } from '../src/oci/image-source.js';
import type { ImageReader, ImageWriter } from '../src/oci/image-transfer.js';
import type { RepoName, Tag } from '../src/oci/reference.js';
import { copyImages } from '../src/transfer/copy-images.js';

const name = 'team/order' as RepoName;
const imageType = 'application/vnd.oci.image.manifest.v1+json';
const indexType = 'application/vnd.oci.image.index.v1+json';

const sha256 = (bytes: Uint8Array): Digest => `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;

const blobs = new Map<Digest, Buffer>();
function blob(text: string): { mediaType: string; digest: Digest; size: number } {
  const bytes = Buffer.from(text);
  const digest = sha256(bytes);
  blobs.set(digest, bytes);
  return { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size: bytes.length };
}

function manifest(body: object, mediaType: string): ManifestContent {
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, ...body }));
  return { mediaType, digest: sha256(bytes), size: bytes.length, bytes };
}

const amd64 = manifest({ config: blob('config amd64'), layers: [blob('layer amd64')] }, imageType);
const arm64 = manifest({ config: blob('config arm64'), layers: [blob('layer arm64')] }, imageType);
const index = manifest(
  {
    manifests: [
      {
        mediaType: imageType,
        digest: amd64.digest,
        size: amd64.size,
        platform: { os: 'linux', architecture: 'amd64' },
      },
      {
        mediaType: imageType,
        digest: arm64.digest,
        size: arm64.size,
        platform: { os: 'linux', architecture: 'arm64' },
      },
    ],
  },
  indexType,
);
const manifests = new Map([amd64, arm64, index].map((m) => [m.digest, m]));

const reader: ImageReader = {
  getManifest: (_name, reference) => Promise.resolve(reference === 'v1' ? index : manifests.get(reference as Digest)),
  openBlob: (_name, digest) => {
    const bytes = blobs.get(digest);
    if (bytes === undefined) return Promise.resolve(undefined);
    return Promise.resolve({
      digest,
      size: bytes.length,
      open: async function* () {
        yield bytes;
      },
      read: () => Promise.reject(new Error('not used')),
    });
  },
};

function recordingWriter(log: string[]): ImageWriter {
  return {
    hasBlob: () => Promise.resolve(false),
    writeBlob: async (info, body) => {
      for await (const chunk of body) void chunk;
      log.push(`blob ${info.digest}`);
    },
    writeManifest: (_name, m) => {
      log.push(`manifest ${m.digest}`);
      return Promise.resolve();
    },
    tag: (_name, reference, digest) => {
      log.push(`tag ${reference} ${digest}`);
      return Promise.resolve();
    },
    commit: () => {
      log.push('commit');
      return Promise.resolve();
    },
    abort: () => {
      log.push('abort');
      return Promise.resolve();
    },
  };
}

describe('copyImages of an index', () => {
  it('writes every blob, then each child manifest, then the index, then the tag on the index, then commits', async () => {
    const log: string[] = [];
    await copyImages(reader, recordingWriter(log), [{ from: { name, reference: 'v1' as Tag } }]);
    const blobLines = log.filter((line) => line.startsWith('blob '));
    expect(blobLines).toHaveLength(4);
    expect(log.slice(4)).toEqual([
      `manifest ${amd64.digest}`,
      `manifest ${arm64.digest}`,
      `manifest ${index.digest}`,
      `tag v1 ${index.digest}`,
      'commit',
    ]);
  });
});
