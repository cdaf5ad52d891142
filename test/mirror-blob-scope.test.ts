/**
 * A blob is served under a mirrored name only when it was fetched for that
 * name or that name's upstream confirms it has it (issue 8, finding 4): bytes
 * held for another name, mirrored or pushed, are linked after a HEAD to the
 * upstream, never served on their own say-so, and never downloaded twice.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, errorCode, pushBlob, sha256 } from './support/http.js';
import { withDeadline } from './support/run.js';
import { sendBytes, sendError, startScriptedRegistry, type ScriptedRegistry } from './support/scripted-registry.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const host = 'scope.example.test';
const blob = randomBytes(200_000);
const digest = sha256(blob);
const pushed = randomBytes(50_000);
const slow = randomBytes(3 * 1024 * 1024);
const viaNs = randomBytes(70_000);
/** Names whose upstream has each blob; any other name answers 404. */
const holders = new Map<string, string[]>([
  [digest, ['a', 'c', 'offline-a']],
  [sha256(pushed), ['has-pushed']],
  [sha256(slow), ['slow-a']],
  [sha256(viaNs), ['ns-a']],
]);

let upstream: ScriptedRegistry;
let wharf: WharfHandle;
let releaseSlow: (() => void) | undefined;

beforeAll(async () => {
  upstream = await startScriptedRegistry((req, res, ctx) => {
    const match = /^\/v2\/(.+)\/blobs\/(sha256:[0-9a-f]{64})$/.exec(ctx.request.path);
    const [repo = '', wanted = ''] = match?.slice(1) ?? [];
    if (!(holders.get(wanted) ?? []).includes(repo)) return sendError(res, 404, 'BLOB_UNKNOWN');
    const bytes = [blob, pushed, slow, viaNs].find((b) => sha256(b) === wanted) ?? Buffer.alloc(0);
    if (wanted === sha256(slow) && req.method === 'GET') return stallThenSend(res, bytes);
    sendBytes(res, bytes);
  });
  wharf = await startWharf({ upstreams: [{ host, url: upstream.url }] });
});

afterAll(async () => {
  releaseSlow?.();
  await wharf?.close();
  await upstream?.close();
});

function stallThenSend(res: ServerResponse, bytes: Buffer): void {
  res.writeHead(200, { 'Content-Length': String(bytes.byteLength) });
  res.write(bytes.subarray(0, 1024 * 1024));
  releaseSlow = () => res.end(bytes.subarray(1024 * 1024));
}

const count = (method: string, repo: string, of = digest): number =>
  upstream.requests.filter((r) => r.method === method && r.path === `/v2/${repo}/blobs/${of}`).length;

describe('a blob held for one mirrored name, asked for under another', () => {
  it('is fetched for name A', async () => {
    const response = await call(wharf.url, `/v2/${host}/a/blobs/${digest}`);
    expect(response.status).toBe(200);
    expect(sha256(Buffer.from(await response.arrayBuffer()))).toBe(digest);
    await wharf.server.proxy.settle();
    expect(count('GET', 'a')).toBe(1);
  });

  // Before the fix: 200 from the copy fetched for A, whatever B's upstream says.
  it('is BLOB_UNKNOWN under name B, whose upstream does not have it (GET and HEAD)', async () => {
    const got = await call(wharf.url, `/v2/${host}/b/blobs/${digest}`);
    expect(got.status).toBe(404);
    expect(await errorCode(got)).toBe('BLOB_UNKNOWN');
    const head = await call(wharf.url, `/v2/${host}/b/blobs/${digest}`, { method: 'HEAD' });
    expect(head.status).toBe(404);
    expect(count('GET', 'b')).toBe(0);
    // The upstream's "not found" is remembered briefly: the HEAD after the GET did not ask again.
    expect(count('HEAD', 'b')).toBe(1);
  });

  it('is served under name C, whose upstream has it, after one HEAD and no second download', async () => {
    const response = await call(wharf.url, `/v2/${host}/c/blobs/${digest}`);
    expect(response.status).toBe(200);
    expect(sha256(Buffer.from(await response.arrayBuffer()))).toBe(digest);
    expect(count('HEAD', 'c')).toBe(1);
    expect(count('GET', 'c')).toBe(0);
    // Now linked to C: served locally.
    expect((await call(wharf.url, `/v2/${host}/c/blobs/${digest}`, { method: 'HEAD' })).status).toBe(200);
    expect(count('HEAD', 'c')).toBe(1);
  });
});

