/**
 * @module test/space-limit.test
 * store.maxSize in process on a real store (store/space-limit.ts, store/lifecycle.ts evict, ADR 0008):
 * each reservation with its exact outcome: which images an eviction takes (least recently used
 * first, only what the write needs past the low-water mark), which it leaves (pinned, more recent),
 * the bytes it frees and logs, the 507 with its detail. The limit's edges are exact: a write that
 * fills the store to the byte fits; one byte more than the limit is refused before anything is
 * evicted. Reservations that fit do not wait for an eviction in flight, and one eviction that made
 * room for a second write is not followed by another.
 */
import { mkdtemp, open, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import { isOciError } from '../src/oci/errors.js';
import { requireRepoName, type Tag } from '../src/oci/reference.js';
import type { DurableFs } from '../src/store/blob-files.js';
import { LocalStore, type LocalStoreOptions } from '../src/store/local-store.js';
import type { Reservation } from '../src/store/space-limit.js';
import { blobPath } from './support/blob-file.js';
import { captureLog, type LogCapture } from './support/log-capture.js';
import { withDeadline } from './support/run.js';
import { content, descriptorOf, imageManifest, ociTypes, once, type Content } from './support/store-content.js';

const deadlineMs = 30_000;

let root: string;
let store: LocalStore | undefined;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'wharf-space-limit-'));
});
afterEach(async () => {
  store?.close();
  store = undefined;
  await rm(root, { recursive: true, force: true });
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until every microtask queued so far (and those they queue) has run. */
function macrotask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

interface Image {
  repository: string;
  blobs: Content[];
  manifest: Content;
  /** Bytes of its blob files: config, layer, manifest. */
  bytes: number;
}

/** One image, its config and layer pushed, its manifest as an upstream's (fetched: evictable) or pushed (pinned). */
async function addImage(s: LocalStore, repository: string, source: 'fetched' | 'pushed'): Promise<Image> {
  const name = requireRepoName(repository);
  const config = content(JSON.stringify({ architecture: 'amd64', os: 'linux', repository }));
  const layer = content(`layer of ${repository} `.repeat(300));
  const manifest = imageManifest(config, [descriptorOf(layer, ociTypes.layer)]);
  await s.putBlob(name, config.digest, once(config.bytes));
  await s.putBlob(name, layer.digest, once(layer.bytes));
  if (source === 'fetched') {
    const fetched = { digest: manifest.digest, mediaType: ociTypes.manifest, bytes: manifest.bytes };
    await s.putFetchedManifest(name, fetched, 'v1' as Tag);
  } else {
    await s.putManifest(name, 'v1' as Tag, manifest.bytes, ociTypes.manifest);
  }
  // Least recently used is by creation here (nothing is read): one image per millisecond at least.
  await sleep(3);
  return { repository, blobs: [config, layer], manifest, bytes: config.size + layer.size + manifest.size };
}

/** Fills a store without a limit, then opens it again with `options` (store.maxSize among them). */
async function storeWith(
  images: [string, 'fetched' | 'pushed'][],
  options: (total: number, images: Image[]) => LocalStoreOptions,
): Promise<{ store: LocalStore; images: Image[]; total: number }> {
  const filling = await LocalStore.open(root);
  const made: Image[] = [];
  try {
    for (const [repository, source] of images) made.push(await addImage(filling, repository, source));
  } finally {
    filling.close();
  }
  const total = made.reduce((sum, image) => sum + image.bytes, 0);
  store = await LocalStore.open(root, options(total, made));
  expect(store.lifecycle.space.used).toBe(total);
  return { store, images: made, total };
}

function limit(maxBytes: number, lowWaterBytes: number, logger?: LogCapture): LocalStoreOptions {
  return {
    lifecycle: { space: { maxBytes, lowWaterBytes }, ...(logger === undefined ? {} : { logger: logger.logger }) },
  };
}

function isHeld(s: LocalStore, image: Image): boolean {
  return [image.manifest, ...image.blobs].every((blob) => s.hasBlob(blob.digest));
}

function isGone(s: LocalStore, image: Image): boolean {
  return [image.manifest, ...image.blobs].every((blob) => !s.hasBlob(blob.digest));
}

async function fileExists(digest: Digest): Promise<boolean> {
  return stat(blobPath(root, digest)).then(
    () => true,
    () => false,
  );
}

/** The eviction's log lines: what it freed, against what was needed. */
function evictionLines(log: LogCapture): Record<string, unknown>[] {
  return log.lines
    .filter((line) => typeof line.msg === 'string' && line.msg.startsWith('store.maxSize'))
    .map(({ need, freed, images, blobs, msg }) => ({ need, freed, images, blobs, msg }));
}

/** A promise's state without waiting: settled once the microtasks queued so far ran. */
function track<T>(promise: Promise<T>): { settled: () => boolean; promise: Promise<T> } {
  let done = false;
  void promise.then(
    () => (done = true),
    () => (done = true),
  );
  return { settled: () => done, promise };
}

describe('store.maxSize', () => {
  it('fits a write of exactly the limit, and refuses one byte more at once (507, its detail), evicting nothing', async () => {
    const maxBytes = 100_000;
    store = await LocalStore.open(root, limit(maxBytes, 90_000));
    const whole = await store.reserveSpace(maxBytes);
    expect(store.lifecycle.space.used).toBe(maxBytes);
    whole.release();
    expect(store.lifecycle.space.used).toBe(0);

    const image = await addImage(store, 'mirror/a', 'fetched');
    const refused = await store.reserveSpace(maxBytes + 1).then(
      () => undefined,
      (error: unknown) => error,
    );
    if (!isOciError(refused)) throw new Error(`an OciError expected, got ${String(refused)}`);
    expect({ code: refused.code, status: refused.status, message: refused.message, detail: refused.detail }).toEqual({
      code: 'UNAVAILABLE',
      status: 507,
      message:
        `store.maxSize reached: ${maxBytes + 1} more bytes do not fit in ${maxBytes} (${image.bytes} in use) ` +
        'even after evicting every image that may go; nothing was kept',
      detail: { size: maxBytes + 1, maxSize: maxBytes, used: image.bytes },
    });
    // Nothing could have made room: nothing was taken for it.
    expect(isHeld(store, image)).toBe(true);
    expect(store.lifecycle.stats.evictions).toBe(0);
    expect(store.lifecycle.space.used).toBe(image.bytes);
  });

  it('counts a reservation once, however often it is released', async () => {
    store = await LocalStore.open(root, limit(100_000, 90_000));
    const image = await addImage(store, 'mirror/a', 'fetched');
    const reservation = await store.reserveSpace(1_000);
    expect(store.lifecycle.space.used).toBe(image.bytes + 1_000);
    reservation.release();
    reservation.release();
    expect(store.lifecycle.space.used).toBe(image.bytes);
  });

  it('evicts the least recently used image, exactly what the write needs down to the low-water mark, and logs it', async () => {
    const log = captureLog('info');
    const { images, total } = await storeWith(
      [
        ['mirror/a', 'fetched'],
        ['mirror/b', 'fetched'],
        ['mirror/c', 'fetched'],
      ],
      (sum) => limit(sum + 1_000, sum + 500, log),
    );
    const [a, b, c] = images as [Image, Image, Image];
    const s = store as LocalStore;
    // Past the limit by a.bytes - 500; down to the low-water mark is exactly a.bytes.
    const bytes = a.bytes + 500;

    const reservation = await s.reserveSpace(bytes);

    expect(isGone(s, a)).toBe(true);
    for (const blob of [a.manifest, ...a.blobs]) expect(await fileExists(blob.digest), blob.digest).toBe(false);
    expect(isHeld(s, b)).toBe(true);
    expect(isHeld(s, c)).toBe(true);
    expect(s.lifecycle.stats).toEqual({ evictions: 1, evictedBytes: a.bytes, gcRuns: 0, gcBytes: 0 });
    expect(s.lifecycle.space.used).toBe(total - a.bytes + bytes);
    expect(evictionLines(log)).toEqual([
      {
        need: a.bytes,
        freed: a.bytes,
        images: [`mirror/a@${a.manifest.digest}`],
        blobs: 3,
        msg: 'store.maxSize: evicted images',
      },
    ]);
    reservation.release();
  });

  it('keeps a write that fits to the byte once all that may go is gone, pinned content kept, and says it was short', async () => {
    const log = captureLog('info');
    const { images, total } = await storeWith(
      [
        ['team/app', 'pushed'],
        ['mirror/a', 'fetched'],
      ],
      (sum) => limit(sum + 1_000, sum + 500, log),
    );
    const [pushed, a] = images as [Image, Image];
    const s = store as LocalStore;
    const maxBytes = total + 1_000;
    // Fits only once a is gone, and then to the byte; the low-water mark is out of reach.
    const bytes = maxBytes - pushed.bytes;

    const reservation = await s.reserveSpace(bytes);

    expect(s.lifecycle.space.used).toBe(maxBytes);
    expect(isGone(s, a)).toBe(true);
    expect(isHeld(s, pushed)).toBe(true);
    expect(evictionLines(log)).toEqual([
      {
        need: a.bytes + 500,
        freed: a.bytes,
        images: [`mirror/a@${a.manifest.digest}`],
        blobs: 3,
        msg: 'store.maxSize: evicted all that may go, still short',
      },
    ]);
    reservation.release();
  });

  it('lets a reservation that fits (to the byte, too) through while an eviction is still unlinking', async () => {
    const fs = new HeldRemoves();
    const { images, total } = await storeWith(
      [
        ['mirror/a', 'fetched'],
        ['mirror/b', 'fetched'],
      ],
      (sum) => ({ ...limit(sum + 1_000, sum + 500), blobFs: fs }),
    );
    const [a, b] = images as [Image, Image];
    const s = store as LocalStore;
    const maxBytes = total + 1_000;
    const unlinking = fs.holdNext();

    const evicting = track(s.reserveSpace(a.bytes + 500));
    await withDeadline(unlinking.reached, deadlineMs, "the eviction's first unlink");
    // a's rows are gone: b is all the store holds, and the evicting write is not counted yet.
    expect(s.lifecycle.space.used).toBe(b.bytes);

    const small = track(s.reserveSpace(100));
    await macrotask();
    expect(small.settled()).toBe(true);
    (await small.promise).release();
    const toTheByte = track(s.reserveSpace(maxBytes - b.bytes));
    await macrotask();
    expect(toTheByte.settled()).toBe(true);
    (await toTheByte.promise).release();
    expect(evicting.settled()).toBe(false);

    unlinking.release();
    const reservation: Reservation = await withDeadline(evicting.promise, deadlineMs, 'the evicting write');
    expect(s.lifecycle.space.used).toBe(b.bytes + a.bytes + 500);
    reservation.release();
    expect(isGone(s, a)).toBe(true);
    expect(isHeld(s, b)).toBe(true);
  });

  it('runs one eviction for two writes past the limit at once when it made room for both', async () => {
    const first = 100;
    const second = 200;
    const { images, total } = await storeWith(
      [
        ['mirror/a', 'fetched'],
        ['mirror/b', 'fetched'],
        ['mirror/c', 'fetched'],
      ],
      // After evicting a (exactly the first write's need), both writes fill the store to the byte.
      (sum, [oldest]) => limit(sum - (oldest?.bytes ?? 0) + first + second, sum - (oldest?.bytes ?? 0) + first),
    );
    const [a, b, c] = images as [Image, Image, Image];
    const s = store as LocalStore;

    const reservations = await withDeadline(
      Promise.all([s.reserveSpace(first), s.reserveSpace(second)]),
      deadlineMs,
      'both writes',
    );

    expect(s.lifecycle.stats.evictions).toBe(1);
    expect(isGone(s, a)).toBe(true);
    expect(isHeld(s, b)).toBe(true);
    expect(isHeld(s, c)).toBe(true);
    expect(s.lifecycle.space.used).toBe(total - a.bytes + first + second);
    for (const reservation of reservations) reservation.release();
  });
});

/** Node's fs calls for blob files, the next removal held (before it runs) until the test releases it. */
class HeldRemoves implements DurableFs {
  private next: { reached: () => void; gate: Promise<void> } | undefined;

  open(path: string, flags: string) {
    return open(path, flags);
  }

  rename(from: string, to: string): Promise<void> {
    return rename(from, to);
  }

  async remove(path: string): Promise<void> {
    const held = this.next;
    this.next = undefined;
    if (held !== undefined) {
      held.reached();
      await held.gate;
    }
    await rm(path, { force: true });
  }

  holdNext(): { reached: Promise<void>; release: () => void } {
    let reached = (): void => undefined;
    let release = (): void => undefined;
    const hold = { reached: new Promise<void>((resolve) => (reached = resolve)), release: () => release() };
    this.next = { reached, gate: new Promise<void>((resolve) => (release = resolve)) };
    return hold;
  }
}
