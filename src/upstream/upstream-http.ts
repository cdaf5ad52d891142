/**
 * @module upstream/upstream-http
 * One HTTP exchange with an upstream (or its token service, or the CDN it redirects to) over an
 * undici dispatcher: fixed identity headers, per-phase timeouts, manual redirects that never carry
 * Authorization to another origin and go only where the AddressGuard allows, and transport failures
 * turned into UNAVAILABLE.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { Agent, Dispatcher } from 'undici';
import { OciError } from '../oci/errors.js';
import { forbiddenAddressCode, type AddressGuard } from './address-guard.js';
import type { Logger } from './logger.js';
import { discardBody, type ResponseBody } from './read-body.js';
import type { UpstreamTimeouts } from './timeouts.js';
import type { UpstreamObserver } from './upstream-config.js';

export const userAgent = 'wharf/0.1';

/** Docker Hub and ghcr need one hop (registry → CDN); 5 leaves room for a CDN's own hop and
 * stops a loop early. Go's net/http allows 10; browsers 20. */
export const maxRedirects = 5;

const redirectStatuses: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/** A body sent once (a stream) cannot be sent again after a redirect; strings and bytes can. */
export type RequestBody = string | Uint8Array | Readable;

export interface HttpRequest {
  /** PUT, PATCH and DELETE are the client commands' (wharf copy, blob put, delete); the mirror only reads. */
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: URL;
  /** Lower-case names. Authorization does not go here: see `authorization`. */
  headers?: Record<string, string>;
  body?: RequestBody;
  /** Sent only while the request URL's origin is `trustedOrigin`, on the first hop and after redirects. */
  authorization?: string;
  trustedOrigin: string;
  /**
   * The URL whose answer named this one (the registry, for a token realm): the first hop is then
   * checked as a redirect from it would be. Undefined for URLs built from the configuration.
   */
  from?: URL;
  /** Aborts the exchange (and the body it returns) when it fires. */
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: ResponseBody;
  /** Where the answer finally came from, after redirects. */
  url: URL;
}

export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Content-Length as a safe non-negative integer, else undefined. */
export function contentLength(headers: IncomingHttpHeaders): number | undefined {
  const raw = headerValue(headers, 'content-length');
  if (raw === undefined || !/^\d+$/.test(raw.trim())) return undefined;
  const value = Number(raw.trim());
  return Number.isSafeInteger(value) ? value : undefined;
}

/** Where a URL points, without its query: signed CDN URLs carry their signature there. */
export function describeUrl(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? `${code}: ${error.message}` : error.message;
}

export class UpstreamHttp {
  constructor(
    private readonly dispatcher: Dispatcher,
    private readonly timeouts: UpstreamTimeouts,
    private readonly logger: Logger,
    private readonly guard: AddressGuard,
    /** Metrics: told of each exchange under the configured host's name. */
    private readonly observer?: { host: string; observe: UpstreamObserver },
  ) {}

  /** Sends the request, following up to maxRedirects redirects; the caller owns the returned body. */
  async send(request: HttpRequest): Promise<HttpResponse> {
    let url = request.url;
    let method = request.method;
    let body = request.body;
    this.check(url, request.from);
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = {
        'user-agent': userAgent,
        // Sizes, ranges and digests refer to identity bytes; a transfer-encoded body would not match.
        'accept-encoding': 'identity',
        ...request.headers,
      };
      if (request.authorization !== undefined && url.origin === request.trustedOrigin) {
        headers['authorization'] = request.authorization;
      }
      if (body === undefined) delete headers['content-type'];
      const response = await this.exchange(method, url, headers, body, request.signal);
      const location = headerValue(response.headers, 'location');
      if (!redirectStatuses.has(response.statusCode) || location === undefined) {
        return { status: response.statusCode, headers: response.headers, body: response.body, url };
      }
      await discardBody(response.body);
      if (body instanceof Readable) {
        // The stream is spent: following would send an empty or partial body. Registries answer
        // uploads themselves; one that redirects an upload is refused rather than half-served.
        throw new OciError('UNAVAILABLE', `${url.host}: redirected a streamed upload: not followed`, { status: 502 });
      }
      if (hop >= maxRedirects) {
        throw new OciError('UNAVAILABLE', `${request.url.host}: more than ${maxRedirects} redirects`, { status: 502 });
      }
      const next = URL.canParse(location, url.href) ? new URL(location, url) : undefined;
      if (next === undefined) {
        throw new OciError('UNAVAILABLE', `${url.host}: redirect to an unusable location`, { status: 502 });
      }
      this.check(next, url);
      this.logger.debug(
        { from: describeUrl(url), to: describeUrl(next), status: response.statusCode },
        'upstream redirect',
      );
      // RFC 9110 §15.4.4: a 303 is answered with a GET (a HEAD stays a HEAD).
      if (response.statusCode === 303 && method === 'POST') {
        method = 'GET';
        body = undefined;
      }
      url = next;
    }
  }

  /**
   * Throws UNAVAILABLE 502 (the upstream pointed somewhere wharf must not go: its fault, not the
   * client's) when the guard refuses `target`. The target stays out of the message clients see.
   */
  private check(target: URL, from: URL | undefined): void {
    const why = this.guard.refusal(target, from);
    if (why === undefined) return;
    const named = from === undefined ? target.host : from.host;
    this.logger.warn({ from: from && describeUrl(from), to: describeUrl(target), why }, 'upstream target refused');
    throw new OciError('UNAVAILABLE', `upstream answer from ${named} points to ${why}: not followed`, {
      status: 502,
      detail: { upstream: named },
    });
  }

  private report(method: string, status: number | undefined, started: number): void {
    if (this.observer === undefined) return;
    const seconds = (performance.now() - started) / 1000;
    this.observer.observe({ upstream: this.observer.host, method, status, seconds });
  }

  private async exchange(
    method: HttpRequest['method'],
    url: URL,
    headers: Record<string, string>,
    body: RequestBody | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Dispatcher.ResponseData> {
    const started = performance.now();
    try {
      const response = await this.dispatcher.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method,
        headers,
        body: body ?? null,
        ...(signal === undefined ? {} : { signal }),
        headersTimeout: this.timeouts.headersMs,
        bodyTimeout: this.timeouts.bodyIdleMs,
        // undici closes the connection after every HEAD by default, in case a broken server sends a
        // body anyway; registries do not, and tag revalidation is HEAD after HEAD: keep it alive.
        ...(method === 'HEAD' ? { reset: false } : {}),
      });
      this.report(method, response.statusCode, started);
      return response;
    } catch (error) {
      this.report(method, undefined, started);
      if ((error as { code?: unknown } | null)?.code === forbiddenAddressCode) {
        this.logger.warn({ to: describeUrl(url), why: describeError(error) }, 'upstream target refused');
        throw new OciError(
          'UNAVAILABLE',
          'an upstream answer points to a name with no address wharf may dial: not followed',
          {
            status: 502,
            cause: error,
          },
        );
      }
      throw new OciError('UNAVAILABLE', `${url.host}: ${method} ${url.pathname} failed: ${describeError(error)}`, {
        cause: error,
      });
    }
  }
}

/** agent.close() waits for running requests (a body nobody reads would wait forever): destroy after `graceMs`. */
export async function closeAgent(agent: Agent, graceMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), graceMs)));
  try {
    if ((await Promise.race([agent.close(), grace])) === 'late') await agent.destroy();
  } finally {
    clearTimeout(timer);
  }
}
