/**
 * @module upstream/registry-client
 * One registry as the wharf client commands talk to it (tags, manifest, copy, push-dir…): the
 * same transport as the mirror's upstreams (UpstreamHttp: identity headers, timeouts, redirects
 * that never carry credentials to another origin and go only where the AddressGuard allows;
 * RegistryAuth: Basic or Bearer tokens from the docker credentials, cached per scope), plus the
 * TLS settings of certs.d and the write side (uploads, manifests, deletes). The registry the user
 * names is the guard's "configured upstream": what its answers point to is checked as for a mirror.
 */
import { Readable } from 'node:stream';
import { Agent } from 'undici';
import { OciError } from '../oci/errors.js';
import type { AddressClass } from './address-class.js';
import { AddressGuard, type Resolver } from './address-guard.js';
import type { RegistryTls } from './certs-dir.js';
import { clientErrorFromResponse } from './client-errors.js';
import { describeCredentials, resolveCredentials, type Credentials } from './credentials.js';
import type { Environment } from './docker-config.js';
import { silentLogger, type Logger } from './logger.js';
import { discardBody } from './read-body.js';
import { RegistryAuth } from './registry-auth.js';
import { resolveTimeouts, type UpstreamTimeouts } from './timeouts.js';
import { TokenCache } from './token-cache.js';
import { closeAgent, UpstreamHttp, type HttpRequest, type HttpResponse, type RequestBody } from './upstream-http.js';

export interface RegistryClientOptions {
  /** The registry as the user named it: 'docker.io', '127.0.0.1:5000' (the docker credentials key). */
  host: string;
  /** Where it answers: 'https://registry-1.docker.io', 'http://127.0.0.1:5000'. */
  url: string;
  tls?: RegistryTls;
  env?: Environment;
  logger?: Logger;
  /** Overrides the network the registry's address says it is on (tests). */
  network?: AddressClass;
  /** What the address guard resolves names with; dns.lookup when absent (tests answer from a table). */
  resolver?: Resolver;
  timeouts?: Partial<UpstreamTimeouts>;
}

export interface RegistryRequest {
  method: HttpRequest['method'];
  /** A path under the registry (`/v2/…`) or a URL the registry handed out (an upload Location). */
  target: string | URL;
  /** The token scope: `repository:team/app:pull,push`, `registry:catalog:*`. */
  scope: string;
  headers?: Record<string, string>;
  body?: RequestBody;
  /** The URL whose answer named `target` (an upload Location): checked as a redirect from it. */
  from?: URL;
}

/** A CLI copy is one user's burst: a few connections per origin are plenty. */
const connectionsPerOrigin = 8;
const closeGraceMs = 2_000;

export class RegistryClient {
  readonly host: string;
  readonly origin: string;
  private readonly base: string;
  private readonly agent: Agent;
  private readonly http: UpstreamHttp;
  private readonly auth: RegistryAuth;
  private credentials: Promise<Credentials | undefined> | undefined;

  constructor(options: RegistryClientOptions) {
    const url = URL.canParse(options.url) ? new URL(options.url) : undefined;
    if (url === undefined || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
      throw new TypeError(`registry ${options.host}: url must be an http(s) URL, got ${JSON.stringify(options.url)}`);
    }
    this.host = options.host;
    this.origin = url.origin;
    this.base = `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
    const logger = options.logger ?? silentLogger;
    const timeouts = resolveTimeouts(options.timeouts);
    const guard = new AddressGuard(url, options.network, options.resolver);
    const tls = options.tls ?? {};
    this.agent = new Agent({
      connect: {
        timeout: timeouts.connectMs,
        lookup: guard.lookup,
        ...(tls.ca === undefined ? {} : { ca: tls.ca }),
        ...(tls.cert === undefined ? {} : { cert: tls.cert, key: tls.key }),
        ...(tls.rejectUnauthorized === false ? { rejectUnauthorized: false } : {}),
      },
      headersTimeout: timeouts.headersMs,
      bodyTimeout: timeouts.bodyIdleMs,
      connections: connectionsPerOrigin,
    });
    this.http = new UpstreamHttp(this.agent, timeouts, logger, guard);
    const resolve = (): Promise<Credentials | undefined> =>
      (this.credentials ??= resolveCredentials({ host: this.host, useDockerConfig: true }, options.env, logger).then(
        (found) => {
          logger.debug({ registry: this.host, credentials: describeCredentials(found) }, 'registry credentials');
          return found;
        },
      ));
    this.auth = new RegistryAuth({ host: this.host, url }, this.http, resolve, new TokenCache(Date.now), logger);
  }

  /** `/v2/…` under the registry's base URL. */
  url(path: string): URL {
    return new URL(`${this.base}${path}`);
  }

  /**
   * Sends one request with authentication: the first attempt with what the registry asked for
   * before, one retry after a 401 from the registry itself. A stream body cannot be sent twice,
   * so a 401 to one is final: uploads first make a small request that learns the challenge.
   */
  async send(request: RegistryRequest): Promise<HttpResponse> {
    const url = typeof request.target === 'string' ? this.url(request.target) : request.target;
    const sent = await this.auth.authorizationFor(request.scope);
    const base: HttpRequest = {
      method: request.method,
      url,
      headers: request.headers ?? {},
      trustedOrigin: this.origin,
      ...(request.body === undefined ? {} : { body: request.body }),
      ...(request.from === undefined ? {} : { from: request.from }),
    };
    const first = await this.http.send({ ...base, ...(sent === undefined ? {} : { authorization: sent }) });
    if (first.status !== 401 || first.url.origin !== this.origin || request.body instanceof Readable) return first;
    await discardBody(first.body);
    const retry = await this.auth.authorizationAfter401(first.headers, request.scope, sent);
    return this.http.send({ ...base, authorization: retry });
  }

  /** Sends and insists on one of `ok` statuses; otherwise throws the registry's own error. */
  async expect(request: RegistryRequest, ok: readonly number[], what: string): Promise<HttpResponse> {
    const response = await this.send(request);
    if (ok.includes(response.status)) return response;
    throw await clientErrorFromResponse(response, this.host, what);
  }

  /** Like expect, but a 404 is undefined (absence is a value). */
  async maybe(request: RegistryRequest, what: string): Promise<HttpResponse | undefined> {
    const response = await this.send(request);
    if (response.status === 404) {
      await discardBody(response.body);
      return undefined;
    }
    if (response.status >= 200 && response.status < 300) return response;
    throw await clientErrorFromResponse(response, this.host, what);
  }

  async close(): Promise<void> {
    await closeAgent(this.agent, closeGraceMs);
  }
}

export function pullScope(repo: string): string {
  return `repository:${repo}:pull`;
}

export function pushScope(repo: string): string {
  return `repository:${repo}:pull,push`;
}

export function deleteScope(repo: string): string {
  return `repository:${repo}:delete`;
}

/** The error for a 404 the caller cannot accept. */
export function notFound(code: 'MANIFEST_UNKNOWN' | 'BLOB_UNKNOWN' | 'NAME_UNKNOWN', what: string): OciError {
  return new OciError(code, what);
}
