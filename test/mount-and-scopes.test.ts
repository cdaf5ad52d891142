/**
 * Cross-repository mounts and the token scopes they need (round 6 of the planted-bug audit,
 * docs/mutation-testing.md):
 * - serve mounts from the store name a `from=` resolves to: a mirrored repository named the short way
 *   (through the default upstream) is kept under its canonical name, and a mount that looked under the
 *   name as sent found nothing and fell back to an upload session;
 * - `wharf copy`'s mount asks the token service for both scopes as repeated `scope` parameters
 *   (distribution token.md), not as one parameter holding both.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import { requireRepoName } from '../src/oci/reference.js';
import { RegistryClient } from '../src/upstream/registry-client.js';
import { startUpload } from '../src/upstream/registry-writes.js';
import { call } from './support/http.js';
import { makeImage } from './support/make-image.js';
import { pushTestImage } from './support/push-image.js';
import { sendBearerChallenge, sendBytes, sendToken, startScriptedRegistry } from './support/scripted-registry.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function wharfFor(options: Parameters<typeof startWharf>[0] = {}): Promise<WharfHandle> {
  const handle = await startWharf(options);
  cleanups.push(() => handle.close());
  return handle;
}

describe('a mount from a mirrored repository named through the default upstream', () => {
  it('links the blob the mirror holds under the canonical name (201), not an upload session', async () => {
    const upstreamHost = 'upstream.example.test';
    const upstream = await wharfFor();
    const image = await makeImage({ seed: 'mount-and-scopes/mirrored', layers: 1 });
    await pushTestImage(upstream.url, 'proj/app', 'v1', image);
    const mirror = await wharfFor({
      upstreams: [{ host: upstreamHost, url: upstream.url, public: true }],
      defaultUpstream: upstreamHost,
      local: ['team/**'],
    });
    const layer = image.images[0]?.layers[0];
    if (layer === undefined) throw new Error('no layer');
    // Pulled the short way: the mirror keeps it under upstream.example.test/proj/app.
    const pulled = await call(mirror.url, `/v2/proj/app/blobs/${layer.digest}`);
    expect(pulled.status).toBe(200);
    await pulled.arrayBuffer();
    // The fill records its row and link just after the last byte went out: wait for them.
    const canonical = requireRepoName(`${upstreamHost}/proj/app`);
    const deadline = Date.now() + 10_000;
    while ((await mirror.server.store.statBlob(canonical, layer.digest as Digest)) === undefined) {
      if (Date.now() > deadline) throw new Error('the fill was not recorded within 10 s');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }

    const mounted = await call(mirror.url, `/v2/team/app/blobs/uploads/?mount=${layer.digest}&from=proj/app`, {
      method: 'POST',
    });
    await mounted.arrayBuffer();
    expect(mounted.status).toBe(201);
    expect(mounted.headers.get('location')).toBe(`/v2/team/app/blobs/${layer.digest}`);
    expect((await call(mirror.url, `/v2/team/app/blobs/${layer.digest}`, { method: 'HEAD' })).status).toBe(200);
  });
});

describe("wharf copy's mount", () => {
  it('asks the token service for the target push scope and the source pull scope as two scope parameters', async () => {
    const digest = `sha256:${'c'.repeat(64)}` as Digest;
    const registry = await startScriptedRegistry((req, res, ctx) => {
      if (ctx.request.path === '/token') return sendToken(res, 'tok-mount', 300);
      if (req.headers.authorization !== 'Bearer tok-mount') {
        return sendBearerChallenge(res, { realm: `${ctx.url}/token`, service: 'scripted' });
      }
      sendBytes(res, '', { Location: `/v2/team/app/blobs/${digest}` }, 201);
    });
    cleanups.push(() => registry.close());
    const client = new RegistryClient({ host: registry.host, url: registry.url });
    cleanups.push(() => client.close());
    expect(await startUpload(client, 'team/app', { digest, from: 'other/app' })).toEqual({ mounted: true });
    const tokenRequests = registry.requestsTo('/token');
    expect(tokenRequests).toHaveLength(1);
    expect(tokenRequests[0]?.query.getAll('scope')).toEqual([
      'repository:team/app:pull,push',
      'repository:other/app:pull',
    ]);
  });
});
