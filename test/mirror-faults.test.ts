/**
 * The mirror facing an upstream that misbehaves on cue (a scripted loopback
 * server): wrong bytes, truncated or reset bodies, stalls, token auth, 429,
 * 5xx and a redirect to another host. Each time the client gets an error or
 * the right bytes, never a complete wrong body, and nothing unverified is kept.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cutOrThrow } from './support/cut-or-timeout.js';
import { call, errorCode, sha256 } from './support/http.js';
import {
  resetMidBody,
  sendBearerChallenge,
  sendBytes,
  sendRedirect,
  sendServerError,
  sendToken,
  sendTooManyRequests,
  stallBeforeHeaders,
  stallMidBody,
  startScriptedRegistry,
  type ScriptedRegistry,
} from './support/scripted-registry.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const host = 'faulty.example.test';
const repos = [
  'wrong',
  'wrong-slowly',
  'truncated',
  'reset',
  'stall',
  'slow',
  'limited',
  'broken',
  'redirected',
  'no-length',
] as const;
type Repo = (typeof repos)[number];
// Each case has its own blob: fills are shared by digest, so cases must not share one.
const blobs = new Map<Repo, Buffer>(
  repos.map((repo, i) => [repo, Buffer.alloc(repo === 'wrong-slowly' ? 4 * 1024 * 1024 : 300_000, i + 1)]),
);
const blobOf = (repo: Repo): Buffer => blobs.get(repo) ?? Buffer.alloc(0);
const digestOf = (repo: Repo): string => sha256(blobOf(repo));
const blobPath = (repo: Repo): string => `/v2/${repo}/blobs/${digestOf(repo)}`;

let upstream: ScriptedRegistry;
let cdn: ScriptedRegistry;
let wharf: WharfHandle;

beforeAll(async () => {
  cdn = await startScriptedRegistry({ '/signed/blob': (_req, res) => sendBytes(res, blobOf('redirected')) });
  upstream = await startScriptedRegistry({
    [blobPath('wrong')]: (_req, res) => sendBytes(res, Buffer.alloc(300_000, 99)),
    // Wrong bytes trickling in: the client is mid-body when the digest check fails at the end.
    [blobPath('wrong-slowly')]: (_req, res) => {
      const wrongBytes = Buffer.alloc(blobOf('wrong-slowly').length, 98);
      res.writeHead(200, { 'Content-Length': String(wrongBytes.length) });
      let offset = 0;
      const step = (): void => {
        if (offset >= wrongBytes.length) {
          res.end();
          return;
        }
        res.write(wrongBytes.subarray(offset, offset + 256 * 1024));
        offset += 256 * 1024;
        setTimeout(step, 10);
      };
      step();
    },
    [blobPath('truncated')]: (_req, res) => {
      res.writeHead(200, { 'Content-Length': String(blobOf('truncated').length) });
      res.end(blobOf('truncated').subarray(0, 1000));
    },
    [blobPath('reset')]: (_req, res) => resetMidBody(res, blobOf('reset'), 100_000),
    [blobPath('stall')]: (_req, res) => stallMidBody(res, blobOf('stall'), 1000),
    [blobPath('slow')]: (_req, res) => stallBeforeHeaders(res),
    [blobPath('limited')]: (_req, res) => sendTooManyRequests(res, '42'),
    [blobPath('broken')]: (_req, res) => sendServerError(res, 500),
    [blobPath('redirected')]: (req, res, ctx) =>
      req.headers.authorization === 'Bearer secret-token'
        ? sendRedirect(res, `${cdn.url}/signed/blob`)
        : sendBearerChallenge(res, {
            realm: `${ctx.url}/token`,
            service: 'scripted',
            scope: 'repository:redirected:pull',
          }),
    '/token': (_req, res) => sendToken(res, 'secret-token', 300),
    // A HEAD answer without a length: the size a client would be told is unknown.
    [blobPath('no-length')]: (req, res) => {
      if (req.method !== 'HEAD') return sendBytes(res, blobOf('no-length'));
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Transfer-Encoding': 'chunked' });
      res.end();
    },
  });
  wharf = await startWharf({
    upstreams: [{ host, url: upstream.url, timeouts: { connectMs: 1000, headersMs: 1000, bodyIdleMs: 1000 } }],
  });
});

afterAll(async () => {
  await wharf?.close();
  await upstream?.close();
  await cdn?.close();
});

/** GETs a blob through wharf and reports how the answer ended. */
async function fetchBlob(
  repo: Repo,
): Promise<{ status: number; outcome: 'complete' | 'cut'; digest?: string; code?: string }> {
  let response;
  try {
    response = await request(`${wharf.url}/v2/${host}/${repo}/blobs/${digestOf(repo)}`, {
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
  } catch (error) {
    // The connection was cut before the status line.
    return { status: 0, outcome: cutOrThrow(error, `GET ${repo} blob, before the status line`) };
  }
  if (response.statusCode !== 200) {
    const body = (await response.body.json()) as { errors: { code: string }[] };
    return { status: response.statusCode, outcome: 'complete', code: body.errors[0]?.code };
  }
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of response.body) chunks.push(chunk as Buffer);
  } catch (error) {
    return { status: 200, outcome: cutOrThrow(error, `GET ${repo} blob, mid-body`) };
  }
  return { status: 200, outcome: 'complete', digest: sha256(Buffer.concat(chunks)) };
}

