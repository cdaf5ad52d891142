/**
 * UpstreamRegistry against scripted loopback upstreams: what it sends (Accept, identity encoding,
 * User-Agent), what it makes of the answers (404 as undefined, digests, caps, tags pages), and
 * redirects that must not leak credentials to another host.
 */
import { describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import { mediaTypes } from '../src/oci/media-types.js';
import { maxTags, type Logger, type UpstreamBlob } from '../src/upstream/upstream-registry.js';
import {
  basicCredentials,
  sendBasicChallenge,
  sendBearerChallenge,
  sendBytes,
  sendJson,
  sendManifest,
  sendRedirect,
  sendToken,
  sha256,
  type ScriptedRegistry,
} from './support/scripted-registry.js';
import { upstreamHarness } from './support/upstream-harness.js';

const accept = [mediaTypes.ociManifest, mediaTypes.ociIndex, mediaTypes.dockerManifest];
const manifestBytes = Buffer.from(
  JSON.stringify({ schemaVersion: 2, mediaType: mediaTypes.ociManifest, config: {}, layers: [] }),
);
const manifestDigest = sha256(manifestBytes) as Digest;
const blobBytes = Buffer.from('a layer, as far as anyone can tell');
const blobDigest = sha256(blobBytes) as Digest;

const { serve, connect } = upstreamHarness();

async function readAll(blob: UpstreamBlob | undefined): Promise<Buffer> {
  if (blob === undefined) throw new Error('expected a blob, got undefined (a 404)');
  const chunks: Uint8Array[] = [];
  for await (const chunk of blob.body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe('requests', () => {
  it('sends the Accept list, identity encoding and a User-Agent, and reports the manifest as served', async () => {
    const server = await serve({
      '/v2/library/alpine/manifests/3': (_req, res) => sendManifest(res, manifestBytes, mediaTypes.ociManifest),
    });
    const upstream = connect(server);
    const head = await upstream.headManifest('library/alpine', '3', accept);
    const got = await upstream.getManifest('library/alpine', '3', accept);
    expect(head).toEqual({ mediaType: mediaTypes.ociManifest, digest: manifestDigest, size: manifestBytes.length });
    expect(got).toEqual({ ...head, bytes: manifestBytes });
    expect(server.requests.map((r) => r.method)).toEqual(['HEAD', 'GET']);
    for (const request of server.requests) {
      expect(request.headers['accept']).toBe(accept.join(', '));
      expect(request.headers['accept-encoding']).toBe('identity');
      expect(request.headers['user-agent']).toBe('wharf/0.1');
    }
  });

  it('answers undefined for 404 on every operation', async () => {
    // A script without handlers answers 404 NAME_UNKNOWN to every path.
    const empty = await serve({});
    const missing = connect(empty);
    expect(await missing.headManifest('a/b', 'latest', accept)).toBeUndefined();
    expect(await missing.getManifest('a/b', manifestDigest, accept)).toBeUndefined();
    expect(await missing.getBlob('a/b', blobDigest)).toBeUndefined();
    expect(await missing.listTags('a/b')).toBeUndefined();
    expect(empty.requests).toHaveLength(4);
    // Each 404 body was consumed, so connections were reused. (undici waits one event-loop turn before
    // reusing a socket, so a request sent right after another may open a second one; never a third.)
    expect(empty.connections()).toBeLessThanOrEqual(2);
  });

  it('falls back to GET when a HEAD answer lacks Docker-Content-Digest', async () => {
    const server = await serve({
      '/v2/a/b/manifests/v1': (_req, res) => sendManifest(res, manifestBytes, mediaTypes.ociManifest, null),
    });
    const info = await connect(server).headManifest('a/b', 'v1', accept);
    expect(info?.digest).toBe(manifestDigest);
    expect(server.requests.map((r) => r.method)).toEqual(['HEAD', 'GET']);
  });

  it('uses the sha256 of the bytes when Docker-Content-Digest does not match them (by tag)', async () => {
    const wrong = sha256('something else');
    const server = await serve({
      '/v2/a/b/manifests/v1': (_req, res) => sendManifest(res, manifestBytes, 'application/json', wrong),
    });
    const got = await connect(server).getManifest('a/b', 'v1', accept);
    expect(got?.digest).toBe(manifestDigest);
    // A generic Content-Type gives way to the manifest's own mediaType field.
    expect(got?.mediaType).toBe(mediaTypes.ociManifest);
  });

  it('refuses a manifest fetched by digest whose bytes hash to something else', async () => {
    const server = await serve({
      [`/v2/a/b/manifests/${manifestDigest}`]: (_req, res) =>
        sendManifest(res, Buffer.from('{"tampered":1}'), mediaTypes.ociManifest),
    });
    const error = await connect(server)
      .getManifest('a/b', manifestDigest, accept)
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'UNAVAILABLE', status: 502, cause: { code: 'DIGEST_INVALID' } });
  });

  it('refuses a manifest over 4 MiB, announced or streamed without a length', async () => {
    const big = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
    const server = await serve({
      '/v2/a/b/manifests/announced': (_req, res) => sendManifest(res, big, mediaTypes.ociManifest),
      '/v2/a/b/manifests/chunked': (_req, res) => {
        res.writeHead(200, { 'Content-Type': mediaTypes.ociManifest });
        res.end(big);
      },
    });
    const upstream = connect(server);
    await expect(upstream.getManifest('a/b', 'announced', accept)).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      status: 502,
    });
    await expect(upstream.getManifest('a/b', 'chunked', accept)).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      status: 502,
    });
  });

  it('follows Link pagination of tags/list', async () => {
    const server = await serve({
      '/v2/a/b/tags/list': (req, res) => {
        const last = new URL(req.url ?? '', 'http://x').searchParams.get('last');
        if (last === null)
          sendJson(res, 200, { name: 'a/b', tags: ['1', '2'] }, { Link: '</v2/a/b/tags/list?last=2&n=2>; rel="next"' });
        else if (last === '2')
          sendJson(res, 200, { name: 'a/b', tags: ['3', '4'] }, { Link: `</v2/a/b/tags/list?last=4&n=2>; rel="next"` });
        else sendJson(res, 200, { name: 'a/b', tags: ['5'] });
      },
    });
    expect(await connect(server).listTags('a/b')).toEqual(['1', '2', '3', '4', '5']);
    expect(server.requests.map((r) => r.url)).toEqual([
      '/v2/a/b/tags/list',
      '/v2/a/b/tags/list?last=2&n=2',
      '/v2/a/b/tags/list?last=4&n=2',
    ]);
  });
});

