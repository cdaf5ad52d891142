/**
 * @module cli/client/copy-ends
 * The two ends `wharf copy` names, in skopeo's words: a registry reference (`alpine:3.20`,
 * `docker://alpine:3.20`), `oci-archive:<file.tar>` and `docker-archive:<file.tar>` (a tar file),
 * or `oci:<dir>` (an OCI image layout folder).
 */
import { parseDockerRef, type DockerRef } from '../../oci/docker-ref.js';
import { OciError } from '../../oci/errors.js';

export type CopyEnd =
  { kind: 'registry'; ref: DockerRef } | { kind: 'oci-archive' | 'docker-archive' | 'oci'; path: string };

const archivePrefixes = ['oci-archive:', 'docker-archive:', 'oci:'] as const;

export function parseCopyEnd(value: string): CopyEnd {
  for (const prefix of archivePrefixes) {
    if (!value.startsWith(prefix)) continue;
    const path = value.slice(prefix.length);
    if (path === '') throw new OciError('NAME_INVALID', `${prefix} needs a path, e.g. ${prefix}./image.tar`);
    return { kind: prefix.slice(0, -1) as 'oci-archive' | 'docker-archive' | 'oci', path };
  }
  return { kind: 'registry', ref: parseDockerRef(value.replace(/^docker:\/\//, '')) };
}
