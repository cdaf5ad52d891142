/**
 * @module upstream/registry-reads
 * The read side of the client commands over a RegistryClient: manifests (HEAD and GET, exact
 * bytes, verified when asked by digest), blobs (HEAD, streamed GET), every page of tags and of
 * the catalog, and referrers (the API, else the spec's fallback tag `sha256-<hex>`).
 */
import type { Descriptor } from '../oci/descriptor.js';
import { digestEncoded, type Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import { maxManifestBytes, parseManifest } from '../oci/manifest.js';
import { mediaTypes } from '../oci/media-types.js';
import { parseReference, type Reference } from '../oci/reference.js';
import { silentLogger } from './logger.js';
import { manifestFromBody, manifestInfoFromHeaders, type UpstreamManifest } from './manifest-response.js';
import { discardBody, readCapped, streamBody } from './read-body.js';
import { pullScope, type RegistryClient } from './registry-client.js';
import { parseNextLink, parseTagsPage } from './tags-page.js';
import type { UpstreamBlob } from './upstream-config.js';
import { contentLength, headerValue, type HttpResponse } from './upstream-http.js';

/** Every manifest type wharf can show or copy: the registry must not convert one into another. */
export const manifestAccept = [
  mediaTypes.ociIndex,
  mediaTypes.dockerManifestList,
  mediaTypes.ociManifest,
  mediaTypes.dockerManifest,
  mediaTypes.dockerSchema1Signed,
  mediaTypes.dockerSchema1,
].join(', ');

/** Pages of a listing are followed up to this many (100 × 1000 names per page). */
const maxPages = 1_000;
const maxPageBytes = 4 * 1024 * 1024;

function requireReference(reference: string): Reference {
  const parsed = parseReference(reference);
  if (parsed === undefined) throw new OciError('TAG_INVALID', `${JSON.stringify(reference)} is not a tag or digest`);
  return parsed;
}

export interface ManifestHead {
  mediaType: string;
  digest: Digest;
  size: number;
}

export async function headManifest(
  client: RegistryClient,
  repo: string,
  reference: string,
): Promise<ManifestHead | undefined> {
  const requested = requireReference(reference);
  const what = `HEAD manifest ${repo}:${reference}`;
  const target = `/v2/${repo}/manifests/${reference}`;
  const response = await client.maybe(
    { method: 'HEAD', target, scope: pullScope(repo), headers: { accept: manifestAccept } },
    what,
  );
  if (response === undefined) return undefined;
  await discardBody(response.body);
  const info = manifestInfoFromHeaders(response.headers, requested);
  if (info !== undefined) return info;
  // A HEAD without digest or length (some registries): ask with GET, as docker does.
  const manifest = await getManifest(client, repo, reference);
  return manifest && { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size };
}

export async function getManifest(
  client: RegistryClient,
  repo: string,
  reference: string,
): Promise<UpstreamManifest | undefined> {
  const requested = requireReference(reference);
  const what = `GET manifest ${repo}:${reference}`;
  const target = `/v2/${repo}/manifests/${reference}`;
  const response = await client.maybe(
    { method: 'GET', target, scope: pullScope(repo), headers: { accept: manifestAccept } },
    what,
  );
  if (response === undefined) return undefined;
  const bytes = await readCapped(
    response.body,
    maxManifestBytes,
    contentLength(response.headers),
    client.host,
    () => new OciError('MANIFEST_INVALID', `${client.host}: ${what} is larger than ${maxManifestBytes} bytes`),
  );
  return manifestFromBody(bytes, response.headers, requested, client.host, silentLogger);
}

export async function headBlob(client: RegistryClient, repo: string, digest: Digest): Promise<number | undefined> {
  const what = `HEAD blob ${repo}@${digest}`;
  const response = await client.maybe(
    { method: 'HEAD', target: `/v2/${repo}/blobs/${digest}`, scope: pullScope(repo) },
    what,
  );
  if (response === undefined) return undefined;
  await discardBody(response.body);
  return contentLength(response.headers) ?? -1;
}

/** The blob's bytes as they arrive (not verified here: callers hash them); undefined on 404. */
export async function getBlob(client: RegistryClient, repo: string, digest: Digest): Promise<UpstreamBlob | undefined> {
  const what = `GET blob ${repo}@${digest}`;
  const response = await client.maybe(
    { method: 'GET', target: `/v2/${repo}/blobs/${digest}`, scope: pullScope(repo) },
    what,
  );
  if (response === undefined) return undefined;
  const body = response.body;
  return {
    size: contentLength(response.headers),
    body: streamBody(body, `${client.host} blob ${digest}`),
    cancel: () => discardBody(body),
  };
}

async function readPage(client: RegistryClient, response: HttpResponse, what: string): Promise<Buffer> {
  return readCapped(
    response.body,
    maxPageBytes,
    contentLength(response.headers),
    client.host,
    () => new OciError('UNAVAILABLE', `${client.host}: ${what}: a page over ${maxPageBytes} bytes`, { status: 502 }),
  );
}

/** Follows Link rel="next" on the registry's own origin; pages beyond maxPages are an error. */
async function listPages(
  client: RegistryClient,
  first: string,
  scope: string,
  what: string,
  parse: (bytes: Buffer) => string[],
): Promise<string[] | undefined> {
  const names: string[] = [];
  let next: URL | undefined = client.url(first);
  for (let page = 0; next !== undefined; page++) {
    if (page === maxPages) throw new OciError('UNAVAILABLE', `${client.host}: ${what}: more than ${maxPages} pages`);
    const response = await client.maybe(
      { method: 'GET', target: next, scope, headers: { accept: 'application/json' } },
      what,
    );
    if (response === undefined) return page === 0 ? undefined : names;
    names.push(...parse(await readPage(client, response, what)));
    next = parseNextLink(headerValue(response.headers, 'link'), response.url);
    // Credentials go only to the registry: a Link elsewhere is not followed.
    if (next !== undefined && next.origin !== client.origin) next = undefined;
  }
  return names;
}

/** Every tag of `repo`, all pages; undefined when the repository is unknown. */
export function listTags(client: RegistryClient, repo: string): Promise<string[] | undefined> {
  return listPages(client, `/v2/${repo}/tags/list?n=1000`, pullScope(repo), `GET tags ${repo}`, (bytes) =>
    parseTagsPage(bytes, client.host),
  );
}

/** Every repository of the catalog, all pages. */
export async function listRepositories(client: RegistryClient): Promise<string[]> {
  const found = await listPages(client, '/v2/_catalog?n=1000', 'registry:catalog:*', 'GET catalog', (bytes) => {
    const parsed = JSON.parse(bytes.toString('utf8')) as { repositories?: unknown } | null;
    const names = parsed?.repositories;
    return Array.isArray(names) ? names.filter((n): n is string => typeof n === 'string') : [];
  });
  if (found === undefined) throw new OciError('UNSUPPORTED', `${client.host} has no catalog (GET /v2/_catalog: 404)`);
  return found;
}

/** The referrers tag of the spec's fallback: `sha256-<hex>` (distribution spec §Referrers Tag Schema). */
export function referrersTag(subject: Digest): string {
  return `${subject.slice(0, subject.indexOf(':'))}-${digestEncoded(subject)}`;
}

/** The manifests whose subject is `subject`: the referrers API, else the fallback tag, else none. */
export async function listReferrers(client: RegistryClient, repo: string, subject: Digest): Promise<Descriptor[]> {
  const what = `GET referrers ${repo}@${subject}`;
  const response = await client.send({
    method: 'GET',
    target: `/v2/${repo}/referrers/${subject}`,
    scope: pullScope(repo),
    headers: { accept: mediaTypes.ociIndex },
  });
  const type = headerValue(response.headers, 'content-type') ?? '';
  if (response.status === 200 && type.startsWith(mediaTypes.ociIndex)) {
    return parseManifest(await readPage(client, response, what), mediaTypes.ociIndex).references;
  }
  await discardBody(response.body);
  const fallback = await getManifest(client, repo, referrersTag(subject));
  if (fallback === undefined) return [];
  return parseManifest(fallback.bytes, fallback.mediaType).references;
}
