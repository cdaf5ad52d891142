/**
 * Every upstream answer is data, and every resource is bounded (issue 8): the caps on what wharf
 * reads from an upstream, at their edges. A manifest of exactly 4 MiB is taken; a token answer over
 * 1 MiB, a tags page over 4 MiB, more than 100 pages, and an error body that never ends are not
 * read whole; a Link to another origin (the same address, another port) is not followed.
 * Round 5 of the hand-planted audit (docs/mutation-testing.md).
 */
import { describe, expect, it } from 'vitest';
import { maxManifestBytes } from '../src/oci/manifest.js';
import { mediaTypes } from '../src/oci/media-types.js';
import { RegistryClient } from '../src/upstream/registry-client.js';
import { getManifest } from '../src/upstream/registry-reads.js';
import { maxTagPages } from '../src/upstream/upstream-registry.js';
import { withDeadline } from './support/run.js';
import { sendBearerChallenge, sendBytes, sendJson, sendManifest, sha256 } from './support/scripted-registry.js';
import { upstreamHarness } from './support/upstream-harness.js';

const accept = [mediaTypes.ociManifest];
const { serve, connect, defer } = upstreamHarness();

/** A valid manifest padded with trailing spaces (still JSON) to exactly `size` bytes. */
function manifestOfSize(size: number): Buffer {
  const head = JSON.stringify({
    schemaVersion: 2,
    mediaType: mediaTypes.ociManifest,
    config: { mediaType: mediaTypes.ociConfig, digest: sha256('{}'), size: 2 },
    layers: [],
  });
  return Buffer.concat([Buffer.from(head), Buffer.alloc(size - head.length, 0x20)]);
}

describe('manifest size', () => {
  it('takes a manifest of exactly 4 MiB with its Content-Length, and refuses one byte more', async () => {
    const exact = manifestOfSize(maxManifestBytes);
    const over = manifestOfSize(maxManifestBytes + 1);
    const server = await serve({
      '/v2/a/b/manifests/exact': (_req, res) => sendManifest(res, exact, mediaTypes.ociManifest),
      '/v2/a/b/manifests/over': (_req, res) => sendManifest(res, over, mediaTypes.ociManifest),
    });
    const upstream = connect(server);
    const got = await upstream.getManifest('a/b', 'exact', accept);
    expect(got?.size).toBe(maxManifestBytes);
    expect(got?.digest).toBe(sha256(exact));
    expect(Buffer.from(got?.bytes ?? []).equals(exact)).toBe(true);
    await expect(upstream.getManifest('a/b', 'over', accept)).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      status: 502,
      message: `upstream ${server.host}: GET manifest a/b:over is larger than ${maxManifestBytes} bytes`,
    });
  });
});

describe('token answers', () => {
  it('refuses a token answer over 1 MiB with 502 naming the cap', async () => {
    const padding = 'x'.repeat(1024 * 1024);
    const server = await serve({
      '/token': (_req, res) => sendJson(res, 200, { token: 'tok', padding }),
      '/v2/a/b/manifests/v1': (req, res, ctx) => {
        if (req.headers.authorization === undefined) return sendBearerChallenge(res, { realm: `${ctx.url}/token` });
        sendManifest(res, manifestOfSize(200), mediaTypes.ociManifest);
      },
    });
    const error = await connect(server)
      .getManifest('a/b', 'v1', accept)
      .catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'UNAVAILABLE',
      status: 502,
      message: `token service ${server.url}/token: answer larger than ${1024 * 1024} bytes`,
    });
    // The manifest was asked for once, anonymously: no token, no second try.
    expect(server.requestsTo('/v2/a/b/manifests/v1').map((r) => r.headers.authorization)).toEqual([undefined]);
  });
});

