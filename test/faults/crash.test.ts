/**
 * kill -9 at the worst moments: mid cold fill from an upstream, mid chunked upload, mid manifest
 * push, and at seeded random moments under a storm of concurrent pushes. After each kill wharf
 * starts again on the same data: no temp file is left, the real `wharf verify` finds the store
 * consistent (exit 0), and everything that completed before the kill pulls back byte for byte.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { request as httpRequest, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SeededRandom } from '../conformance/seeded-random.js';
import { sha256 } from '../support/http.js';
import { allBlobsOf, digestOfRandom, makeImage, randomChunks, randomStream, testSeed } from '../support/make-image.js';
import { pushTestImage } from '../support/push-image.js';
import { withDeadline } from '../support/run.js';
import { sendManifest, startScriptedRegistry, type ScriptedRegistry } from '../support/scripted-registry.js';
import { spawnWharf, type SpawnedWharf } from '../support/spawn-wharf.js';
import { expectPulls, expectVerifyClean, fetchBytes, MiB, partFiles, waitUntil } from './fault-support.js';

const seed = testSeed('faults/crash');
const upstreamHost = 'upstream.test';
const ociManifest = 'application/vnd.oci.image.manifest.v1+json';

const running = new Set<SpawnedWharf>();
const dirs: string[] = [];

async function start(dataDir: string, args: string[] = []): Promise<SpawnedWharf> {
  const wharf = await spawnWharf(['--data', dataDir, ...args]);
  running.add(wharf);
  void wharf.exited.then(() => running.delete(wharf));
  return wharf;
}

async function killHard(wharf: SpawnedWharf): Promise<void> {
  const { signal } = await withDeadline(wharf.kill('SIGKILL'), 10_000, 'wharf exiting on SIGKILL');
  expect(signal).toBe('SIGKILL');
}

async function freshDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-faults-crash-'));
  dirs.push(dir);
  return dir;
}

afterEach(async () => {
  for (const wharf of running) await withDeadline(wharf.kill('SIGKILL'), 10_000, 'left-over wharf exiting');
});
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** A request left hanging until the server dies; `answered` is the status if the server answered it anyway. */
interface HangingRequest {
  answered: () => number | undefined;
}

/**
 * Sends the request line, headers and `first` bytes of the body, then nothing more: the request
 * hangs until the server dies. With `Expect: 100-continue` among the headers it first waits for
 * the server's 100 Continue, which Node sends once the request is parsed and handed to wharf's
 * handler: from then on the request is in flight inside wharf, not just queued on a socket.
 * Resolves once `first` is on the wire; the error the kill causes later is expected and dropped,
 * but an answer is recorded (a hanging request must not be answered: the test checks).
 */
function startHangingRequest(
  url: string,
  method: string,
  first: Buffer,
  headers: Record<string, string>,
): Promise<HangingRequest> {
  let status: number | undefined;
  const expectContinue = Object.entries(headers).some(
    ([name, value]) => name.toLowerCase() === 'expect' && value.toLowerCase() === '100-continue',
  );
  return withDeadline(
    new Promise((resolve) => {
      const req = httpRequest(url, { method, headers });
      req.on('error', () => undefined);
      req.on('response', (res) => {
        status = res.statusCode;
        res.resume();
      });
      const send = (): void => void req.write(first, () => resolve({ answered: () => status }));
      if (expectContinue) {
        req.on('continue', send);
        req.flushHeaders();
      } else {
        send();
      }
    }),
    10_000,
    `${method} ${url} ${expectContinue ? "in wharf's handler and " : ''}sending its first bytes`,
  );
}

/** Writes a chunk, waiting for drain; false when the connection is gone. */
async function writeOrClose(res: ServerResponse, chunk: Buffer): Promise<boolean> {
  if (res.destroyed) return false;
  if (res.write(chunk)) return true;
  const [event] = await Promise.race([
    once(res, 'drain').then(() => ['drain']),
    once(res, 'close').then(() => ['close']),
  ]);
  return event === 'drain';
}

