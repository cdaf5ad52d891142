/**
 * ManifestCache (store/manifest-cache.ts): what it answers, and its byte bound. The cache only saves
 * reads of immutable files, but without its bound it is an unbounded-memory bug, so the bound is
 * checked on what the cache holds (`held`, counted from its entries), not on its own counter.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { requireDigest, type Digest } from '../oci/digest.js';
import { ManifestCache } from './manifest-cache.js';

const digestOf = (bytes: Buffer): Digest => requireDigest(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);

/** `size` bytes that differ by label, with their digest. */
function entry(label: string, size: number): { digest: Digest; bytes: Buffer } {
  const bytes = Buffer.alloc(size, label);
  return { digest: digestOf(bytes), bytes };
}

/** Which of `entries` the cache answers, by label (a get() marks an entry used: call after the step under test). */
function heldLabels(cache: ManifestCache, entries: Record<string, { digest: Digest }>): string[] {
  return Object.entries(entries)
    .filter(([, e]) => cache.get(e.digest) !== undefined)
    .map(([label]) => label);
}

describe('ManifestCache', () => {
  it('answers the bytes it was given, and nothing for a digest it was not', () => {
    const cache = new ManifestCache(100);
    const a = entry('a', 40);
    const b = entry('b', 40);
    cache.set(a.digest, a.bytes);
    expect(cache.get(a.digest)).toBe(a.bytes);
    expect(cache.get(b.digest)).toBeUndefined();
    expect(cache.held).toEqual({ entries: 1, bytes: 40 });
  });

  it('a miss leaves nothing behind: the digest can be set afterwards and is answered', () => {
    const cache = new ManifestCache(100);
    const a = entry('a', 40);
    expect(cache.get(a.digest)).toBeUndefined();
    expect(cache.held).toEqual({ entries: 0, bytes: 0 });
    cache.set(a.digest, a.bytes);
    expect(cache.get(a.digest)).toBe(a.bytes);
    expect(cache.held).toEqual({ entries: 1, bytes: 40 });
  });

  it('keeps an entry of exactly maxBytes; one byte more is not kept and drops nothing', () => {
    const exact = new ManifestCache(100);
    const whole = entry('w', 100);
    exact.set(whole.digest, whole.bytes);
    expect(exact.get(whole.digest)).toBe(whole.bytes);
    expect(exact.held).toEqual({ entries: 1, bytes: 100 });

    const cache = new ManifestCache(100);
    const a = entry('a', 40);
    const big = entry('x', 101);
    cache.set(a.digest, a.bytes);
    cache.set(big.digest, big.bytes);
    expect(cache.held).toEqual({ entries: 1, bytes: 40 });
    expect(heldLabels(cache, { a, big })).toEqual(['a']);
  });

  it('fills up to exactly maxBytes without dropping anything', () => {
    const cache = new ManifestCache(100);
    const a = entry('a', 50);
    const b = entry('b', 50);
    cache.set(a.digest, a.bytes);
    cache.set(b.digest, b.bytes);
    expect(cache.held).toEqual({ entries: 2, bytes: 100 });
    expect(heldLabels(cache, { a, b })).toEqual(['a', 'b']);
  });

  it('past maxBytes drops the least recently used first, only as many as needed', () => {
    const cache = new ManifestCache(100);
    const a = entry('a', 40);
    const b = entry('b', 40);
    const c = entry('c', 40);
    cache.set(a.digest, a.bytes);
    cache.set(b.digest, b.bytes);
    // Read a: b is now the least recently used.
    expect(cache.get(a.digest)).toBe(a.bytes);
    cache.set(c.digest, c.bytes);
    expect(cache.held).toEqual({ entries: 2, bytes: 80 });
    expect(heldLabels(cache, { a, b, c })).toEqual(['a', 'c']);
  });

  it('never holds more than maxBytes, however much is set, and keeps the newest that fit', () => {
    const cache = new ManifestCache(100);
    const all: Record<string, { digest: Digest; bytes: Buffer }> = {};
    for (let i = 0; i < 50; i++) {
      const e = entry(String.fromCharCode(65 + i), 30);
      all[String(i)] = e;
      cache.set(e.digest, e.bytes);
      const held = cache.held;
      expect(held.bytes).toBeLessThanOrEqual(100);
      expect(held).toEqual({ entries: Math.min(i + 1, 3), bytes: Math.min(i + 1, 3) * 30 });
    }
    expect(heldLabels(cache, all)).toEqual(['47', '48', '49']);
  });

  it('counts a digest set twice once', () => {
    const cache = new ManifestCache(100);
    const a = entry('a', 40);
    const b = entry('b', 40);
    cache.set(a.digest, a.bytes);
    cache.set(a.digest, Buffer.from(a.bytes));
    // Counted twice, a and b would be 120 bytes and a would be dropped.
    cache.set(b.digest, b.bytes);
    expect(cache.get(a.digest)).toBe(a.bytes);
    expect(cache.held).toEqual({ entries: 2, bytes: 80 });
    expect(heldLabels(cache, { a, b })).toEqual(['a', 'b']);
  });

  it('delete forgets the entry and gives its bytes back; deleting what it does not hold changes nothing', () => {
    const cache = new ManifestCache(100);
    const a = entry('a', 40);
    const b = entry('b', 40);
    const c = entry('c', 40);
    const never = entry('n', 40);
    cache.set(a.digest, a.bytes);
    cache.delete(a.digest);
    expect(cache.get(a.digest)).toBeUndefined();
    expect(cache.held).toEqual({ entries: 0, bytes: 0 });
    cache.delete(never.digest);
    // a's 40 bytes were given back: b and c fit together.
    cache.set(b.digest, b.bytes);
    cache.set(c.digest, c.bytes);
    expect(cache.held).toEqual({ entries: 2, bytes: 80 });
    expect(heldLabels(cache, { a, b, c })).toEqual(['b', 'c']);
  });
});
