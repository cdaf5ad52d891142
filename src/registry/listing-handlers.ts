/**
 * @module registry/listing-handlers
 * tags/list (end-8a/8b), _catalog (Docker API) and referrers (end-12a/12b).
 */
import { requireDigest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import { mediaTypes } from '../oci/media-types.js';
import { parseRepoName } from '../oci/reference.js';
import {
  jsonReply,
  type Reply,
  parsePageSize,
  readOptions,
  repoName,
  type RegistryDeps,
  type RegistryRequest,
} from './http.js';

/** Without n, _catalog answers in pages of this size (distribution uses 100); tags/list answers whole. */
const defaultCatalogPage = 1000;

interface Page {
  items: string[];
  link?: string;
}

/**
 * Asks for one more than n to learn whether a next page exists, and builds its
 * Link header (RFC 8288, relative, as distribution sends it). n=0 gives an empty
 * list and no Link (spec).
 */
async function paginate(
  req: RegistryRequest,
  path: string,
  fetch: (n: number | undefined, last: string | undefined) => Promise<string[] | undefined>,
  defaultPage?: number,
): Promise<Page | undefined> {
  const n = parsePageSize(req.query.get('n')) ?? defaultPage;
  const last = req.query.get('last') ?? undefined;
  if (n === 0) return (await fetch(0, last)) === undefined ? undefined : { items: [] };
  const items = await fetch(n === undefined ? undefined : n + 1, last);
  if (items === undefined) return undefined;
  if (n === undefined || items.length <= n) return { items };
  const page = items.slice(0, n);
  const next = new URLSearchParams({ n: String(n), last: page[page.length - 1] ?? '' });
  // The next page is the same listing: a mirror client's ns= (another wharf, containerd) goes with it.
  const namespace = req.query.get('ns');
  if (namespace !== null) next.set('ns', namespace);
  return { items: page, link: `<${path}?${next.toString()}>; rel="next"` };
}

export async function listTags(deps: RegistryDeps, req: RegistryRequest, rawName: string): Promise<Reply> {
  const name = repoName(rawName);
  const path = `/v2/${name}/tags/list`;
  const page = await paginate(req, path, (n, last) => deps.source.listTags(name, { n, last }, readOptions(req)));
  if (page === undefined)
    throw new OciError('NAME_UNKNOWN', 'repository name not known to registry', { detail: { name } });
  return jsonReply(200, { name, tags: page.items }, page.link === undefined ? {} : { Link: page.link });
}

export async function listCatalog(deps: RegistryDeps, req: RegistryRequest): Promise<Reply> {
  const page = await paginate(
    req,
    '/v2/_catalog',
    (n, last) => readableRepositories(deps, req, n, last),
    defaultCatalogPage,
  );
  const items = page?.items ?? [];
  return jsonReply(200, { repositories: items }, page?.link === undefined ? {} : { Link: page.link });
}

/**
 * The catalog lists only what this client may pull (private upstream content is
 * not even named to others). Filtering can leave a page short: read on until it is full.
 */
async function readableRepositories(
  deps: RegistryDeps,
  req: RegistryRequest,
  n: number | undefined,
  last: string | undefined,
): Promise<string[]> {
  const out: string[] = [];
  if (n === 0) return out;
  let cursor = last;
  const batch = Math.max(n ?? defaultCatalogPage, 100);
  for (;;) {
    const names = await deps.source.listRepositories({ n: batch, last: cursor });
    for (const name of names) {
      const repo = parseRepoName(name);
      if (repo !== undefined && req.readable(repo) !== undefined) out.push(name);
      if (n !== undefined && out.length >= n) return out;
    }
    if (names.length < batch) return out;
    cursor = names[names.length - 1];
  }
}

export async function listReferrers(
  deps: RegistryDeps,
  req: RegistryRequest,
  rawName: string,
  rawDigest: string,
): Promise<Reply> {
  const name = repoName(rawName);
  const digest = requireDigest(rawDigest);
  // An empty `artifactType=` asks for no filter: read as one, it would match no referrer and the answer
  // would claim (OCI-Filters-Applied) a filter that left the subject with none.
  const filter = req.query.get('artifactType');
  const artifactType = filter === null || filter === '' ? undefined : filter;
  const manifests = await deps.source.listReferrers(name, digest, artifactType, readOptions(req));
  // An unknown subject is an empty index, never a 404 (spec §Listing Referrers).
  const headers: Record<string, string> = { 'Content-Type': mediaTypes.ociIndex };
  if (artifactType !== undefined) headers['OCI-Filters-Applied'] = 'artifactType';
  return {
    status: 200,
    headers,
    body: JSON.stringify({ schemaVersion: 2, mediaType: mediaTypes.ociIndex, manifests }),
  };
}
