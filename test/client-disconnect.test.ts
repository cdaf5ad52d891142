/**
 * Clients going away mid-response are ordinary: a mass disconnect once wrote 500 error lines with
 * stacks to the log (issue 8, finding 10). Each disconnect is now at most a debug line, no stack.
 */
import { request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { call, pushBlob, sha256 } from './support/http.js';
import { captureLog, type LogCapture } from './support/log-capture.js';
import { withDeadline } from './support/run.js';
import { startScriptedRegistry, type ScriptedRegistry } from './support/scripted-registry.js';
import { startWharf, type WharfHandle } from './support/wharf.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function wharfWithLog(upstream?: ScriptedRegistry): Promise<{ wharf: WharfHandle; log: LogCapture }> {
  const log = captureLog('debug');
  const wharf = await startWharf({
    logger: log.logger,
    ...(upstream === undefined ? {} : { upstreams: [{ host: 'slow.example.test', url: upstream.url }] }),
  });
  cleanups.push(() => wharf.close());
  return { wharf, log };
}

/** Starts a GET, reads until the first body bytes arrive, then destroys the socket. */
function getAndHangUp(url: string): Promise<void> {
  return withDeadline(
    new Promise<void>((resolve, reject) => {
      const req = httpRequest(url, (res) => {
        if (res.statusCode !== 200) {
          reject(new Error(`status ${res.statusCode}`));
          return;
        }
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => resolve());
      req.end();
    }),
    20_000,
    `GET ${url} then hang up`,
  );
}

const clients = 40;

/** Nothing at warn or above, no stack anywhere, and the disconnects were seen (at debug). */
function expectOnlyDebugDisconnects(log: LogCapture): void {
  expect(log.atLeast(40)).toEqual([]);
  expect(log.lines.filter((line) => line.err !== undefined)).toEqual([]);
  expect(log.lines.filter((line) => line.msg?.startsWith('client went away') === true).length).toBeGreaterThan(0);
}

describe('clients hanging up mid-body', () => {
  it('local blobs: nothing above debug and no stacks in the log', async () => {
    const { wharf, log } = await wharfWithLog();
    const blob = Buffer.alloc(8 * 1024 * 1024, 7);
    const digest = await pushBlob(wharf.url, 'team/big', blob);
    await Promise.all(Array.from({ length: clients }, () => getAndHangUp(`${wharf.url}/v2/team/big/blobs/${digest}`)));
    // The server is still fine, and has noticed every disconnect.
    const after = await call(wharf.url, `/v2/team/big/blobs/${digest}`);
    expect(sha256(Buffer.from(await after.arrayBuffer()))).toBe(digest);
    await log.quiet();
    expectOnlyDebugDisconnects(log);
  });

  it('mirrored blobs being filled: nothing above debug and no stacks in the log', async () => {
    const blob = Buffer.alloc(4 * 1024 * 1024, 9);
    const digest = sha256(blob);
    const upstream = await startScriptedRegistry({
      [`/v2/team/slow/blobs/${digest}`]: (_req, res) => {
        res.writeHead(200, { 'Content-Length': String(blob.length) });
        let offset = 0;
        const step = (): void => {
          if (res.destroyed) return;
          if (offset >= blob.length) {
            res.end();
            return;
          }
          res.write(blob.subarray(offset, offset + 256 * 1024));
          offset += 256 * 1024;
          setTimeout(step, 20);
        };
        step();
      },
    });
    cleanups.push(() => upstream.close());
    const { wharf, log } = await wharfWithLog(upstream);
    await Promise.all(
      Array.from({ length: clients }, () =>
        getAndHangUp(`${wharf.url}/v2/slow.example.test/team/slow/blobs/${digest}`),
      ),
    );
    const after = await call(wharf.url, `/v2/slow.example.test/team/slow/blobs/${digest}`);
    expect(sha256(Buffer.from(await after.arrayBuffer()))).toBe(digest);
    await log.quiet();
    expectOnlyDebugDisconnects(log);
  });
});

describe('clients hanging up mid-upload', () => {
  it('nothing above debug and no stacks in the log', async () => {
    const { wharf, log } = await wharfWithLog();
    await Promise.all(
      Array.from({ length: clients }, async () => {
        const start = await call(wharf.url, '/v2/team/up/blobs/uploads/', { method: 'POST' });
        const location = start.headers.get('location') ?? '';
        await withDeadline(
          new Promise<void>((resolve) => {
            const req = httpRequest(new URL(location, wharf.url), {
              method: 'PATCH',
              headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(1024 * 1024) },
            });
            req.on('error', () => resolve());
            req.write(Buffer.alloc(64 * 1024, 1), () =>
              setTimeout(() => {
                req.destroy();
                resolve();
              }, 50),
            );
          }),
          10_000,
          'PATCH then hang up',
        );
      }),
    );
    await log.quiet();
    expectOnlyDebugDisconnects(log);
  });
});