/** No index row, no file, no temp file: the failed fill left nothing behind. */
async function expectNothingKept(repo: Repo): Promise<void> {
  expect(wharf.server.store.contentSize(digestOf(repo) as never)).toBeUndefined();
  expect((await readdir(join(wharf.dataDir, 'tmp'))).filter((f) => f.endsWith('.part'))).toEqual([]);
}

describe('upstream faults while filling a blob', () => {
  it.each(['wrong', 'truncated', 'reset', 'stall'] as const)(
    '%s body: the client gets an error (502, or a cut connection once bytes flowed), and nothing is kept',
    async (repo) => {
      const failedBefore = wharf.server.proxy.fills.stats.failed;
      const result = await fetchBlob(repo);
      // Never a complete body: a fill that failed before the first byte answers 502 UNAVAILABLE,
      // one that fails later cuts the connection.
      if (result.outcome === 'complete') expect(result).toMatchObject({ status: 502, code: 'UNAVAILABLE' });
      else expect(result.outcome).toBe('cut');
      await wharf.server.proxy.settle();
      await expectNothingKept(repo);
      expect(wharf.server.proxy.fills.stats.failed).toBe(failedBefore + 1);
    },
  );

  it('wrong bytes arriving slowly: the client receives all but the held-back end, then the cut', async () => {
    const failedBefore = wharf.server.proxy.fills.stats.failed;
    const result = await fetchBlob('wrong-slowly');
    // 'cut' only from a reset or premature close: a clean end() short of Content-Length would leave
    // the client waiting for its timeout, and fetchBlob throws on that.
    expect(result).toEqual({ status: 200, outcome: 'cut' });
    await wharf.server.proxy.settle();
    expect(wharf.server.proxy.fills.stats.failed).toBe(failedBefore + 1);
    await expectNothingKept('wrong-slowly');
  });

  it('slow first byte: the upstream timeout fires and the client gets 503 UNAVAILABLE', async () => {
    const result = await fetchBlob('slow');
    expect(result).toMatchObject({ status: 503, code: 'UNAVAILABLE' });
  });

  it('429 is passed on as TOOMANYREQUESTS with Retry-After', async () => {
    const response = await call(wharf.url, `/v2/${host}/limited/blobs/${digestOf('limited')}`);
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('42');
    expect(await errorCode(response)).toBe('TOOMANYREQUESTS');
  });

  it('500 becomes 503 UNAVAILABLE', async () => {
    const response = await call(wharf.url, `/v2/${host}/broken/blobs/${digestOf('broken')}`);
    expect(response.status).toBe(503);
    expect(await errorCode(response)).toBe('UNAVAILABLE');
  });

  it('follows a token challenge and a redirect to another host without sending it the token', async () => {
    const result = await fetchBlob('redirected');
    expect(result).toEqual({ status: 200, outcome: 'complete', digest: digestOf('redirected') });
    expect(upstream.requestsTo('/token')).toHaveLength(1);
    const atCdn = cdn.requestsTo('/signed/blob');
    expect(atCdn).toHaveLength(1);
    expect(atCdn[0]?.headers.authorization).toBeUndefined();
    // Now kept: served again without the upstream.
    const before = upstream.requests.length;
    expect(await fetchBlob('redirected')).toMatchObject({ digest: digestOf('redirected') });
    expect(upstream.requests.length).toBe(before);
  });

  // Round 7a (docs/mutation-testing.md): a HEAD passed on without the upstream's length passed every test.
  it('a blob HEAD the upstream answers without Content-Length is 502, never a 200 of unknown size', async () => {
    const path = `/v2/${host}/no-length/blobs/${digestOf('no-length')}`;
    const head = await call(wharf.url, path, { method: 'HEAD' });
    expect(head.status).toBe(502);
    expect(head.headers.get('content-length')).not.toBe(String(blobOf('no-length').length));
    // The GET that follows fetches the bytes, and the next HEAD answers from them.
    const result = await fetchBlob('no-length');
    expect(result).toEqual({ status: 200, outcome: 'complete', digest: digestOf('no-length') });
    // The blob is linked just after its last byte went out: wait for the fill to be recorded.
    await wharf.server.proxy.settle();
    const again = await call(wharf.url, path, { method: 'HEAD' });
    expect(again.status).toBe(200);
    expect(again.headers.get('content-length')).toBe(String(blobOf('no-length').length));
  });
});
