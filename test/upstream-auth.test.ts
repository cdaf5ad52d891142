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
