/**
 * NegativeCache is bounded (round 5 of the hand-planted audit, docs/mutation-testing.md): at its
 * cap the oldest entry goes, so a flood of distinct missing names cannot grow it.
 */
import { describe, expect, it } from 'vitest';
import { NegativeCache } from './negative-cache.js';

describe('NegativeCache', () => {
  it('holds at most maxEntries, dropping the oldest first', () => {
    const cache = new NegativeCache(2);
    cache.add('a', 1_000, 0);
    cache.add('b', 1_000, 0);
    cache.add('c', 1_000, 0);
    expect(['a', 'b', 'c'].map((key) => cache.has(key, 1))).toEqual([false, true, true]);
  });

  it('forgets an entry at its expiry, and never keeps one with no TTL', () => {
    const cache = new NegativeCache();
    cache.add('a', 1_000, 0);
    cache.add('z', 0, 0);
    expect([cache.has('a', 999), cache.has('a', 1_000), cache.has('z', 0)]).toEqual([true, false, false]);
  });
});
