import { describe, expect, it } from 'vitest';
import { digestOf, type Digest } from '../oci/digest.js';
import { isOciError } from '../oci/errors.js';
import type { Tag } from '../oci/reference.js';
import type { Logger } from './logger.js';
import { manifestFromBody, manifestInfoFromHeaders } from './manifest-response.js';

const ociManifest = 'application/vnd.oci.image.manifest.v1+json';
const bytes = Buffer.from(`{"schemaVersion":2,"mediaType":"${ociManifest}","layers":[]}\n`);
const sha256 = digestOf(bytes);
const sha512 = digestOf(bytes, 'sha512');
const other = digestOf(Buffer.from('other'));
const byTag = { kind: 'tag' as const, tag: 'v1' as Tag };
const byDigest = (digest: Digest) => ({ kind: 'digest' as const, digest });

function recordingLogger(): { logger: Logger; warnings: string[]; fields: unknown[] } {
  const warnings: string[] = [];
  const fields: unknown[] = [];
  const ignore = (): void => undefined;
  const warn = (object: unknown, message?: string): void => {
    fields.push(object);
    warnings.push(message ?? '');
  };
  return { logger: { debug: ignore, info: ignore, warn, error: ignore }, warnings, fields };
}

describe('manifestFromBody', () => {
  it('by digest: returns the bytes untouched when they hash to it, in sha256 or sha512', () => {
    const { logger } = recordingLogger();
    const got = manifestFromBody(bytes, { 'content-type': ociManifest }, byDigest(sha256), 'up.test', logger);
    expect(got).toEqual({ mediaType: ociManifest, digest: sha256, size: bytes.byteLength, bytes });
    expect(got.bytes).toBe(bytes);
    expect(manifestFromBody(bytes, {}, byDigest(sha512), 'up.test', logger).digest).toBe(sha512);
  });

  it('by digest: wrong bytes are a 502 UNAVAILABLE whose cause is DIGEST_INVALID', () => {
    const { logger } = recordingLogger();
    let caught: unknown;
    try {
      manifestFromBody(bytes, {}, byDigest(other), 'up.test', logger);
    } catch (error) {
      caught = error;
    }
    if (!isOciError(caught)) throw new Error('expected an OciError');
    expect([caught.code, caught.status]).toEqual(['UNAVAILABLE', 502]);
    expect(caught.detail).toEqual({ upstream: 'up.test', expected: other, actual: sha256 });
    expect(caught.message).toBe(`upstream up.test served a manifest that does not match ${other}`);
    if (!isOciError(caught.cause)) throw new Error('expected an OciError cause');
    expect([caught.cause.code, caught.cause.message]).toEqual(['DIGEST_INVALID', `manifest bytes hash to ${sha256}`]);
    expect(caught.cause.detail).toEqual({ upstream: 'up.test', expected: other, actual: sha256 });
  });

  // Round 7a (docs/mutation-testing.md): a shortcut that took a matching header for the bytes' hash passed.
  it('by digest: a Docker-Content-Digest naming the digest asked for does not vouch for other bytes', () => {
    const { logger } = recordingLogger();
    // The header is the upstream's word; only the hash of the bytes counts.
    const headers = { 'content-type': ociManifest, 'docker-content-digest': other };
    expect(() => manifestFromBody(bytes, headers, byDigest(other), 'up.test', logger)).toThrow(
      `upstream up.test served a manifest that does not match ${other}`,
    );
  });

  it('by tag: reports Docker-Content-Digest when the bytes match it, else their sha256 with a warning', () => {
    const { logger, warnings, fields } = recordingLogger();
    expect(manifestFromBody(bytes, { 'docker-content-digest': sha512 }, byTag, 'up.test', logger).digest).toBe(sha512);
    expect(manifestFromBody(bytes, { 'docker-content-digest': sha256 }, byTag, 'up.test', logger).digest).toBe(sha256);
    expect(warnings).toEqual([]);
    expect(manifestFromBody(bytes, { 'docker-content-digest': other }, byTag, 'up.test', logger).digest).toBe(sha256);
    expect(warnings).toEqual(['upstream Docker-Content-Digest does not match the manifest bytes: using their sha256']);
    expect(fields).toEqual([{ upstream: 'up.test', tag: 'v1', announced: other }]);
    expect(manifestFromBody(bytes, { 'docker-content-digest': 'garbage' }, byTag, 'up.test', logger).digest).toBe(
      sha256,
    );
    expect(manifestFromBody(bytes, {}, byTag, 'up.test', logger).digest).toBe(sha256);
    expect(warnings).toHaveLength(1);
  });

  it('takes the media type from a manifest Content-Type, else the body, else whatever the header says', () => {
    const { logger } = recordingLogger();
    const docker = 'application/vnd.docker.distribution.manifest.v2+json';
    const typeOf = (headers: Record<string, string>, body = bytes) =>
      manifestFromBody(body, headers, byTag, 'up.test', logger).mediaType;
    expect(typeOf({ 'content-type': `${docker}; charset=utf-8` })).toBe(docker);
    expect(typeOf({ 'content-type': 'application/json' })).toBe(ociManifest);
    expect(typeOf({})).toBe(ociManifest);
    expect(typeOf({ 'content-type': 'application/json' }, Buffer.from('{"schemaVersion":2}'))).toBe('application/json');
    expect(typeOf({ 'content-type': 'text/plain' }, Buffer.from('{"mediaType":""}'))).toBe('text/plain');
    expect(typeOf({}, Buffer.from('not json'))).toBe('application/octet-stream');
    expect(typeOf({}, Buffer.from('{"mediaType":42}'))).toBe('application/octet-stream');
  });
});

describe('manifestInfoFromHeaders', () => {
  const headers = { 'content-type': ociManifest, 'content-length': '42', 'docker-content-digest': sha256 };

  it('reads type, length and digest; by digest the digest asked for wins', () => {
    expect(manifestInfoFromHeaders(headers, byTag)).toEqual({ mediaType: ociManifest, digest: sha256, size: 42 });
    expect(manifestInfoFromHeaders(headers, byDigest(other))).toEqual({
      mediaType: ociManifest,
      digest: other,
      size: 42,
    });
  });

  it('is undefined when any of the three is missing or malformed', () => {
    const without = (name: string) => Object.fromEntries(Object.entries(headers).filter(([key]) => key !== name));
    expect(manifestInfoFromHeaders(without('content-type'), byTag)).toBeUndefined();
    expect(manifestInfoFromHeaders(without('content-length'), byTag)).toBeUndefined();
    expect(manifestInfoFromHeaders(without('docker-content-digest'), byTag)).toBeUndefined();
    expect(manifestInfoFromHeaders({ ...headers, 'docker-content-digest': 'sha256:xyz' }, byTag)).toBeUndefined();
    expect(manifestInfoFromHeaders({ ...headers, 'content-length': '-1' }, byTag)).toBeUndefined();
    expect(manifestInfoFromHeaders(without('docker-content-digest'), byDigest(other))).toEqual({
      mediaType: ociManifest,
      digest: other,
      size: 42,
    });
  });
});
