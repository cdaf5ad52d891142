/**
 * @module archive/docker-manifest
 * docker-archive's `manifest.json` (docker's image/tarexport format): one
 * entry per image, `Config` and `Layers` as paths inside the tar, `RepoTags`.
 * And the Docker schema2 manifest wharf makes for such an image: a legacy
 * `docker save` tar carries no registry manifest, so wharf builds one,
 * deterministically, from the config and the uncompressed layers (media type
 * application/vnd.docker.image.rootfs.diff.tar). Its digest therefore differs
 * from the registry's (whose layers are compressed); the config digest (the
 * image id) and the layers' diff ids are the same.
 */
import type { Descriptor } from '../oci/descriptor.js';
import { OciError } from '../oci/errors.js';
import { mediaTypes } from '../oci/media-types.js';

export interface DockerArchiveEntry {
  config: string;
  repoTags: string[];
  layers: string[];
}

export const dockerLayerTar = 'application/vnd.docker.image.rootfs.diff.tar';
export const dockerConfig = 'application/vnd.docker.container.image.v1+json';

export function parseDockerManifestJson(bytes: Uint8Array): DockerArchiveEntry[] {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (error) {
    throw new OciError('MANIFEST_INVALID', 'manifest.json is not valid JSON', { cause: error });
  }
  if (!Array.isArray(value)) throw new OciError('MANIFEST_INVALID', 'manifest.json is not a list of images');
  return value.map((item: unknown, i) => {
    const entry = item as { Config?: unknown; RepoTags?: unknown; Layers?: unknown } | null;
    const repoTags = entry?.RepoTags ?? [];
    if (typeof entry?.Config !== 'string' || !isStringList(entry.Layers) || !isStringList(repoTags)) {
      throw new OciError('MANIFEST_INVALID', `manifest.json: image ${i} lacks Config, Layers or valid RepoTags`);
    }
    return { config: entry.Config, repoTags, layers: entry.Layers };
  });
}

function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

/** The config's rootfs.diff_ids, in order (the digests the uncompressed layers must have). */
export function parseDiffIds(config: Uint8Array, label: string): string[] {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(config).toString('utf8'));
  } catch (error) {
    throw new OciError('MANIFEST_INVALID', `${label} is not valid JSON`, { cause: error });
  }
  const diffIds = (value as { rootfs?: { diff_ids?: unknown } } | null)?.rootfs?.diff_ids;
  if (!isStringList(diffIds)) throw new OciError('MANIFEST_INVALID', `${label} has no rootfs.diff_ids`);
  return diffIds;
}

/** Docker schema2, with docker's own three-space indent: the same image always gives the same bytes. */
export function buildSchema2Manifest(config: Descriptor, layers: readonly Descriptor[]): Uint8Array {
  const manifest = {
    schemaVersion: 2,
    mediaType: mediaTypes.dockerManifest,
    config: { mediaType: dockerConfig, size: config.size, digest: config.digest },
    layers: layers.map((l) => ({ mediaType: dockerLayerTar, size: l.size, digest: l.digest })),
  };
  return Buffer.from(JSON.stringify(manifest, null, 3));
}
