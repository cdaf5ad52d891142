/**
 * The address guard's name lookup is what the mirror's and `wharf copy`'s connections resolve
 * names with (issue 13, round 4: dropping `lookup: guard.lookup` from either undici Agent passed
 * every test, since every test upstream is 127.0.0.1 or `localhost`, which need no lookup or are
 * stopped by the URL check first). Here the registry is `upstream.test` and it redirects blobs to
 * `cdn.test`, names only the table resolver handed to wharf knows: an Agent that resolved names
 * any other way would not find them. `cdn.test` answering 127.0.0.1 is followed (an upstream on
 * loopback may send wharf anywhere but the unspecified and multicast addresses); answering 0.0.0.0
 * it is refused before any connection. 0.0.0.0 stands for the forbidden address because, were it
 * ever dialled, Linux would take it to mean this machine: the test cannot reach out even when the
 * guard fails, and the CDN's connection count of 0 shows the refusal came first.
 */
import dns from 'node:dns';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCopy } from '../src/cli/client/copy-command.js';
import { explainError } from '../src/cli/explain-error.js';
import { call } from './support/http.js';
import { makeImage, type TestImage } from './support/make-image.js';
import { withDeadline } from './support/run.js';
import {
  sendBytes,
  sendError,
  sendJson,
  sendManifest,
  sendRedirect,
  type ScriptedHandler,
  type ScriptedRegistry,
} from './support/scripted-registry.js';
import { tableResolver, type TableResolver } from './support/table-resolver.js';
import { upstreamHarness } from './support/upstream-harness.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

/** What UpstreamHttp answers when the guard's lookup refuses a name (a 502 on the mirror). */
const refusal = 'an upstream answer points to a name with no address wharf may dial: not followed';

const { serve, defer } = upstreamHarness();
let image: TestImage;
let work: string;

/**
 * The system lookup, fail-closed for the made-up names while this file runs. Wharf never uses it
 * here: the names go to the table resolver. But code that lost the guard's lookup (a planted bug)
 * would fall back to `dns.lookup` (net.connect's default), and a DNS query for `upstream.test`
 * would leave the machine; this answers ENOTFOUND instead, so such code fails here without traffic.
 */
const systemLookup = dns.lookup;
function failClosedLookup(this: unknown, hostname: string, ...rest: unknown[]): void {
  if (!hostname.endsWith('.test')) {
    (systemLookup as (...args: unknown[]) => void).call(dns, hostname, ...rest);
    return;
  }
  const callback = rest.at(-1) as (error: NodeJS.ErrnoException) => void;
  const error: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
  error.code = 'ENOTFOUND';
  setImmediate(() => callback(error));
}

beforeAll(async () => {
  dns.lookup = failClosedLookup as typeof dns.lookup;
  image = await makeImage({ seed: 'guarded-names', layers: 1 });
  work = await mkdtemp(join(tmpdir(), 'wharf-guarded-names-'));
});

afterAll(async () => {
  dns.lookup = systemLookup;
  await rm(work, { recursive: true, force: true });
});

interface Scene {
  /** `upstream.test:<port>`: the registry as wharf is told to reach it. */
  registry: string;
  upstream: ScriptedRegistry;
  cdn: ScriptedRegistry;
  resolver: TableResolver;
}

/** team/app:v1 on `upstream.test`, whose blobs are redirected to `cdn.test` (as Docker Hub's are to its CDN). */
async function scene(cdnAddress: string): Promise<Scene> {
  const cdn = await serve((req, res) => {
    const blob = image.blobs.get(new URL(req.url ?? '/', 'http://cdn.test').pathname.replace('/blobs/', ''));
    if (blob === undefined) sendError(res, 404, 'BLOB_UNKNOWN');
    else sendBytes(res, blob);
  });
  const cdnPort = new URL(cdn.url).port;
  const { root } = image;
  const manifest: ScriptedHandler = (_req, res) => sendManifest(res, root.bytes, root.mediaType);
  const upstream = await serve({
    '/v2/': (_req, res) => sendJson(res, 200, {}),
    '/v2/team/app/manifests/v1': manifest,
    [`/v2/team/app/manifests/${root.digest}`]: manifest,
    ...Object.fromEntries(
      [...image.blobs.keys()].map((digest): [string, ScriptedHandler] => [
        `/v2/team/app/blobs/${digest}`,
        (_req, res) => sendRedirect(res, `http://cdn.test:${cdnPort}/blobs/${digest}`),
      ]),
    ),
  });
  const resolver = tableResolver({ 'upstream.test': ['127.0.0.1'], 'cdn.test': [cdnAddress] });
  return { registry: `upstream.test:${new URL(upstream.url).port}`, upstream, cdn, resolver };
}

