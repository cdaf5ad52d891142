/**
 * @module test/mirror-accept-key.test
 * A "not found" from the upstream is remembered per Accept set (proxy/accept-key.ts): CNCF
 * distribution answers 404 to a client that does not accept the form it holds, so a Docker-only
 * pull that found nothing must not make a later pull that accepts the OCI form fail too, whatever
 * order the types come in and however long the list is. Round 11d of the hand-planted bugs
 * (docs/mutation-testing.md): a key from the first type only, or a long list cut to its first 256
 * characters, passed every test.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mediaTypes } from '../src/oci/media-types.js';
import { call } from './support/http.js';
import { sendError, sendManifest, startScriptedRegistry, type ScriptedRegistry } from './support/scripted-registry.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const oci = JSON.stringify({
  schemaVersion: 2,
  mediaType: mediaTypes.ociManifest,
  config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: `sha256:${'4'.repeat(64)}`, size: 2 },
  layers: [],
});

/** Types no registry knows, long enough together that the sorted set passes the plain key's 256 characters. */
const padding = Array.from({ length: 8 }, (_, i) => `application/a-padding-type-${i}-${'x'.repeat(30)}`);

let upstream: ScriptedRegistry;
let wharf: WharfHandle;

/** Like distribution: the OCI manifest to a client that accepts it, 404 to any other. */
function ociOnly(req: { headers: { accept?: string } }, res: Parameters<typeof sendManifest>[0]): void {
  if ((req.headers.accept ?? '').includes(mediaTypes.ociManifest)) sendManifest(res, oci, mediaTypes.ociManifest);
  else sendError(res, 404, 'MANIFEST_UNKNOWN', 'OCI manifest found, but accept header does not support OCI manifests');
}

beforeAll(async () => {
  upstream = await startScriptedRegistry({
    '/v2/team/app/manifests/first': ociOnly,
    '/v2/team/app/manifests/long': ociOnly,
  });
  wharf = await startWharf({
    // A "not found" kept for the whole test: only the key decides whether the second pull sees it.
    upstreams: [{ host: 'registry.example.test', url: upstream.url, prefetch: false, notFoundTtlMs: 600_000 }],
    defaultUpstream: 'registry.example.test',
  });
});

afterAll(async () => {
  await wharf?.close();
  await upstream?.close();
});

describe('a remembered upstream 404 and the Accept set', () => {
  it('a Docker-only 404 does not answer a pull that lists the Docker type first and accepts OCI too', async () => {
    const dockerOnly = await call(wharf.url, '/v2/team/app/manifests/first', {
      headers: { Accept: mediaTypes.dockerManifest },
    });
    expect(dockerOnly.status).toBe(404);
    await dockerOnly.body?.cancel();
    const both = await call(wharf.url, '/v2/team/app/manifests/first', {
      headers: { Accept: `${mediaTypes.dockerManifest}, ${mediaTypes.ociManifest}` },
    });
    expect(both.status).toBe(200);
    expect(await both.text()).toBe(oci);
    expect(upstream.requestsTo('/v2/team/app/manifests/first')).toHaveLength(2);
  });

  it('two long Accept lists that differ only past their first 256 characters keep apart', async () => {
    const dockerOnly = await call(wharf.url, '/v2/team/app/manifests/long', {
      headers: { Accept: [...padding, mediaTypes.dockerManifest].join(', ') },
    });
    expect(dockerOnly.status).toBe(404);
    await dockerOnly.body?.cancel();
    const withOci = await call(wharf.url, '/v2/team/app/manifests/long', {
      headers: { Accept: [...padding, mediaTypes.ociManifest].join(', ') },
    });
    expect(withOci.status).toBe(200);
    expect(await withOci.text()).toBe(oci);
    expect(upstream.requestsTo('/v2/team/app/manifests/long')).toHaveLength(2);
  });
});
