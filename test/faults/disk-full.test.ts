/**
 * A full disk: wharf's data directory on a 20 MiB tmpfs mounted by the test (root only: the suite
 * refuses to pass without root rather than skip, since CI runs as root). Pushes go on until a write
 * fails; then the disk is filled to the last block and every write path is tried: monolithic and
 * chunked blob pushes, a manifest push, a cold fill from an upstream. Each must fail with a 5xx OCI
 * error body saying the disk is full, leave nothing half-written visible (the real `wharf verify`
 * exits 0, no part file), and reads of what was cached before go on. Freeing space brings writes back.
 */
import { mkdir, mkdtemp, open, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../support/http.js';
import { makeImage, randomBytesFor, testSeed } from '../support/make-image.js';
import { pushTestImage } from '../support/push-image.js';
import { run, withDeadline } from '../support/run.js';
import { startScriptedRegistry, type ScriptedRegistry } from '../support/scripted-registry.js';
import { spawnWharf, type SpawnedWharf } from '../support/spawn-wharf.js';
import {
  expectPulls,
  expectVerifyClean,
  fetchBytes,
  MiB,
  partFiles,
  type Fetched,
  type FetchOptions,
} from './fault-support.js';

const seed = testSeed('faults/disk-full');
const upstreamHost = 'upstream.test';
const ociManifest = 'application/vnd.oci.image.manifest.v1+json';
const octet = { 'Content-Type': 'application/octet-stream' };

let mountDir: string | undefined;
let mounted = false;
let upstream: ScriptedRegistry | undefined;
let wharf: SpawnedWharf | undefined;

/** Blobs the upstream serves: one pulled before the disk fills, one tried while full, one after. */
const upstreamBlobs = new Map(
  ['cached', 'while-full', 'after'].map((which) => {
    const bytes = randomBytesFor(`${seed}/upstream/${which}`, MiB);
    return [which, { digest: sha256(bytes), bytes }] as const;
  }),
);
const upstreamBlob = (which: string): { digest: string; bytes: Buffer } => {
  const blob = upstreamBlobs.get(which);
  if (blob === undefined) throw new Error(`no upstream blob ${which}`);
  return blob;
};

beforeAll(async () => {
  if (process.getuid?.() !== 0) {
    throw new Error(
      'test/faults/disk-full.test.ts must run as root: it mounts a 20 MiB tmpfs as the data directory. ' +
        'Run `npm run test:faults` as root (CI does); this test refuses to pass without having run.',
    );
  }
  mountDir = await mkdtemp(join(tmpdir(), 'wharf-faults-full-'));
  await run('mount', ['-t', 'tmpfs', '-o', 'size=20m', 'tmpfs', mountDir], { timeoutMs: 10_000 });
  mounted = true;
  await mkdir(join(mountDir, 'data'));
  const byDigest = new Map([...upstreamBlobs.values()].map((b) => [b.digest, b.bytes]));
  upstream = await startScriptedRegistry((req, res, ctx) => {
    const digest = /^\/v2\/mirror\/full\/blobs\/(sha256:[0-9a-f]{64})$/.exec(ctx.request.path)?.[1];
    const bytes = digest === undefined ? undefined : byDigest.get(digest);
    if (bytes === undefined) return void res.writeHead(404).end();
    res.writeHead(200, { 'Content-Length': String(bytes.length) });
    res.end(req.method === 'HEAD' ? undefined : bytes);
  });
  wharf = await spawnWharf(['--data', join(mountDir, 'data'), '--upstream', `${upstreamHost}=${upstream.url}`]);
});

afterAll(async () => {
  // Processes first: a mount with open files in it cannot be unmounted.
  if (wharf !== undefined) await withDeadline(wharf.kill('SIGKILL'), 10_000, 'wharf exiting');
  await upstream?.close();
  if (mounted && mountDir !== undefined) {
    let lastError: unknown;
    for (let attempt = 0; attempt < 10 && mounted; attempt++) {
      try {
        await run('umount', [mountDir], { timeoutMs: 10_000 });
        mounted = false;
      } catch (error) {
        lastError = error;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    if (mounted) {
      // Detach it at least, so the machine is not left with a mount; then fail loudly.
      await run('umount', ['-l', mountDir], { timeoutMs: 10_000 }).catch(() => undefined);
      throw new Error(`could not unmount ${mountDir}: ${String(lastError)}`);
    }
  }
  if (mountDir !== undefined) await rmdir(mountDir).catch(() => undefined);
});

/** Messages of every refused write, printed at the end so the report shows what clients saw. */
const refusals: string[] = [];

/**
 * 507 Insufficient Storage with an UNAVAILABLE OCI error body (oci/errors.ts outOfSpace): exactly
 * that, not "any 5xx", so a full disk reported as a 500 crash fails here (issue 13). The message
 * must tell an operator the disk is full.
 */
function expectRefusedForSpace(response: Fetched, what: string): void {
  expect(response.status, `${what}: ${response.body.toString().slice(0, 300)}`).toBe(507);
  const body = JSON.parse(response.body.toString()) as { errors?: { code?: unknown; message?: unknown }[] };
  const error = body.errors?.[0];
  expect(error?.code, `${what}: OCI error body`).toBe('UNAVAILABLE');
  expect(typeof error?.message, `${what}: OCI error body`).toBe('string');
  refusals.push(`${what}: ${response.status} ${response.body.toString()}`);
  // Soft: the other checks (nothing half-written, reads go on) still run when only the wording is wrong.
  expect.soft(String(error?.message), `${what}: the error should say the disk is full`).toMatch(/no space|ENOSPC/i);
}

/**
 * A write on a connection of its own, closed after: a refused write can leave its connection
 * unusable (see the reuse check below), and it must not hang the requests that follow.
 */
async function write(url: string, options: FetchOptions, keep?: (client: Client) => Promise<void>): Promise<Fetched> {
  const client = new Client(new URL(url).origin);
  try {
    const response = await fetchBytes(url, { ...options, dispatcher: client });
    await keep?.(client);
    return response;
  } finally {
    await client.destroy();
  }
}

function pushBlob(
  base: string,
  name: string,
  bytes: Buffer,
  keep?: (client: Client) => Promise<void>,
): Promise<Fetched> {
  const url = `${base}/v2/${name}/blobs/uploads/?digest=${sha256(bytes)}`;
  return write(url, { method: 'POST', body: bytes, headers: octet }, keep);
}

/**
 * After an error answered before the request body was read to its end, the connection must either
 * be closed by the server or still work: HTTP/1.1 clients reuse it for their next request.
 */
async function expectConnectionUsable(client: Client, base: string, what: string): Promise<void> {
  const outcome = await fetchBytes(`${base}/v2/`, { dispatcher: client }, 5_000).then(
    (r) => `status ${r.status}`,
    (error: unknown) => `failed: ${(error as Error).message}`,
  );
  expect.soft(outcome, `${what}: the next request on the same connection`).toBe('status 200');
}

/** Writes to `path` until the filesystem refuses, in big and then small pieces. */
async function fillDisk(path: string): Promise<number> {
  const handle = await open(path, 'w');
  let written = 0;
  try {
    for (const size of [MiB, 64 * 1024, 4096, 512]) {
      const block = Buffer.alloc(size, 0x5a);
      for (;;) {
        try {
          const { bytesWritten } = await handle.write(block, 0, size, written);
          written += bytesWritten;
          if (bytesWritten < size) break;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
          break;
        }
      }
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  return written;
}

function blobRows(verifyOutput: string): number {
  return Number(/^blobs: (\d+) rows?/m.exec(verifyOutput)?.[1] ?? NaN);
}

describe('a full disk', () => {
  it('refuses writes with 507 UNAVAILABLE, keeps nothing half-written, and goes on serving', async () => {
    if (wharf === undefined || mountDir === undefined) throw new Error('setup did not finish');
    const base = wharf.url;
    const dataDir = join(mountDir, 'data');

    // Cached before the disk fills: a pushed image and a blob pulled through the mirror.
    const image = await makeImage({ seed: `${seed}/cached`, layers: 2, layerSize: 256 * 1024 });
    await pushTestImage(base, 'full/app', 'v1', image);
    const cached = upstreamBlob('cached');
    const mirrorPath = `/v2/${upstreamHost}/mirror/full/blobs`;
    expect(sha256((await fetchBytes(`${base}${mirrorPath}/${cached.digest}`)).body)).toBe(cached.digest);

    // Held back until the end, when removing it gives wharf room again.
    await writeFile(join(mountDir, 'ballast'), Buffer.alloc(4 * MiB, 1));

    // Pushes until one fails: the first write to hit the limit.
    let refused: Fetched | undefined;
    for (let i = 0; i < 12 && refused === undefined; i++) {
      const response = await pushBlob(base, 'full/bulk', randomBytesFor(`${seed}/bulk/${i}`, 3 * MiB), (client) =>
        expectConnectionUsable(client, base, `push ${i}`),
      );
      if (response.status !== 201) refused = response;
    }
    if (refused === undefined) throw new Error('12 pushes of 3 MiB fitted on a 20 MiB tmpfs');
    expectRefusedForSpace(refused, 'monolithic push that hit the limit');
    expect(await partFiles(dataDir)).toEqual([]);
    const rowsAtLimit = blobRows(await expectVerifyClean(dataDir));

    // An upload session with one committed chunk, opened while there is still room.
    const chunk1 = randomBytesFor(`${seed}/chunk1`, 10_000);
    const chunk2 = randomBytesFor(`${seed}/chunk2`, 256 * 1024);
    const post = await write(`${base}/v2/full/chunked/blobs/uploads/`, { method: 'POST' });
    expect(post.status).toBe(202);
    const location = String(post.headers.location);
    const first = await write(`${base}${location}`, {
      method: 'PATCH',
      body: chunk1,
      headers: { ...octet, 'Content-Range': `0-${chunk1.length - 1}` },
    });
    expect(first.status).toBe(202);

    // Now the last block: every write path meets a full disk.
    const filler = await fillDisk(join(mountDir, 'filler'));
    console.info(`[faults/disk-full] filled the last ${filler} bytes`);

    expectRefusedForSpace(await pushBlob(base, 'full/small', randomBytesFor(`${seed}/small`, 64 * 1024)), 'small push');
    const patch = await write(`${base}${location}`, {
      method: 'PATCH',
      body: chunk2,
      headers: { ...octet, 'Content-Range': `${chunk1.length}-${chunk1.length + chunk2.length - 1}` },
    });
    expectRefusedForSpace(patch, 'chunked PATCH');
    // Nothing of the refused chunk counts: the session still holds its first chunk only.
    const status = await fetchBytes(`${base}${location}`);
    expect(status.status).toBe(204);
    expect(status.headers.range).toBe(`0-${chunk1.length - 1}`);
    const another = await write(`${base}/v2/full/chunked/blobs/uploads/`, { method: 'POST' });
    if (another.status !== 202) expectRefusedForSpace(another, 'upload session start');

    const newManifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: ociManifest,
        config: image.images[0]?.config,
        layers: image.images[0]?.layers,
        annotations: { 'written-on': 'a full disk' },
      }),
    );
    expectRefusedForSpace(
      await write(`${base}/v2/full/app/manifests/v2`, {
        method: 'PUT',
        body: newManifest,
        headers: { 'Content-Type': ociManifest },
      }),
      'manifest push',
    );

    // A cold fill from the upstream: no byte leaves before the first write reached the temp file,
    // so the client gets the 507 answer, not a 200 cut off mid-body.
    const whileFull = upstreamBlob('while-full');
    expectRefusedForSpace(
      await fetchBytes(`${base}${mirrorPath}/${whileFull.digest}`, { dispatcher: new Client(base) }, 10_000),
      'cold fill',
    );

    // Reads go on: everything cached before is served whole.
    await expectPulls(base, 'full/app', 'v1', { manifest: image.root.bytes, blobs: image.blobs });
    expect(sha256((await fetchBytes(`${base}${mirrorPath}/${cached.digest}`)).body)).toBe(cached.digest);
    expect((await fetchBytes(`${base}/v2/full/app/tags/list`)).status).toBe(200);
    expect((await fetchBytes(`${base}/v2/_catalog`)).status).toBe(200);

    // /readyz tells a full disk (its probe writes bytes: an empty file could still be made).
    const full = await fetchBytes(`${base}/readyz`);
    expect(full.status).toBe(503);
    expect(JSON.parse(full.body.toString('utf8'))).toEqual({
      errors: [{ code: 'UNAVAILABLE', message: 'not ready: the data directory is not writable: ENOSPC' }],
    });

    // Nothing half-written is visible: no part file, the index and the files agree, no new blob row.
    expect(await partFiles(dataDir)).toEqual([]);
    expect(blobRows(await expectVerifyClean(dataDir))).toBe(rowsAtLimit);

    // Space back: every write path works again, the process was not wedged by the failures.
    await rm(join(mountDir, 'filler'));
    await rm(join(mountDir, 'ballast'));
    expect((await fetchBytes(`${base}/readyz`)).status).toBe(200);
    expect((await pushBlob(base, 'full/small', randomBytesFor(`${seed}/small`, 64 * 1024))).status).toBe(201);
    const whole = Buffer.concat([chunk1, chunk2]);
    const put = await write(`${base}${location}?digest=${sha256(whole)}`, {
      method: 'PUT',
      body: chunk2,
      headers: { ...octet, 'Content-Range': `${chunk1.length}-${whole.length - 1}` },
    });
    expect(put.status).toBe(201);
    expect(sha256((await fetchBytes(`${base}/v2/full/chunked/blobs/${sha256(whole)}`)).body)).toBe(sha256(whole));
    const manifestPut = await write(`${base}/v2/full/app/manifests/v2`, {
      method: 'PUT',
      body: newManifest,
      headers: { 'Content-Type': ociManifest },
    });
    expect(manifestPut.status).toBe(201);
    const after = upstreamBlob('after');
    expect(sha256((await fetchBytes(`${base}${mirrorPath}/${after.digest}`)).body)).toBe(after.digest);
    await expectVerifyClean(dataDir);
    console.info(`[faults/disk-full] what clients were told:\n  ${refusals.join('\n  ')}`);
  });
});
