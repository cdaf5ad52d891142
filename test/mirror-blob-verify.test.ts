/**
 * Only verified bytes complete a response (issue 8, finding 6), through the
 * HTTP surface against a scripted upstream: a Range request on a blob whose
 * fill is still running waits for the digest check, and an empty body is
 * checked against its digest like any other.
 */
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cutOrThrow } from './support/cut-or-timeout.js';
import { call, errorCode, sha256 } from './support/http.js';
import { withDeadline } from './support/run.js';
import { sendBytes, startScriptedRegistry, type ScriptedRegistry } from './support/scripted-registry.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const host = 'verify.example.test';
const size = 3 * 1024 * 1024;
/** The upstream sends this much (past wharf's first temp-file write), then waits for the test. */
const sentFirst = 2 * 1024 * 1024;
const good = randomBytes(size);
const wrong = randomBytes(size);
const empty = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

let upstream: ScriptedRegistry;
let wharf: WharfHandle;
const gates = new Map<string, () => void>();

/** Sends the first part of `bytes`, then the rest once the test opens the gate named `repo`. */
function gated(repo: string, bytes: Buffer) {
  return (_req: unknown, res: ServerResponse): void => {
    res.writeHead(200, { 'Content-Length': String(bytes.byteLength) });
    res.write(bytes.subarray(0, sentFirst));
    gates.set(repo, () => res.end(bytes.subarray(sentFirst)));
  };
}

async function openGate(repo: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!gates.has(repo)) {
    if (Date.now() > deadline) throw new Error(`deadline: upstream GET for ${repo} never came`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  gates.get(repo)?.();
}

beforeAll(async () => {
  upstream = await startScriptedRegistry({
    [`/v2/ranged-good/blobs/${sha256(good)}`]: gated('ranged-good', good),
    // Wrong bytes under the digest of `good`'s twin: the check fails at the end.
    [`/v2/ranged-wrong/blobs/${sha256(good.subarray(1))}`]: gated('ranged-wrong', wrong),
    // An upstream announcing Content-Length: 0 for a blob that is not empty.
    [`/v2/zero/blobs/${sha256('not empty')}`]: (_req, res) => sendBytes(res, ''),
    [`/v2/zero/blobs/${empty}`]: (_req, res) => sendBytes(res, ''),
  });
  wharf = await startWharf({
    upstreams: [{ host, url: upstream.url, timeouts: { connectMs: 5000, headersMs: 10_000, bodyIdleMs: 10_000 } }],
  });
});

afterAll(async () => {
  for (const open of gates.values()) open();
  await wharf?.close();
  await upstream?.close();
});

/** A GET through wharf: its status, the body if it ended cleanly, or 'cut'. */
async function get(
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Buffer | 'cut' }> {
  let response;
  try {
    response = await request(`${wharf.url}${path}`, { headers, headersTimeout: 20_000, bodyTimeout: 20_000 });
  } catch (error) {
    return { status: 0, body: cutOrThrow(error, `GET ${path}, before the status line`) };
  }
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of response.body) chunks.push(chunk as Buffer);
  } catch (error) {
    return { status: response.statusCode, body: cutOrThrow(error, `GET ${path}, mid-body`) };
  }
  return { status: response.statusCode, body: Buffer.concat(chunks) };
}

/** Resolves with the promise's value, or 'pending' if it has not settled within `ms`. */
function settledWithin<T>(promise: Promise<T>, ms: number): Promise<T | 'pending'> {
  return Promise.race([promise, new Promise<'pending'>((resolve) => setTimeout(() => resolve('pending'), ms))]);
}

describe('a Range request on a blob being filled', () => {
  // Before the fix: a complete 206 (with a one-year Cache-Control) left as soon as the range's bytes
  // were in the temp file, before the digest was checked.
  it('gets no byte before the digest matched, then the right part', async () => {
    const digest = sha256(good);
    const ranged = get(`/v2/${host}/ranged-good/blobs/${digest}`, { range: 'bytes=100-199' });
    expect(await settledWithin(ranged, 1500)).toBe('pending');
    await openGate('ranged-good');
    const result = await withDeadline(ranged, 20_000, 'ranged GET');
    expect(result.status).toBe(206);
    expect(result.body).toEqual(good.subarray(100, 200));
  });

  it('gets 502 UNAVAILABLE (or a cut), never a clean 206, when the bytes turn out wrong', async () => {
    const digest = sha256(good.subarray(1));
    const ranged = get(`/v2/${host}/ranged-wrong/blobs/${digest}`, { range: 'bytes=0-99' });
    expect(await settledWithin(ranged, 1500)).toBe('pending');
    await openGate('ranged-wrong');
    const result = await withDeadline(ranged, 20_000, 'ranged GET');
    expect(result.body === 'cut' || result.status === 502).toBe(true);
    if (result.body !== 'cut') {
      const error = JSON.parse(result.body.toString()) as { errors: { code: string }[] };
      expect(error.errors[0]?.code).toBe('UNAVAILABLE');
    }
    await wharf.server.proxy.settle();
    expect(wharf.server.store.contentSize(digest as never)).toBeUndefined();
  });
});

describe('an empty upstream body', () => {
  // Before the fix: relayed as a clean 200 with an empty body, never hashed.
  it('is 502 UNAVAILABLE when the digest is not the empty digest, and nothing is kept', async () => {
    const digest = sha256('not empty');
    const response = await call(wharf.url, `/v2/${host}/zero/blobs/${digest}`);
    expect(response.status).toBe(502);
    expect(await errorCode(response)).toBe('UNAVAILABLE');
    await wharf.server.proxy.settle();
    expect(wharf.server.store.contentSize(digest as never)).toBeUndefined();
  });

  it('is a clean empty 200 for the empty digest, and kept', async () => {
    const response = await call(wharf.url, `/v2/${host}/zero/blobs/${empty}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-length')).toBe('0');
    expect((await response.arrayBuffer()).byteLength).toBe(0);
    await wharf.server.proxy.settle();
    expect(wharf.server.store.contentSize(empty as never)).toBe(0);
  });
});
