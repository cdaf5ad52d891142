/**
 * Authentication to upstreams, against scripted loopback registries and token services: the
 * Docker token flow (one token per scope, shared by concurrent requests, renewed before expiry),
 * and Basic credentials from config.
 */
import type { IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { mediaTypes } from '../src/oci/media-types.js';

import {
  basicCredentials,
  sendBasicChallenge,
  sendBearerChallenge,
  sendManifest,
  sendJson,
  sendToken,
  type ScriptedRegistry,
} from './support/scripted-registry.js';
import { upstreamHarness } from './support/upstream-harness.js';

const accept = [mediaTypes.ociManifest];
const manifestBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: mediaTypes.ociManifest }));
const manifestPath = '/v2/library/alpine/manifests/latest';

const { serve, connect } = upstreamHarness();

/** A registry wanting a Bearer token it `accepted`, and a token service issuing tok-1, tok-2, … on each request. */
async function tokenRegistry(
  options: { expiresIn?: number; tokenDelayMs?: number; accepted?: (token: string) => boolean } = {},
) {
  const accepted = options.accepted ?? (() => true);
  return serve({
    '/token': async (_req, res, ctx) => {
      if (options.tokenDelayMs !== undefined) await sleep(options.tokenDelayMs);
      sendToken(res, `tok-${ctx.count}`, options.expiresIn);
    },
    [manifestPath]: (req, res, ctx) => {
      const token = req.headers.authorization?.match(/^Bearer (tok-\d+)$/)?.[1];
      if (token === undefined || !accepted(token)) {
        return sendBearerChallenge(res, { realm: `${ctx.url}/token`, service: 'scripted' });
      }
      sendManifest(res, manifestBytes, mediaTypes.ociManifest);
    },
  });
}

const authorizations = (server: ScriptedRegistry, path: string): (string | undefined)[] =>
  server.requestsTo(path).map((r) => r.headers.authorization);

describe('Bearer token flow', () => {
  it('answers a 401 with an anonymous token, retries once, then reuses the token', async () => {
    const server = await tokenRegistry({ expiresIn: 300 });
    const upstream = connect(server);
    expect((await upstream.getManifest('library/alpine', 'latest', accept))?.bytes).toEqual(manifestBytes);
    expect(await upstream.headManifest('library/alpine', 'latest', accept)).toBeDefined();
    const tokenRequests = server.requestsTo('/token');
    expect(tokenRequests).toHaveLength(1);
    expect(tokenRequests[0]?.query.get('service')).toBe('scripted');
    expect(tokenRequests[0]?.query.get('scope')).toBe('repository:library/alpine:pull');
    expect(tokenRequests[0]?.headers.authorization).toBeUndefined();
    // 401, retry with the token, then the token up front: no second challenge.
    expect(authorizations(server, manifestPath)).toEqual([undefined, 'Bearer tok-1', 'Bearer tok-1']);
  });

  it('merges 10 concurrent token fetches for one scope into one request', async () => {
    const server = await tokenRegistry({ tokenDelayMs: 100 });
    const upstream = connect(server);
    const results = await Promise.all(
      Array.from({ length: 10 }, () => upstream.getManifest('library/alpine', 'latest', accept)),
    );
    expect(results.every((m) => m?.bytes.equals(manifestBytes))).toBe(true);
    expect(server.requestsTo('/token')).toHaveLength(1);
  });

  it('renews a token 10 s before it expires, treating a short or missing expires_in as 60 s', async () => {
    let now = 1_700_000_000_000;
    const server = await tokenRegistry({ expiresIn: 5 });
    const upstream = connect(server, {}, { now: () => now });
    const pull = () => upstream.getManifest('library/alpine', 'latest', accept);
    await pull();
    now += 45_000; // 60 s lifetime (5 s clamped up) minus the 10 s margin: still good at 45 s
    await pull();
    expect(server.requestsTo('/token')).toHaveLength(1);
    now += 10_000; // 55 s: inside the margin, renewed up front without a 401
    await pull();
    expect(server.requestsTo('/token')).toHaveLength(2);
    expect(authorizations(server, manifestPath)).toEqual([undefined, 'Bearer tok-1', 'Bearer tok-1', 'Bearer tok-2']);
  });

  it('fetches a fresh token once when the registry refuses a cached one, then gives up with DENIED', async () => {
    const refused = 'tok-1';
    const server = await tokenRegistry({ accepted: (token) => token !== refused });
    const upstream = connect(server);
    await expect(upstream.getManifest('library/alpine', 'latest', accept)).rejects.toMatchObject({
      code: 'DENIED',
      status: 403,
      message: expect.stringContaining(server.host) as unknown,
    });
    // tok-1 is now refused on sight: the next pull drops it, fetches tok-2 and succeeds.
    expect(await upstream.getManifest('library/alpine', 'latest', accept)).toBeDefined();
    expect(authorizations(server, manifestPath)).toEqual([undefined, 'Bearer tok-1', 'Bearer tok-1', 'Bearer tok-2']);
  });

  it('sends configured credentials to the token service as Basic, with account', async () => {
    const server = await serve({
      '/token': (req, res) =>
        basicCredentials(req) === 'user:pass' ? sendToken(res, 'tok-user', 300) : sendBasicChallenge(res),
      [manifestPath]: (req, res, ctx) =>
        req.headers.authorization === 'Bearer tok-user'
          ? sendManifest(res, manifestBytes, mediaTypes.ociManifest)
          : sendBearerChallenge(res, { realm: `${ctx.url}/token`, service: 'scripted' }),
    });
    await connect(server, { username: 'user', password: 'pass' }).getManifest('library/alpine', 'latest', accept);
    expect(server.requestsTo('/token')[0]?.query.get('account')).toBe('user');
  });
});

