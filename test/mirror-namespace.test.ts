/**
 * `?ns=` (spec "Registry Proxying") is a registry host and nothing else. A value with a
 * character that lower-cases to ASCII (U+212A KELVIN SIGN → k) once matched a configured
 * upstream and was echoed raw into the OCI-Namespace header: Node refused the header and the
 * client got a 500 (issue 8, finding 10). Now anything that is not an ASCII host is 400 NAME_INVALID.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, errorCode } from './support/http.js';
import { sendManifest, startScriptedRegistry, type ScriptedRegistry } from './support/scripted-registry.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const host = 'k8s.example.test';
const manifest = JSON.stringify({
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: `sha256:${'4'.repeat(64)}`, size: 2 },
  layers: [],
});

let upstream: ScriptedRegistry;
let wharf: WharfHandle;

beforeAll(async () => {
  upstream = await startScriptedRegistry({
    '/v2/team/app/manifests/v1': (_req, res) =>
      sendManifest(res, manifest, 'application/vnd.oci.image.manifest.v1+json'),
  });
  // Tests here count upstream requests: a prefetch of the manifest's config (issue 12) would land in the next test's count.
  wharf = await startWharf({ upstreams: [{ host, url: upstream.url, prefetch: false }] });
});

afterAll(async () => {
  await wharf?.close();
  await upstream?.close();
});

describe('?ns= values', () => {
  it('serves a configured host, echoing it in OCI-Namespace', async () => {
    const response = await call(wharf.url, `/v2/team/app/manifests/v1?ns=${host}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('oci-namespace')).toBe(host);
  });

  // Round 13b (docs/mutation-testing.md): host names are case-insensitive; an upper-cased ns is the same upstream.
  it('routes a configured host written in capitals to that upstream, not to 404 NAME_UNKNOWN', async () => {
    const response = await call(wharf.url, `/v2/team/app/manifests/v1?ns=${host.toUpperCase()}`);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe(manifest);
  });

  it.each([
    ['KELVIN SIGN', '\u212A8s.example.test'],
    ['dotless i upper-cased', 'K8S.EXAMPLE.TEST'.replace('E', '\u0130')],
    ['a space', 'k8s.example .test'],
    ['a control character', 'k8s.example.test\u0007'],
    ['a CR LF', 'k8s.example.test\r\nX-Evil: 1'],
    ['a path', 'k8s.example.test/evil'],
    ['an empty label', 'k8s..example.test'],
    ['a user part', 'user@k8s.example.test'],
    ['an over-long value', `${'a'.repeat(250)}.example.test`],
  ])('refuses %s with 400 NAME_INVALID and an OCI body', async (_what, ns) => {
    const before = upstream.requests.length;
    for (const path of [
      '/v2/team/app/manifests/v1',
      '/v2/team/app/tags/list',
      `/v2/team/app/blobs/sha256:${'1'.repeat(64)}`,
    ]) {
      const response = await call(wharf.url, `${path}?ns=${encodeURIComponent(ns)}`);
      expect(response.status, path).toBe(400);
      expect(response.headers.get('oci-namespace')).toBeNull();
      expect(await errorCode(response)).toBe('NAME_INVALID');
    }
    expect(upstream.requests.length).toBe(before);
  });

  it('accepts a host with a port, an IPv4 or an IPv6 address (unknown here: 404 NAME_UNKNOWN)', async () => {
    for (const ns of ['registry.example.test:5000', '127.0.0.2:5000', '[::1]:5000', 'localhost']) {
      const response = await call(wharf.url, `/v2/team/app/manifests/v1?ns=${encodeURIComponent(ns)}`);
      expect(response.status, ns).toBe(404);
      expect(await errorCode(response)).toBe('NAME_UNKNOWN');
    }
  });
});

// Round 3 of the planted-bug audit (docs/mutation-testing.md): Docker Hub keeps official images under
// library/. Dropping that rule passed every test, because no test's upstream was called docker.io.
describe('docker.io names without a namespace', () => {
  let hub: ScriptedRegistry;
  let mirror: WharfHandle;

  beforeAll(async () => {
    hub = await startScriptedRegistry({
      '/v2/library/busybox/manifests/v1': (_req, res) =>
        sendManifest(res, manifest, 'application/vnd.oci.image.manifest.v1+json'),
    });
    mirror = await startWharf({
      upstreams: [{ host: 'docker.io', url: hub.url, prefetch: false }],
      defaultUpstream: 'docker.io',
    });
  });

  afterAll(async () => {
    await mirror?.close();
    await hub?.close();
  });

  it('are asked for under library/ and kept as docker.io/library/<name>, however the client names them', async () => {
    for (const path of [
      '/v2/busybox/manifests/v1',
      '/v2/busybox/manifests/v1?ns=docker.io',
      '/v2/docker.io/busybox/manifests/v1',
      '/v2/docker.io/library/busybox/manifests/v1',
    ]) {
      const response = await call(mirror.url, path);
      expect(response.status, path).toBe(200);
      expect(await response.text(), path).toBe(manifest);
    }
    // One fill for all four: the same cache entry, fetched from the upstream's library/ path.
    expect(hub.requests.map((r) => `${r.method} ${r.url}`)).toEqual(['GET /v2/library/busybox/manifests/v1']);
  });
});

// Round 7c: a repository name cannot carry ':', so an upstream with a port is named in a path prefix
// with '-' for ':' (router.ts hostComponent), which is also its store name. Looking the prefix up among
// the hosts as configured (with ':') found nothing: the name became local, a push was taken, and it
// wrote into the very store name the mirror serves that upstream's content from.
describe('an upstream whose host has a port', () => {
  const ported = 'k8s.example.test:5000';
  const prefix = 'k8s.example.test-5000';
  let mirror: WharfHandle;

  beforeAll(async () => {
    mirror = await startWharf({ upstreams: [{ host: ported, url: upstream.url, prefetch: false }] });
  });

  afterAll(async () => {
    await mirror?.close();
  });

  it('is mirrored by its path prefix, with the port written -5000, and read-only there', async () => {
    for (const path of [`/v2/${prefix}/team/app/manifests/v1`, `/v2/team/app/manifests/v1?ns=${ported}`]) {
      const response = await call(mirror.url, path);
      expect(response.status, path).toBe(200);
      expect(await response.text(), path).toBe(manifest);
    }
    const push = await call(mirror.url, `/v2/${prefix}/team/app/blobs/uploads/`, { method: 'POST' });
    expect(push.status).toBe(405);
    expect(await errorCode(push)).toBe('UNSUPPORTED');
    const put = await call(mirror.url, `/v2/${prefix}/team/app/manifests/v1`, {
      method: 'PUT',
      body: manifest,
      headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(put.status).toBe(405);
  });
});

// Round 10b: only Docker Hub keeps official images under library/. Adding library/ to one-part names
// for every upstream passed every test: no test pulled a one-part name from another registry.
describe('one-part names on an upstream other than docker.io', () => {
  let other: ScriptedRegistry;
  let mirror: WharfHandle;

  beforeAll(async () => {
    other = await startScriptedRegistry({
      '/v2/busybox/manifests/v1': (_req, res) =>
        sendManifest(res, manifest, 'application/vnd.oci.image.manifest.v1+json'),
    });
    mirror = await startWharf({
      upstreams: [{ host: 'quay.example.test', url: other.url, prefetch: false }],
      defaultUpstream: 'quay.example.test',
    });
  });

  afterAll(async () => {
    await mirror?.close();
    await other?.close();
  });

  it('are asked for as named, with no library/, and kept as <host>/<name>', async () => {
    for (const path of [
      '/v2/busybox/manifests/v1',
      '/v2/busybox/manifests/v1?ns=quay.example.test',
      '/v2/quay.example.test/busybox/manifests/v1',
    ]) {
      const response = await call(mirror.url, path);
      expect(response.status, path).toBe(200);
      expect(await response.text(), path).toBe(manifest);
    }
    expect(other.requests.map((r) => `${r.method} ${r.url}`)).toEqual(['GET /v2/busybox/manifests/v1']);
    // The store name is the host and the name as the client gave it: no library/ there either.
    const library = await call(mirror.url, '/v2/quay.example.test/library/busybox/manifests/v1');
    expect(library.status).toBe(404);
  });
});
