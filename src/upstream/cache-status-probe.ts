/**
 * @module upstream/cache-status-probe
 * A HEAD on a manifest or blob that returns the registry's `Cache-Status` header (RFC 9211), for
 * clients that ask a mirror what it holds (`wharf tree` against a wharf URL). Nothing is read.
 */
import type { Digest } from '../oci/digest.js';
import { discardBody } from './read-body.js';
import { pullScope, type RegistryClient } from './registry-client.js';
import { headerValue } from './upstream-http.js';

export interface CacheStatusProbe {
  /** The registry answered 2xx (404: false). */
  found: boolean;
  /** The Cache-Status header as sent, when there was one. */
  cacheStatus?: string;
}

export async function probeCacheStatus(
  client: RegistryClient,
  repo: string,
  kind: 'manifests' | 'blobs',
  digest: Digest,
): Promise<CacheStatusProbe> {
  const what = `HEAD ${kind === 'blobs' ? 'blob' : 'manifest'} ${repo}@${digest}`;
  const response = await client.maybe(
    { method: 'HEAD', target: `/v2/${repo}/${kind}/${digest}`, scope: pullScope(repo) },
    what,
  );
  if (response === undefined) return { found: false };
  await discardBody(response.body);
  const cacheStatus = headerValue(response.headers, 'cache-status');
  return cacheStatus === undefined ? { found: true } : { found: true, cacheStatus };
}
