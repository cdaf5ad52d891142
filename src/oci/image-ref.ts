/**
 * @module oci/image-ref
 * Full image references as wharf names them: `<name>:<tag>` or `<name>@<digest>`,
 * where name is a repository as the store holds it (`docker.io/library/alpine`,
 * `team/app`). No normalisation: `alpine` stays `alpine`.
 */
import { parseDigest, type Digest } from './digest.js';
import { parseRepoName, parseTag, type RepoName, type Tag } from './reference.js';

export interface ImageRef {
  name: RepoName;
  reference: Tag | Digest;
}

/** `name:tag` or `name@digest`; undefined when it is neither. A name alone is not a reference. */
export function parseImageRef(value: string): ImageRef | undefined {
  const at = value.indexOf('@');
  if (at >= 0) {
    const name = parseRepoName(value.slice(0, at));
    const digest = parseDigest(value.slice(at + 1));
    return name === undefined || digest === undefined ? undefined : { name, reference: digest };
  }
  // The tag follows the last ':' after the last '/' (a ':' before it is a registry port).
  const colon = value.lastIndexOf(':');
  if (colon <= value.lastIndexOf('/')) return undefined;
  const name = parseRepoName(value.slice(0, colon));
  const tag = parseTag(value.slice(colon + 1));
  return name === undefined || tag === undefined ? undefined : { name, reference: tag };
}

export function formatImageRef(ref: ImageRef): string {
  return parseDigest(ref.reference) === undefined ? `${ref.name}:${ref.reference}` : `${ref.name}@${ref.reference}`;
}

/**
 * Whether a name starts with a registry host (`docker.io/…`, `localhost:5000/…`),
 * by the rule docker uses: a first component holding a '.' or ':' or being localhost.
 */
export function hasRegistryHost(name: string): boolean {
  const slash = name.indexOf('/');
  if (slash < 0) return false;
  const first = name.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost';
}