describe('kill -9 during a cold fill from an upstream', () => {
  let upstream: ScriptedRegistry;
  const bigSize = 48 * MiB;
  /** The first GET of the big blob sends this much and then stalls: the kill lands mid-fill. */
  const sentBeforeStall = 12 * MiB;
  let bigDigest: string;
  const small = makeImage({ seed: `${seed}/small`, layers: 2, layerSize: 64 * 1024 });

  beforeAll(async () => {
    bigDigest = await digestOfRandom(`${seed}/big`, bigSize);
    const image = await small;
    const blobs = allBlobsOf(image);
    upstream = await startScriptedRegistry(async (req, res, ctx) => {
      const path = ctx.request.path;
      if (path === '/v2/mirror/app/manifests/v1') return sendManifest(res, image.root.bytes, ociManifest);
      const blobMatch = /^\/v2\/mirror\/(app|big)\/blobs\/(sha256:[0-9a-f]{64})$/.exec(path);
      const digest = blobMatch?.[2];
      if (digest === bigDigest) {
        res.writeHead(200, { 'Content-Length': String(bigSize) });
        if (req.method === 'HEAD') return void res.end();
        if (ctx.count > 1) return pipeline(randomStream(`${seed}/big`, bigSize), res);
        let sent = 0;
        for (const chunk of randomChunks(`${seed}/big`, sentBeforeStall)) {
          if (!(await writeOrClose(res, chunk))) return;
          sent += chunk.length;
        }
        // Stall with the connection open: wharf holds a part file of `sent` bytes when it dies.
        return void sent;
      }
      const bytes = digest === undefined ? undefined : blobs.get(digest);
      if (bytes === undefined) return void res.writeHead(404).end();
      res.writeHead(200, { 'Content-Length': String(bytes.length) });
      res.end(req.method === 'HEAD' ? undefined : bytes);
    });
  });
  afterAll(async () => upstream?.close());

  it('leaves no part file, a consistent store, and the images pulled or pushed before the kill intact', async () => {
    const dataDir = await freshDir();
    const args = ['--upstream', `${upstreamHost}=${upstream.url}`];
    const first = await start(dataDir, args);
    const image = await small;
    const mirrored = { manifest: image.root.bytes, blobs: image.blobs };
    // Completed before the kill: one image pulled through the mirror, one pushed.
    await expectPulls(first.url, `${upstreamHost}/mirror/app`, 'v1', mirrored);
    const pushed = await makeImage({ seed: `${seed}/pushed`, layers: 2, layerSize: 32 * 1024 });
    await pushTestImage(first.url, 'local/app', 'v1', pushed);
    const upstreamRequestsBefore = upstream.requests.length;

    // Read what arrives until the kill cuts the connection.
    const fill = (async () => {
      const response = await request(`${first.url}/v2/${upstreamHost}/mirror/big/blobs/${bigDigest}`, {
        headersTimeout: 20_000,
        bodyTimeout: 60_000,
      });
      for await (const _ of response.body) void _;
    })().catch(() => undefined);
    const part = await waitUntil(
      async () => {
        for (const file of await partFiles(dataDir)) {
          const { size } = await stat(join(dataDir, 'tmp', file));
          if (size >= sentBeforeStall / 2) return file;
        }
        return undefined;
      },
      20_000,
      'the cold fill writing half its stall point into a part file',
    );
    await killHard(first);
    await withDeadline(fill, 10_000, 'the client of the killed fill seeing its connection cut');
    expect(await partFiles(dataDir)).toContain(part);

    const second = await start(dataDir, args);
    expect(await partFiles(dataDir)).toEqual([]);
    const report = await expectVerifyClean(dataDir);
    expect(report).toMatch(/^unindexed: 0 files/m);

    await expectPulls(second.url, `${upstreamHost}/mirror/app`, 'v1', mirrored);
    await expectPulls(second.url, 'local/app', 'v1', { manifest: pushed.root.bytes, blobs: pushed.blobs });
    // Served from the store: the restarted wharf asked the upstream nothing for them.
    expect(upstream.requests.slice(upstreamRequestsBefore).map((r) => r.path)).toEqual([
      `/v2/mirror/big/blobs/${bigDigest}`,
    ]);

    // The interrupted fill starts over and completes.
    const response = await request(`${second.url}/v2/${upstreamHost}/mirror/big/blobs/${bigDigest}`, {
      headersTimeout: 20_000,
      bodyTimeout: 20_000,
    });
    expect(response.statusCode).toBe(200);
    const hash = createHash('sha256');
    for await (const chunk of response.body) hash.update(chunk as Buffer);
    expect(`sha256:${hash.digest('hex')}`).toBe(bigDigest);
    expect(upstream.requestsTo(`/v2/mirror/big/blobs/${bigDigest}`)).toHaveLength(2);
    expect(await expectVerifyClean(dataDir)).toMatch(/^blobs: 9 rows/m);
  });
});

