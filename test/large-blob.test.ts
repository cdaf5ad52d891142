/**
 * A 1 GiB blob, generated on the fly, goes through a real wharf process in
 * both directions with flat memory: pushed as a streamed PATCH and as a
 * monolithic POST, pulled whole and by range, hashed on the client as it
 * arrives. The server's peak RSS (VmHWM) must stay far below the blob size.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOfRandom, randomSlice, randomStream, sha256Digest } from './support/make-image.js';
import { spawnWharf, type SpawnedWharf } from './support/spawn-wharf.js';

const size = 1024 * 1024 * 1024;
const seed = 'large-blob-1';
// The server's own baseline is ~60-80 MB; a buffered blob would add 1 GiB.
const maxPeakRssBytes = 200 * 1024 * 1024;

let server: SpawnedWharf;
let dataDir: string;
let digest: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'wharf-large-'));
  server = await spawnWharf(['--data', dataDir]);
  console.log(`large blob: server RSS at start ${((await peakRss(server.child.pid ?? 0)) / 1048576).toFixed(1)} MiB`);
  digest = await digestOfRandom(seed, size);
  console.log(`large blob: seed=${seed} size=${size} digest=${digest}`);
}, 120_000);

afterAll(async () => {
  await server?.kill();
  await rm(dataDir, { recursive: true, force: true });
});

async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
  return Number(kb) * 1024;
}

async function hashResponse(body: AsyncIterable<Uint8Array>): Promise<{ digest: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of body) {
    hash.update(chunk);
    bytes += chunk.byteLength;
  }
  return { digest: `sha256:${hash.digest('hex')}`, bytes };
}

describe('a 1 GiB blob', () => {
  it('uploads as a streamed PATCH and downloads whole and by range with flat memory', async () => {
    const post = await request(`${server.url}/v2/large/blob/blobs/uploads/`, { method: 'POST' });
    await post.body.dump();
    const location = post.headers.location as string;
    const patch = await request(`${server.url}${location}`, {
      method: 'PATCH',
      body: randomStream(seed, size),
      headers: { 'content-type': 'application/octet-stream' },
      headersTimeout: 300_000,
      bodyTimeout: 300_000,
    });
    await patch.body.dump();
    expect(patch.statusCode).toBe(202);
    expect(patch.headers.range).toBe(`0-${size - 1}`);
    const put = await request(`${server.url}${location}?digest=${digest}`, { method: 'PUT', headersTimeout: 300_000 });
    await put.body.dump();
    expect(put.statusCode).toBe(201);

    const get = await request(`${server.url}/v2/large/blob/blobs/${digest}`, { bodyTimeout: 300_000 });
    expect(get.statusCode).toBe(200);
    expect(get.headers['content-length']).toBe(String(size));
    expect(await hashResponse(get.body)).toEqual({ digest, bytes: size });

    const tail = await request(`${server.url}/v2/large/blob/blobs/${digest}`, { headers: { range: 'bytes=-1048576' } });
    expect(tail.statusCode).toBe(206);
    expect(tail.headers['content-range']).toBe(`bytes ${size - 1048576}-${size - 1}/${size}`);
    // Byte for byte, not just the length: the expected tail is computed from the seed.
    expect(await hashResponse(tail.body)).toEqual({
      digest: sha256Digest(randomSlice(seed, size - 1048576, 1048576)),
      bytes: 1048576,
    });

    const peak = await peakRss(server.child.pid ?? 0);
    console.log(`large blob: server peak RSS ${(peak / 1048576).toFixed(1)} MiB after PATCH+GET of 1 GiB`);
    expect(peak).toBeLessThan(maxPeakRssBytes);
  }, 300_000);

  it('uploads as a single monolithic POST into another repository with flat memory', async () => {
    const post = await request(`${server.url}/v2/large/other/blobs/uploads/?digest=${digest}`, {
      method: 'POST',
      body: randomStream(seed, size),
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      headersTimeout: 300_000,
      bodyTimeout: 300_000,
    });
    await post.body.dump();
    expect(post.statusCode).toBe(201);
    const head = await request(`${server.url}/v2/large/other/blobs/${digest}`, { method: 'HEAD' });
    await head.body.dump();
    expect(head.headers['content-length']).toBe(String(size));
    const peak = await peakRss(server.child.pid ?? 0);
    console.log(`large blob: server peak RSS ${(peak / 1048576).toFixed(1)} MiB after the monolithic POST`);
    expect(peak).toBeLessThan(maxPeakRssBytes);
  }, 300_000);
});
