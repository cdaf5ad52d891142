/**
 * @module test/content-guard-window.test
 * What keeps gc and eviction off content being written or read (store/content-guard.ts, ADR 0008),
 * the ContentGuard alone on a real index with the test's clock (its `now` parameter): a read is in
 * use for exactly `inUseMs`, then forgotten at the next flush (its time written to
 * `blobs.accessed_at`); reads are recorded by default and not at all with recording off; a digest
 * leased twice is held until both leases end; a removal holds its digest, a second removal of it
 * waits for the first, and a removal that ends while an unlink of the digest runs leaves the digest
 * held by the unlink; a flush after the index closed drops nothing and throws nothing. Written for
 * the lifecycle scope's survivors and unreached mutants (docs/mutation-testing.md).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import { ContentGuard } from '../src/store/content-guard.js';
import type { Db } from '../src/store/database.js';
import { GraphStore } from './support/graph-store.js';
import { withDeadline } from './support/run.js';

const deadlineMs = 30_000;
const inUseMs = 100;

let root: string;
let db: Db | undefined;
let first: Digest;
let second: Digest;
/** The guard's clock, set by each test. */
let now = 0;
const clock = (): number => now;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'wharf-guard-window-'));
  const store = await GraphStore.open(root);
  first = (await store.blob('guard/app', 'first blob')).digest;
  second = (await store.blob('guard/app', 'second blob')).digest;
  db = store.openIndex();
  now = 0;
});
afterEach(async () => {
  db?.close();
  db = undefined;
  await rm(root, { recursive: true, force: true });
});

function index(): Db {
  if (db === undefined) throw new Error('no index');
  return db;
}

function accessedAt(digest: Digest): number | null | undefined {
  return index()
    .prepare<[string], { accessed_at: number | null }>('SELECT accessed_at FROM blobs WHERE digest = ?')
    .get(digest)?.accessed_at;
}

/** Lets every promise reaction queued so far run. */
function macrotask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

describe('reads', () => {
  it('are recorded by default, and not at all with recording off', async () => {
    now = 5000;
    const recording = new ContentGuard(index(), inUseMs, undefined, clock);
    recording.touch(first);
    expect(recording.lastRead(first)).toBe(5000);
    expect(recording.isInUse(first)).toBe(true);
    expect([...recording.inUse()]).toEqual([first]);

    const quiet = new ContentGuard(index(), inUseMs, false, clock);
    quiet.touch(second);
    expect(quiet.lastRead(second)).toBeUndefined();
    expect(quiet.isInUse(second)).toBe(false);
    expect([...quiet.inUse()]).toEqual([]);
    expect(quiet.flush()).toBe(0);
    expect(accessedAt(second)).toBeNull();

    expect(recording.flush()).toBe(1);
    expect(accessedAt(first)).toBe(5000);
  });

  it('keep a digest in use for exactly inUseMs, and are forgotten at the first flush after', () => {
    const guard = new ContentGuard(index(), inUseMs, true, clock);
    now = 1000;
    guard.touch(first);
    now = 1050;
    guard.touch(second);
    const unknown = 'sha256:0000000000000000000000000000000000000000000000000000000000000000' as Digest;

    // At the edge: read exactly inUseMs ago.
    now = 1000 + inUseMs;
    expect(guard.isInUse(first)).toBe(true);
    expect([...guard.inUse()].sort()).toEqual([first, second].sort());
    expect(guard.isInUse(unknown)).toBe(false);

    // A millisecond later, though not flushed (nor forgotten) yet.
    now = 1001 + inUseMs;
    expect(guard.lastRead(first)).toBe(1000);
    expect(guard.isInUse(first)).toBe(false);
    expect(guard.isInUse(second)).toBe(true);
    expect([...guard.inUse()]).toEqual([second]);

    // The flush writes both reads and forgets the one out of the window.
    expect(guard.flush()).toBe(2);
    expect(accessedAt(first)).toBe(1000);
    expect(accessedAt(second)).toBe(1050);
    expect(guard.lastRead(first)).toBeUndefined();
    expect(guard.lastRead(second)).toBe(1050);
    expect(guard.flush()).toBe(0);
  });

  // Round 12b of the planted bugs: a flush that wrote only a digest's first read (`accessed_at IS
  // NULL`) passed every test, and eviction's least-recently-used order then went by the first pull.
  it('move accessed_at forward at each flush of a later read, and never back to an older one', () => {
    const guard = new ContentGuard(index(), inUseMs, true, clock);
    now = 1000;
    guard.touch(first);
    expect(guard.flush()).toBe(1);
    expect(accessedAt(first)).toBe(1000);

    now = 5000;
    guard.touch(first);
    expect(guard.flush()).toBe(1);
    expect(accessedAt(first)).toBe(5000);

    // A second guard (another process, its clock behind) flushes an older read: the newer one stays.
    const behind = new ContentGuard(index(), inUseMs, true, () => 3000);
    behind.touch(first);
    expect(behind.flush()).toBe(1);
    expect(accessedAt(first)).toBe(5000);
  });

  it('are kept by a flush at exactly inUseMs after them, and forgotten by the first flush a millisecond later', () => {
    const guard = new ContentGuard(index(), inUseMs, true, clock);
    now = 1000;
    guard.touch(first);
    expect(guard.flush()).toBe(1);

    // Still in use at the edge, so the flush there must not forget it.
    now = 1000 + inUseMs;
    expect(guard.flush()).toBe(0);
    expect(guard.lastRead(first)).toBe(1000);
    expect(guard.isInUse(first)).toBe(true);

    now = 1001 + inUseMs;
    expect(guard.flush()).toBe(0);
    expect(guard.lastRead(first)).toBeUndefined();
  });

  it('are kept when the index closed before the flush: nothing written, nothing thrown', () => {
    const guard = new ContentGuard(index(), inUseMs, true, clock);
    now = 1000;
    guard.touch(first);
    index().close();
    db = undefined;
    expect(guard.flush()).toBe(1);
    expect(guard.lastRead(first)).toBe(1000);
  });
});

