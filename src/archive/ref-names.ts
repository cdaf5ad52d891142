/**
 * @module archive/ref-names
 * Which name and reference an image of a layout gets, from its
 * `org.opencontainers.image.ref.name` (decision 0011). A full reference with a
 * registry host (`docker.io/library/alpine:3.20`, as wharf writes) is kept as it
 * is. One without a host is read as docker reads a familiar name
 * (`alpine:3.20` → `docker.io/library/alpine:3.20`, `team/app:v1` →
 * `docker.io/team/app:v1`: what `skopeo copy … oci-archive:f.tar:alpine:3.20`
 * meant), unless it is a local name: wharf's own export marks those
 * (`localNameAnnotation`), and a name the target's `local` patterns match is one.
 * `--name` replaces the repository of every entry without a host. A bare tag
 * (`v1`) or no ref.name at all needs `--name`: there is no repository to guess.
 */
import type { Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import { hasRegistryHost, parseImageRef, type ImageRef } from '../oci/image-ref.js';
import { parseTag, type RepoName } from '../oci/reference.js';
import { dockerHubName, normalizeDockerRef } from './docker-names.js';
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

/**
 * Set to "true" by wharf's export on an image whose name has no registry host:
 * in wharf's store such a name is always a local one (mirrored content is kept
 * under `<host>/…`), and the import must not read it as a Docker Hub name.
 */
export const localNameAnnotation = 'io.wharf.local-name';

export type NameMapper = (
  refName: string | undefined,
  digest: Digest,
  annotations?: Record<string, string>,
) => ImageRef;

export interface NameMapperOptions {
  /** `--name`: the repository for every entry without a registry host. */
  name?: RepoName;
  /** The target's `local` patterns: a plain name they match stays local. */
  isLocal?: (name: string) => boolean;
}

export function createNameMapper(options: NameMapperOptions = {}): NameMapper {
  // Stryker disable next-line ArrowFunction: the default is only read as `|| isLocal(…)` in an if: undefined and false take the same branch.
  const { name, isLocal = (): boolean => false } = options;
  return (refName, digest, annotations) => {
    if (refName === undefined) {
      if (name !== undefined) return { name, reference: digest };
      throw invalid(`index.json names ${digest} without a ref.name annotation: pass --name`);
    }
    const ref = parseImageRef(refName);
    if (ref !== undefined && !hasRegistryHost(ref.name)) {
      if (name !== undefined) return { name, reference: ref.reference };
      if (annotations?.[localNameAnnotation] === 'true' || isLocal(ref.name)) return ref;
      const full = parseImageRef(dockerHubName(refName));
      if (full !== undefined) return full;
      throw invalid(`index.json: ${JSON.stringify(refName.slice(0, 300))} is too long once docker.io/ is added`);
    }
    if (ref !== undefined) return ref;
    // A host with a port (`localhost:5000/app:v1`): kept as the mirror names hosts (`localhost-5000/app`).
    const hosted = hasRegistryHost(refName) ? normalizeDockerRef(refName) : undefined;
    if (hosted !== undefined) return hosted;
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
