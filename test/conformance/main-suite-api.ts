/**
 * @module test/conformance/main-suite-api
 * Port of the main-branch conformance suite's request layer (`conformance/api.go`): each function
 * sends the same requests with the same headers and accepts the same statuses as its Go
 * counterpart. A mismatch throws ConformanceError; an answer the suite records as "unsupported"
 * (fallback to POST+PUT, a 405 on delete, no OCI-Tag header) throws Unsupported after all other
 * checks of that call have passed.
 */
import type { RegistryClient } from './client.js';
import {
  ConformanceError,
  Unsupported,
  addQuery,
  check,
  describeResponse,
  expectBody,
  expectDigestHeaderIfPresent,
  expectHeader,
  expectStatus,
  header,
  headerValues,
  parseJson,
  withQuery,
  type HeaderPairs,
  type RegistryResponse,
} from './client.js';
import { MT } from './main-suite-data.js';
import { digestOf } from './target.js';

/** `chunkMin` in config.go: the smallest chunk the suite sends. */
export const CHUNK_MIN = 1024;
const EMPTY_SHA256 = digestOf(Buffer.alloc(0));
const ACCEPT_MANIFESTS: HeaderPairs = [
  ['Accept', MT.ociIndex],
  ['Accept', MT.ociImage],
];
const OCTET: HeaderPairs = [['Content-Type', MT.octetStream]];

export interface ApiSettings {
  /** OCI_VERSION=dev turns on RequireDigestHeader for blobs and manifests. */
  requireDigestHeader: boolean;
  /** The referrers API is tested (default), so manifest PUTs with a subject need OCI-Subject. */
  referrersEnabled: boolean;
}

export interface ReferrersResult {
  manifests: ReferrerEntry[];
  filtersApplied: string;
}

export interface ReferrerEntry {
  mediaType?: unknown;
  digest?: unknown;
  size?: unknown;
  artifactType?: unknown;
  annotations?: unknown;
}

/** The blob bytes the suite knows, or undefined when it only checks existence. */
export function knownBlob(digest: string, bytes: Buffer | undefined): Buffer | undefined {
  return bytes !== undefined && (bytes.length > 0 || digest === EMPTY_SHA256) ? bytes : undefined;
}

/** `detectMediaType`: the body's mediaType, the OCI image manifest type when absent. */
export function detectMediaType(body: Buffer): string {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { mediaType?: unknown } | null;
    if (
      parsed !== null &&
      typeof parsed === 'object' &&
      'mediaType' in parsed &&
      typeof parsed.mediaType === 'string'
    ) {
      return parsed.mediaType;
    }
  } catch {
    // Go ignores the unmarshal error and keeps the default
  }
  return MT.ociImage;
}

/** `detectSubject`: the subject digest, if the body has a subject. */
export function detectSubject(body: Buffer): string | undefined {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { subject?: { digest?: unknown } } | null;
    const digest = parsed?.subject?.digest;
    return typeof digest === 'string' ? digest : undefined;
  } catch {
    return undefined;
  }
}

export class ConformanceApi {
  constructor(
    private readonly client: RegistryClient,
    private readonly settings: ApiSettings,
  ) {}

  private url(repo: string, path: string): URL {
    return this.client.resolve(`/v2/${repo}${path}`);
  }

  private send(
    method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    url: URL,
    headers: HeaderPairs = [],
    body?: Uint8Array,
    chunked = false,
  ): Promise<RegistryResponse> {
    return this.client.send({ method, url, headers, body, chunked });
  }

  /** `apiReturnHeader("Location", &loc)`: only a non-empty header replaces the previous value. */
  private static location(res: RegistryResponse, previous: string): string {
    const value = header(res, 'location');
    return value !== '' ? value : previous;
  }

  private verifyDigest(res: RegistryResponse | undefined, digest: string): void {
    if (res === undefined) return;
    expectDigestHeaderIfPresent(res, digest, this.settings.requireDigestHeader);
  }

  /** `BlobVerifyLocation`: GET the returned location, expect 200 and the exact bytes. */
  private async verifyBlobLocation(u: URL, location: string, body: Buffer): Promise<void> {
    if (location === '') throw new ConformanceError(`location header missing (last request ${u.pathname})`);
    const res = await this.send('GET', new URL(location, u));
    expectStatus(res, 200);
    expectBody(res, body);
  }

