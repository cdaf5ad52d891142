/**
 * Shutdown's other two duties (issue 13, round 4 of the planted-bug audit): a request still busy
 * when the grace period ends is cut, so shutdown completes (`shutdown.grace`, from the config of a
 * spawned `wharf serve` too); and a fill whose client left is finished and recorded before the index
 * closes, so the bytes already paid for are kept. Real parts: wharf in process and spawned, a
 * scripted upstream that holds a blob's second half until the test lets it go.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer } from '../src/cli/start-server.js';
import type { Digest } from '../src/oci/digest.js';
import type { RepoName } from '../src/oci/reference.js';
import { LocalStore } from '../src/store/local-store.js';
import { sha256 } from './support/http.js';
import { withDeadline } from './support/run.js';
import { startScriptedRegistry } from './support/scripted-registry.js';
import { spawnWharf } from './support/spawn-wharf.js';
import { startWharf } from './support/wharf.js';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-shutdown-grace-'));
});
afterAll(async () => rm(work, { recursive: true, force: true }));

/** A monolithic upload whose headers the server has parsed (100-continue) and half its body sent; the rest never comes. */
function stuckUpload(url: string): Promise<{ req: ClientRequest; outcome: Promise<string> }> {
  const body = Buffer.alloc(64 * 1024, 3);
  return withDeadline(
    new Promise((resolve) => {
      const req = request(`${url}/v2/shutdown/grace/blobs/uploads/?digest=${sha256(body)}`, {
        method: 'POST',
        headers: { 'Content-Length': String(body.length), Expect: '100-continue' },
      });
      const outcome = new Promise<string>((done) => {
        req.on('response', (res: IncomingMessage) => done(`answered ${res.statusCode}`));
        req.on('error', (error: NodeJS.ErrnoException) => done(`cut: ${error.code ?? error.message}`));
      });
      req.on('continue', () => req.write(body.subarray(0, body.length / 2), () => resolve({ req, outcome })));
      req.flushHeaders();
    }),
    20_000,
    'the upload in flight',
  );
}

/** Whether a fresh TCP connection to the port is accepted or refused (the listener closed). */
function connectOutcome(port: string): Promise<'refused' | 'accepted'> {
  return withDeadline(
    new Promise((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve('accepted');
      });
      socket.once('error', (error: NodeJS.ErrnoException) =>
        error.code === 'ECONNREFUSED' ? resolve('refused') : reject(error),
      );
    }),
    10_000,
    'a new connection',
  );
}

describe('shutdown', () => {
  it('cuts a request still busy when the grace period ends, and completes', async () => {
    const server = await startServer({
      dataDir: join(work, 'grace'),
      host: '127.0.0.1',
      port: 0,
      logLevel: 'silent',
      shutdownGraceMs: 300,
    });
    const { req, outcome } = await stuckUpload(`http://127.0.0.1:${server.port}`);
    try {
      await withDeadline(server.close(), 20_000, 'shutdown with a request stuck past the grace period');
      expect(await withDeadline(outcome, 20_000, 'the stuck upload ending')).toBe('cut: ECONNRESET');
    } finally {
      req.destroy();
    }
  });

  // Round 7c: startServer's own default (10 s, for callers that give no shutdownGraceMs) read as 10 ms
  // passed: serve always passes the config's value, and every in-process test here gave its own.
  it('lets a request in flight finish after close() when no grace period is given (10 s by default)', async () => {
    const server = await startServer({
      dataDir: join(work, 'default'),
      host: '127.0.0.1',
      port: 0,
      logLevel: 'silent',
    });
    const { req, outcome } = await stuckUpload(`http://127.0.0.1:${server.port}`);
    try {
      const closing = server.close();
      // Well past a grace period mistaken by a factor of 1000, well within the real one.
      await new Promise((resolve) => setTimeout(resolve, 500));
      req.end(Buffer.alloc(32 * 1024, 3));
      expect(await withDeadline(outcome, 20_000, 'the upload in flight answering')).toBe('answered 201');
      await withDeadline(closing, 20_000, 'shutdown once the upload is done');
    } finally {
      req.destroy();
    }
  });

  it('honours shutdown.grace from the config of a spawned serve', async () => {
    const wharf = await spawnWharf(['--data', join(work, 'spawned')], { env: { WHARF_SHUTDOWN_GRACE: '300ms' } });
    const { req, outcome } = await stuckUpload(wharf.url);
    try {
      wharf.child.kill('SIGTERM');
      // The default grace is 10 s: only the configured 300 ms ends this within the deadline.
      const { code } = await withDeadline(wharf.exited, 6_000, 'wharf exiting after its 300 ms grace period');
      expect(code).toBe(0);
      expect(await withDeadline(outcome, 20_000, 'the stuck upload ending')).toMatch(/^cut: /);
    } finally {
      req.destroy();
      wharf.child.kill('SIGKILL');
    }
  });

  it('finishes and records a fill whose client left before the index closes', async () => {
    const blob = Buffer.alloc(2 * 1024 * 1024, 5);
    const digest = sha256(blob) as Digest;
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    const upstream = await startScriptedRegistry({
      [`/v2/team/held/blobs/${digest}`]: async (_req, res) => {
        res.writeHead(200, { 'Content-Length': String(blob.length) });
        res.write(blob.subarray(0, blob.length / 2));
        await released;
        res.end(blob.subarray(blob.length / 2));
      },
    });
    const dataDir = join(work, 'fill');
    const wharf = await startWharf({
      dataDir,
      upstreams: [{ host: 'held.example.test', url: upstream.url, prefetch: false }],
    });
    try {
      // The client takes the first bytes and leaves; the fill goes on for the cache.
      await withDeadline(
        new Promise<void>((resolve, reject) => {
          const req = request(`${wharf.url}/v2/held.example.test/team/held/blobs/${digest}`, (res) => {
            if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
            res.once('data', () => {
              req.destroy();
              resolve();
            });
          });
          req.on('error', () => undefined);
          req.end();
        }),
        20_000,
        'the first bytes of the blob',
      );
      const closing = wharf.close();
      // Round 8b: waiting for fills before it stops listening kept accepting while this one ran.
      expect(await connectOutcome(new URL(wharf.url).port)).toBe('refused');
      release();
      await withDeadline(closing, 20_000, 'shutdown');
    } finally {
      release();
      await wharf.close();
      await upstream.close();
    }
    const store = await LocalStore.open(dataDir);
    try {
      expect(store.contentSize(digest)).toBe(blob.length);
      expect((await store.statBlob('held.example.test/team/held' as RepoName, digest))?.size).toBe(blob.length);
    } finally {
      store.close();
    }
  });
});
