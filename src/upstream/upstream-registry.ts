/**
 * @module upstream/upstream-registry
 * A remote registry as the proxy sees it: manifests (HEAD and GET), blobs and tags of one upstream,
 * over a keep-alive undici Agent of its own. Authentication, redirects, timeouts and the
 * translation of upstream answers into OciError happen here; verification of blob bytes does not
 * (the proxy hashes while it stores).
 */
import { Agent } from 'undici';
import type { Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { maxManifestBytes, parseManifest } from '../oci/manifest.js';
import { mediaTypes } from '../oci/media-types.js';
import { parseReference, parseRepoName, requireRepoName, type Reference } from '../oci/reference.js';
import { AddressGuard } from './address-guard.js';
import { describeCredentials, resolveCredentials, type CredentialSources, type Credentials } from './credentials.js';
import { silentLogger, type Logger } from './logger.js';
import {
  manifestFromBody,
  manifestInfoFromHeaders,
  type UpstreamManifest,
  type UpstreamManifestInfo,
} from './manifest-response.js';
import { discardBody, readCapped, streamBody } from './read-body.js';
import { RegistryAuth } from './registry-auth.js';
import { errorFromResponse } from './response-errors.js';
import { parseNextLink, parseTagsPage } from './tags-page.js';
import { resolveTimeouts } from './timeouts.js';
import { TokenCache } from './token-cache.js';
import type { UpstreamBlob, UpstreamConfig, UpstreamRegistryOptions } from './upstream-config.js';
import { closeAgent, contentLength, headerValue, UpstreamHttp, type HttpResponse } from './upstream-http.js';

export type { Logger } from './logger.js';
export type { Environment } from './docker-config.js';
export type { UpstreamManifest, UpstreamManifestInfo } from './manifest-response.js';
export type { UpstreamTimeouts } from './timeouts.js';
export type { UpstreamBlob, UpstreamConfig, UpstreamRegistryOptions } from './upstream-config.js';

/** What a blob HEAD tells: the upstream has it, with this Content-Length (undefined when absent or malformed). */
export interface UpstreamBlobInfo {
  size: number | undefined;
}

/** Idle connections are kept this long for the next request of a pull (a pull is a burst of
 * requests a few ms apart); short enough to let go before most servers' own idle close (60 s+). */
const keepAliveMs = 10_000;

/** Every page costs a request; 100 pages cover repositories with many thousands of tags. */
export const maxTagPages = 100;
/**
 * A listing keeps at most this many tags (a hostile upstream could otherwise fill memory with
 * 100 pages of tiny names); the largest public repositories have a few tens of thousands.
 */
export const maxTags = 100_000;
/** A page of tags is JSON of short strings: 4 MiB is tens of thousands of tags. */
const maxTagsPageBytes = 4 * 1024 * 1024;

/**
 * Connections to one origin (the registry, its token service, its CDN) at once; more requests wait
 * in the Agent's queue. A flood of distinct misses (HEADs of random digests, tags that do not exist)
 * would otherwise open a socket, and a file descriptor, per request. Docker Hub's own clients use
 * a handful; 32 leaves room for the fill limit (8) plus a burst of manifest and HEAD requests.
 */
export const maxConnectionsPerOrigin = 32;

/** close() waits this long for requests in flight, then cuts them. */
const closeGraceMs = 5_000;

export class UpstreamRegistry {
  readonly host: string;
  private readonly base: string;
  /**
   * The URL's path as a prefix of every repository name on the upstream (ADR 0009): an upstream
   * `http://central:5000/docker.io` is asked for `/v2/docker.io/library/alpine/…`, and tokens are
   * scoped to that name, so a wharf serving a path prefix (another tier) is an upstream like any other.
   */
  private readonly prefix: string;
  /** `?ns=` on every registry request: the upstream is a mirror sent the original names (ADR 0013). */
  private readonly namespace: string | undefined;
  private readonly origin: string;
  private readonly logger: Logger;
  private readonly agent: Agent | undefined = undefined;
  private readonly http: UpstreamHttp;
  private readonly auth: RegistryAuth;
  private credentials: Promise<Credentials | undefined> | undefined;
  private credentialSources: CredentialSources;
  private readonly tokens: TokenCache;

  constructor(config: UpstreamConfig, options: UpstreamRegistryOptions = {}) {
    const url = URL.canParse(config.url) ? new URL(config.url) : undefined;
    if (url === undefined || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
      throw new TypeError(`upstream ${config.host}: url must be an http(s) URL, got ${JSON.stringify(config.url)}`);
    }
    this.host = config.host;
    this.origin = url.origin;
    this.base = url.origin;
    this.prefix = parseNamePrefix(config.host, url.pathname);
    this.namespace = config.namespace;
    if (this.namespace !== undefined && this.prefix !== '') {
      throw new TypeError(`upstream ${config.host}: a mirror (?ns=) takes a URL without a path`);
    }
    this.logger = options.logger ?? silentLogger;
    const timeouts = resolveTimeouts(config.timeouts);
    const guard = new AddressGuard(url, options.network, options.resolver);
    let dispatcher = options.dispatcher;
    if (dispatcher === undefined) {
      this.agent = new Agent({
        // Every name is resolved through the guard: a redirect to a name that resolves to a
        // non-public address is refused there. (A dispatcher handed in gets the URL checks only.)
        connect: { timeout: timeouts.connectMs, lookup: guard.lookup },
        headersTimeout: timeouts.headersMs,
        bodyTimeout: timeouts.bodyIdleMs,
        keepAliveTimeout: keepAliveMs,
        connections: maxConnectionsPerOrigin,
      });
      dispatcher = this.agent;
    }
    const observe = options.observe;
    this.http = new UpstreamHttp(
      dispatcher,
      timeouts,
      this.logger,
      guard,
      observe === undefined ? undefined : { host: this.host, observe },
    );
    this.credentialSources = config;
    this.tokens = new TokenCache(options.now ?? Date.now);
    const resolve = (): Promise<Credentials | undefined> =>
      (this.credentials ??= resolveCredentials(this.credentialSources, options.env, this.logger).then((found) => {
        this.logger.debug({ upstream: this.host, credentials: describeCredentials(found) }, 'upstream credentials');
        return found;
      }));
    this.auth = new RegistryAuth({ host: this.host, url }, this.http, resolve, this.tokens, this.logger);
  }

  /**
   * Takes new credential settings (SIGHUP): the next request resolves them again, the Docker
   * config and credential helpers included, and asks for new tokens. Requests in flight finish
   * with what they have.
   */
  reloadCredentials(sources: Omit<CredentialSources, 'host'>): void {
    this.credentialSources = { ...sources, host: this.host };
    this.credentials = undefined;
    this.tokens.clear();
  }

  /** HEAD a manifest; undefined on 404. HEAD does not count against Docker Hub's pull limit. */
  async headManifest(
    repo: string,
    reference: string,
    accept: readonly string[],
  ): Promise<UpstreamManifestInfo | undefined> {
    const requested = this.requireReference(reference);
    const response = await this.fetch('HEAD', this.manifestUrl(repo, reference), repo, acceptHeader(accept));
    if (!(await this.isFound(response, `HEAD manifest ${repo}:${reference}`))) return undefined;
    await discardBody(response.body);
    const info = manifestInfoFromHeaders(response.headers, requested);
    if (info !== undefined) return info;
    // As docker and containerd do when a HEAD answer is incomplete: ask with GET (which counts as a pull).
    this.logger.debug({ upstream: this.host, repo, reference }, 'upstream HEAD incomplete: falling back to GET');
    const manifest = await this.getManifest(repo, reference, accept);
    return manifest === undefined
      ? undefined
      : { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size };
  }

  /** GET a manifest, capped at maxManifestBytes and verified when asked by digest; undefined on 404. */
  async getManifest(repo: string, reference: string, accept: readonly string[]): Promise<UpstreamManifest | undefined> {
    const requested = this.requireReference(reference);
    const what = `GET manifest ${repo}:${reference}`;
    const response = await this.fetch('GET', this.manifestUrl(repo, reference), repo, acceptHeader(accept));
    if (!(await this.isFound(response, what))) return undefined;
    const bytes = await this.readManifestSized(response, what);
    return manifestFromBody(bytes, response.headers, requested, this.host, this.logger);
  }

  /**
   * HEAD a blob: whether the upstream has it for repo, and the size it announces; undefined on 404.
   * Nothing is downloaded (a client's HEAD must not cost a transfer); distribution's proxy answers
   * a blob HEAD the same way. The size is the upstream's word only: bytes are verified when fetched.
   */
  async headBlob(repo: string, digest: Digest): Promise<UpstreamBlobInfo | undefined> {
    const response = await this.fetch('HEAD', this.blobUrl(repo, digest), repo, {});
    if (!(await this.isFound(response, `HEAD blob ${repo}@${digest}`))) return undefined;
    await discardBody(response.body);
    return { size: contentLength(response.headers) };
  }

  /**
   * GET a blob, following redirects (to a CDN) without credentials; undefined on 404. `signal`
   * aborts the request and its body (a prefetch nobody waits for, at shutdown).
   */
  async getBlob(repo: string, digest: Digest, signal?: AbortSignal): Promise<UpstreamBlob | undefined> {
    const url = this.blobUrl(repo, digest);
    const response = await this.fetch('GET', url, repo, {}, signal);
    if (!(await this.isFound(response, `GET blob ${repo}@${digest}`))) return undefined;
    const body = response.body;
    return {
      size: contentLength(response.headers),
      body: streamBody(body, `upstream ${this.host} blob ${digest}`),
      cancel: () => discardBody(body),
    };
  }

  /** All tags, following Link pagination up to maxTagPages; undefined on 404. */
  async listTags(repo: string): Promise<string[] | undefined> {
    const tags: string[] = [];
    let next: URL | undefined = this.registryUrl(repo, 'tags/list');
    for (let page = 0; next !== undefined; page++) {
      if (page === maxTagPages) {
        this.logger.warn({ upstream: this.host, repo, pages: page }, 'upstream tags list truncated at the page cap');
        break;
      }
      const response = await this.fetch('GET', next, repo, { accept: 'application/json' });
      if (!(await this.isFound(response, `GET tags ${repo}`))) return page === 0 ? undefined : tags;
      const bytes = await readCapped(
        response.body,
        maxTagsPageBytes,
        contentLength(response.headers),
        this.host,
        () =>
          new OciError('UNAVAILABLE', `upstream ${this.host}: a tags page over ${maxTagsPageBytes} bytes`, {
            status: 502,
          }),
      );
      for (const tag of parseTagsPage(bytes, this.host)) {
        if (tags.length === maxTags) {
          this.logger.warn({ upstream: this.host, repo, tags: maxTags }, 'upstream tags list truncated at the tag cap');
          return tags;
        }
        tags.push(tag);
      }
      next = parseNextLink(headerValue(response.headers, 'link'), response.url);
      if (next !== undefined && next.origin !== this.origin) {
        // Following it would mean sending credentials elsewhere; no registry does this.
        this.logger.warn({ upstream: this.host, repo }, 'upstream tags Link points to another origin: not followed');
        next = undefined;
      }
      // A mirror's Link may drop the ns= it was sent (wharf's own did): the next page is asked with it.
      if (next !== undefined && this.namespace !== undefined && !next.searchParams.has('ns')) {
        next.searchParams.set('ns', this.namespace);
      }
    }
    return tags;
  }

  /**
   * The referrers of `digest` (distribution-spec: GET /v2/<name>/referrers/<digest>, an image
   * index); a registry without that API (404) is asked for the referrers tag schema's index
   * (`sha256-<hex>`), as clients that push there write it. Nothing: an empty list.
   */
  async listReferrers(repo: string, digest: Digest): Promise<Descriptor[]> {
    const what = `GET referrers ${repo}@${digest}`;
    const url = this.registryUrl(repo, `referrers/${digest}`);
    const response = await this.fetch('GET', url, repo, { accept: mediaTypes.ociIndex });
    let bytes: Uint8Array | undefined;
    if (await this.isFound(response, what)) {
      bytes = await this.readManifestSized(response, what);
    } else {
      bytes = (await this.getManifest(repo, digest.replace(':', '-'), [mediaTypes.ociIndex]))?.bytes;
    }
    if (bytes === undefined) return [];
    const parsed = parseManifest(bytes, mediaTypes.ociIndex);
    return parsed.kind === 'index' ? parsed.references : [];
  }

  /** Closes the Agent this instance created (not a dispatcher handed in), cutting requests still running after a grace period. */
  async close(): Promise<void> {
    if (this.agent !== undefined) await closeAgent(this.agent, closeGraceMs);
  }

  /** A manifest-sized body (a manifest, a referrers index), refused past maxManifestBytes. */
  private readManifestSized(response: HttpResponse, what: string): Promise<Buffer> {
    return readCapped(
      response.body,
      maxManifestBytes,
      contentLength(response.headers),
      this.host,
      // UNAVAILABLE 502, not MANIFEST_INVALID (a 400 telling a client its own manifest is wrong):
      // the client asked correctly, the upstream answered something wharf will not take.
      () =>
        new OciError('UNAVAILABLE', `upstream ${this.host}: ${what} is larger than ${maxManifestBytes} bytes`, {
          status: 502,
          detail: { upstream: this.host, limit: maxManifestBytes },
        }),
    );
  }

  private requireReference(reference: string): Reference {
    const parsed = parseReference(reference);
    if (parsed === undefined) {
      throw new OciError('TAG_INVALID', 'invalid manifest reference', {
        detail: { reference: reference.slice(0, 200) },
      });
    }
    return parsed;
  }

  private blobUrl(repo: string, digest: Digest): URL {
    return this.registryUrl(repo, `blobs/${digest}`);
  }

  private manifestUrl(repo: string, reference: string): URL {
    return this.registryUrl(repo, `manifests/${reference}`);
  }

  /** `/v2/<name on the upstream>/<rest>`, with `?ns=` for a mirror. */
  private registryUrl(repo: string, rest: string): URL {
    const url = new URL(`${this.base}/v2/${this.remoteName(repo)}/${rest}`);
    if (this.namespace !== undefined) url.searchParams.set('ns', this.namespace);
    return url;
  }

  /** The repository's name on the upstream: the URL's path prefix, then the name. */
  private remoteName(repo: string): string {
    return requireRepoName(this.prefix === '' ? repo : `${this.prefix}/${repo}`);
  }

  /** true for 2xx; false (body released) for 404; throws the translated error otherwise. */
  private async isFound(response: HttpResponse, what: string): Promise<boolean> {
    if (response.status >= 200 && response.status < 300) return true;
    if (response.status !== 404) throw await errorFromResponse(response, this.host, what, this.logger);
    await discardBody(response.body);
    return false;
  }

  /** A registry request with authentication: at most one retry, after a 401 from the registry itself. */
  private async fetch(
    method: 'GET' | 'HEAD',
    url: URL,
    repo: string,
    headers: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<HttpResponse> {
    const scope = `repository:${this.remoteName(repo)}:pull`;
    const sent = await this.auth.authorizationFor(scope);
    const request = { method, url, headers, trustedOrigin: this.origin, ...(signal === undefined ? {} : { signal }) };
    const first = await this.http.send({ ...request, authorization: sent });
    // A 401 from a CDN is not the registry's challenge: it is an answer (DENIED).
    if (first.status !== 401 || first.url.origin !== this.origin) return first;
    await discardBody(first.body);
    const retry = await this.auth.authorizationAfter401(first.headers, scope, sent);
    return this.http.send({ ...request, authorization: retry });
  }
}

/**
 * The name prefix in an upstream URL's path: '' for none; a leading `v2/` (a URL copied from a
 * browser) is dropped. What remains must be repository name components.
 */
function parseNamePrefix(host: string, pathname: string): string {
  const path = pathname.replace(/^\/+|\/+$/g, '').replace(/^v2(\/|$)/, '');
  if (path !== '' && parseRepoName(path) === undefined) {
    throw new TypeError(`upstream ${host}: the URL path ${JSON.stringify(pathname)} is not a repository name prefix`);
  }
  return path;
}

function acceptHeader(accept: readonly string[]): Record<string, string> {
  return accept.length === 0 ? {} : { accept: accept.join(', ') };
}
