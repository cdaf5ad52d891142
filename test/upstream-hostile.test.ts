/**
 * A hostile upstream cannot steer wharf (issue 8, finding 5) nor speak to its clients through
 * error bodies. The upstream runs on loopback, as every test server does; `network: 'public'`
 * gives it the guard a real public upstream gets. Each refusal is paired with the same answer
 * from an upstream left on its loopback network, which does reach the trap: that control shows
 * the trap was reachable, so its count of 0 is the guard's doing.
 */
import { lookup } from 'node:dns';
import { Agent, request } from 'undici';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Logger } from '../src/oci/logger.js';
import { mediaTypes } from '../src/oci/media-types.js';
import { AddressGuard, forbiddenAddressCode } from '../src/upstream/address-guard.js';
import {
  sendBearerChallenge,
  sendBytes,
  sendError,
  sendManifest,
  sendRedirect,
  sendToken,
  type ScriptedRegistry,
} from './support/scripted-registry.js';
import { makeTestCertificate, type TestCertificate } from './support/test-certificate.js';
import { upstreamHarness } from './support/upstream-harness.js';

const accept = [mediaTypes.ociManifest];
const manifestPath = '/v2/a/b/manifests/latest';
const trapManifest = JSON.stringify({ schemaVersion: 2, mediaType: mediaTypes.ociManifest, config: {}, layers: [] });
const credentials = { username: 'user', password: 'secret' };

const { serve, connect, defer } = upstreamHarness();