/** A registry behind Basic auth accepting only `expected` ('user:pass'). */
function basicRegistry(expected: string): Promise<ScriptedRegistry> {
  return serve({
    [manifestPath]: (req: IncomingMessage, res) =>
      basicCredentials(req) === expected
        ? sendManifest(res, manifestBytes, mediaTypes.ociManifest)
        : sendBasicChallenge(res),
  });
}

describe('Basic credentials', () => {
  it('sends configured credentials after a Basic challenge, then up front', async () => {
    const server = await basicRegistry('user:pass');
    const upstream = connect(server, { username: 'user', password: 'pass' });
    await upstream.getManifest('library/alpine', 'latest', accept);
    await upstream.getManifest('library/alpine', 'latest', accept);
    const basic = `Basic ${Buffer.from('user:pass').toString('base64')}`;
    expect(authorizations(server, manifestPath)).toEqual([undefined, basic, basic]);
  });

  it('turns refused or missing credentials into DENIED naming the upstream', async () => {
    const server = await basicRegistry('user:pass');
    for (const upstream of [connect(server, { username: 'user', password: 'wrong' }), connect(server)]) {
      const error = await upstream.getManifest('library/alpine', 'latest', accept).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'DENIED', status: 403 });
      expect((error as Error).message).toContain(server.host);
    }
  });
});

// Round 6 of the planted-bug audit (docs/mutation-testing.md): a token cache keyed without the scope
// (one repository's token sent for another), expires_in read as tenths of seconds, and a SIGHUP
// reload that kept the tokens fetched with the old credentials all passed every test above.
describe('tokens per scope, lifetime and credential reloads', () => {
  /** A token service that issues tok-N for Basic `user:pass` or `other:pw` and remembers each token's scope. */
  async function scopedRegistry(options: { expiresIn?: number; tokenDelayMs?: number } = {}) {
    const scopes = new Map<string, string | null>();
    const server = await serve(async (req, res, ctx) => {
      if (ctx.request.path === '/token') {
        if (options.tokenDelayMs !== undefined) await sleep(options.tokenDelayMs);
        const token = `tok-${server.requestsTo('/token').length}`;
        scopes.set(token, ctx.request.query.get('scope'));
        return sendToken(res, token, options.expiresIn);
      }
      const repo = ctx.request.path.match(/^\/v2\/(.+)\/manifests\/latest$/)?.[1];
      const token = req.headers.authorization?.match(/^Bearer (tok-\d+)$/)?.[1];
      // Like a real registry, a token opens only the repository its scope names.
      if (repo === undefined || token === undefined || scopes.get(token) !== `repository:${repo}:pull`) {
        return sendBearerChallenge(res, { realm: `${ctx.url}/token`, service: 'scripted' });
      }
      sendManifest(res, manifestBytes, mediaTypes.ociManifest);
    });
    return server;
  }

  it('fetches a token per repository and never sends one repository’s token for another', async () => {
    const server = await scopedRegistry({ expiresIn: 300 });
    const upstream = connect(server);
    await upstream.getManifest('library/alpine', 'latest', accept);
    await upstream.getManifest('library/busybox', 'latest', accept);
    expect(server.requestsTo('/token').map((r) => r.query.get('scope'))).toEqual([
      'repository:library/alpine:pull',
      'repository:library/busybox:pull',
    ]);
    // The scheme is known after alpine's 401: busybox's first request carries its own token.
    expect(authorizations(server, '/v2/library/busybox/manifests/latest')).toEqual(['Bearer tok-2']);
  });

  it('reads expires_in in seconds: a 300 s token is still used after 250 s, renewed at 295 s', async () => {
    let now = 1_700_000_000_000;
    const server = await scopedRegistry({ expiresIn: 300 });
    const upstream = connect(server, {}, { now: () => now });
    const pull = () => upstream.getManifest('library/alpine', 'latest', accept);
    await pull();
    now += 250_000;
    await pull();
    expect(server.requestsTo('/token')).toHaveLength(1);
    now += 45_000; // 295 s: inside the 10 s margin
    await pull();
    expect(server.requestsTo('/token')).toHaveLength(2);
  });

  it('after a credential reload, asks for a new token with the new credentials instead of reusing the old one', async () => {
    const server = await scopedRegistry({ expiresIn: 300 });
    const upstream = connect(server, { username: 'user', password: 'pass' });
    await upstream.getManifest('library/alpine', 'latest', accept);
    upstream.reloadCredentials({ username: 'other', password: 'pw' });
    await upstream.getManifest('library/alpine', 'latest', accept);
    const tokenRequests = server.requestsTo('/token');
    expect(tokenRequests.map((r) => r.headers.authorization)).toEqual([
      `Basic ${Buffer.from('user:pass').toString('base64')}`,
      `Basic ${Buffer.from('other:pw').toString('base64')}`,
    ]);
    expect(authorizations(server, manifestPath).at(-1)).toBe('Bearer tok-2');
  });

  it('does not keep a token whose request was in flight with the old credentials when they were reloaded', async () => {
    const server = await scopedRegistry({ expiresIn: 300, tokenDelayMs: 300 });
    const upstream = connect(server, { username: 'user', password: 'pass' });
    const first = upstream.getManifest('library/alpine', 'latest', accept);
    const deadline = Date.now() + 10_000;
    while (server.requestsTo('/token').length === 0) {
      if (Date.now() > deadline) throw new Error('no token request within 10 s');
      await sleep(10);
    }
    upstream.reloadCredentials({ username: 'other', password: 'pw' });
    // Whoever waited for the old token still gets it; it is not kept for later requests.
    expect((await first)?.bytes).toEqual(manifestBytes);
    await upstream.getManifest('library/alpine', 'latest', accept);
    expect(server.requestsTo('/token').map((r) => r.headers.authorization)).toEqual([
      `Basic ${Buffer.from('user:pass').toString('base64')}`,
      `Basic ${Buffer.from('other:pw').toString('base64')}`,
    ]);
  });
});

