/**
 * @module test/upstream-redirect-methods.test
 * What a redirect does to the method and the body of a request wharf sends upstream (the token
 * service's refresh-token POST, a copy's upload PUT): a 307 or 308 keeps both (RFC 9110 15.4.8/9),
 * only a 303 turns a POST into a GET without its body, and a streamed body, which cannot be sent
 * twice, is never followed anywhere: the redirect is refused with 502 and the target never asked.
 */
import { Readable } from 'node:stream';
import { Agent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { OciError } from '../src/oci/errors.js';
import { AddressGuard } from '../src/upstream/address-guard.js';
import { silentLogger } from '../src/upstream/logger.js';
import { resolveTimeouts } from '../src/upstream/timeouts.js';
import { UpstreamHttp } from '../src/upstream/upstream-http.js';
import { startScriptedRegistry, type ScriptedRegistry } from './support/scripted-registry.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A server whose /start redirects with `status` to /next, which answers 200 "done". */
async function redirecting(status: number): Promise<{ server: ScriptedRegistry; http: UpstreamHttp }> {
  const server = await startScriptedRegistry({
    '/start': (_req, res) => {
      res.writeHead(status, { Location: '/next', 'Content-Length': '0' });
      res.end();
    },
    '/next': (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '4' });
      res.end('done');
    },
  });
  cleanups.push(() => server.close());
  const agent = new Agent();
  cleanups.push(() => agent.close());
  const timeouts = resolveTimeouts({ headersMs: 20_000, bodyIdleMs: 20_000 });
  const http = new UpstreamHttp(agent, timeouts, silentLogger, new AddressGuard(new URL(server.url)));
  return { server, http };
}

describe('redirects of a request with a body', () => {
  for (const status of [307, 308]) {
    it(`a ${status} keeps a POST a POST, with its body`, async () => {
      const { server, http } = await redirecting(status);
      const response = await http.send({
        method: 'POST',
        url: new URL(`${server.url}/start`),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=refresh_token&refresh_token=r',
        trustedOrigin: server.url,
      });
      expect(response.status).toBe(200);
      expect(await response.body.text()).toBe('done');
      const next = server.requestsTo('/next');
      expect(next.map((r) => r.method)).toEqual(['POST']);
      expect(next[0]?.body.toString('utf8')).toBe('grant_type=refresh_token&refresh_token=r');
    });
  }

  it('a 303 turns a POST into a GET without the body', async () => {
    const { server, http } = await redirecting(303);
    const response = await http.send({
      method: 'POST',
      url: new URL(`${server.url}/start`),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=refresh_token&refresh_token=r',
      trustedOrigin: server.url,
    });
    expect(response.status).toBe(200);
    await response.body.dump();
    const next = server.requestsTo('/next');
    expect(next.map((r) => r.method)).toEqual(['GET']);
    expect(next[0]?.body.byteLength).toBe(0);
    expect(next[0]?.headers['content-type']).toBeUndefined();
  });

  for (const status of [302, 307, 308]) {
    it(`a streamed PUT is never followed on a ${status}: 502, and the target is never asked`, async () => {
      const { server, http } = await redirecting(status);
      const error = await http
        .send({
          method: 'PUT',
          url: new URL(`${server.url}/start`),
          headers: { 'content-type': 'application/octet-stream' },
          body: Readable.from([Buffer.from('layer bytes')]),
          trustedOrigin: server.url,
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error).toBeInstanceOf(OciError);
      expect((error as OciError).status).toBe(502);
      expect((error as OciError).message).toBe(`${server.host}: redirected a streamed upload: not followed`);
      expect(server.requestsTo('/next')).toEqual([]);
    });
  }
});
