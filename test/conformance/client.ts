/**
 * @module test/conformance/client
 * Black-box HTTP client for the conformance ports: undici.request against a base URL, repeated
 * header lines kept separate, Location values resolved against the request URL (query kept), a
 * timeout on every call, and assertion helpers whose messages name the request, the expectation
 * and what came back. It behaves like Go's net/http client where the real suites depend on it:
 * redirects are followed, and `Accept-Encoding: gzip` is sent (and undone, dropping
 * Content-Length) unless the request has a Range header or is a HEAD.
 */
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { request } from 'undici';

/** Upper bound for any single request, including reading the body. */
export const REQUEST_TIMEOUT_MS = 60_000;
const MAX_REDIRECTS = 10;

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
export type HeaderPairs = ReadonlyArray<readonly [string, string]>;

export interface RequestSpec {
  method: Method;
  /** Absolute URL, or a path (with query) resolved against the client's base URL. */
  url: string | URL;
  /** Header lines in order; a name given twice is sent as two separate lines. */
  headers?: HeaderPairs;
  body?: Uint8Array;
  /** Send the body with `Transfer-Encoding: chunked`, as Go does when the length is unknown. */
  chunked?: boolean;
  timeoutMs?: number;
}

export interface RegistryResponse {
  method: Method;
  url: URL;
  status: number;
  /** Lower-cased names; every value of a repeated header in order. */
  headers: ReadonlyMap<string, readonly string[]>;
  body: Buffer;
  /**
   * Set when reading the body failed after the status line and headers arrived (e.g. the server
   * announced more bytes than it sent). Like Go, only checks that read the body see this.
   */
  bodyError?: string;
}

/** The first value of a header, like Go's `Header.Get`; '' when absent. */
export function header(res: RegistryResponse, name: string): string {
  return res.headers.get(name.toLowerCase())?.[0] ?? '';
}

/** Every value of a header, like Go's `Header.Values`. */
export function headerValues(res: RegistryResponse, name: string): readonly string[] {
  return res.headers.get(name.toLowerCase()) ?? [];
}

/** `METHOD url -> status` for messages. */
export function describeResponse(res: RegistryResponse): string {
  return `${res.method} ${res.url.pathname}${res.url.search} -> ${res.status}`;
}

export class RegistryClient {
  readonly base: URL;
  private readonly userAgent: string;
  private readonly bodyErrors: 'throw' | 'record';

  /**
   * `bodyErrors`: 'throw' when a failed body read fails the request (resty, which the v1.1.1
   * suite uses, reads every body inside `Do`); 'record' to keep the partial body and report
   * the error only to checks that read it (the main suite's net/http usage).
   */
  constructor(baseUrl: string, options: { userAgent: string; bodyErrors: 'throw' | 'record' }) {
    this.base = new URL(baseUrl.replace(/\/+$/, '') + '/');
    this.userAgent = options.userAgent;
    this.bodyErrors = options.bodyErrors;
  }

  /** Resolves a path or absolute URL against the base URL. */
  resolve(target: string | URL): URL {
    if (target instanceof URL) return new URL(target.href);
    return new URL(target, this.base);
  }

  async send(spec: RequestSpec): Promise<RegistryResponse> {
    let url = this.resolve(spec.url);
    let method = spec.method;
    let body = spec.body;
    for (let hop = 0; ; hop++) {
      const res = await this.sendOnce({ ...spec, url, method, body });
      const location = header(res, 'location');
      const redirect = [301, 302, 303, 307, 308].includes(res.status) && location !== '';
      if (!redirect || hop >= MAX_REDIRECTS) return res;
      url = new URL(location, url);
      if (res.status !== 307 && res.status !== 308 && method !== 'HEAD') {
        method = 'GET';
        body = undefined;
      }
    }
  }