  async ping(): Promise<RegistryResponse> {
    return this.send('GET', this.client.resolve('/v2/'));
  }

  async blobPostPut(repo: string, digest: string, body: Buffer, opts: { badDigest?: boolean } = {}): Promise<void> {
    let u = this.url(repo, '/blobs/uploads/');
    const post = await this.send('POST', u);
    expectStatus(post, 202);
    let loc = ConformanceApi.location(post, '');
    check(loc !== '', post, 'blob post did not return a location');
    u = withQuery(new URL(loc, u), 'digest', digest);
    const put = await this.send('PUT', u, OCTET, body);
    if (opts.badDigest === true) {
      expectStatus(put, 400);
      return;
    }
    expectStatus(put, 201);
    loc = ConformanceApi.location(put, loc);
    this.verifyDigest(put, digest);
    await this.verifyBlobLocation(u, loc, body);
  }

  async blobPostOnly(repo: string, digest: string, body: Buffer, opts: { badDigest?: boolean } = {}): Promise<void> {
    let u = withQuery(this.url(repo, '/blobs/uploads/'), 'digest', digest);
    const post = await this.send('POST', u, OCTET, body);
    let res = post;
    let loc = ConformanceApi.location(post, '');
    if (opts.badDigest === true) {
      expectStatus(post, 400, 202);
    } else {
      expectStatus(post, 201, 202);
      expectHeader(post, 'Location', '');
    }
    if (post.status === 202) {
      // fall back to a PUT, but the API is recorded as unsupported
      u = withQuery(new URL(loc, u), 'digest', digest);
      res = await this.send('PUT', u, OCTET, body);
      loc = ConformanceApi.location(res, loc);
      expectStatus(res, opts.badDigest === true ? 400 : 201);
      throw new Unsupported(
        `${describeResponse(post)}: registry does not support content in the POST, fell back to PUT`,
      );
    }
    if (opts.badDigest === true) return;
    this.verifyDigest(res, digest);
    await this.verifyBlobLocation(u, loc, body);
  }

