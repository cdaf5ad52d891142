/**
 * FillRegistry's edges, on a real LocalStore with hand-released upstream bodies: the bound on
 * the memory a fill holds, reads at the end and through the iterable form, readers that close
 * twice, starts that fail (a 404, no Content-Length, no room, a body longer than announced) and
 * the slot they must give back, and prefetch's bookkeeping (joins, failures that cost the client
 * nothing, cancellation at shutdown). Written for the survivors of the fill scope's mutation run
 * (docs/mutation-testing.md); each asserts the exact answer.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readlink, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requireRepoName } from '../src/oci/reference.js';
import { FillRegistry } from '../src/proxy/fill-registry.js';
import type { UpstreamBlob } from '../src/proxy/upstream-client.js';
import { LocalStore, type LocalStoreOptions } from '../src/store/local-store.js';
import { digestOf, gatedUpstream, readRange, settledWithin } from './support/fill-harness.js';
import { captureLog, type LogCapture } from './support/log-capture.js';

const MiB = 1024 * 1024;
const name = requireRepoName('mirror.test/edges');
const other = requireRepoName('mirror.test/other');

let root: string;
let store: LocalStore;
let log: LogCapture;
async function openStore(options: LocalStoreOptions = {}): Promise<void> {
  store = await LocalStore.open(root, options);
}
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'wharf-fill-edges-'));
  log = captureLog('debug');
  await openStore();
});
afterEach(async () => {
  store.close();
  await rm(root, { recursive: true, force: true });
});

/** Polls `check` until it holds, or fails after `ms` with what it last saw. */
async function until(check: () => boolean, what: () => unknown, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`still not so after ${ms} ms: ${JSON.stringify(what())}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Descriptors of this process open on blob files of the test's store (stored or being filled). */
async function descriptorsUnderRoot(): Promise<string[]> {
  const targets = await Promise.all(
    (await readdir('/proc/self/fd')).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')),
  );
  return targets.filter((target) => target.startsWith(join(root, 'blobs')) || target.startsWith(join(root, 'tmp')));
}

function linesWith(msg: string): Record<string, unknown>[] {
  return log.lines.filter((line) => line.msg === msg);
}

describe('FillRegistry: memory and reads', () => {
  it('holds about memoryWindowBytes of a large fill in memory: never the whole blob, never nothing', async () => {
    const content = randomBytes(11 * MiB + 4321);
    const fills = new FillRegistry(store, log.logger);
    const upstream = gatedUpstream(content);
    const handle = await fills.open(digestOf(content), name, async () => upstream.blob);
    const reader = await handle!.openFile!();
    // One chunk past each batch boundary: the pump takes that chunk only after it trimmed the window
    // at the boundary, and the reader sees it only once it is in the window. Then the window is
    // exactly 2 MiB of written chunks plus that chunk (chunks are 64 KiB and batches 1 MiB), at
    // every boundary: a window that swings between 1 and 3 MiB fails as surely as one that grows.
    let read = 0;
    for (let boundary = 3; boundary <= 10; boundary++) {
      const upTo = boundary * MiB + 64 * 1024;
      upstream.release(upTo);
      expect((await readRange(reader, read, upTo)).equals(content.subarray(read, upTo))).toBe(true);
      read = upTo;
      expect({ boundary, held: fills.heldBytes }).toEqual({ boundary, held: 2 * MiB + 64 * 1024 });
    }
    upstream.release(content.byteLength);
    upstream.end();
    expect((await readRange(reader, read, content.byteLength)).equals(content.subarray(read))).toBe(true);
    await reader.close();
    await fills.settle();
    expect(fills.heldBytes).toBe(0);
  });

  it('answers 0 for a read at the end, on a running fill and on the stored file', async () => {
    const content = randomBytes(300_000);
    const fills = new FillRegistry(store, log.logger);
    const upstream = gatedUpstream(content);
    const handle = await fills.open(digestOf(content), name, async () => upstream.blob);
    const running = await handle!.openFile!();
    upstream.release(content.byteLength);
    const buffer = Buffer.alloc(1024);
    expect(await settledWithin(running.read(buffer, content.byteLength), 1000)).toBe(0);
    upstream.end();
    await fills.settle();
    expect(await running.read(buffer, content.byteLength)).toBe(0);
    await running.close();
    const stored = await handle!.openFile!();
    expect(await stored.read(buffer, content.byteLength)).toBe(0);
    await stored.close();
  });

  it('streams a growing fill through the iterable form, whole and ranged, and closes what it opened', async () => {
    const content = randomBytes(3 * MiB + 777);
    const fills = new FillRegistry(store, log.logger);
    const upstream = gatedUpstream(content);
    const handle = await fills.open(digestOf(content), name, async () => upstream.blob);
    const collect = async (range?: { start: number; end: number }): Promise<Buffer> => {
      const parts: Buffer[] = [];
      for await (const part of handle!.open(range)) parts.push(Buffer.from(part));
      return Buffer.concat(parts);
    };
    const whole = collect();
    const ranged = collect({ start: 100_000, end: content.byteLength - 1 });
    // Released in steps smaller than a read, so reads at the head come back short.
    for (let upTo = 100_000; upTo < content.byteLength; upTo += 100_000) {
      upstream.release(upTo);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    upstream.release(content.byteLength);
    upstream.end();
    expect((await whole).equals(content)).toBe(true);
    expect((await ranged).equals(content.subarray(100_000))).toBe(true);
    await fills.settle();
    expect(await descriptorsUnderRoot()).toEqual([]);
  });

  it('releases a reader once however often it closes: another reader still reads after the commit', async () => {
    const content = randomBytes(3 * MiB);
    const fills = new FillRegistry(store, log.logger);
    const upstream = gatedUpstream(content);
    const handle = await fills.open(digestOf(content), name, async () => upstream.blob);
    const twice = await handle!.openFile!();
    const still = await handle!.openFile!();
    upstream.release(content.byteLength);
    const head = await readRange(still, 0, MiB);
    await twice.close();
    await twice.close();
    upstream.end();
    await fills.settle();
    // Committed, the window dropped: the rest comes from the descriptor this reader still holds.
    expect(Buffer.concat([head, await readRange(still, MiB, content.byteLength)]).equals(content)).toBe(true);
    await still.close();
    expect(await descriptorsUnderRoot()).toEqual([]);
  });
});

describe('FillRegistry: failures', () => {
  it('tells a failed fill’s readers what happened, with the digest, and opens nothing stored for them', async () => {
    const content = randomBytes(2 * MiB);
    const claimed = digestOf(randomBytes(8));
    const fills = new FillRegistry(store, log.logger);
    const upstream = gatedUpstream(content);
    const handle = await fills.open(claimed, name, async () => upstream.blob);
    upstream.release(content.byteLength);
    upstream.end();
    await fills.settle();
    const failure = {
      code: 'UNAVAILABLE',
      status: 502,
      message: 'the upstream blob failed verification or transfer; nothing was kept',
      detail: { digest: claimed },
    };
    // Opened after the fill failed: whole, and a range that would have waited for the verdict.
    await expect(handle!.openFile!()).rejects.toMatchObject(failure);
    await expect(handle!.openFile!({ start: 0, end: 9 })).rejects.toMatchObject(failure);
    const warned = linesWith('blob fill from upstream failed; nothing kept');
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ level: 40, digest: claimed, err: { code: 'DIGEST_INVALID' } });
    expect(warned[0]).not.toHaveProperty('prefetch');
  });

  it('fails a body longer than announced, at the byte that overflows, and keeps nothing', async () => {
    // One byte more than announced, in the second chunk: caught as it arrives, not by the size check at the end.
    const content = randomBytes(100_001);
    const announced = digestOf(content.subarray(0, 100_000));
    const fills = new FillRegistry(store, log.logger);
    const upstream = gatedUpstream(content, { size: 100_000 });
    const handle = await fills.open(announced, name, async () => upstream.blob);
    upstream.release(content.byteLength);
    upstream.end();
    await expect(readRange(await handle!.openFile!(), 0, 100_000)).rejects.toMatchObject({ status: 502 });
    await fills.settle();
    expect(linesWith('blob fill from upstream failed; nothing kept')[0]).toMatchObject({
      err: {
        code: 'SIZE_INVALID',
        message: 'upstream sent more bytes than it announced',
        detail: { digest: announced, size: 100_000 },
      },
    });
    expect(fills.stats).toEqual({ started: 1, completed: 0, failed: 1 });
    expect((await readdir(join(root, 'tmp'))).filter((f) => f.endsWith('.part'))).toEqual([]);
  });

  it('refuses a body without Content-Length before writing, and cancels it', async () => {
    const content = randomBytes(1000);
    const digest = digestOf(content);
    const fills = new FillRegistry(store, log.logger);
    const upstream = gatedUpstream(content, { size: undefined });
    await expect(fills.open(digest, name, async () => upstream.blob)).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: 'upstream sent a blob without Content-Length',
      detail: { digest },
    });
    expect(upstream.cancelled).toBe(true);
    expect(fills.stats).toEqual({ started: 0, completed: 0, failed: 0 });
    expect(fills.inFlight).toBe(0);
  });

  it('answers 507 when the store has no room, cancels the body, and gives the slot back', async () => {
    store.close();
    await openStore({ lifecycle: { space: { maxBytes: 10_000, lowWaterBytes: 9_000 } } });
    const fills = new FillRegistry(store, log.logger, { maxConcurrent: 1 });
    const big = randomBytes(50_000);
    const upstream = gatedUpstream(big);
    await expect(fills.open(digestOf(big), name, async () => upstream.blob)).rejects.toMatchObject({ status: 507 });
    expect(upstream.cancelled).toBe(true);
    const small = randomBytes(1000);
    const next = gatedUpstream(small);
    next.release(small.byteLength);
    next.end();
    expect(
      await settledWithin(
        fills.open(digestOf(small), name, async () => next.blob),
        2000,
      ),
    ).not.toBe('pending');
    await fills.settle();
    expect((await store.openBlob(name, digestOf(small)))?.size).toBe(1000);
  });

  it('gives the reservation back and cancels the body when the temp file cannot be made', async () => {
    store.close();
    await openStore({ lifecycle: { space: { maxBytes: 100_000, lowWaterBytes: 90_000 } } });
    const fills = new FillRegistry(store, log.logger, { maxConcurrent: 1 });
    await rm(join(root, 'tmp'), { recursive: true });
    const first = randomBytes(50_000);
    const upstream = gatedUpstream(first);
    await expect(fills.open(digestOf(first), name, async () => upstream.blob)).rejects.toMatchObject({
      code: 'ENOENT',
    });
    expect(upstream.cancelled).toBe(true);
    await mkdir(join(root, 'tmp'));
    // 60,000 bytes fit only if the failed fill's 50,000 were given back.
    const second = randomBytes(60_000);
    const next = gatedUpstream(second);
    next.release(second.byteLength);
    next.end();
    expect((await fills.open(digestOf(second), name, async () => next.blob))?.size).toBe(60_000);
    await fills.settle();
    expect((await store.openBlob(name, digestOf(second)))?.size).toBe(60_000);
  });

  it('fails the iterable form at the byte where a stored file ends early, instead of waiting', async () => {
    const content = randomBytes(300_000);
    const digest = digestOf(content);
    const fills = new FillRegistry(store, log.logger);
    const upstream = gatedUpstream(content);
    const handle = await fills.open(digest, name, async () => upstream.blob);
    upstream.release(content.byteLength);
    upstream.end();
    await fills.settle();
    const hex = digest.slice('sha256:'.length);
    await truncate(join(root, 'blobs', 'sha256', hex.slice(0, 2), hex), 200_000);
    const parts: Buffer[] = [];
    const reading = (async () => {
      for await (const part of handle!.open()) parts.push(Buffer.from(part));
    })();
    await expect(settledWithin(reading, 2000)).rejects.toThrow('blob file ended early at byte 200000');
  });

  it('gives the slot back and forgets the fill when the upstream has no such blob, so the next request asks again', async () => {
    const content = randomBytes(1000);
    const digest = digestOf(content);
    const fills = new FillRegistry(store, log.logger, { maxConcurrent: 1 });
    expect(await fills.open(digest, name, async () => undefined)).toBeUndefined();
    expect(fills.isFilling(digest)).toBe(false);
    // The same digest again: asked again (not the first answer remembered), in the slot given back.
    const upstream = gatedUpstream(content);
    const again = fills.open(digest, name, async () => upstream.blob);
    expect(await settledWithin(again, 2000)).not.toBe('pending');
    expect(fills.isFilling(digest)).toBe(true);
    upstream.release(content.byteLength);
    upstream.end();
    await fills.settle();
    expect(fills.stats).toEqual({ started: 1, completed: 1, failed: 0 });
  });

  it('gives the slot back when asking the upstream throws', async () => {
    const fills = new FillRegistry(store, log.logger, { maxConcurrent: 1 });
    const broken = digestOf(randomBytes(8));
    await expect(
      fills.open(broken, name, async () => {
        throw new Error('connection refused');
      }),
    ).rejects.toThrow('connection refused');
    const content = randomBytes(1000);
    const upstream = gatedUpstream(content);
    expect(
      await settledWithin(
        fills.open(digestOf(content), name, async () => upstream.blob),
        2000,
      ),
    ).not.toBe('pending');
    upstream.release(content.byteLength);
    upstream.end();
    await fills.settle();
  });
});

describe('FillRegistry: bookkeeping and shutdown', () => {
  it('knows which fills run and for which names, and logs each filled blob', async () => {
    const content = randomBytes(1000);
    const digest = digestOf(content);
    const fills = new FillRegistry(store, log.logger);
    expect(fills.isFillingFor(digest, name)).toBe(false);
    const upstream = gatedUpstream(content);
    await fills.open(digest, name, async () => upstream.blob);
    expect(fills.inFlight).toBe(1);
    expect(fills.isFilling(digest)).toBe(true);
    expect(fills.isFillingFor(digest, name)).toBe(true);
    expect(fills.isFillingFor(digest, other)).toBe(false);
    upstream.release(content.byteLength);
    upstream.end();
    await fills.settle();
    expect(fills.inFlight).toBe(0);
    expect(fills.isFilling(digest)).toBe(false);
    expect(linesWith('blob filled from upstream')).toEqual([
      expect.objectContaining({ level: 20, digest, size: 1000 }),
    ]);
  });

  it('settles only after a fill still asking the upstream has run', async () => {
    const content = randomBytes(1000);
    const fills = new FillRegistry(store, log.logger);
    const upstream = gatedUpstream(content);
    let answer: (blob: UpstreamBlob) => void = () => undefined;
    const opened = fills.open(
      digestOf(content),
      name,
      () => new Promise<UpstreamBlob>((resolve) => (answer = resolve)),
    );
    const settled = fills.settle();
    expect(await settledWithin(settled, 100)).toBe('pending');
    answer(upstream.blob);
    await opened;
    expect(await settledWithin(settled, 100)).toBe('pending');
    upstream.release(content.byteLength);
    upstream.end();
    await settled;
    expect(fills.stats).toEqual({ started: 1, completed: 1, failed: 0 });
  });

  it('starts one prefetch per blob, which clients join (counted once), and none once shutting down', async () => {
    const content = randomBytes(1000);
    const digest = digestOf(content);
    const fills = new FillRegistry(store, log.logger);
    const upstream = gatedUpstream(content);
    const signals: AbortSignal[] = [];
    expect(
      fills.prefetch(digest, name, async (signal) => {
        signals.push(signal);
        return upstream.blob;
      }),
    ).toBe(true);
    expect(fills.prefetch(digest, name, async () => upstream.blob)).toBe(false);
    const joined = [
      fills.open(digest, name, async () => {
        throw new Error('a client joining a prefetch does not ask the upstream');
      }),
      fills.open(digest, other, async () => {
        throw new Error('a client joining a prefetch does not ask the upstream');
      }),
    ];
    upstream.release(content.byteLength);
    upstream.end();
    await Promise.all(joined);
    expect(signals).toHaveLength(1);
    expect(signals[0]!.aborted).toBe(false);
    await fills.settle();
    expect(fills.prefetchStats).toEqual({ started: 1, joined: 1, failed: 0 });
    expect((await store.openBlob(other, digest))?.size).toBe(1000);
    // Shutting down: no new prefetch.
    const later = randomBytes(10);
    expect(fills.prefetch(digestOf(later), name, async () => gatedUpstream(later).blob)).toBe(false);
  });

  it('costs the client nothing when a prefetch could not start: the client asks again itself', async () => {
    const content = randomBytes(1000);
    const digest = digestOf(content);
    const fills = new FillRegistry(store, log.logger);
    let refuse: ((error: Error) => void) | undefined;
    fills.prefetch(digest, name, () => new Promise<UpstreamBlob>((_resolve, reject) => (refuse = reject)));
    await until(
      () => refuse !== undefined,
      () => 'the prefetch never asked the upstream',
    );
    const upstream = gatedUpstream(content);
    upstream.release(content.byteLength);
    upstream.end();
    let asked = 0;
    const client = fills.open(digest, name, async () => {
      asked++;
      return upstream.blob;
    });
    refuse!(new Error('upstream reset'));
    const handle = await client;
    expect(asked).toBe(1);
    expect(handle?.size).toBe(1000);
    expect(fills.prefetchStats).toEqual({ started: 1, joined: 1, failed: 1 });
    const failedToStart = linesWith('prefetch of a blob failed to start; nothing kept');
    expect(failedToStart).toHaveLength(1);
    expect(failedToStart[0]).toMatchObject({ level: 30, digest, name, err: { message: 'upstream reset' } });

    // A prefetch of a blob the upstream does not have: counted, logged, and the client asks again.
    const missing = randomBytes(2000);
    const missingDigest = digestOf(missing);
    fills.prefetch(missingDigest, name, async () => undefined);
    const second = gatedUpstream(missing);
    second.release(missing.byteLength);
    second.end();
    expect((await fills.open(missingDigest, name, async () => second.blob))?.size).toBe(2000);
    await fills.settle();
    expect(fills.prefetchStats).toEqual({ started: 2, joined: 2, failed: 2 });
    expect(linesWith('prefetch: the upstream does not have a blob its manifest names')).toEqual([
      expect.objectContaining({ level: 30, digest: missingDigest, name }),
    ]);
  });

  it('logs a prefetch whose body fails as a prefetch, and counts it once', async () => {
    const content = randomBytes(1000);
    const claimed = digestOf(randomBytes(8));
    const fills = new FillRegistry(store, log.logger);
    const upstream = gatedUpstream(content);
    fills.prefetch(claimed, name, async () => upstream.blob);
    upstream.release(content.byteLength);
    upstream.end();
    // Not settle() at once: it would cancel the prefetch before it started.
    await until(
      () => fills.stats.failed === 1,
      () => fills.stats,
    );
    await fills.settle();
    expect(fills.prefetchStats).toEqual({ started: 1, joined: 0, failed: 1 });
    expect(fills.stats).toEqual({ started: 1, completed: 0, failed: 1 });
    expect(linesWith('blob fill from upstream failed; nothing kept')).toEqual([
      expect.objectContaining({ level: 40, digest: claimed, prefetch: true }),
    ]);
  });

  it('cancels at shutdown the prefetches no client joined, running or queued, and finishes the joined ones', async () => {
    const fills = new FillRegistry(store, log.logger, { maxConcurrent: 3 });
    const [joinedContent, runningContent, askingContent, queuedContent] = [1, 2, 3, 4].map(() => randomBytes(1000)) as [
      Buffer,
      Buffer,
      Buffer,
      Buffer,
    ];
    // Each body honours its signal, as undici's do: only the joined one must not be cancelled.
    let joinedUpstream: ReturnType<typeof gatedUpstream> | undefined;
    fills.prefetch(digestOf(joinedContent), name, async (signal) => {
      joinedUpstream = gatedUpstream(joinedContent, { signal });
      return joinedUpstream.blob;
    });
    const client = fills.open(digestOf(joinedContent), name, async () => {
      throw new Error('joins the prefetch');
    });
    let running: ReturnType<typeof gatedUpstream> | undefined;
    fills.prefetch(digestOf(runningContent), name, async (signal) => {
      running = gatedUpstream(runningContent, { signal });
      return running.blob;
    });
    // Still waiting for the upstream's answer when shutdown comes: the request is aborted, as undici aborts it.
    fills.prefetch(
      digestOf(askingContent),
      name,
      (signal) =>
        new Promise<UpstreamBlob>((_resolve, reject) =>
          signal.addEventListener('abort', () => reject(new Error('This operation was aborted'))),
        ),
    );
    let queuedAsked = false;
    fills.prefetch(digestOf(queuedContent), name, async () => {
      queuedAsked = true;
      return gatedUpstream(queuedContent).blob;
    });
    await until(
      () => running !== undefined && joinedUpstream !== undefined,
      () => 'the first two prefetches never asked the upstream',
    );
    running!.release(500);
    const settled = fills.settle();
    joinedUpstream!.release(joinedContent.byteLength);
    joinedUpstream!.end();
    await client;
    await settled;
    expect(queuedAsked).toBe(false);
    expect((await store.openBlob(name, digestOf(joinedContent)))?.size).toBe(1000);
    expect(await store.openBlob(name, digestOf(runningContent))).toBeUndefined();
    expect(fills.prefetchStats).toEqual({ started: 4, joined: 1, failed: 3 });
    expect(linesWith('prefetch cancelled at shutdown; nothing kept')).toEqual([
      expect.objectContaining({ level: 30, digest: digestOf(runningContent) }),
    ]);
    // Cancelled prefetches are not reported as failures of the upstream.
    expect(linesWith('prefetch of a blob failed to start; nothing kept')).toEqual([]);
    expect(linesWith('prefetch: the upstream does not have a blob its manifest names')).toEqual([]);
    expect(log.atLeast(40)).toEqual([]);
  });
});