describe('leases and removals', () => {
  it('hold a digest leased twice until both leases end', async () => {
    const guard = new ContentGuard(index(), inUseMs, true, clock);
    const one = gate();
    const two = gate();
    const leasedOnce = guard.lease(first, () => one.promise);
    const leasedTwice = guard.lease(first, () => two.promise);
    expect(guard.isInUse(first)).toBe(true);
    expect(guard.isInUse(second)).toBe(false);

    one.open();
    await withDeadline(leasedOnce, deadlineMs, 'the first lease');
    expect(guard.isInUse(first)).toBe(true);
    expect([...guard.inUse()]).toEqual([first]);

    two.open();
    await withDeadline(leasedTwice, deadlineMs, 'the second lease');
    expect(guard.isInUse(first)).toBe(false);
    expect([...guard.inUse()]).toEqual([]);
  });

  it('hold a digest being removed; a second removal of it starts after the first ends', async () => {
    const guard = new ContentGuard(index(), inUseMs, true, clock);
    const started: string[] = [];
    const held = gate();
    const removal = guard.removing(first, () => {
      started.push('first');
      return held.promise;
    });
    const again = guard.removing(first, async () => {
      started.push('second');
    });
    await macrotask();
    expect(started).toEqual(['first']);
    expect(guard.isInUse(first)).toBe(true);
    expect(guard.isInUse(second)).toBe(false);

    held.open();
    await withDeadline(removal, deadlineMs, 'the first removal');
    await withDeadline(again, deadlineMs, 'the second removal');
    expect(started).toEqual(['first', 'second']);
    expect(guard.isInUse(first)).toBe(false);
  });

  it('two unlinks of one digest: the first to end leaves the digest held by the other', async () => {
    const guard = new ContentGuard(index(), inUseMs, true, clock);
    const earlier = gate();
    const later = gate();
    const one = guard.unlinkAll([first], () => earlier.promise);
    const two = guard.unlinkAll([first, second], () => later.promise);
    expect(guard.isInUse(first)).toBe(true);
    expect(guard.isInUse(second)).toBe(true);

    earlier.open();
    await withDeadline(one, deadlineMs, 'the first unlink');
    expect(guard.isInUse(first)).toBe(true);
    expect([...guard.inUse()].sort()).toEqual([first, second].sort());

    later.open();
    await withDeadline(two, deadlineMs, 'the second unlink');
    expect(guard.isInUse(first)).toBe(false);
    expect([...guard.inUse()]).toEqual([]);
  });

  it('a removal that ends while an unlink of the digest runs leaves the digest held until the unlink ends', async () => {
    const guard = new ContentGuard(index(), inUseMs, true, clock);
    const moving = gate();
    const unlinking = gate();
    const removal = guard.removing(first, () => moving.promise);
    const unlink = guard.unlinkAll([first], () => unlinking.promise);
    moving.open();
    await withDeadline(removal, deadlineMs, 'the removal');
    expect(guard.isInUse(first)).toBe(true);

    // A write of the digest now waits for the unlink.
    let wrote = false;
    const write = guard.lease(first, async () => {
      wrote = true;
    });
    await macrotask();
    expect(wrote).toBe(false);
    unlinking.open();
    await withDeadline(unlink, deadlineMs, 'the unlink');
    await withDeadline(write, deadlineMs, 'the write');
    expect(wrote).toBe(true);
    expect(guard.isInUse(first)).toBe(false);
  });
});
