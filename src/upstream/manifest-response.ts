/**
 * @module upstream/manifest-response
 * What an upstream manifest answer says about itself: media type, digest and size, from the
 * headers (HEAD) or from the bytes (GET). The bytes are never converted or re-serialised.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { digestAlgorithm, digestOf, parseDigest, type Digest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import { manifestKindOf, mediaTypes, stripMediaTypeParameters } from '../oci/media-types.js';
import type { Reference } from '../oci/reference.js';
import type { Logger } from './logger.js';
import { contentLength, headerValue } from './upstream-http.js';

export interface UpstreamManifestInfo {
  mediaType: string;
  digest: Digest;
  size: number;
}

export interface UpstreamManifest extends UpstreamManifestInfo {
  bytes: Buffer;
}

function bodyMediaType(bytes: Buffer): string | undefined {
  try {
    const parsed = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown };
    return typeof parsed.mediaType === 'string' && parsed.mediaType !== '' ? parsed.mediaType : undefined;
  } catch {
    // Not JSON: the body says nothing about its type.
  }
  return undefined;
}

/** From a HEAD answer; undefined when it lacks the digest, length or type (docker and containerd then GET). */
export function manifestInfoFromHeaders(
  headers: IncomingHttpHeaders,
  requested: Reference,
): UpstreamManifestInfo | undefined {
  const mediaType = stripMediaTypeParameters(headerValue(headers, 'content-type'));
  const size = contentLength(headers);
  // Asked by digest, the digest is known; the header cannot improve on it.
  const digest =
    // Stryker disable next-line StringLiteral: parseDigest refuses any string that is not a digest, '' or not.
    requested.kind === 'digest' ? requested.digest : parseDigest(headerValue(headers, 'docker-content-digest') ?? '');
  if (mediaType === undefined || size === undefined || digest === undefined) return undefined;
  return { mediaType, digest, size };
}

/**
 * From a GET answer. By digest, the bytes must hash to it; by tag, Docker-Content-Digest is
 * reported when the bytes match it (it may use sha512), else the sha256 of the bytes.
 */
export function manifestFromBody(
  bytes: Buffer,
  headers: IncomingHttpHeaders,
  requested: Reference,
  host: string,
  logger: Logger,
): UpstreamManifest {
  const header = stripMediaTypeParameters(headerValue(headers, 'content-type'));
  // A registry may label a manifest application/json or leave the type out; its own mediaType field then says.
  const mediaType =
    // Stryker disable next-line ConditionalExpression: manifestKindOf(undefined) is undefined too; the first test is for the type checker.
    (header !== undefined && manifestKindOf(header) !== undefined ? header : undefined) ??
    bodyMediaType(bytes) ??
    header ??
    mediaTypes.octetStream;
  const result = (digest: Digest): UpstreamManifest => ({ mediaType, digest, size: bytes.byteLength, bytes });

  if (requested.kind === 'digest') {
    const actual = digestOf(bytes, digestAlgorithm(requested.digest));
    if (actual === requested.digest) return result(actual);
    const detail = { upstream: host, expected: requested.digest, actual };
    // UNAVAILABLE (here 502), not DIGEST_INVALID: DIGEST_INVALID is a 400 telling a client that its
    // own upload did not match. This client asked correctly and the upstream served wrong bytes, a
    // bad gateway. The DIGEST_INVALID cause keeps the precise reason for logs and for the proxy.
    throw new OciError('UNAVAILABLE', `upstream ${host} served a manifest that does not match ${requested.digest}`, {
      status: 502,
      detail,
      cause: new OciError('DIGEST_INVALID', `manifest bytes hash to ${actual}`, { detail }),
    });
  }
  // Stryker disable next-line StringLiteral: parseDigest refuses any string that is not a digest, '' or not.
  const announced = parseDigest(headerValue(headers, 'docker-content-digest') ?? '');
  if (announced !== undefined) {
    if (digestOf(bytes, digestAlgorithm(announced)) === announced) return result(announced);
    logger.warn(
      { upstream: host, tag: requested.tag, announced },
      'upstream Docker-Content-Digest does not match the manifest bytes: using their sha256',
    );
  }
  return result(digestOf(bytes));
}
