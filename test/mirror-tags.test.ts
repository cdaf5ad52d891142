/**
 * Tags of a mirrored repository against a scripted upstream that hangs, fails, denies, moves tags
 * and answers by Accept (issue 8, findings 8, 3 and 10):
 * - a cached tag whose TTL passed is answered from the cache while one revalidation at a time
 *   asks the upstream: a hung upstream once cost every such pull its 30 s response timeout;
 * - a 401/403 on revalidation stops the tag being served (it was served as "stale-if-error");
 * - "not found" for a Docker-only Accept once hid an OCI-only tag from everyone for 30 s;
 * - 20 concurrent tags/list once made 20 upstream listings.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { requireRepoName, type Tag } from '../src/oci/reference.js';
import { call, errorCode, sha256 } from './support/http.js';
import { captureLog } from './support/log-capture.js';
import { withDeadline } from './support/run.js';
import {
  basicCredentials,
  sendBasicChallenge,
  sendError,
  sendJson,
  sendManifest,
  stallBeforeHeaders,
  startScriptedRegistry,
  type ScriptedRegistry,
} from './support/scripted-registry.js';
import { startWharf, type WharfHandle, type WharfOptions } from './support/wharf.js';

const host = 'tags.example.test';
const ociManifest = 'application/vnd.oci.image.manifest.v1+json';
const ociIndex = 'application/vnd.oci.image.index.v1+json';
const dockerManifest = 'application/vnd.docker.distribution.manifest.v2+json';
const dockerList = 'application/vnd.docker.distribution.manifest.list.v2+json';
const acceptAll = [ociIndex, ociManifest, dockerList, dockerManifest].join(', ');
const acceptDocker = [dockerList, dockerManifest].join(', ');
/** The mirrored repository's name in the store. */
const appName = requireRepoName(`${host}/team/app`);

/** A pull of a cached tag must answer within this, whatever the upstream does: a deadline, not a speed claim. */
const cachedPullDeadlineMs = 5_000;
/** The hung upstream's response timeout, well above cachedPullDeadlineMs. */
const upstreamHeadersMs = 20_000;

function manifestBytes(seed: string, mediaType = ociManifest): string {
  const config = { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256('{}'), size: 2 };
  return mediaType === ociIndex
    ? JSON.stringify({ schemaVersion: 2, mediaType, manifests: [], annotations: { seed } })
    : JSON.stringify({ schemaVersion: 2, mediaType, config, layers: [], annotations: { seed } });
}

type Mode = 'ok' | 'hang' | 'fail' | 'forbidden' | 'unauthorized';

/** A scripted upstream holding team/app's tags; mode and delay change how it answers, at any time. */
interface TagUpstream {
  server: ScriptedRegistry;
  mode: Mode;
  /** Delay before answering in 'ok' mode. */
  delayMs: number;
  tags: Map<string, { bytes: string; mediaType: string }>;
  /** Requests for a tag's manifest (HEAD or GET) so far. */
  manifestRequests(tag: string): number;
}