describe('redirects', () => {
  const credentials = { username: 'user', password: 'secret' };

  async function registryRedirectingTo(target: (self: string) => string): Promise<ScriptedRegistry> {
    return serve((req, res, ctx) => {
      if (basicCredentials(req) !== 'user:secret') return sendBasicChallenge(res);
      if (ctx.request.path === `/v2/a/b/blobs/${blobDigest}`) return sendRedirect(res, target(ctx.url));
      if (ctx.request.path === '/storage/blob') return sendBytes(res, blobBytes);
      sendJson(res, 404, { errors: [{ code: 'BLOB_UNKNOWN' }] });
    });
  }

  it('follows a 307 to another host without Authorization, and never caches the signed URL', async () => {
    const cdn = await serve({ '/cdn/blob': (_req, res) => sendBytes(res, blobBytes) });
    const registry = await registryRedirectingTo(() => `${cdn.url}/cdn/blob?sig=signed-secret`);
    const upstream = connect(registry, credentials);
    for (let i = 0; i < 2; i++) {
      const blob = await upstream.getBlob('a/b', blobDigest);
      expect(blob?.size).toBe(blobBytes.length);
      expect(await readAll(blob)).toEqual(blobBytes);
    }
    // Regression guard for credential leaks: the CDN records exactly what it got.
    expect(cdn.requests).toHaveLength(2);
    for (const request of cdn.requests) {
      expect(request.headers['authorization']).toBeUndefined();
      expect(request.headers['cookie']).toBeUndefined();
      expect(request.headers['accept-encoding']).toBe('identity');
      expect(request.url).toBe('/cdn/blob?sig=signed-secret');
    }
    // Every blob fetch asked the registry again (the second one authenticated up front).
    expect(
      registry.requestsTo(`/v2/a/b/blobs/${blobDigest}`).map((r) => r.headers.authorization !== undefined),
    ).toEqual([false, true, true]);
  });

  // Round 7a (docs/mutation-testing.md): a redirect logged with its query (a signed URL's signature) passed.
  it("logs a redirect by origin and path: a signed URL's query stays out of the log", async () => {
    const cdn = await serve({ '/cdn/blob': (_req, res) => sendBytes(res, blobBytes) });
    const registry = await registryRedirectingTo(() => `${cdn.url}/cdn/blob?sig=signed-secret-7a`);
    const records: unknown[] = [];
    const record = (obj: object, msg?: string): void => void records.push({ obj, msg });
    const logger: Logger = { debug: record, info: record, warn: record, error: record };
    const blob = await connect(registry, credentials, { logger }).getBlob('a/b', blobDigest);
    expect(await readAll(blob)).toEqual(blobBytes);
    const text = JSON.stringify(records);
    expect(text).toContain(`${cdn.url}/cdn/blob`);
    expect(text).not.toContain('signed-secret-7a');
  });

  it('keeps Authorization on a redirect within the registry origin', async () => {
    const registry = await registryRedirectingTo((self) => `${self}/storage/blob`);
    const blob = await connect(registry, credentials).getBlob('a/b', blobDigest);
    expect(await readAll(blob)).toEqual(blobBytes);
    expect(registry.requestsTo('/storage/blob').map((r) => r.headers.authorization)).toEqual([
      `Basic ${Buffer.from('user:secret').toString('base64')}`,
    ]);
  });

  // A CDN is not the registry: its challenge must not send wharf, with the registry's credentials, to a realm it names.
  it("answers a CDN's 401 with DENIED, and never takes its challenge: its realm gets no request", async () => {
    const cdn = await serve({
      '/cdn/blob': (_req, res, ctx) => sendBearerChallenge(res, { realm: `${ctx.url}/token`, service: 'cdn' }),
      '/token': (_req, res) => sendToken(res, 'cdn-token'),
    });
    const registry = await serve({
      [`/v2/a/b/blobs/${blobDigest}`]: (_req, res) => sendRedirect(res, `${cdn.url}/cdn/blob`),
    });
    const upstream = connect(registry, credentials);
    await expect(upstream.getBlob('a/b', blobDigest)).rejects.toMatchObject({ code: 'DENIED', status: 403 });
    expect(cdn.requests.map((r) => [r.path, r.headers.authorization])).toEqual([['/cdn/blob', undefined]]);
    // Nor does the CDN's challenge stay behind for the registry's next request.
    await expect(upstream.getBlob('a/b', blobDigest)).rejects.toMatchObject({ code: 'DENIED' });
    expect(cdn.requestsTo('/token')).toHaveLength(0);
    expect(registry.requests.map((r) => r.headers.authorization)).toEqual([undefined, undefined]);
  });

  it('gives up after 5 redirects with UNAVAILABLE', async () => {
    let hops = 0;
    const server = await serve((_req, res, ctx) => sendRedirect(res, `${ctx.url}/hop/${++hops}`, 302));
    await expect(connect(server).getBlob('a/b', blobDigest)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(server.requests).toHaveLength(6);
  });

  // Issue 8, finding 7: a listing of 100 pages of tiny names would have been kept whole.
  it('keeps at most maxTags tags of an endless listing, and stops asking for pages', async () => {
    const page = Array.from({ length: 60_000 }, (_, i) => `t${i}`);
    const server = await serve({
      '/v2/a/b/tags/list': (_req, res) =>
        sendJson(res, 200, { name: 'a/b', tags: page }, { Link: '</v2/a/b/tags/list?last=x>; rel="next"' }),
    });
    const tags = await connect(server).listTags('a/b');
    expect(tags).toHaveLength(maxTags);
    expect(server.requests).toHaveLength(Math.ceil(maxTags / page.length));
  });
});
