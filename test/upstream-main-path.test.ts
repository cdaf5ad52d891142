/**
 * The upstream client's main path where round 13b's plants survived (docs/mutation-testing.md):
 * the token scope of an upstream with a path prefix, which of a token answer's two fields is used,
 * each timeout applied to its own phase, and a 429 that comes without Retry-After.
 */
import { describe, expect, it } from 'vitest';
import { mediaTypes } from '../src/oci/media-types.js';
import {
  sendBearerChallenge,
  sendError,
  sendJson,
  sendManifest,
  stallBeforeHeaders,
  stallMidBody,
  sha256,
} from './support/scripted-registry.js';
import { upstreamHarness } from './support/upstream-harness.js';
import type { Digest } from '../src/oci/digest.js';
import type { UpstreamBlob } from '../src/upstream/upstream-registry.js';

const accept = [mediaTypes.ociManifest];
const manifestBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: mediaTypes.ociManifest }));

const { serve, connect } = upstreamHarness();

/** The error a promise rejects with, or a failure naming the deadline when it is still pending after `ms`. */
async function rejection(promise: Promise<unknown>, ms = 20_000): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), ms)));
  try {
    const outcome = await Promise.race([
      promise.then(
        () => ({ error: new Error('expected a rejection') }),
        (error: unknown) => ({ error }),
      ),
      deadline,
    ]);
    if (outcome === 'late') throw new Error(`still waiting after ${ms} ms`);
    return outcome.error;
  } finally {
    clearTimeout(timer);
  }
}

async function drain(blob: UpstreamBlob | undefined): Promise<number> {
  if (blob === undefined) throw new Error('expected a blob, got undefined (a 404)');
  let size = 0;
  for await (const chunk of blob.body) size += chunk.byteLength;
  return size;
}

describe('tokens', () => {
  it('asks for a token scoped to the name on the upstream, path prefix included', async () => {
    const manifestPath = '/v2/docker.io/library/alpine/manifests/latest';
    const server = await serve({
      '/token': (_req, res) => sendJson(res, 200, { token: 'tok', expires_in: 300 }),
      [manifestPath]: (req, res, ctx) =>
        req.headers.authorization === 'Bearer tok'
          ? sendManifest(res, manifestBytes, mediaTypes.ociManifest)
          : sendBearerChallenge(res, { realm: `${ctx.url}/token`, service: 'tier' }),
    });
    // Another wharf as upstream (ADR 0009): its names carry the registry host as a prefix.
    const upstream = connect(server, { url: `${server.url}/docker.io` });
    expect((await upstream.getManifest('library/alpine', 'latest', accept))?.bytes).toEqual(manifestBytes);
    const scopes = server.requestsTo('/token').map((r) => r.query.getAll('scope'));
    expect(scopes).toEqual([['repository:docker.io/library/alpine:pull']]);
  });

  it('uses access_token when the answer holds both it and token (as docker does)', async () => {
    const manifestPath = '/v2/a/b/manifests/latest';
    const server = await serve({
      '/token': (_req, res) => sendJson(res, 200, { token: 'legacy', access_token: 'oauth', expires_in: 300 }),
      [manifestPath]: (req, res, ctx) =>
        req.headers.authorization === 'Bearer oauth'
          ? sendManifest(res, manifestBytes, mediaTypes.ociManifest)
          : sendBearerChallenge(res, { realm: `${ctx.url}/token`, service: 'scripted' }),
    });
    const upstream = connect(server);
    expect((await upstream.getManifest('a/b', 'latest', accept))?.bytes).toEqual(manifestBytes);
    expect(server.requestsTo(manifestPath).map((r) => r.headers.authorization)).toEqual([undefined, 'Bearer oauth']);
  });
});

describe('timeouts, each on its own phase', () => {
  const blobBytes = Buffer.alloc(64 * 1024, 0x62);
  const blobDigest = sha256(blobBytes) as Digest;
  const blobPath = `/v2/a/b/blobs/${blobDigest}`;

  it('headersMs bounds the wait for headers, whatever bodyIdleMs says', async () => {
    const server = await serve({ '/v2/a/b/manifests/latest': (_req, res) => stallBeforeHeaders(res) });
    const upstream = connect(server, { timeouts: { headersMs: 300, bodyIdleMs: 10 * 60_000 } });
    const error = await rejection(upstream.getManifest('a/b', 'latest', accept));
    expect(error).toMatchObject({ code: 'UNAVAILABLE', cause: { code: 'UND_ERR_HEADERS_TIMEOUT' } });
  });

  it('bodyIdleMs bounds a silence in the body, whatever headersMs says', async () => {
    const server = await serve({ [blobPath]: (_req, res) => stallMidBody(res, blobBytes, 1024) });
    const upstream = connect(server, { timeouts: { headersMs: 10 * 60_000, bodyIdleMs: 300 } });
    const blob = await upstream.getBlob('a/b', blobDigest);
    const error = await rejection(drain(blob));
    expect(error).toMatchObject({ code: 'UNAVAILABLE', cause: { code: 'UND_ERR_BODY_TIMEOUT' } });
  });
});

describe('rate limits', () => {
  it('a 429 without Retry-After is still TOOMANYREQUESTS 429, with no Retry-After made up', async () => {
    const server = await serve({
      '/v2/a/b/manifests/latest': (_req, res) => sendError(res, 429, 'TOOMANYREQUESTS', 'slow down'),
    });
    const error = await rejection(connect(server).getManifest('a/b', 'latest', accept));
    expect(error).toMatchObject({ code: 'TOOMANYREQUESTS', status: 429 });
    expect((error as { headers?: Record<string, string> }).headers).toEqual({});
  });
});
