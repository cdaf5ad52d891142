/**
 * @module archive/ref-names
 * Which name and reference an image of a layout gets, from its
 * `org.opencontainers.image.ref.name`. A full reference with a registry host
 * (`docker.io/library/alpine:3.20`, as wharf writes) is kept as it is. One
 * without a host (`team/app:v1`) is a local name, kept as it is, or moved to
 * `--name` when given. A bare tag (`v1`, as `skopeo copy … oci-archive:f:v1`
 * writes) or no ref.name at all needs `--name`: there is no repository to guess.
 */
import type { Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import { hasRegistryHost, parseImageRef, type ImageRef } from '../oci/image-ref.js';
import { parseTag, type RepoName } from '../oci/reference.js';
import { refNameAnnotation } from './layout-names.js';

/** containerd's (and docker 25+'s `docker save`) annotation holding the full name beside a bare-tag ref.name. */
export const containerdNameAnnotation = 'io.containerd.image.name';

/**
 * The name an index.json entry gives its image: ref.name, unless it is no full
 * reference and containerd's annotation is (docker ≥ 25 writes ref.name `3.20`
 * and io.containerd.image.name `docker.io/library/alpine:3.20`).
 */
export function pickRefName(annotations: Record<string, string> | undefined): string | undefined {
  const refName = annotations?.[refNameAnnotation];
  const full = annotations?.[containerdNameAnnotation];
  if (full !== undefined && (refName === undefined || parseImageRef(refName) === undefined)) {
    if (parseImageRef(full) !== undefined) return full;
  }
  return refName;
}

export type NameMapper = (refName: string | undefined, digest: Digest) => ImageRef;

export function createNameMapper(name?: RepoName): NameMapper {
  return (refName, digest) => {
    if (refName === undefined) {
      if (name !== undefined) return { name, reference: digest };
      throw invalid(`index.json names ${digest} without a ref.name annotation: pass --name`);
    }
    const ref = parseImageRef(refName);
    if (ref !== undefined) {
      return name === undefined || hasRegistryHost(ref.name) ? ref : { name, reference: ref.reference };
    }
    const tag = parseTag(refName);
    if (tag !== undefined) {
      if (name !== undefined) return { name, reference: tag };
      throw invalid(`index.json names ${JSON.stringify(refName)}, a tag without a repository: pass --name`);
    }
    throw invalid(`index.json: ${JSON.stringify(refName.slice(0, 300))} is not an image reference`);
  };
}

function invalid(message: string): OciError {
  return new OciError('NAME_INVALID', message);
}