  async blobPatchChunked(
    repo: string,
    digest: string,
    body: Buffer,
    opts: {
      putLastChunk?: boolean;
      outOfOrder?: boolean;
      badDigest?: boolean;
      onMinHeader?: (value: string) => void;
    } = {},
  ): Promise<void> {
    let u = this.url(repo, '/blobs/uploads/');
    const post = await this.send('POST', u, [], Buffer.alloc(0));
    expectStatus(post, 202);
    const minStr = header(post, 'OCI-Chunk-Min-Length');
    opts.onMinHeader?.(minStr);
    let loc = ConformanceApi.location(post, '');
    let final: RegistryResponse | undefined;

    // chunk size for three chunks, raised to the registry's minimum and to chunkMin
    let chunkSize = Math.trunc(body.length / 3) + 1;
    if (minStr !== '') {
      const min = Number.parseInt(minStr, 10);
      if (!Number.isInteger(min))
        throw new ConformanceError(
          `${describeResponse(post)}: parsing OCI-Chunk-Min-Length ${JSON.stringify(minStr)} failed`,
        );
      if (min > chunkSize) chunkSize = min;
    }
    if (chunkSize < CHUNK_MIN) chunkSize = CHUNK_MIN;
    if (chunkSize > body.length) chunkSize = body.length;

    let lastByte = -1;
    while (lastByte < body.length - 1) {
      if (opts.outOfOrder === true) {
        if (loc === '') throw new ConformanceError('blob request did not return a location');
        u = new URL(loc, u);
        // an out-of-order chunk: skip ahead, or go back to the start
        let badStart = lastByte + 1 + chunkSize;
        if (badStart >= body.length) badStart = 0;
        const badLastByte = Math.min(badStart + chunkSize - 1, body.length - 1);
        let method: 'PATCH' | 'PUT' = 'PATCH';
        if (opts.putLastChunk === true && badLastByte === body.length - 1) {
          method = 'PUT';
          u = withQuery(u, 'digest', digest);
        }
        const bad = await this.send(
          method,
          u,
          [...OCTET, ['Content-Range', `${badStart}-${badLastByte}`]],
          body.subarray(badStart, badLastByte + 1),
        );
        expectStatus(bad, 416);
        loc = ConformanceApi.location(bad, loc);
        // recover with a GET of the upload status
        const status = await this.send('GET', u);
        expectStatus(status, 204);
        loc = ConformanceApi.location(status, loc);
        const range = header(status, 'Range');
        if (!range.startsWith('0-'))
          throw new ConformanceError(
            `${describeResponse(status)}: Range header is missing the 0- prefix: ${JSON.stringify(range)}`,
          );
        const rangeLastByte = Number(range.slice(2));
        if (!/^-?\d+$/.test(range.slice(2)))
          throw new ConformanceError(
            `${describeResponse(status)}: Range header could not be parsed: ${JSON.stringify(range)}`,
          );
        if (lastByte >= 0 && rangeLastByte !== lastByte) {
          throw new ConformanceError(
            `${describeResponse(status)}: Range unexpected, received ${JSON.stringify(range)}, expected "0-${lastByte}"`,
          );
        }
      }
      if (loc === '') throw new ConformanceError('blob request did not return a location');
      u = new URL(loc, u);
      const start = lastByte + 1;
      lastByte = Math.min(start + chunkSize - 1, body.length - 1);
      const headers: HeaderPairs = [...OCTET, ['Content-Range', `${start}-${lastByte}`]];
      const chunk = body.subarray(start, lastByte + 1);
      if (opts.putLastChunk === true && lastByte === body.length - 1) {
        u = withQuery(u, 'digest', digest);
        const put = await this.send('PUT', u, headers, chunk);
        if (opts.badDigest === true) {
          expectStatus(put, 400);
        } else {
          expectStatus(put, 201);
          loc = ConformanceApi.location(put, loc);
          final = put;
        }
      } else {
        const patch = await this.send('PATCH', u, headers, chunk);
        expectStatus(patch, 202);
        loc = ConformanceApi.location(patch, loc);
      }
    }
    if (opts.putLastChunk !== true) {
      if (loc === '') throw new ConformanceError('blob patch did not return a location');
      u = withQuery(new URL(loc, u), 'digest', digest);
      const put = await this.send('PUT', u, OCTET, Buffer.alloc(0));
      if (opts.badDigest === true) {
        expectStatus(put, 400);
      } else {
        expectStatus(put, 201);
        loc = ConformanceApi.location(put, loc);
        final = put;
      }
    }
    if (opts.badDigest === true) return;
    this.verifyDigest(final, digest);
    await this.verifyBlobLocation(u, loc, body);
  }

  async blobPatchStream(repo: string, digest: string, body: Buffer, opts: { badDigest?: boolean } = {}): Promise<void> {
    let u = this.url(repo, '/blobs/uploads/');
    const post = await this.send('POST', u, [], Buffer.alloc(0));
    expectStatus(post, 202);
    let loc = ConformanceApi.location(post, '');
    check(loc !== '', post, 'blob post did not return a location');
    u = new URL(loc, u);
    // no Content-Length and no Content-Range: Go sends the body chunked
    const patch = await this.send('PATCH', u, OCTET, body, true);
    expectStatus(patch, 202);
    loc = ConformanceApi.location(patch, loc);
    check(loc !== '', patch, 'blob patch did not return a location');
    u = withQuery(new URL(loc, u), 'digest', digest);
    const put = await this.send('PUT', u, OCTET, Buffer.alloc(0));
    loc = ConformanceApi.location(put, loc);
    if (opts.badDigest === true) {
      expectStatus(put, 400);
      return;
    }
    expectStatus(put, 201);
    expectHeader(put, 'Location', '');
    this.verifyDigest(put, digest);
    await this.verifyBlobLocation(u, loc, body);
  }

  async blobPostCancel(repo: string): Promise<void> {
    const u = this.url(repo, '/blobs/uploads/');
    const post = await this.send('POST', u);
    expectStatus(post, 202);
    const loc = ConformanceApi.location(post, '');
    check(loc !== '', post, 'blob post did not return a location');
    const cancel = await this.send('DELETE', new URL(loc, u));
    expectStatus(cancel, 204);
  }

