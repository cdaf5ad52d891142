import { describe, expect, it } from 'vitest';
import { maxManifestBytes, parseManifest } from './manifest.js';
import { mediaTypes } from './media-types.js';

const d = (c: string): string => `sha256:${c.repeat(64)}`;
const bytes = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
const image = {
  schemaVersion: 2,
  mediaType: mediaTypes.ociManifest,
  config: { mediaType: mediaTypes.ociConfig, digest: d('a'), size: 2 },
  layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d('b'), size: 3 }],
};

describe('parseManifest', () => {
  it('reads an image manifest: references, artifactType falling back to config.mediaType', () => {
    const parsed = parseManifest(bytes(image), mediaTypes.ociManifest);
    expect(parsed.kind).toBe('image');
    expect(parsed.references.map((r) => r.digest)).toEqual([d('a'), d('b')]);
    expect(parsed.artifactType).toBe(mediaTypes.ociConfig);
  });
  it('takes the media type from Content-Type when the body has none, ignoring parameters', () => {
    const { mediaType: _omit, ...bare } = image;
    expect(parseManifest(bytes(bare), `${mediaTypes.dockerManifest}; charset=utf-8`).mediaType).toBe(
      mediaTypes.dockerManifest,
    );
  });
  it('reads an index with subject and annotations', () => {
    const index = {
      schemaVersion: 2,
      mediaType: mediaTypes.ociIndex,
      artifactType: 'application/x.test',
      manifests: [{ mediaType: mediaTypes.ociManifest, digest: d('c'), size: 10 }],
      subject: { mediaType: mediaTypes.ociManifest, digest: d('e'), size: 10 },
      annotations: { k: 'v' },
    };
    const parsed = parseManifest(bytes(index), mediaTypes.ociIndex);
    expect(parsed).toMatchObject({ kind: 'index', artifactType: 'application/x.test', annotations: { k: 'v' } });
    expect(parsed.subject?.digest).toBe(d('e'));
  });
  it('refuses what is not a manifest, each with MANIFEST_INVALID', () => {
    const cases: [Buffer, string][] = [
      [Buffer.from('{not json'), mediaTypes.ociManifest],
      [bytes([1, 2]), mediaTypes.ociManifest],
      [bytes({ ...image, schemaVersion: 3 }), mediaTypes.ociManifest],
      [bytes({ ...image, config: { digest: d('a'), size: 2 } }), mediaTypes.ociManifest],
      [bytes({ ...image, config: { ...image.config, size: -1 } }), mediaTypes.ociManifest],
      [bytes({ ...image, config: { ...image.config, digest: 'sha256:nothex' } }), mediaTypes.ociManifest],
      [bytes({ ...image, layers: 'x' }), mediaTypes.ociManifest],
      [bytes(image), mediaTypes.ociIndex],
      [bytes({ ...image, mediaType: 'application/x-unknown' }), 'application/x-unknown'],
      [bytes({ schemaVersion: 2, mediaType: mediaTypes.ociIndex }), mediaTypes.ociIndex],
    ];
    for (const [body, type] of cases) {
      expect(() => parseManifest(body, type)).toThrow(expect.objectContaining({ code: 'MANIFEST_INVALID' }) as Error);
    }
  });
  it('has a 4 MiB cap, under containerd own 4 * 1048 * 1048 limit', () => {
    expect(maxManifestBytes).toBe(4 * 1024 * 1024);
    expect(maxManifestBytes).toBeLessThanOrEqual(4 * 1048 * 1048);
  });
});
