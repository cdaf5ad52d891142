/**
 * Upstream faults become OciErrors with stable codes, and never hangs: rate limits, server errors,
 * an upstream that stalls before its headers or in the middle of a body, a reset mid-body, a broken
 * token service, a refused connection.
 */
import { describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import { isOciError } from '../src/oci/errors.js';
import { mediaTypes } from '../src/oci/media-types.js';
import { type UpstreamBlob } from '../src/upstream/upstream-registry.js';
import {
  sendBearerChallenge,
  sendServerError,
  sendTooManyRequests,
  resetMidBody,
  sha256,
  stallBeforeHeaders,
  stallMidBody,
  startScriptedRegistry,
  type Script,
  type ScriptedRegistry,
} from './support/scripted-registry.js';
import { upstreamHarness } from './support/upstream-harness.js';

const accept = [mediaTypes.ociManifest];
const blobBytes = Buffer.alloc(256 * 1024, 0x61);
const blobDigest = sha256(blobBytes) as Digest;
const blobPath = `/v2/a/b/blobs/${blobDigest}`;
const manifestPath = '/v2/a/b/manifests/latest';
/** Small, so a stall is detected quickly; the test deadlines below are many times larger. */
const fast = { connectMs: 1_000, headersMs: 300, bodyIdleMs: 300 };

const { serve, connect } = upstreamHarness({ timeouts: fast });

/** The error a promise rejects with, and how long that took. */
async function failure(promise: Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = Date.now();
  try {
    await promise;
  } catch (error) {
    return { error, ms: Date.now() - started };
  }
  throw new Error('expected a rejection');
}

async function drain(blob: UpstreamBlob | undefined): Promise<number> {
  if (blob === undefined) throw new Error('expected a blob, got undefined (a 404)');
  let size = 0;
  for await (const chunk of blob.body) size += chunk.byteLength;
  return size;
}

describe('upstream answers', () => {
  it('429 → TOOMANYREQUESTS carrying the upstream Retry-After', async () => {
    const server = await serve({ [manifestPath]: (_req, res) => sendTooManyRequests(res, '17') });
    const { error } = await failure(connect(server).getManifest('a/b', 'latest', accept));
    expect(error).toMatchObject({ code: 'TOOMANYREQUESTS', status: 429, headers: { 'Retry-After': '17' } });
  });

  it('500 and 503 → UNAVAILABLE 503 naming the upstream', async () => {
    const server = await serve({
      [manifestPath]: (_req, res) => sendServerError(res, 500),
      [blobPath]: (_req, res) => sendServerError(res, 503),
    });
    const upstream = connect(server);
    for (const attempt of [upstream.headManifest('a/b', 'latest', accept), upstream.getBlob('a/b', blobDigest)]) {
      const { error } = await failure(attempt);
      expect(error).toMatchObject({ code: 'UNAVAILABLE', status: 503 });
      expect((error as Error).message).toContain(server.host);
    }
  });

  it('a refused connection → UNAVAILABLE with the socket error as cause', async () => {
    const server = await startScriptedRegistry({});
    await server.close();
    const { error } = await failure(connect(server).getManifest('a/b', 'latest', accept));
    expect(error).toMatchObject({ code: 'UNAVAILABLE', status: 503, cause: { code: 'ECONNREFUSED' } });
  });
});

describe('stalls and resets', () => {
  it('an upstream silent before its headers → UNAVAILABLE within the headers timeout', async () => {
    const server = await serve({ [manifestPath]: (_req, res) => stallBeforeHeaders(res) });
    const { error, ms } = await failure(connect(server).getManifest('a/b', 'latest', accept));
    expect(error).toMatchObject({ code: 'UNAVAILABLE', cause: { code: 'UND_ERR_HEADERS_TIMEOUT' } });
    expect(ms).toBeLessThan(5_000);
  });

  it('a body that stops arriving → the iterator throws UNAVAILABLE within the idle timeout', async () => {
    const server = await serve({ [blobPath]: (_req, res) => stallMidBody(res, blobBytes, 1024) });
    const blob = await connect(server).getBlob('a/b', blobDigest);
    expect(blob?.size).toBe(blobBytes.length);
    const { error, ms } = await failure(drain(blob));
    expect(error).toMatchObject({ code: 'UNAVAILABLE', cause: { code: 'UND_ERR_BODY_TIMEOUT' } });
    expect(ms).toBeLessThan(5_000);
  });

  it('a connection reset mid-body → the iterator throws UNAVAILABLE, never a clean short end', async () => {
    const server = await serve({ [blobPath]: (_req, res) => resetMidBody(res, blobBytes, 64 * 1024) });
    const { error } = await failure(drain(await connect(server).getBlob('a/b', blobDigest)));
    expect(isOciError(error) && error.code).toBe('UNAVAILABLE');
    expect((error as Error).cause).toBeInstanceOf(Error);
  });

  it('cancel() releases a blob body that will not be read', async () => {
    const server = await serve({ [blobPath]: (_req, res) => stallMidBody(res, blobBytes, 1024) });
    const blob = await connect(server, { timeouts: { bodyIdleMs: 60_000 } }).getBlob('a/b', blobDigest);
    const started = Date.now();
    await blob?.cancel();
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});

describe('token service failures', () => {
  async function registryWithTokenService(token: Script): Promise<ScriptedRegistry> {
    const auth = await serve(token);
    return serve({
      [manifestPath]: (_req, res) => sendBearerChallenge(res, { realm: `${auth.url}/token`, service: 'scripted' }),
    });
  }

  it('a token service answering 500 → UNAVAILABLE 503 naming the realm', async () => {
    const server = await registryWithTokenService({ '/token': (_req, res) => sendServerError(res) });
    const { error } = await failure(connect(server).getManifest('a/b', 'latest', accept));
    expect(error).toMatchObject({ code: 'UNAVAILABLE', status: 503 });
    expect((error as Error).message).toMatch(/token service http:\/\/127\.0\.0\.1:\d+\/token/);
  });

  it('a token service that never answers → UNAVAILABLE, not a hang', async () => {
    const server = await registryWithTokenService({ '/token': (_req, res) => stallBeforeHeaders(res) });
    const { error, ms } = await failure(connect(server).getManifest('a/b', 'latest', accept));
    expect(error).toMatchObject({ code: 'UNAVAILABLE', cause: { cause: { code: 'UND_ERR_HEADERS_TIMEOUT' } } });
    expect(ms).toBeLessThan(5_000);
  });
});