  /** `BlobMount`; `source` '' is an anonymous mount (no `from`). */
  async blobMount(repo: string, source: string, digest: string, body: Buffer): Promise<void> {
    let u = addQuery(this.url(repo, '/blobs/uploads/'), 'mount', digest);
    if (source !== '') u = addQuery(u, 'from', source);
    const post = await this.send('POST', u);
    expectStatus(post, 201, 202);
    let loc = ConformanceApi.location(post, '');
    check(loc !== '', post, 'blob post did not return a location');
    let res = post;
    let fellBack = false;
    if (post.status === 202) {
      u = withQuery(new URL(loc, u), 'digest', digest);
      res = await this.send('PUT', u, OCTET, body);
      expectStatus(res, 201);
      loc = ConformanceApi.location(res, loc);
      fellBack = true;
    }
    this.verifyDigest(res, digest);
    await this.verifyBlobLocation(u, loc, body);
    if (fellBack)
      throw new Unsupported(`${describeResponse(post)}: registry returned status 202, fell back to blob POST+PUT`);
  }

  async blobHeadExists(repo: string, digest: string, known: Buffer | undefined): Promise<void> {
    const res = await this.send('HEAD', this.url(repo, `/blobs/${digest}`));
    expectStatus(res, 200);
    expectBody(res, Buffer.alloc(0));
    if (known !== undefined) expectHeader(res, 'Content-Length', String(known.length));
    this.verifyDigest(res, digest);
  }

  async blobGetExistsFull(repo: string, digest: string, known: Buffer | undefined): Promise<void> {
    const res = await this.send('GET', this.url(repo, `/blobs/${digest}`));
    expectStatus(res, 200);
    if (known !== undefined) {
      expectBody(res, known);
      expectHeader(res, 'Content-Length', String(known.length));
    }
    this.verifyDigest(res, digest);
  }

  async blobGet(repo: string, digest: string, headers: HeaderPairs = []): Promise<RegistryResponse> {
    return this.send('GET', this.url(repo, `/blobs/${digest}`), headers);
  }

  async blobHead(repo: string, digest: string): Promise<RegistryResponse> {
    return this.send('HEAD', this.url(repo, `/blobs/${digest}`));
  }

  /** `BlobDelete`: 202 or 404 pass, 405 is unsupported. */
  async blobDelete(repo: string, digest: string): Promise<void> {
    const res = await this.send('DELETE', this.url(repo, `/blobs/${digest}`));
    expectStatus(res, 202, 404, 405);
    if (res.status === 405) throw new Unsupported(`${describeResponse(res)}: registry returned status 405`);
  }

  /**
   * `ManifestPut`: the body is sent chunked (Go sets no length), Content-Type is the body's
   * mediaType. Every check runs and the failures are reported together, as in Go.
   */
  async manifestPut(
    repo: string,
    reference: string,
    digest: string,
    body: Buffer,
    opts: { badDigest?: boolean; tags?: readonly string[] } = {},
  ): Promise<RegistryResponse> {
    let u = this.url(repo, `/manifests/${reference}`);
    for (const tag of opts.tags ?? []) u = addQuery(u, 'tag', tag);
    const mediaType = detectMediaType(body);
    const put = await this.send('PUT', u, [['Content-Type', mediaType]], body, true);
    const errors: string[] = [];
    const soft = (fn: () => void): void => {
      try {
        fn();
      } catch (error) {
        errors.push(error instanceof Error ? error.message : String(error));
      }
    };
    soft(() => expectStatus(put, opts.badDigest === true ? 400 : 201));
    const subject = detectSubject(body);
    if (this.settings.referrersEnabled && subject !== undefined) soft(() => expectHeader(put, 'OCI-Subject', subject));
    if (opts.badDigest !== true) {
      soft(() => expectDigestHeaderIfPresent(put, digest));
      const loc = header(put, 'location');
      if (loc === '') {
        errors.push(`${describeResponse(put)}: manifest put did not return a location`);
      } else {
        const get = await this.send('GET', new URL(loc, u), ACCEPT_MANIFESTS);
        soft(() => {
          expectStatus(get, 200);
          expectHeader(get, 'Content-Type', mediaType);
          expectHeader(get, 'Content-Length', String(body.length));
          expectBody(get, body);
        });
      }
    }
    if (errors.length > 0) throw new ConformanceError(errors.join('\n  '));
    return put;
  }

