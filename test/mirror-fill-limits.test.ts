/**
 * Upstream fills are bounded (issue 8, finding 7): beyond mirror.maxConcurrentFills
 * cold blob GETs wait in a queue rather than all downloading at once, and a blob
 * HEAD asks the upstream with a HEAD and downloads nothing. Before the fix, 200
 * HEADs of distinct uncached digests started 200 upstream downloads (RSS 72 → 757 MB);
 * test/faults/head-flood.test.ts repeats that against a spawned wharf.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256 } from './support/http.js';
import { withDeadline } from './support/run.js';
import { startScriptedRegistry, type ScriptedRegistry } from './support/scripted-registry.js';
import { startWharf, type WharfHandle } from './support/wharf.js';
import { maxConnectionsPerOrigin } from '../src/upstream/upstream-registry.js';

const host = 'limits.example.test';
const MiB = 1024 * 1024;

let upstream: ScriptedRegistry | undefined;
let wharf: WharfHandle | undefined;
const releases: (() => void)[] = [];

afterEach(async () => {
  for (const release of releases.splice(0)) release();
  await wharf?.close();
  await upstream?.close();
  wharf = undefined;
  upstream = undefined;
});

async function getBody(url: string, method: 'GET' | 'HEAD' = 'GET') {
  const response = await request(url, { method, headersTimeout: 30_000, bodyTimeout: 30_000 });
  const chunks: Buffer[] = [];
  for await (const chunk of response.body) chunks.push(chunk as Buffer);
  return { status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks) };
}

async function residentBytes(): Promise<number> {
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(await readFile('/proc/self/status', 'utf8'))?.[1];
  if (kb === undefined) throw new Error('no VmRSS in /proc/self/status');
  return Number(kb) * 1024;
}

describe('concurrent upstream fills', () => {
  it('run at most maxConcurrentFills at once; the others wait their turn and all complete', async () => {
    const blobs = [0, 1, 2, 3, 4].map(() => randomBytes(300_000));
    let running = 0;
    let peak = 0;
    upstream = await startScriptedRegistry((req, res: ServerResponse, ctx) => {
      const bytes = blobs.find((b) => ctx.request.path === `/v2/app/blobs/${sha256(b)}`);
      if (bytes === undefined || req.method !== 'GET') return void res.writeHead(404).end();
      running++;
      peak = Math.max(peak, running);
      // Headers and a first part, then a stall until the test releases this body.
      res.writeHead(200, { 'Content-Length': String(bytes.byteLength) });
      res.write(bytes.subarray(0, 1000));
      releases.push(() => {
        running--;
        res.end(bytes.subarray(1000));
      });
    });
    wharf = await startWharf({ upstreams: [{ host, url: upstream.url }], maxConcurrentFills: 2 });
    const base = wharf.url;
    const gets = blobs.map((b) => getBody(`${base}/v2/${host}/app/blobs/${sha256(b)}`));

    // Release the stalled bodies one at a time, as they come, until all five were asked for.
    const deadline = Date.now() + 30_000;
    let released = 0;
    while (released < blobs.length) {
      if (Date.now() > deadline) throw new Error(`deadline: only ${released} upstream GETs came`);
      const next = releases.shift();
      if (next === undefined) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      // Give a would-be third download time to show up before freeing a slot.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(running).toBeLessThanOrEqual(2);
      next();
      released++;
    }
    const results = await withDeadline(Promise.all(gets), 30_000, 'the five blob GETs');
    for (const [i, result] of results.entries()) {
      expect(result.status).toBe(200);
      expect(sha256(result.body)).toBe(sha256(blobs[i] as Buffer));
    }
    expect(peak).toBe(2);
    expect(upstream.requests.filter((r) => r.method === 'GET')).toHaveLength(5);
  });
});

describe('HEAD of a blob missing locally', () => {
  it('asks the upstream with a HEAD and starts no download, 200 times over, with flat memory', async () => {
    const announced = 512 * MiB;
    upstream = await startScriptedRegistry((req, res: ServerResponse) => {
      res.writeHead(200, { 'Content-Length': String(announced) });
      if (req.method === 'HEAD') return void res.end();
      // A download that would start: one MiB, then a stall (what kept memory up before the fix).
      res.write(Buffer.alloc(MiB));
      releases.push(() => res.destroy());
    });
    wharf = await startWharf({
      upstreams: [{ host, url: upstream.url, timeouts: { connectMs: 2000, headersMs: 5000, bodyIdleMs: 5000 } }],
    });
    const base = wharf.url;
    const before = await residentBytes();
    const digests = Array.from({ length: 200 }, (_, i) => sha256(`head-flood-${i}`));
    const heads = await withDeadline(
      Promise.all(digests.map((digest) => getBody(`${base}/v2/${host}/flood/blobs/${digest}`, 'HEAD'))),
      60_000,
      '200 HEADs',
    );
    const after = await residentBytes();
    for (const [i, head] of heads.entries()) {
      expect(head.status).toBe(200);
      expect(head.headers['content-length']).toBe(String(announced));
      expect(head.headers['docker-content-digest']).toBe(digests[i]);
    }
    expect(upstream.requests.filter((r) => r.method === 'GET')).toHaveLength(0);
    expect(upstream.requests.filter((r) => r.method === 'HEAD')).toHaveLength(200);
    expect(wharf.server.proxy.fills.stats.started).toBe(0);
    console.log(`200 blob HEADs: RSS ${(before / MiB).toFixed(0)} → ${(after / MiB).toFixed(0)} MiB`);
    expect(after - before).toBeLessThan(100 * MiB);
  });
});

// Issue 8, finding 7: a flood of distinct misses opened one upstream connection per request.
describe('upstream connections', () => {
  it('stay at maxConnectionsPerOrigin however many distinct misses arrive; the rest wait and complete', async () => {
    const held: ServerResponse[] = [];
    let open = 0;
    let peak = 0;
    upstream = await startScriptedRegistry((req, res: ServerResponse) => {
      open++;
      peak = Math.max(peak, open);
      res.on('close', () => open--);
      held.push(res);
    });
    releases.push(() => {
      for (const res of held.splice(0)) res.writeHead(404).end();
    });
    wharf = await startWharf({ upstreams: [{ host, url: upstream.url }] });
    const heads = Array.from({ length: 100 }, () =>
      getBody(`${wharf?.url ?? ''}/v2/${host}/app/blobs/${sha256(randomBytes(16))}`, 'HEAD'),
    );
    await withDeadline(
      (async () => {
        while (upstream.requests.length < maxConnectionsPerOrigin) await new Promise((r) => setTimeout(r, 20));
      })(),
      20_000,
      'the first upstream HEADs',
    );
    // Time for any request beyond the cap to show up, were it not queued.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(upstream.connections()).toBe(maxConnectionsPerOrigin);
    expect(peak).toBe(maxConnectionsPerOrigin);
    // Answer as they come: every HEAD completes (404) through the 32 connections.
    const answering = setInterval(() => {
      for (const res of held.splice(0)) res.writeHead(404).end();
    }, 20);
    try {
      const answers = await withDeadline(Promise.all(heads), 30_000, 'all HEADs answered');
      expect(answers.map((a) => a.status)).toEqual(Array.from({ length: 100 }, () => 404));
    } finally {
      clearInterval(answering);
    }
    expect(upstream.connections()).toBe(maxConnectionsPerOrigin);
  });
});