describe('kill -9 during pushes', () => {
  it('mid chunked upload and mid monolithic push: uploads resume from their last committed chunk', async () => {
    const dataDir = await freshDir();
    const first = await start(dataDir);
    const before = await makeImage({ seed: `${seed}/before-upload`, layers: 1 });
    await pushTestImage(first.url, 'crash/app', 'v1', before);

    const post = await fetchBytes(`${first.url}/v2/crash/app/blobs/uploads/`, { method: 'POST' });
    const location = String(post.headers.location);
    const id = location.split('/').pop() ?? '';
    const chunk1 = Buffer.alloc(300_000, 1);
    const patch = await fetchBytes(`${first.url}${location}`, {
      method: 'PATCH',
      body: chunk1,
      headers: { 'Content-Range': `0-${chunk1.length - 1}`, 'Content-Type': 'application/octet-stream' },
    });
    expect(patch.status).toBe(202);
    // The second chunk is cut off after 100 kB of a declared 1 MB.
    await startHangingRequest(`${first.url}${location}`, 'PATCH', Buffer.alloc(100_000, 2), {
      'Content-Length': String(1_000_000),
      'Content-Range': `${chunk1.length}-${chunk1.length + 999_999}`,
      'Content-Type': 'application/octet-stream',
    });
    const uploadFile = join(dataDir, 'tmp', 'uploads', id);
    await waitUntil(
      async () => ((await stat(uploadFile)).size > chunk1.length ? true : undefined),
      10_000,
      'the cut-off chunk reaching the upload file',
    );
    const whole = Buffer.alloc(2 * MiB, 3);
    await startHangingRequest(
      `${first.url}/v2/crash/app/blobs/uploads/?digest=${sha256(whole)}`,
      'POST',
      whole.subarray(0, MiB),
      {
        'Content-Length': String(whole.length),
        'Content-Type': 'application/octet-stream',
      },
    );
    await waitUntil(async () => ((await partFiles(dataDir)).length > 0 ? true : undefined), 10_000, 'a part file');
    await killHard(first);

    const second = await start(dataDir);
    expect(await partFiles(dataDir)).toEqual([]);
    expect((await stat(uploadFile)).size).toBe(chunk1.length);
    await expectVerifyClean(dataDir);
    await expectPulls(second.url, 'crash/app', 'v1', { manifest: before.root.bytes, blobs: before.blobs });
    expect((await fetchBytes(`${second.url}/v2/crash/app/blobs/${sha256(whole)}`, { method: 'HEAD' })).status).toBe(
      404,
    );

    const status = await fetchBytes(`${second.url}${location}`);
    expect(status.status).toBe(204);
    expect(status.headers.range).toBe(`0-${chunk1.length - 1}`);
    const chunk2 = Buffer.alloc(5000, 4);
    const all = Buffer.concat([chunk1, chunk2]);
    const put = await fetchBytes(`${second.url}${location}?digest=${sha256(all)}`, {
      method: 'PUT',
      body: chunk2,
      headers: { 'Content-Range': `${chunk1.length}-${all.length - 1}`, 'Content-Type': 'application/octet-stream' },
    });
    expect(put.status).toBe(201);
    expect(sha256((await fetchBytes(`${second.url}/v2/crash/app/blobs/${sha256(all)}`)).body)).toBe(sha256(all));
    await expectVerifyClean(dataDir);
  });

  it('mid manifest push: the manifest is not there after the restart, and pushing it again works', async () => {
    const dataDir = await freshDir();
    const first = await start(dataDir);
    const image = await makeImage({ seed: `${seed}/manifest`, layers: 2 });
    for (const [digest, bytes] of image.blobs) {
      const response = await fetchBytes(`${first.url}/v2/crash/manifest/blobs/uploads/?digest=${digest}`, {
        method: 'POST',
        body: bytes,
        headers: { 'Content-Type': 'application/octet-stream' },
      });
      expect(response.status).toBe(201);
    }
    const manifest = image.root.bytes;
    // In wharf's PUT handler (100 Continue seen) with 100 of its bytes sent: mid manifest push, not a sleep's guess.
    const hanging = await startHangingRequest(
      `${first.url}/v2/crash/manifest/manifests/v1`,
      'PUT',
      manifest.subarray(0, 100),
      {
        'Content-Type': image.root.mediaType,
        'Content-Length': String(manifest.length),
        Expect: '100-continue',
      },
    );
    await killHard(first);
    expect(hanging.answered(), 'a manifest PUT with 100 of its bytes answered before the kill').toBeUndefined();

    const second = await start(dataDir);
    expect(await partFiles(dataDir)).toEqual([]);
    await expectVerifyClean(dataDir);
    expect((await fetchBytes(`${second.url}/v2/crash/manifest/manifests/v1`)).status).toBe(404);
    expect((await fetchBytes(`${second.url}/v2/crash/manifest/manifests/${image.root.digest}`)).status).toBe(404);
    const put = await fetchBytes(`${second.url}/v2/crash/manifest/manifests/v1`, {
      method: 'PUT',
      body: manifest,
      headers: { 'Content-Type': image.root.mediaType },
    });
    expect(put.status).toBe(201);
    await expectPulls(second.url, 'crash/manifest', 'v1', { manifest, blobs: image.blobs });
  });
});