  private async sendOnce(spec: RequestSpec & { url: URL }): Promise<RegistryResponse> {
    const headers: string[] = [];
    for (const [name, value] of spec.headers ?? []) headers.push(name, value);
    const has = (name: string): boolean => (spec.headers ?? []).some(([n]) => n.toLowerCase() === name);
    if (!has('user-agent')) headers.push('user-agent', this.userAgent);
    const goGzip = !has('accept-encoding') && !has('range') && spec.method !== 'HEAD';
    if (goGzip) headers.push('accept-encoding', 'gzip');

    let body: Buffer | Readable | undefined;
    if (spec.body !== undefined) {
      const bytes = Buffer.from(spec.body.buffer, spec.body.byteOffset, spec.body.byteLength);
      body = spec.chunked === true ? Readable.from([bytes]) : bytes;
    } else if (spec.method === 'POST' || spec.method === 'PUT' || spec.method === 'PATCH') {
      // Go sends `Content-Length: 0` for these methods when there is no body.
      body = Buffer.alloc(0);
    }

    const signal = AbortSignal.timeout(spec.timeoutMs ?? REQUEST_TIMEOUT_MS);
    const res = await request(spec.url, { method: spec.method, headers, body, signal });
    const chunks: Buffer[] = [];
    let bodyError: string | undefined;
    try {
      for await (const chunk of res.body) chunks.push(Buffer.from(chunk as Uint8Array));
    } catch (error) {
      if (this.bodyErrors === 'throw') throw error;
      bodyError = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    }
    let payload = Buffer.concat(chunks);

    const map = new Map<string, string[]>();
    for (const [name, value] of Object.entries(res.headers)) {
      if (value === undefined) continue;
      map.set(name.toLowerCase(), Array.isArray(value) ? [...value] : [value]);
    }
    if (goGzip && bodyError === undefined && map.get('content-encoding')?.[0]?.toLowerCase() === 'gzip') {
      // What Go's transport does: decompress, then drop the encoding and the length.
      payload = gunzipSync(payload);
      map.delete('content-encoding');
      map.delete('content-length');
    }
    const result: RegistryResponse = {
      method: spec.method,
      url: spec.url,
      status: res.statusCode,
      headers: map,
      body: payload,
    };
    if (bodyError !== undefined) result.bodyError = bodyError;
    return result;
  }
}

/** A URL with one query parameter set (replacing earlier values), like Go's `url.Values.Set`. */
export function withQuery(url: URL, name: string, value: string): URL {
  const next = new URL(url.href);
  next.searchParams.set(name, value);
  return next;
}

/** A URL with one query parameter added (keeping earlier values), like Go's `url.Values.Add`. */
export function addQuery(url: URL, name: string, value: string): URL {
  const next = new URL(url.href);
  next.searchParams.append(name, value);
  return next;
}

/** Resolves a Location header against the URL of the request that returned it, keeping its query. */
export function resolveLocation(res: RegistryResponse): URL | undefined {
  const location = header(res, 'location');
  if (location === '') return undefined;
  return new URL(location, res.url);
}

/**
 * reggie's `GetRelativeLocation()`: the path and query of the Location header, which the v1.1.1
 * suite then requests against OCI_ROOT_URL.
 */
export function relativeLocation(res: RegistryResponse): string {
  const location = header(res, 'location');
  if (location === '') return '';
  const parsed = new URL(location, 'http://relative.invalid');
  return parsed.pathname + parsed.search;
}

/** A failed conformance expectation; the message names the request and both values. */
export class ConformanceError extends Error {
  override readonly name = 'ConformanceError';
}

/**
 * The registry answered in a way the suite records as "unsupported" (a skip, not a failure),
 * for example a 202 fallback to POST+PUT, or a 405 on delete.
 */
export class Unsupported extends Error {
  override readonly name = 'Unsupported';
}

function fail(res: RegistryResponse, what: string): never {
  throw new ConformanceError(`${describeResponse(res)}: ${what}`);
}

export function expectStatus(res: RegistryResponse, ...accepted: number[]): void {
  if (!accepted.includes(res.status)) {
    fail(res, `expected status ${accepted.join(' or ')}, received ${res.status}${bodyHint(res)}`);
  }
}

