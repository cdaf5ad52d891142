/**
 * @module proxy/accept-key
 * The Accept set of a manifest read, as part of a cache key. Upstreams answer by Accept: CNCF
 * distribution answers 404 to a client that does not accept an OCI index, so "not found" for a
 * Docker-only client says nothing about an OCI client asking for the same tag.
 */
import { createHash } from 'node:crypto';

/** Longer sets are hashed, so a client cannot make cache keys as large as its Accept header. */
const maxPlainKeyLength = 256;

/** Order and repeats do not matter to the upstream: the key is the sorted set. */
export function acceptKey(accept: readonly string[]): string {
  const set = [...new Set(accept)].sort().join(',');
  return set.length <= maxPlainKeyLength ? set : `sha256:${createHash('sha256').update(set).digest('base64url')}`;
}