describe('refused credentials', () => {
  // Round 6 (docs/mutation-testing.md): retrying a 401 with the very credentials it refused passed
  // every test, since the second 401 also ends as DENIED. Sending them again only costs the account
  // a failed login (registries lock accounts after a few).
  it('are not sent again: a rotated password costs one refused request, not two', async () => {
    let accepted = 'user:pass';
    const server = await serve({
      [manifestPath]: (req: IncomingMessage, res) =>
        basicCredentials(req) === accepted
          ? sendManifest(res, manifestBytes, mediaTypes.ociManifest)
          : sendBasicChallenge(res),
    });
    const upstream = connect(server, { username: 'user', password: 'pass' });
    await upstream.getManifest('library/alpine', 'latest', accept);
    expect(server.requestsTo(manifestPath)).toHaveLength(2);
    accepted = 'user:rotated';
    await expect(upstream.getManifest('library/alpine', 'latest', accept)).rejects.toMatchObject({
      code: 'DENIED',
      status: 403,
      message: expect.stringContaining('credentials refused') as unknown,
    });
    expect(server.requestsTo(manifestPath)).toHaveLength(3);
  });
});

// Round 10b of the hand-planted bugs (docs/mutation-testing.md): an expires_in taken whatever its
// JSON type passed every test. The spec's is a number of seconds; anything else is as if missing.
describe('an expires_in that is not a number', () => {
  it.each([
    ['a numeric string', '3600'],
    ['a word', 'soon'],
    ['null', null],
  ])('(%s) counts as missing: 60 s, renewed inside the 10 s margin', async (_what, expiresIn) => {
    let now = 1_700_000_000_000;
    const server = await serve({
      '/token': (_req, res, ctx) => sendJson(res, 200, { token: `tok-${ctx.count}`, expires_in: expiresIn }),
      [manifestPath]: (req, res, ctx) => {
        if (req.headers.authorization?.startsWith('Bearer tok-') !== true) {
          return sendBearerChallenge(res, { realm: `${ctx.url}/token`, service: 'scripted' });
        }
        sendManifest(res, manifestBytes, mediaTypes.ociManifest);
      },
    });
    const upstream = connect(server, {}, { now: () => now });
    const pull = () => upstream.getManifest('library/alpine', 'latest', accept);
    await pull();
    now += 45_000;
    await pull();
    expect(server.requestsTo('/token')).toHaveLength(1);
    now += 10_000;
    await pull();
    expect(server.requestsTo('/token')).toHaveLength(2);
  });
});