async function startTagUpstream(): Promise<TagUpstream> {
  const state: Omit<TagUpstream, 'server' | 'manifestRequests'> = { mode: 'ok', delayMs: 0, tags: new Map() };
  const answer = (req: IncomingMessage, res: ServerResponse, path: string): void => {
    if (state.mode === 'hang') return stallBeforeHeaders(res);
    if (state.mode === 'fail') return sendError(res, 503, 'UNAVAILABLE', 'scripted outage');
    if (state.mode === 'forbidden') return sendError(res, 403, 'DENIED', 'requested access to the resource is denied');
    if (state.mode === 'unauthorized' || basicCredentials(req) !== 'mirror:secret') return sendBasicChallenge(res);
    if (path === '/v2/team/app/tags/list')
      return sendJson(res, 200, { name: 'team/app', tags: [...state.tags.keys()] });
    const reference = path.slice('/v2/team/app/manifests/'.length);
    const found = reference.startsWith('sha256:')
      ? [...state.tags.values()].find((entry) => sha256(entry.bytes) === reference)
      : state.tags.get(reference);
    // As CNCF distribution does: an OCI index is "unknown" to a client that does not accept it.
    const accepted = (req.headers.accept ?? '').includes(found?.mediaType ?? '');
    if (found === undefined || !accepted) return sendError(res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown');
    sendManifest(res, found.bytes, found.mediaType);
  };
  const server = await startScriptedRegistry((req, res, ctx) => {
    if (state.mode === 'ok' && state.delayMs > 0) {
      setTimeout(() => answer(req, res, ctx.request.path), state.delayMs);
      return;
    }
    answer(req, res, ctx.request.path);
  });
  const upstream = Object.assign(state, {
    server,
    manifestRequests: (tag: string) => server.requestsTo(`/v2/team/app/manifests/${tag}`).length,
  });
  return upstream;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setUp(
  extra: Partial<NonNullable<WharfOptions['upstreams']>[number]> = {},
  options: Omit<WharfOptions, 'upstreams'> = {},
): Promise<{ upstream: TagUpstream; wharf: WharfHandle }> {
  const upstream = await startTagUpstream();
  cleanups.push(() => upstream.server.close());
  const wharf = await startWharf({
    ...options,
    upstreams: [
      {
        host,
        url: upstream.server.url,
        username: 'mirror',
        password: 'secret',
        // Freshness is under test here, not privacy: anonymous test clients may read it.
        public: true,
        tagTtlMs: 0,
        notFoundTtlMs: 30_000,
        timeouts: { connectMs: 2_000, headersMs: upstreamHeadersMs, bodyIdleMs: upstreamHeadersMs },
        ...extra,
      },
    ],
  });
  cleanups.push(() => wharf.close());
  return { upstream, wharf };
}

/** GET of a tag through wharf; its status, digest and error code. */
async function pullTag(
  wharf: WharfHandle,
  tag: string,
  accept = acceptAll,
): Promise<{ status: number; digest?: string; code?: string }> {
  const response = await call(wharf.url, `/v2/${host}/team/app/manifests/${tag}`, { headers: { Accept: accept } });
  if (response.status !== 200) return { status: response.status, code: await errorCode(response) };
  return { status: 200, digest: sha256(Buffer.from(await response.arrayBuffer())) };
}

/** A pull of a cached tag, which must answer before cachedPullDeadlineMs. */
function pullCached(wharf: WharfHandle, tag: string): Promise<{ status: number; digest?: string; code?: string }> {
  return withDeadline(pullTag(wharf, tag), cachedPullDeadlineMs, `pull of the cached tag ${tag}`);
}

async function revalidationsDone(wharf: WharfHandle): Promise<void> {
  await withDeadline(
    (async () => {
      while (wharf.server.proxy.revalidating > 0) await new Promise((resolve) => setTimeout(resolve, 20));
    })(),
    10_000,
    'background revalidations finishing',
  );
}

describe('stale while revalidate', () => {
  it('a hung upstream: cached pulls answer from the cache, one revalidation at a time reaches it', async () => {
    const { upstream, wharf } = await setUp();
    const v1 = manifestBytes('v1');
    upstream.tags.set('v1', { bytes: v1, mediaType: ociManifest });
    expect(await pullTag(wharf, 'v1')).toEqual({ status: 200, digest: sha256(v1) });

    upstream.mode = 'hang';
    const before = upstream.manifestRequests('v1');
    const together = await Promise.all(Array.from({ length: 10 }, () => pullCached(wharf, 'v1')));
    for (const pull of together) expect(pull).toEqual({ status: 200, digest: sha256(v1) });
    for (let i = 0; i < 5; i++) expect(await pullCached(wharf, 'v1')).toEqual({ status: 200, digest: sha256(v1) });
    expect(upstream.manifestRequests('v1') - before).toBe(1);
    expect(wharf.server.proxy.revalidating).toBe(1);

    // Shutdown does not wait for the hung upstream's timeout to write anything.
    await withDeadline(wharf.server.proxy.settle(), 3_000, 'settle with a hung revalidation');
    expect(wharf.server.proxy.revalidating).toBe(0);
  });

  it('a failing upstream: one warning without a stack per failed revalidation, then a backoff', async () => {
    const log = captureLog('info');
    const { upstream, wharf } = await setUp({}, { logger: log.logger });
    const v1 = manifestBytes('v1-fail');
    upstream.tags.set('v1', { bytes: v1, mediaType: ociManifest });
    expect(await pullTag(wharf, 'v1')).toEqual({ status: 200, digest: sha256(v1) });

    upstream.mode = 'fail';
    const before = upstream.manifestRequests('v1');
    for (let i = 0; i < 5; i++) expect(await pullCached(wharf, 'v1')).toEqual({ status: 200, digest: sha256(v1) });
    await revalidationsDone(wharf);
    // The first pull's revalidation failed; the next ones are within the backoff and ask nobody.
    expect(upstream.manifestRequests('v1') - before).toBe(1);
    const warnings = log.atLeast(40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 40, name: `${host}/team/app`, tag: 'v1', code: 'UNAVAILABLE' });
    expect(warnings[0]?.err).toBeUndefined();
  });

  it('a tag that moved: the background revalidation records it and the next pull gets it', async () => {
    const { upstream, wharf } = await setUp();
    const one = manifestBytes('one');
    const two = manifestBytes('two');
    upstream.tags.set('latest', { bytes: one, mediaType: ociManifest });
    expect(await pullTag(wharf, 'latest')).toEqual({ status: 200, digest: sha256(one) });

    upstream.tags.set('latest', { bytes: two, mediaType: ociManifest });
    // Slower than a pull waits for a revalidation: this pull gets the cached digest.
    upstream.delayMs = 2_500;
    expect(await pullCached(wharf, 'latest')).toEqual({ status: 200, digest: sha256(one) });
    await revalidationsDone(wharf);
    upstream.delayMs = 0;
    expect(await pullCached(wharf, 'latest')).toEqual({ status: 200, digest: sha256(two) });
  });

  // Round 7a (docs/mutation-testing.md): a revalidation that fetched the moved manifest again although
  // the mirror held it passed: a manifest GET counts against Docker Hub's pull limit, a HEAD does not.
  it('a tag moved to a manifest the mirror holds: the revalidation asks with one HEAD and no GET', async () => {
    const { upstream, wharf } = await setUp();
    const one = manifestBytes('held-one');
    const two = manifestBytes('held-two');
    upstream.tags.set('latest', { bytes: one, mediaType: ociManifest });
    upstream.tags.set('next', { bytes: two, mediaType: ociManifest });
    expect(await pullTag(wharf, 'latest')).toEqual({ status: 200, digest: sha256(one) });
    expect(await pullTag(wharf, 'next')).toEqual({ status: 200, digest: sha256(two) });

    upstream.tags.set('latest', { bytes: two, mediaType: ociManifest });
    const before = upstream.server.requests.length;
    await pullCached(wharf, 'latest');
    await revalidationsDone(wharf);
    expect(await pullCached(wharf, 'latest')).toEqual({ status: 200, digest: sha256(two) });
    await revalidationsDone(wharf);
    const asked = upstream.server.requests.slice(before).filter((r) => r.path.includes('/manifests/'));
    expect(asked.map((r) => r.method)).toEqual(['HEAD', 'HEAD']);
    expect(asked.every((r) => r.path === '/v2/team/app/manifests/latest')).toBe(true);
  });

  // Round 2 of the planted-bug audit (docs/mutation-testing.md): a revalidation that kept serving a
  // tag the upstream deleted, and one that never recorded its confirmation (so every pull after the
  // TTL asked again), passed every test here.
  it('a tag deleted upstream: the revalidation drops it, the next pull is 404; its manifest stays by digest', async () => {
    const { upstream, wharf } = await setUp();
    const gone = manifestBytes('gone');
    upstream.tags.set('gone', { bytes: gone, mediaType: ociManifest });
    expect(await pullTag(wharf, 'gone')).toEqual({ status: 200, digest: sha256(gone) });

    upstream.tags.delete('gone');
    // This pull may be answered from the cache (its revalidation is in the background)...
    await pullCached(wharf, 'gone');
    await revalidationsDone(wharf);
    // ...the next one is not: the tag is gone here too.
    expect(await pullCached(wharf, 'gone')).toEqual({ status: 404, code: 'MANIFEST_UNKNOWN' });
    expect(wharf.server.store.tagState(appName, 'gone' as Tag)).toBeUndefined();
    const byDigest = await call(wharf.url, `/v2/${host}/team/app/manifests/${sha256(gone)}`, {
      headers: { Accept: acceptAll },
    });
    expect(byDigest.status).toBe(200);
  });

  it('a revalidation that finds the same digest records the confirmation: the TTL starts again', async () => {
    const { upstream, wharf } = await setUp();
    const same = manifestBytes('same');
    upstream.tags.set('same', { bytes: same, mediaType: ociManifest });
    expect(await pullTag(wharf, 'same')).toEqual({ status: 200, digest: sha256(same) });
    const filled = wharf.server.store.tagState(appName, 'same' as Tag)?.confirmed_at ?? Number.NaN;
    await new Promise((resolve) => setTimeout(resolve, 20));

    const before = upstream.manifestRequests('same');
    expect(await pullCached(wharf, 'same')).toEqual({ status: 200, digest: sha256(same) });
    await revalidationsDone(wharf);
    expect(upstream.manifestRequests('same') - before).toBe(1);
    const confirmed = wharf.server.store.tagState(appName, 'same' as Tag)?.confirmed_at ?? Number.NaN;
    expect(confirmed).toBeGreaterThanOrEqual(filled + 20);
  });

  it('a tag never seen before waits for the upstream: there is nothing to serve', async () => {
    const { upstream, wharf } = await setUp();
    const fresh = manifestBytes('fresh');
    upstream.tags.set('fresh', { bytes: fresh, mediaType: ociManifest });
    upstream.delayMs = 1_500;
    expect(await pullTag(wharf, 'fresh')).toEqual({ status: 200, digest: sha256(fresh) });
  });

  // Round 6 (docs/mutation-testing.md): a tag lookup that skipped the negative cache passed every test.
  it('a tag the upstream does not have is asked once per notFoundTtl: a retrying client costs one request', async () => {
    const { upstream, wharf } = await setUp();
    expect(await pullTag(wharf, 'missing')).toEqual({ status: 404, code: 'MANIFEST_UNKNOWN' });
    // The first pull: a 401 (Basic challenge), then the authenticated 404.
    expect(upstream.manifestRequests('missing')).toBe(2);
    expect(await pullTag(wharf, 'missing')).toEqual({ status: 404, code: 'MANIFEST_UNKNOWN' });
    expect(await pullTag(wharf, 'missing')).toEqual({ status: 404, code: 'MANIFEST_UNKNOWN' });
    expect(upstream.manifestRequests('missing')).toBe(2);
  });

  // Round 7a (docs/mutation-testing.md): the same for a manifest asked for by a digest the upstream lacks.
  it('a digest the upstream does not have is asked once per notFoundTtl too', async () => {
    const { upstream, wharf } = await setUp();
    const missing = sha256('a manifest nobody pushed');
    const byDigest = (): Promise<Response> =>
      call(wharf.url, `/v2/${host}/team/app/manifests/${missing}`, { headers: { Accept: acceptAll } });
    for (let i = 0; i < 3; i++) {
      const response = await byDigest();
      expect(response.status).toBe(404);
      expect(await errorCode(response)).toBe('MANIFEST_UNKNOWN');
    }
    // A 401 (Basic challenge), then the authenticated 404; nothing after.
    expect(upstream.manifestRequests(missing)).toBe(2);
  });
});

describe('access revoked upstream', () => {
  it.each([
    ['403', 'forbidden'],
    ['401 with the credentials refused', 'unauthorized'],
  ] as const)('%s on revalidation: the tag is no longer served, until access is back', async (_what, mode) => {
    const { upstream, wharf } = await setUp();
    const v1 = manifestBytes(`private-${mode}`);
    upstream.tags.set('v1', { bytes: v1, mediaType: ociManifest });
    expect(await pullTag(wharf, 'v1')).toEqual({ status: 200, digest: sha256(v1) });

    upstream.mode = mode;
    expect(await pullCached(wharf, 'v1')).toEqual({ status: 403, code: 'DENIED' });
    expect(await pullCached(wharf, 'v1')).toEqual({ status: 403, code: 'DENIED' });
    const tags = (await (await call(wharf.url, `/v2/${host}/team/app/tags/list`)).json()) as { tags?: string[] };
    expect(tags.tags ?? []).not.toContain('v1');

    upstream.mode = 'ok';
    expect(await pullTag(wharf, 'v1')).toEqual({ status: 200, digest: sha256(v1) });
  });

  it('an outage (503) is not a denial: the cached tag is still served', async () => {
    const { upstream, wharf } = await setUp();
    const v1 = manifestBytes('outage');
    upstream.tags.set('v1', { bytes: v1, mediaType: ociManifest });
    expect(await pullTag(wharf, 'v1')).toEqual({ status: 200, digest: sha256(v1) });
    upstream.mode = 'fail';
    expect(await pullCached(wharf, 'v1')).toEqual({ status: 200, digest: sha256(v1) });
  });
});

describe('not found depends on Accept', () => {
  it('a Docker-only client does not hide an OCI-only tag from OCI clients', async () => {
    const { upstream, wharf } = await setUp();
    const index = manifestBytes('oci-only', ociIndex);
    upstream.tags.set('oci', { bytes: index, mediaType: ociIndex });
    expect(await pullTag(wharf, 'oci', acceptDocker)).toEqual({ status: 404, code: 'MANIFEST_UNKNOWN' });
    expect(await pullTag(wharf, 'oci', acceptAll)).toEqual({ status: 200, digest: sha256(index) });
  });

  it('concurrent Docker-only and OCI clients each get their own answer', async () => {
    const { upstream, wharf } = await setUp();
    const index = manifestBytes('oci-only-together', ociIndex);
    upstream.tags.set('together', { bytes: index, mediaType: ociIndex });
    upstream.delayMs = 300;
    const [docker, oci] = await Promise.all([
      pullTag(wharf, 'together', acceptDocker),
      pullTag(wharf, 'together', acceptAll),
    ]);
    expect(oci).toEqual({ status: 200, digest: sha256(index) });
    expect(docker).toEqual({ status: 404, code: 'MANIFEST_UNKNOWN' });
  });
});

describe('upstream tag listings', () => {
  it('20 concurrent listings, then 20 more, cost one upstream listing', async () => {
    const { upstream, wharf } = await setUp({ tagTtlMs: 60_000 });
    upstream.tags.set('a', { bytes: manifestBytes('a'), mediaType: ociManifest });
    upstream.tags.set('b', { bytes: manifestBytes('b'), mediaType: ociManifest });
    upstream.delayMs = 300;
    const list = async (): Promise<string[] | undefined> =>
      ((await (await call(wharf.url, `/v2/${host}/team/app/tags/list`)).json()) as { tags?: string[] }).tags;
    for (const tags of await Promise.all(Array.from({ length: 20 }, list))) expect(tags).toEqual(['a', 'b']);
    for (const tags of await Promise.all(Array.from({ length: 20 }, list))) expect(tags).toEqual(['a', 'b']);
    // The first request without credentials gets the Basic challenge; one listing carries them.
    const listings = upstream.server.requestsTo('/v2/team/app/tags/list');
    expect(listings.filter((r) => r.headers.authorization !== undefined)).toHaveLength(1);
  });
});
