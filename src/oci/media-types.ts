/**
 * @module oci/media-types
 * The media types wharf recognises (image-spec media-types.md; distribution's manifest-v2-2.md).
 */

export const mediaTypes = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  octetStream: 'application/octet-stream',
} as const;

const imageTypes: ReadonlySet<string> = new Set([mediaTypes.ociManifest, mediaTypes.dockerManifest]);
const indexTypes: ReadonlySet<string> = new Set([mediaTypes.ociIndex, mediaTypes.dockerManifestList]);
const schema1Types: ReadonlySet<string> = new Set([mediaTypes.dockerSchema1, mediaTypes.dockerSchema1Signed]);

export type ManifestKind = 'image' | 'index' | 'schema1';

export function manifestKindOf(mediaType: string): ManifestKind | undefined {
  if (imageTypes.has(mediaType)) return 'image';
  if (indexTypes.has(mediaType)) return 'index';
  if (schema1Types.has(mediaType)) return 'schema1';
  return undefined;
}

/** Layers that registries are not expected to hold (image-spec layer.md, non-distributable). */
export function isNondistributable(mediaType: string): boolean {
  return mediaType.includes('nondistributable') || mediaType.includes('foreign');
}

/** "type/subtype; param=x" → "type/subtype" (the spec says to ignore parameters). */
export function stripMediaTypeParameters(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const bare = value.split(';', 1)[0]?.trim().toLowerCase();
  return bare === '' ? undefined : bare;
}