/** Go's `apiExpectHeader`: value '' means "present"; otherwise one of the values must equal it. */
export function expectHeader(res: RegistryResponse, name: string, value: string): void {
  const values = headerValues(res, name);
  if (value === '') {
    if (values.length === 0) fail(res, `expected header ${name}, it is missing`);
  } else if (!values.includes(value)) {
    fail(res, `expected header ${name}: ${JSON.stringify(value)}, received ${JSON.stringify(values)}`);
  }
}

/** Gomega `Equal` on `Header().Get(name)`. */
export function expectHeaderEquals(res: RegistryResponse, name: string, value: string): void {
  const actual = header(res, name);
  if (actual !== value) {
    fail(res, `expected header ${name} to equal ${JSON.stringify(value)}, received ${JSON.stringify(actual)}`);
  }
}

export function expectHeaderPresent(res: RegistryResponse, name: string): void {
  if (header(res, name) === '') fail(res, `expected a non-empty ${name} header`);
}

export function expectBody(res: RegistryResponse, expected: Uint8Array): void {
  if (res.bodyError !== undefined) fail(res, `failed to read body: ${res.bodyError}`);
  if (!Buffer.from(expected).equals(res.body)) {
    fail(
      res,
      `body mismatch: expected ${expected.byteLength} bytes${preview(expected)}, received ${res.body.length} bytes${preview(res.body)}`,
    );
  }
}

/** The suites' digest rule: when Docker-Content-Digest is present it must equal `digest`. */
export function expectDigestHeaderIfPresent(res: RegistryResponse, digest: string, required = false): void {
  const actual = header(res, 'docker-content-digest');
  if (actual === '' && required) fail(res, 'registry did not return a Docker-Content-Digest header');
  if (actual !== '' && digest !== '' && actual !== digest) {
    fail(res, `Docker-Content-Digest expected ${JSON.stringify(digest)}, received ${JSON.stringify(actual)}`);
  }
}

export function check(condition: boolean, res: RegistryResponse, what: string): void {
  if (!condition) fail(res, what);
}

export function parseJson(res: RegistryResponse): unknown {
  if (res.bodyError !== undefined) fail(res, `failed to read body: ${res.bodyError}`);
  try {
    return JSON.parse(res.body.toString('utf8')) as unknown;
  } catch (error) {
    fail(res, `body is not JSON (${String(error)})${preview(res.body)}`);
  }
}

/** The error codes of the spec's table (v1.1.1 `errorCodes`). */
export const OCI_ERROR_CODES: readonly string[] = [
  'BLOB_UNKNOWN',
  'BLOB_UPLOAD_INVALID',
  'BLOB_UPLOAD_UNKNOWN',
  'DIGEST_INVALID',
  'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID',
  'MANIFEST_UNKNOWN',
  'MANIFEST_UNVERIFIED',
  'NAME_INVALID',
  'NAME_UNKNOWN',
  'SIZE_INVALID',
  'TAG_INVALID',
  'UNAUTHORIZED',
  'DENIED',
  'UNSUPPORTED',
];

/**
 * reggie's `resp.Errors()`: the body must parse as `{"errors":[{"code":…}]}`; returns the codes.
 * Fails when the body is not that shape or the list is empty.
 */
export function errorCodes(res: RegistryResponse): string[] {
  const parsed = parseJson(res);
  const errors = typeof parsed === 'object' && parsed !== null ? (parsed as { errors?: unknown }).errors : undefined;
  if (!Array.isArray(errors) || errors.length === 0)
    fail(res, `expected a non-empty "errors" list${preview(res.body)}`);
  return errors.map((entry: unknown) => {
    const code = typeof entry === 'object' && entry !== null ? (entry as { code?: unknown }).code : undefined;
    return typeof code === 'string' ? code : '';
  });
}

function bodyHint(res: RegistryResponse): string {
  return res.body.length === 0 ? '' : preview(res.body);
}

function preview(bytes: Uint8Array): string {
  if (bytes.byteLength === 0) return '';
  const text = Buffer.from(bytes.subarray(0, 300)).toString('utf8');
  const printable = /^[\x09\x0a\x0d\x20-\x7e]*$/.test(text);
  return printable ? ` (${JSON.stringify(text)}${bytes.byteLength > 300 ? '…' : ''})` : '';
}