describe('kill -9 inside the closing PUT of an upload', () => {
  // Found by the storm below: the closing PUT renames tmp/uploads/<id> into blobs/, then inserts
  // the blob row and deletes the session row. A kill between the two leaves a session whose file is
  // gone; after a restart its status still answers 204 and a retried PUT fails with a 500. The
  // moment is too short to hit on purpose with kill -9, so the test builds the state it leaves.
  it('leaves neither a dangling session nor a visible blob; the push can be made again', async () => {
    const dataDir = await freshDir();
    const first = await start(dataDir);
    const post = await fetchBytes(`${first.url}/v2/crash/put/blobs/uploads/`, { method: 'POST' });
    const location = String(post.headers.location);
    const id = location.split('/').pop() ?? '';
    const blob = Buffer.alloc(70_000, 9);
    const patch = await fetchBytes(`${first.url}${location}`, {
      method: 'PATCH',
      body: blob,
      headers: { 'Content-Range': `0-${blob.length - 1}`, 'Content-Type': 'application/octet-stream' },
    });
    expect(patch.status).toBe(202);
    await killHard(first);
    // What the PUT had done when it died: the verified file moved into place, no index row yet.
    const hex = sha256(blob).slice('sha256:'.length);
    await mkdir(join(dataDir, 'blobs', 'sha256', hex.slice(0, 2)), { recursive: true });
    await rename(join(dataDir, 'tmp', 'uploads', id), join(dataDir, 'blobs', 'sha256', hex.slice(0, 2), hex));

    const second = await start(dataDir);
    expect(await expectVerifyClean(dataDir)).toMatch(/^unindexed: 1 file/m);
    expect((await fetchBytes(`${second.url}${location}`)).status, 'the dead session after the restart').toBe(404);
    expect((await fetchBytes(`${second.url}/v2/crash/put/blobs/${sha256(blob)}`, { method: 'HEAD' })).status).toBe(404);
    const again = await fetchBytes(`${second.url}/v2/crash/put/blobs/uploads/?digest=${sha256(blob)}`, {
      method: 'POST',
      body: blob,
      headers: { 'Content-Type': 'application/octet-stream' },
    });
    expect(again.status).toBe(201);
    expect(sha256((await fetchBytes(`${second.url}/v2/crash/put/blobs/${sha256(blob)}`)).body)).toBe(sha256(blob));
    await expectVerifyClean(dataDir);
  });
});

interface Completed {
  name: string;
  tag: string;
  manifest: Buffer;
  blob: Buffer;
}

/** undici's and Node's codes for a connection cut, reset or refused: what a kill -9 does to a client. */
const connectionLostCodes = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'UND_ERR_CLOSED']);

function isConnectionLost(error: unknown): boolean {
  const codeOf = (e: unknown): unknown => (e as { code?: unknown } | null)?.code;
  return [codeOf(error), codeOf((error as { cause?: unknown } | null)?.cause)].some(
    (code) => typeof code === 'string' && connectionLostCodes.has(code),
  );
}

/**
 * One writer of the storm: pushes a blob (monolithic, POST+PUT or chunked, in turn) and a
 * manifest naming it, again and again, until the server dies. Returns what completed; a failure
 * before `killed()` is a wharf bug and rejects.
 */
