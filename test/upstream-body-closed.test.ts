/**
 * An upstream body that undici destroys before anyone reads it: a prefetch aborted at shutdown
 * between the upstream's answer and the fill's first read, or a connection reset in that gap.
 * The reader must see the failure at once, and a fill must end (failed, nothing kept), so
 * settle() and a server's close() finish. A reader that only listened for events missed the
 * ones already emitted and waited forever (a close() hung once in CI this way).
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OciError } from '../src/oci/errors.js';
import { requireRepoName } from '../src/oci/reference.js';
import { FillRegistry } from '../src/proxy/fill-registry.js';
import type { UpstreamBlob } from '../src/proxy/upstream-client.js';
import { LocalStore } from '../src/store/local-store.js';
import { streamBody } from '../src/upstream/read-body.js';
import { digestOf, settledWithin } from './support/fill-harness.js';
import { captureLog } from './support/log-capture.js';

const content = randomBytes(256 * 1024);
const name = requireRepoName('mirror.test/closed');

let server: Server;
let url: string;
let root: string;
let store: LocalStore;

beforeEach(async () => {
  // Sends the headers and half the body, then holds the rest: the body is open when it is destroyed.
  server = createServer((_request, response) => {
    response.writeHead(200, { 'content-length': String(content.byteLength) });
    response.write(content.subarray(0, content.byteLength / 2));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/blob`;
  root = await mkdtemp(join(tmpdir(), 'wharf-body-closed-'));
  store = await LocalStore.open(root);
});
afterEach(async () => {
  server.closeAllConnections();
  server.close();
  store.close();
  await rm(root, { recursive: true, force: true });
});

/** undici's request, answered; its body destroyed by `signal` once `abort` is called. */
async function answered(abort: AbortController): Promise<Awaited<ReturnType<typeof request>>> {
  return request(url, { signal: abort.signal });
}

/** Waits until undici has destroyed the body and emitted its last events. */
async function closedOff(body: NodeJS.ReadableStream & { destroyed: boolean }): Promise<void> {
  if (!body.destroyed) await once(body, 'close').catch(() => undefined);
  await new Promise((resolve) => setImmediate(resolve));
}

describe('streamBody on a body destroyed before its first read', () => {
  it('fails at once with UNAVAILABLE, instead of waiting for events already emitted', async () => {
    const abort = new AbortController();
    const response = await answered(abort);
    abort.abort();
    await closedOff(response.body);
    expect(response.body.destroyed).toBe(true);
    const reading = (async () => {
      for await (const chunk of streamBody(response.body, 'upstream test blob')) void chunk;
      return 'ended';
    })().catch((error: unknown) => error);
    const outcome = await settledWithin(reading, 5000);
    expect(outcome).not.toBe('pending');
    expect(outcome).toBeInstanceOf(OciError);
    expect((outcome as OciError).code).toBe('UNAVAILABLE');
    expect((outcome as OciError).message).toContain('upstream test blob: reading the response failed');
  });
});

describe('a prefetch aborted at shutdown after the upstream answered', () => {
  it('ends failed, keeps nothing, and lets settle() finish', async () => {
    const log = captureLog('debug');
    const fills = new FillRegistry(store, log.logger);
    let settling: Promise<void> | undefined;
    const started = fills.prefetch(digestOf(content), name, async (signal): Promise<UpstreamBlob> => {
      const abort = new AbortController();
      signal.addEventListener('abort', () => abort.abort(), { once: true });
      const response = await answered(abort);
      // Shutdown begins now, while the answer is on its way to the fill: the prefetch is aborted
      // and undici destroys the body before the fill reads a byte of it.
      settling = fills.settle();
      await closedOff(response.body);
      return {
        size: content.byteLength,
        body: streamBody(response.body, 'upstream test blob'),
        cancel: async () => {
          response.body.destroy();
        },
      };
    });
    expect(started).toBe(true);
    const deadline = Date.now() + 5000;
    while (settling === undefined && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(settling, 'the prefetch never asked the upstream').toBeDefined();
    expect(await settledWithin(settling as Promise<void>, 5000)).toBeUndefined();
    expect(fills.inFlight).toBe(0);
    expect(fills.prefetchStats).toEqual({ started: 1, joined: 0, failed: 1 });
    expect(store.hasBlob(digestOf(content))).toBe(false);
    // The fill's temp file is gone (tmp/ holds only the uploads folder).
    expect((await readdir(join(root, 'tmp'))).filter((entry) => entry.endsWith('.part'))).toEqual([]);
    expect(log.lines.filter((line) => line.msg === 'prefetch cancelled at shutdown; nothing kept')).toHaveLength(1);
  });
});
