/**
 * A failed fill is forgotten, so the next request for the digest asks the upstream again: a start
 * that throws (the upstream refused the connection) and a body whose bytes do not match the digest.
 * Round 7a of the planted-bug audit (docs/mutation-testing.md): a registry that kept either entry
 * was caught only because shutdown (`settle()`) then waited for ever, and the test file never ended.
 * These tests check the entry itself before any settle(), so such a plant fails with a message.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requireRepoName } from '../src/oci/reference.js';
import { FillRegistry } from '../src/proxy/fill-registry.js';
import { LocalStore } from '../src/store/local-store.js';
import { digestOf, gatedUpstream, readRange } from './support/fill-harness.js';
import { captureLog, type LogCapture } from './support/log-capture.js';

const name = requireRepoName('mirror.test/forget');

let root: string;
let store: LocalStore;
let log: LogCapture;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'wharf-fill-forget-'));
  log = captureLog('debug');
  store = await LocalStore.open(root);
});
afterEach(async () => {
  store.close();
  await rm(root, { recursive: true, force: true });
});

/** Polls `check` every 5 ms; throws after `ms` (a deadline, not a speed claim). */
async function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: still not so after ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('FillRegistry forgets a failed fill', () => {
  it('whose start threw: the next request asks the upstream again and gets the blob', async () => {
    const content = randomBytes(1000);
    const digest = digestOf(content);
    const fills = new FillRegistry(store, log.logger);
    await expect(
      fills.open(digest, name, async () => {
        throw new Error('connection refused');
      }),
    ).rejects.toThrow('connection refused');
    expect(fills.isFilling(digest)).toBe(false);
    expect(fills.inFlight).toBe(0);

    const upstream = gatedUpstream(content);
    let asked = 0;
    const handle = await fills.open(digest, name, async () => {
      asked++;
      return upstream.blob;
    });
    expect(asked).toBe(1);
    upstream.release(content.byteLength);
    upstream.end();
    const file = await handle!.openFile!();
    try {
      expect((await readRange(file, 0, content.byteLength)).equals(content)).toBe(true);
    } finally {
      await file.close();
    }
    await fills.settle();
    expect(fills.stats).toEqual({ started: 1, completed: 1, failed: 0 });
  });

  it('whose bytes did not match: nothing kept, and the next request fetches again', async () => {
    const content = randomBytes(300_000);
    const digest = digestOf(content);
    const fills = new FillRegistry(store, log.logger);
    const wrong = gatedUpstream(Buffer.alloc(content.byteLength, 7));
    const failed = await fills.open(digest, name, async () => wrong.blob);
    wrong.release(content.byteLength);
    wrong.end();
    await until(() => fills.stats.failed === 1, 'the fill failed');
    await until(() => !fills.isFilling(digest), 'the failed fill forgotten');
    expect(fills.inFlight).toBe(0);
    expect(store.contentSize(digest)).toBeUndefined();
    await expect(failed!.openFile!()).rejects.toMatchObject({ code: 'UNAVAILABLE', status: 502 });

    const right = gatedUpstream(content);
    let asked = 0;
    const handle = await fills.open(digest, name, async () => {
      asked++;
      return right.blob;
    });
    expect(asked).toBe(1);
    right.release(content.byteLength);
    right.end();
    const file = await handle!.openFile!();
    try {
      expect((await readRange(file, 0, content.byteLength)).equals(content)).toBe(true);
    } finally {
      await file.close();
    }
    await fills.settle();
    expect(fills.stats).toEqual({ started: 2, completed: 1, failed: 1 });
    expect(store.contentSize(digest)).toBe(content.byteLength);
  });
});
