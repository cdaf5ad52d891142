/**
 * @module oci/reference
 * Repository names and tags (distribution spec §Pulling manifests, the name and tag grammar).
 */
import { OciError } from './errors.js';
import { parseDigest, type Digest } from './digest.js';

export type RepoName = string & { readonly __brand: 'RepoName' };
export type Tag = string & { readonly __brand: 'Tag' };

const namePattern = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const tagPattern = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

// Clients cap host[:port]/name at 255 characters; the name alone cannot be longer.
export const maxNameLength = 255;

export function parseRepoName(value: string): RepoName | undefined {
  return value.length <= maxNameLength && namePattern.test(value) ? (value as RepoName) : undefined;
}

export function requireRepoName(value: string): RepoName {
  const name = parseRepoName(value);
  if (name === undefined) {
    throw new OciError('NAME_INVALID', 'invalid repository name', {
      detail: { name: value.slice(0, maxNameLength + 1) },
    });
  }
  return name;
}

export function parseTag(value: string): Tag | undefined {
  return tagPattern.test(value) ? (value as Tag) : undefined;
}

export type Reference = { kind: 'tag'; tag: Tag } | { kind: 'digest'; digest: Digest };

/**
 * A manifest reference is a tag or a digest. Anything containing ':' is read
 * as a digest; undefined when it is neither.
 */
export function parseReference(value: string): Reference | undefined {
  if (value.includes(':')) {
    const digest = parseDigest(value);
    return digest === undefined ? undefined : { kind: 'digest', digest };
  }
  const tag = parseTag(value);
  return tag === undefined ? undefined : { kind: 'tag', tag };
}
