/**
 * @module cli/client/copy-ends
 * The two ends `wharf copy` names, in skopeo's words: a registry reference (`alpine:3.20`,
 * `docker://alpine:3.20`), `oci-archive:<file.tar>` and `docker-archive:<file.tar>` (a tar file),
 * or `oci:<dir>` (an OCI image layout folder). As in skopeo, `oci:` and `oci-archive:` take a
 * `:<ref>` suffix after the path (which therefore holds no ':'): the layout's image whose
 * `org.opencontainers.image.ref.name` is exactly `<ref>` as a source, the ref.name written as a
 * destination. docker-archive's suffix (a docker reference or `@<index>`) is not supported: refused.
 */
import { parseDockerRef, type DockerRef } from '../../oci/docker-ref.js';
import { OciError } from '../../oci/errors.js';

export type CopyEnd =
  | { kind: 'registry'; ref: DockerRef }
  | {
      kind: 'oci-archive' | 'docker-archive' | 'oci';
      path: string;
      /** The `:<ref>` suffix: a ref.name (oci, oci-archive). */
      refName?: string;
    };

/**
 * The image spec's ref.name grammar (image-layout.md, annotations.md): components of letters and
 * digits joined by `-._:@+` or `--`, separated by `/`. skopeo checks the same before using it.
 */
const refNameGrammar =
  /^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:\/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*$/;

const archivePrefixes = ['oci-archive:', 'docker-archive:', 'oci:'] as const;

export function parseCopyEnd(value: string): CopyEnd {
  for (const prefix of archivePrefixes) {
    if (!value.startsWith(prefix)) continue;
    const kind = prefix.slice(0, -1) as 'oci-archive' | 'docker-archive' | 'oci';
    const rest = value.slice(prefix.length);
    const colon = rest.indexOf(':');
    const path = colon === -1 ? rest : rest.slice(0, colon);
    if (path === '') throw new OciError('NAME_INVALID', `${prefix} needs a path, e.g. ${prefix}./image.tar`);
    if (colon === -1) return { kind, path };
    const refName = rest.slice(colon + 1);
    if (kind === 'docker-archive') {
      throw new OciError(
        'UNSUPPORTED',
        `docker-archive:${path}:${refName}: a reference after the path is not supported for docker-archive (the path may not hold ':')`,
      );
    }
    if (!refNameGrammar.test(refName)) {
      throw new OciError(
        'NAME_INVALID',
        `${JSON.stringify(refName.slice(0, 300))} after ${prefix}${path}: is no ref.name (e.g. v1 or example.com/team/app:v1)`,
      );
    }
    return { kind, path, refName };
  }
  return { kind: 'registry', ref: parseDockerRef(value.replace(/^docker:\/\//, '')) };
}
