/**
 * @module registry/route-path
 * Splits a /v2/ path into the endpoint and its parts. A repository name has
 * slashes in it, so the path is read from the right: the last recognised
 * endpoint suffix wins (spec §Endpoints; the same reading as the conformance
 * suite's own route regex). The name is greedy: the longest prefix that still
 * leaves a valid endpoint (a repository may itself be called "x/blobs").
 * Names are checked later, by the handler.
 */

export type RoutePath =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'uploads'; name: string }
  | { kind: 'upload'; name: string; id: string }
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'tags'; name: string }
  | { kind: 'referrers'; name: string; digest: string };

const endpoint =
  /^\/v2\/(.+)\/(?:blobs\/uploads\/?([^/]*)|blobs\/([^/]+)|manifests\/([^/]+)|tags\/list|referrers\/([^/]+))$/;

/** The path as sent, still percent-encoded: an encoded slash or dot never becomes part of a name. */
export function parseRoutePath(pathname: string): RoutePath | undefined {
  if (pathname === '/v2' || pathname === '/v2/') return { kind: 'base' };
  if (pathname === '/v2/_catalog') return { kind: 'catalog' };
  const match = endpoint.exec(pathname);
  if (match === null) return undefined;
  const [, name = '', uploadId, blobDigest, reference, referrersDigest] = match;
  if (uploadId !== undefined)
    return uploadId === '' ? { kind: 'uploads', name } : { kind: 'upload', name, id: uploadId };
  if (blobDigest !== undefined) return { kind: 'blob', name, digest: blobDigest };
  if (reference !== undefined) return { kind: 'manifest', name, reference };
  if (referrersDigest !== undefined) return { kind: 'referrers', name, digest: referrersDigest };
  return { kind: 'tags', name };
}