describe('a blob pushed to a local repository', () => {
  // Before the fix: served under any mirrored name, since the store held it.
  it('is not served under a mirrored name whose upstream does not have it', async () => {
    const pushedDigest = await pushBlob(wharf.url, 'team/pushed', pushed);
    const response = await call(wharf.url, `/v2/${host}/anything/blobs/${pushedDigest}`);
    expect(response.status).toBe(404);
    expect(await errorCode(response)).toBe('BLOB_UNKNOWN');
    const confirmed = await call(wharf.url, `/v2/${host}/has-pushed/blobs/${pushedDigest}`);
    expect(confirmed.status).toBe(200);
    expect(sha256(Buffer.from(await confirmed.arrayBuffer()))).toBe(pushedDigest);
    expect(count('GET', 'has-pushed', pushedDigest)).toBe(0);
  });
});

describe('a blob still being filled for another name', () => {
  // Before the fix: a request under any name joined the fill.
  it('is not handed to a name whose upstream does not have it', async () => {
    const slowDigest = sha256(slow);
    const first = call(wharf.url, `/v2/${host}/slow-a/blobs/${slowDigest}`);
    const deadline = Date.now() + 10_000;
    while (releaseSlow === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const other = await call(wharf.url, `/v2/${host}/slow-b/blobs/${slowDigest}`);
    expect(other.status).toBe(404);
    releaseSlow?.();
    const response = await withDeadline(first, 20_000, 'the fill for slow-a');
    expect(sha256(Buffer.from(await response.arrayBuffer()))).toBe(slowDigest);
    expect(count('GET', 'slow-a', slowDigest)).toBe(1);
  });
});

describe('a blob fetched through ?ns=', () => {
  // The client's name (ns-a) is a local name here: the blob belongs to scope.example.test/ns-a only.
  it('is linked under the mirrored name, never under the local name the client sent', async () => {
    const nsDigest = sha256(viaNs);
    const fetched = await call(wharf.url, `/v2/ns-a/blobs/${nsDigest}?ns=${host}`);
    expect(fetched.status).toBe(200);
    expect(sha256(Buffer.from(await fetched.arrayBuffer()))).toBe(nsDigest);
    await wharf.server.proxy.settle();
    expect(count('GET', 'ns-a', nsDigest)).toBe(1);
    // The local repository ns-a holds nothing: a fill must not hand it the mirrored bytes.
    const local = await call(wharf.url, `/v2/ns-a/blobs/${nsDigest}`);
    expect(local.status).toBe(404);
    expect(await errorCode(local)).toBe('BLOB_UNKNOWN');
    // Under the mirrored name, by either form, it is local now: no upstream request at all.
    const before = upstream.requests.length;
    for (const path of [`/v2/${host}/ns-a/blobs/${nsDigest}`, `/v2/ns-a/blobs/${nsDigest}?ns=${host}`]) {
      const again = await call(wharf.url, path, { method: 'HEAD' });
      expect(again.status).toBe(200);
    }
    expect(upstream.requests.length).toBe(before);
  });
});

describe('offline', () => {
  it('serves a blob under the names it is linked to only', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'wharf-scope-offline-'));
    try {
      const online = await startWharf({ dataDir, upstreams: [{ host, url: upstream.url }] });
      const fetched = await call(online.url, `/v2/${host}/offline-a/blobs/${digest}`);
      expect(sha256(Buffer.from(await fetched.arrayBuffer()))).toBe(digest);
      await online.close();
      const offline = await startWharf({ dataDir, offline: true, upstreams: [{ host, url: upstream.url }] });
      try {
        const before = upstream.requests.length;
        expect((await call(offline.url, `/v2/${host}/offline-a/blobs/${digest}`)).status).toBe(200);
        // The upstream has it for C, but offline nothing confirms that: only linked names are served.
        expect((await call(offline.url, `/v2/${host}/c/blobs/${digest}`)).status).toBe(404);
        expect((await call(offline.url, `/v2/${host}/c/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404);
        expect(upstream.requests.length).toBe(before);
      } finally {
        await offline.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
