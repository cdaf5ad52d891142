/**
 * @module test/mirror-accept-flights.test
 * Two first pulls of the same tag at once share one upstream request only when they ask for the
 * same thing: the upstream's answer may depend on Accept (a registry that serves a Docker v2
 * manifest to an old client and the OCI form to a new one), so a pull that accepts only the Docker
 * form never gets the OCI bytes fetched for a pull beside it. Round 10b of the hand-planted bugs
 * (docs/mutation-testing.md): a flight keyed without Accept passed every test.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mediaTypes } from '../src/oci/media-types.js';
import { call } from './support/http.js';
import { sendManifest, startScriptedRegistry, type ScriptedRegistry } from './support/scripted-registry.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const config = { digest: `sha256:${'4'.repeat(64)}`, size: 2 };
const oci = JSON.stringify({
  schemaVersion: 2,
  mediaType: mediaTypes.ociManifest,
  config: { mediaType: 'application/vnd.oci.empty.v1+json', ...config },
  layers: [],
});
const docker = JSON.stringify({
  schemaVersion: 2,
  mediaType: mediaTypes.dockerManifest,
  config: { mediaType: 'application/vnd.docker.container.image.v1+json', ...config },
  layers: [],
});

let upstream: ScriptedRegistry;
let wharf: WharfHandle;

beforeAll(async () => {
  upstream = await startScriptedRegistry({
    // Slow enough that the second pull arrives while the first is still waiting for its answer.
    '/v2/team/app/manifests/v1': async (req, res) => {
      await new Promise((resolve) => setTimeout(resolve, 1500));
      if ((req.headers.accept ?? '').includes(mediaTypes.ociManifest)) {
        sendManifest(res, oci, mediaTypes.ociManifest);
      } else {
        sendManifest(res, docker, mediaTypes.dockerManifest);
      }
    },
  });
  wharf = await startWharf({
    upstreams: [{ host: 'registry.example.test', url: upstream.url, prefetch: false }],
    defaultUpstream: 'registry.example.test',
  });
});

afterAll(async () => {
  await wharf?.close();
  await upstream?.close();
});

describe('concurrent first pulls of one tag', () => {
  it('with different Accept lists each get the form they asked for, byte for byte', async () => {
    const [first, second] = await Promise.all([
      call(wharf.url, '/v2/team/app/manifests/v1', { headers: { Accept: mediaTypes.ociManifest } }),
      // Sent a little later, so it finds the first one's upstream request under way.
      new Promise((resolve) => setTimeout(resolve, 100)).then(() =>
        call(wharf.url, '/v2/team/app/manifests/v1', { headers: { Accept: mediaTypes.dockerManifest } }),
      ),
    ]);
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toBe(mediaTypes.ociManifest);
    expect(await first.text()).toBe(oci);
    expect(second.status).toBe(200);
    expect(second.headers.get('content-type')).toBe(mediaTypes.dockerManifest);
    expect(await second.text()).toBe(docker);
    expect(upstream.requestsTo('/v2/team/app/manifests/v1').map((r) => r.headers.accept)).toEqual([
      mediaTypes.ociManifest,
      mediaTypes.dockerManifest,
    ]);
  });
});