function layerDigest(): string {
  const digest = image.images[0]?.layers[0]?.digest;
  if (digest === undefined) throw new Error('the test image has no layer');
  return digest;
}

describe('the mirror resolves names through the address guard', () => {
  async function mirror(s: Scene): Promise<WharfHandle> {
    const wharf = await startWharf({
      upstreams: [{ host: 'upstream.test', url: `http://${s.registry}`, prefetch: false }],
      defaultUpstream: 'upstream.test',
      resolver: s.resolver.resolve,
    });
    defer(() => wharf.close());
    return wharf;
  }

  it('pulls from upstream.test through cdn.test when the resolver answers 127.0.0.1 for both', async () => {
    const s = await scene('127.0.0.1');
    const wharf = await mirror(s);

    const manifest = await call(wharf.url, '/v2/team/app/manifests/v1', { headers: { accept: image.root.mediaType } });
    expect(manifest.status).toBe(200);
    expect(Buffer.from(await manifest.arrayBuffer())).toEqual(image.root.bytes);
    for (const [digest, bytes] of image.blobs) {
      const blob = await call(wharf.url, `/v2/team/app/blobs/${digest}`);
      expect(blob.status).toBe(200);
      expect(Buffer.from(await blob.arrayBuffer())).toEqual(bytes);
    }
    expect(new Set(s.resolver.asked)).toEqual(new Set(['upstream.test', 'cdn.test']));
    expect(s.cdn.requests.map((r) => r.path).sort()).toEqual([...image.blobs.keys()].map((d) => `/blobs/${d}`).sort());
  });

  it('answers 502 UNAVAILABLE for a blob redirected to a name resolving to 0.0.0.0, and never connects to it', async () => {
    const s = await scene('0.0.0.0');
    const wharf = await mirror(s);

    const blob = await call(wharf.url, `/v2/team/app/blobs/${layerDigest()}`);
    expect(blob.status).toBe(502);
    const body = (await blob.json()) as { errors: { code: string; message: string }[] };
    expect(body.errors).toHaveLength(1);
    expect(body.errors[0]).toMatchObject({ code: 'UNAVAILABLE', message: refusal });
    expect(s.upstream.requestsTo(`/v2/team/app/blobs/${layerDigest()}`)).toHaveLength(1);
    expect(s.resolver.asked).toContain('cdn.test');
    expect(s.cdn.connections()).toBe(0);
  });
});

describe('wharf copy resolves names through the address guard', () => {
  async function copy(s: Scene, target: WharfHandle): Promise<void> {
    const env = { DOCKER_CONFIG: work, WHARF_LOG_LEVEL: 'silent' };
    const flags = { quiet: true, plainHttp: true, resolver: s.resolver.resolve };
    await withDeadline(
      runCopy(`${s.registry}/team/app:v1`, `${target.host}/copied/app:v1`, flags, env),
      30_000,
      'wharf copy',
    );
  }

  async function target(): Promise<WharfHandle> {
    const wharf = await startWharf();
    defer(() => wharf.close());
    return wharf;
  }

  it('copies from upstream.test through cdn.test when the resolver answers 127.0.0.1 for both', async () => {
    const s = await scene('127.0.0.1');
    const wharf = await target();

    await copy(s, wharf);
    const copied = await call(wharf.url, '/v2/copied/app/manifests/v1', { headers: { accept: image.root.mediaType } });
    expect(copied.status).toBe(200);
    expect(copied.headers.get('docker-content-digest')).toBe(image.root.digest);
    expect(new Set(s.resolver.asked)).toEqual(new Set(['upstream.test', 'cdn.test']));
    expect(s.cdn.requests.map((r) => r.path).sort()).toEqual([...image.blobs.keys()].map((d) => `/blobs/${d}`).sort());
  });

  it('fails with one line when a blob is redirected to a name resolving to 0.0.0.0, and never connects to it', async () => {
    const s = await scene('0.0.0.0');
    const wharf = await target();

    const error = await copy(s, wharf).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeDefined();
    expect(explainError(error)).toBe(`UNAVAILABLE: ${refusal}`);
    expect(s.resolver.asked).toContain('cdn.test');
    expect(s.cdn.connections()).toBe(0);
    const copied = await call(wharf.url, '/v2/copied/app/manifests/v1', { headers: { accept: image.root.mediaType } });
    expect(copied.status).toBe(404);
  });
});