/** A server that would happily serve a manifest and a token to anyone who asks. */
function startTrap(address: '127.0.0.1' | '::1' = '127.0.0.1', tls?: TestCertificate): Promise<ScriptedRegistry> {
  return serve(
    (req, res) =>
      req.url?.startsWith('/token') === true
        ? sendToken(res, 'trap-token', 300)
        : sendManifest(res, trapManifest, mediaTypes.ociManifest),
    { address, ...(tls === undefined ? {} : { tls }) },
  );
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

let ipv6Loopback = false;
beforeAll(async () => {
  ipv6Loopback = await startTrap('::1').then(
    async (server) => (await server.close(), true),
    () => false,
  );
  if (!ipv6Loopback) console.warn('IPv6 loopback (::1) unavailable: the [::1] redirect case is not run');
});

describe('redirects of a public upstream', () => {
  const spellings: [string, '127.0.0.1' | '::1'][] = [
    ['127.0.0.1', '127.0.0.1'],
    ['0x7f000001', '127.0.0.1'],
    ['2130706433', '127.0.0.1'],
    ['127.1', '127.0.0.1'],
    ['[::ffff:127.0.0.1]', '127.0.0.1'],
    ['localhost', '127.0.0.1'],
    ['[::1]', '::1'],
  ];

  it.each(spellings)('302 to http://%s:<trap port>/ is refused; the trap is never contacted', async (spelling, at) => {
    if (at === '::1' && !ipv6Loopback) return;
    const trap = await startTrap(at);
    const port = new URL(trap.url).port;
    const registry = await serve({
      [manifestPath]: (_req, res) => sendRedirect(res, `http://${spelling}:${port}/v2/a/b/manifests/latest`, 302),
    });

    const error = await rejection(connect(registry, {}, { network: 'public' }).getManifest('a/b', 'latest', accept));
    expect(error).toMatchObject({ code: 'UNAVAILABLE', status: 502 });
    expect(trap.requests).toHaveLength(0);

    // Control: an upstream on loopback may redirect there, and the trap answers.
    const got = await connect(registry).getManifest('a/b', 'latest', accept);
    expect(got?.bytes.toString()).toBe(trapManifest);
    expect(trap.requests).toHaveLength(1);
  });

  it('a name resolving to loopback is refused when wharf connects, for hosts other than the upstream', async () => {
    const trap = await startTrap();
    const port = new URL(trap.url).port;
    const localhost = await new Promise<string>((done, fail) =>
      lookup('localhost', { family: 4 }, (error, address) => (error === null ? done(address) : fail(error))),
    );
    expect(localhost).toBe('127.0.0.1');
    // The Agent UpstreamRegistry builds resolves through guard.lookup; the URL check would stop
    // 'localhost' by name first, so the Agent is driven directly to reach the resolver.
    const strict = new Agent({
      connect: { lookup: new AddressGuard(new URL('https://registry.example'), 'public').lookup },
    });
    const loose = new Agent({ connect: { lookup: new AddressGuard(new URL(trap.url)).lookup } });
    defer(async () => void (await Promise.all([strict.close(), loose.close()])));

    const target = `http://localhost:${port}/v2/`;
    expect(await rejection(request(target, { dispatcher: strict }))).toMatchObject({ code: forbiddenAddressCode });
    expect(trap.requests).toHaveLength(0);
    const control = await request(target, { dispatcher: loose });
    await control.body.dump();
    expect(control.statusCode).toBe(200);
    expect(trap.requests).toHaveLength(1);
  });
});

describe('token realms of a public upstream', () => {
  it('a realm on a loopback address is refused and gets no credentials', async () => {
    const trap = await startTrap();
    const registry = await serve({
      [manifestPath]: (_req, res) => sendBearerChallenge(res, { realm: `${trap.url}/token`, service: 'x' }),
    });

    const error = await rejection(
      connect(registry, credentials, { network: 'public' }).getManifest('a/b', 'latest', accept),
    );
    expect(error).toMatchObject({ code: 'UNAVAILABLE', status: 502 });
    expect(trap.requests).toHaveLength(0);

    // Control: from an upstream on loopback, the realm is asked, with the Basic credentials.
    await rejection(connect(registry, credentials).getManifest('a/b', 'latest', accept));
    expect(trap.requestsTo('/token').map((r) => r.headers.authorization)).toEqual([
      `Basic ${Buffer.from('user:secret').toString('base64')}`,
    ]);
  });

  it("a realm on the upstream's own host that redirects to loopback is refused there", async () => {
    const trap = await startTrap();
    const registry = await serve({
      [manifestPath]: (_req, res, ctx) => sendBearerChallenge(res, { realm: `${ctx.url}/token`, service: 'x' }),
      '/token': (_req, res) => sendRedirect(res, `${trap.url}/token`, 302),
    });

    const error = await rejection(
      connect(registry, credentials, { network: 'public' }).getManifest('a/b', 'latest', accept),
    );
    expect(error).toMatchObject({ code: 'UNAVAILABLE', status: 502 });
    expect(registry.requestsTo('/token')).toHaveLength(1);
    expect(trap.requests).toHaveLength(0);
  });
});

describe('an https upstream', () => {
  let certificate: TestCertificate;
  beforeAll(async () => {
    certificate = await makeTestCertificate();
  }, 60_000);

  /** An https upstream on loopback, reached through an Agent trusting the test certificate. */
  async function httpsRegistry(
    script: Parameters<typeof serve>[0],
  ): Promise<{ server: ScriptedRegistry; agent: Agent }> {
    const server = await serve(script, { tls: certificate });
    const agent = new Agent({ connect: { ca: certificate.cert } });
    defer(() => agent.close());
    return { server, agent };
  }

  it('a redirect from https to http is refused; the same redirect over https is followed', async () => {
    const trap = await startTrap();
    const httpsTrap = await startTrap('127.0.0.1', certificate);
    const { server, agent } = await httpsRegistry({
      [manifestPath]: (_req, res) => sendRedirect(res, `${trap.url}${manifestPath}`, 302),
      '/v2/a/b/manifests/v1': (_req, res) => sendRedirect(res, `${httpsTrap.url}${manifestPath}`, 302),
    });
    const upstream = connect(server, {}, { dispatcher: agent });

    expect(await rejection(upstream.getManifest('a/b', 'latest', accept))).toMatchObject({
      code: 'UNAVAILABLE',
      status: 502,
    });
    expect(trap.requests).toHaveLength(0);
    expect((await upstream.getManifest('a/b', 'v1', accept))?.bytes.toString()).toBe(trapManifest);
    expect(httpsTrap.requests).toHaveLength(1);
  });

  it('a plain-http realm is refused and gets no credentials', async () => {
    const trap = await startTrap();
    const { server, agent } = await httpsRegistry({
      [manifestPath]: (_req, res) => sendBearerChallenge(res, { realm: `${trap.url}/token`, service: 'x' }),
    });
    const error = await rejection(
      connect(server, credentials, { dispatcher: agent }).getManifest('a/b', 'latest', accept),
    );
    expect(error).toMatchObject({ code: 'UNAVAILABLE', status: 502 });
    expect(trap.requests).toHaveLength(0);
  });
});

describe('upstream error bodies', () => {
  const secret = 'hunter2-db-password';

  function recordingLogger(): { logger: Logger; records: { level: string; obj: object; msg?: string }[] } {
    const records: { level: string; obj: object; msg?: string }[] = [];
    const record =
      (level: string) =>
      (obj: object, msg?: string): void =>
        void records.push({ level, obj, ...(msg === undefined ? {} : { msg }) });
    return {
      records,
      logger: { debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') },
    };
  }

  it.each([
    [500, 'UNAVAILABLE', 503],
    [400, 'UNAVAILABLE', 502],
    [403, 'DENIED', 403],
    [429, 'TOOMANYREQUESTS', 429],
  ])('a %i naming a secret → %s %i without it; the log keeps the upstream text', async (status, code, answered) => {
    const registry = await serve({
      [manifestPath]: (_req, res) =>
        sendError(res, status, 'UNKNOWN', `connect to postgres://admin:${secret}@db failed`),
    });
    const { logger, records } = recordingLogger();
    const error = await rejection(connect(registry, {}, { logger }).getManifest('a/b', 'latest', accept));
    expect(error).toMatchObject({ code, status: answered, detail: { upstream: registry.host, status } });
    const seen = JSON.stringify({ message: (error as Error).message, body: (error as { toBody(): unknown }).toBody() });
    expect(seen).not.toContain(secret);
    expect(seen).toContain(registry.host);
    expect(seen).toContain('GET manifest a/b:latest');
    expect(JSON.stringify(records.filter((r) => r.msg === 'upstream error answer'))).toContain(secret);
  });

  it('a non-JSON error body and a token service error stay out of the error too', async () => {
    const auth = await serve({ '/token': (_req, res) => sendBytes(res, `<html>${secret}</html>`, {}, 500) });
    const registry = await serve({
      [manifestPath]: (_req, res) => sendBearerChallenge(res, { realm: `${auth.url}/token`, service: 'x' }),
      '/v2/a/b/manifests/other': (_req, res) => sendBytes(res, `oops ${secret}`, {}, 502),
    });
    const upstream = connect(registry);
    for (const reference of ['latest', 'other']) {
      const error = await rejection(upstream.getManifest('a/b', reference, accept));
      expect(error).toMatchObject({ code: 'UNAVAILABLE' });
      for (let e: unknown = error; e instanceof Error; e = e.cause) {
        expect(JSON.stringify({ message: e.message, detail: (e as { detail?: unknown }).detail })).not.toContain(
          secret,
        );
      }
    }
  });
});