describe('tags listings', () => {
  it(`asks for at most ${maxTagPages} pages of an endless listing, and keeps what they held`, async () => {
    const server = await serve({
      '/v2/a/b/tags/list': (_req, res, ctx) =>
        sendJson(
          res,
          200,
          { name: 'a/b', tags: [`t${ctx.count}`] },
          { Link: `</v2/a/b/tags/list?last=t${ctx.count}>; rel="next"` },
        ),
    });
    const tags = await connect(server).listTags('a/b');
    expect(maxTagPages).toBe(100);
    expect(server.requests).toHaveLength(100);
    expect(tags).toEqual(Array.from({ length: 100 }, (_, i) => `t${i + 1}`));
  });

  it('refuses a tags page over 4 MiB with 502, announced or streamed without a length', async () => {
    // 70 000 tags of 60 characters: about 4.4 MB of JSON.
    const tags = Array.from({ length: 70_000 }, (_, i) => `${'t'.repeat(54)}${String(i).padStart(6, '0')}`);
    const body = JSON.stringify({ name: 'a/b', tags });
    expect(body.length).toBeGreaterThan(4 * 1024 * 1024);
    const server = await serve({
      '/v2/a/b/tags/list': (_req, res) => sendBytes(res, body, { 'Content-Type': 'application/json' }),
      '/v2/c/d/tags/list': (_req, res) => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(body);
      },
    });
    const upstream = connect(server);
    for (const repo of ['a/b', 'c/d']) {
      await expect(upstream.listTags(repo)).rejects.toMatchObject({
        code: 'UNAVAILABLE',
        status: 502,
        message: `upstream ${server.host}: a tags page over ${4 * 1024 * 1024} bytes`,
      });
    }
  });

  it('does not follow a Link to another origin, even on the same address', async () => {
    const elsewhere = await serve((_req, res) => sendJson(res, 200, { name: 'a/b', tags: ['stolen'] }));
    const server = await serve({
      '/v2/a/b/tags/list': (_req, res) =>
        sendJson(
          res,
          200,
          { name: 'a/b', tags: ['1', '2'] },
          { Link: `<${elsewhere.url}/v2/a/b/tags/list?last=2>; rel="next"` },
        ),
    });
    expect(await connect(server).listTags('a/b')).toEqual(['1', '2']);
    expect(elsewhere.requests).toHaveLength(0);
  });
});

describe('error bodies', () => {
  it('reads a prefix of an error body that never ends, and answers without waiting for its end', async () => {
    let closed = false;
    const server = await serve((_req, res) => {
      res.writeHead(500, { 'Content-Type': 'text/plain' });
      const chunk = Buffer.alloc(16 * 1024, 0x61);
      // Writes for as long as the client reads; stops when it lets go of the connection.
      const pump = (): void => {
        while (!closed && res.write(chunk));
        if (!closed) res.once('drain', pump);
      };
      res.on('close', () => (closed = true));
      pump();
    });
    // An idle timeout far past the deadline: only reading a prefix can answer in time.
    const upstream = connect(server, { timeouts: { bodyIdleMs: 600_000 } });
    const error = await withDeadline(
      upstream.getManifest('a/b', 'v1', accept).catch((e: unknown) => e),
      20_000,
      'the error answer',
    );
    expect(error).toMatchObject({ code: 'UNAVAILABLE', status: 503 });
  });
});

describe("the client commands' reads", () => {
  it('take a manifest of exactly 4 MiB and refuse one byte more, announced or streamed', async () => {
    const exact = manifestOfSize(maxManifestBytes);
    const over = manifestOfSize(maxManifestBytes + 1);
    const server = await serve({
      '/v2/a/b/manifests/exact': (_req, res) => sendManifest(res, exact, mediaTypes.ociManifest),
      '/v2/a/b/manifests/over': (_req, res) => sendManifest(res, over, mediaTypes.ociManifest),
      '/v2/a/b/manifests/chunked': (_req, res) => {
        res.writeHead(200, { 'Content-Type': mediaTypes.ociManifest });
        res.end(over);
      },
    });
    const client = new RegistryClient({
      host: server.host,
      url: server.url,
      env: { DOCKER_CONFIG: '/nonexistent/wharf-test-docker-config' },
    });
    defer(() => client.close());
    expect((await getManifest(client, 'a/b', 'exact'))?.size).toBe(maxManifestBytes);
    for (const reference of ['over', 'chunked']) {
      await expect(getManifest(client, 'a/b', reference)).rejects.toMatchObject({
        code: 'MANIFEST_INVALID',
        message: `${server.host}: GET manifest a/b:${reference} is larger than ${maxManifestBytes} bytes`,
      });
    }
  });
});