async function pushUntilKilled(
  base: string,
  writer: string,
  random: SeededRandom,
  killed: () => boolean,
): Promise<Completed[]> {
  const done: Completed[] = [];
  const name = `storm/${writer}`;
  const expectStatus = (what: string, status: number, wanted: number): void => {
    if (status !== wanted) throw new Error(`${what}: ${status}, expected ${wanted}`);
  };
  try {
    for (let i = 0; ; i++) {
      const blob = random.bytes(1 + random.int(512 * 1024));
      const digest = sha256(blob);
      const octet = { 'Content-Type': 'application/octet-stream' };
      const mode = i % 3;
      if (mode === 0) {
        const r = await fetchBytes(`${base}/v2/${name}/blobs/uploads/?digest=${digest}`, {
          method: 'POST',
          body: blob,
          headers: octet,
        });
        expectStatus('monolithic POST', r.status, 201);
      } else {
        const post = await fetchBytes(`${base}/v2/${name}/blobs/uploads/`, { method: 'POST' });
        expectStatus('POST upload', post.status, 202);
        const location = `${base}${String(post.headers.location)}`;
        let body = blob;
        if (mode === 2) {
          const cut = Math.floor(blob.length / 2);
          const patch = await fetchBytes(location, {
            method: 'PATCH',
            body: blob.subarray(0, cut),
            headers: { ...octet, 'Content-Range': `0-${cut - 1}` },
          });
          expectStatus('PATCH', patch.status, 202);
          body = blob.subarray(cut);
        }
        const put = await fetchBytes(`${location}?digest=${digest}`, { method: 'PUT', body, headers: octet });
        expectStatus('PUT upload', put.status, 201);
      }
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: ociManifest,
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest, size: blob.length },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size: blob.length }],
          annotations: { writer, i: String(i) },
        }),
      );
      const tag = `t${i}`;
      const put = await fetchBytes(`${base}/v2/${name}/manifests/${tag}`, {
        method: 'PUT',
        body: manifest,
        headers: { 'Content-Type': ociManifest },
      });
      expectStatus('PUT manifest', put.status, 201);
      done.push({ name, tag, manifest, blob });
    }
  } catch (error) {
    // Only a lost connection after the kill ends a writer quietly. A wrong status is wharf's answer,
    // kill or not (a dying process answers nothing), and is never swallowed.
    if (!killed() || !isConnectionLost(error)) throw error;
  }
  return done;
}

describe('kill -9 at random moments under concurrent pushes', () => {
  it('stays consistent through several kills, keeping every push that was acknowledged', async () => {
    const dataDir = await freshDir();
    const random = new SeededRandom(seed, 'storm');
    const completed: Completed[] = [];
    const rounds = 4;
    const writers = 6;
    for (let round = 0; round < rounds; round++) {
      const wharf = await start(dataDir);
      // Everything acknowledged in earlier rounds survived the kills since.
      expect(await partFiles(dataDir)).toEqual([]);
      await expectVerifyClean(dataDir);
      for (const done of completed) {
        await expectPulls(wharf.url, done.name, done.tag, {
          manifest: done.manifest,
          blobs: [[sha256(done.blob), done.blob]],
        });
      }
      let killed = false;
      const delay = 300 + random.int(1200);
      const storm = Promise.all(
        Array.from({ length: writers }, (_, w) =>
          pushUntilKilled(wharf.url, `r${round}w${w}`, new SeededRandom(seed, `storm/${round}/${w}`), () => killed),
        ),
      );
      await new Promise((resolve) => setTimeout(resolve, delay));
      killed = true;
      await killHard(wharf);
      const results = await withDeadline(storm, 30_000, 'the storm writers noticing the kill');
      const acknowledged = results.flat();
      console.info(
        `[faults/crash] round ${round}: killed after ${delay} ms, ${acknowledged.length} pushes acknowledged`,
      );
      completed.push(...acknowledged);
    }
    const last = await start(dataDir);
    expect(await partFiles(dataDir)).toEqual([]);
    await expectVerifyClean(dataDir);
    for (const done of completed) {
      await expectPulls(last.url, done.name, done.tag, {
        manifest: done.manifest,
        blobs: [[sha256(done.blob), done.blob]],
      });
    }
    expect(completed.length).toBeGreaterThan(0);
  });
});