  async manifestGetExists(repo: string, reference: string, digest: string, body: Buffer | undefined): Promise<void> {
    const res = await this.manifestGet(repo, reference);
    expectStatus(res, 200);
    if (body !== undefined && body.length > 0) {
      expectBody(res, body);
      expectHeader(res, 'Content-Type', detectMediaType(body));
      expectHeader(res, 'Content-Length', String(body.length));
      this.verifyDigest(res, digest);
    }
  }

  async manifestHeadExists(repo: string, reference: string, digest: string, body: Buffer | undefined): Promise<void> {
    const res = await this.manifestHead(repo, reference);
    expectStatus(res, 200);
    expectBody(res, Buffer.alloc(0));
    if (body !== undefined && body.length > 0) {
      expectHeader(res, 'Content-Type', detectMediaType(body));
      expectHeader(res, 'Content-Length', String(body.length));
      this.verifyDigest(res, digest);
    }
  }

  async manifestGet(repo: string, reference: string): Promise<RegistryResponse> {
    return this.send('GET', this.url(repo, `/manifests/${reference}`), ACCEPT_MANIFESTS);
  }

  async manifestHead(repo: string, reference: string): Promise<RegistryResponse> {
    return this.send('HEAD', this.url(repo, `/manifests/${reference}`), ACCEPT_MANIFESTS);
  }

  /** `ManifestDelete`: 202 or 404 pass, 400 and 405 are unsupported. */
  async manifestDelete(repo: string, reference: string): Promise<void> {
    const res = await this.send('DELETE', this.url(repo, `/manifests/${reference}`));
    expectStatus(res, 202, 404, 400, 405);
    if (res.status === 400 || res.status === 405)
      throw new Unsupported(`${describeResponse(res)}: registry returned status ${res.status}`);
  }

  /** `ReferrersList`: 200, Content-Type exactly the index type, a valid OCI index body. */
  async referrersList(repo: string, subject: string, artifactType?: string): Promise<ReferrersResult> {
    let u = this.url(repo, `/referrers/${subject}`);
    if (artifactType !== undefined) u = addQuery(u, 'artifactType', artifactType);
    const res = await this.send('GET', u);
    expectHeader(res, 'Content-Type', MT.ociIndex);
    expectStatus(res, 200);
    const parsed = parseJson(res) as { mediaType?: unknown; schemaVersion?: unknown; manifests?: unknown } | null;
    check(
      parsed !== null && parsed.mediaType === MT.ociIndex && parsed.schemaVersion === 2,
      res,
      'referrers response is not a valid OCI index (media type and schema version)',
    );
    const manifests = Array.isArray(parsed?.manifests) ? (parsed.manifests as ReferrerEntry[]) : [];
    return { manifests, filtersApplied: header(res, 'OCI-Filters-Applied') };
  }

  /** `TagList`: 200 with a JSON tag list, or 404 (an empty list). */
  async tagList(repo: string, last?: string): Promise<string[]> {
    let u = this.url(repo, '/tags/list');
    if (last !== undefined) u = addQuery(u, 'last', last);
    const res = await this.send('GET', u);
    expectStatus(res, 200, 404);
    if (res.status === 404) return [];
    const parsed = parseJson(res) as { tags?: unknown } | null;
    const tags = parsed?.tags;
    if (tags === null || tags === undefined) return [];
    check(Array.isArray(tags) && tags.every((t) => typeof t === 'string'), res, 'tags is not a list of strings');
    return tags as string[];
  }
}

/** `OCI-Tag` values, split on commas (RFC 9110 list syntax) and trimmed. */
export function ociTags(res: RegistryResponse): string[] {
  return headerValues(res, 'OCI-Tag').flatMap((value) => value.split(',').map((s) => s.trim()));
}
