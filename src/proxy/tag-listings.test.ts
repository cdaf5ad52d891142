/**
 * TagListings' bounds (round 5 of the hand-planted audit, docs/mutation-testing.md): a listing is
 * kept at most 30 s whatever the tag TTL, and the cache never holds more than 100 000 tag names.
 */
import { describe, expect, it } from 'vitest';
import { maxListingTtlMs, TagListings } from './tag-listings.js';

function counted(tags: string[]): { list: () => Promise<string[]>; calls: () => number } {
  let calls = 0;
  return {
    list: () => {
      calls++;
      return Promise.resolve(tags);
    },
    calls: () => calls,
  };
}

describe('TagListings', () => {
  it('keeps a listing 30 s under a 5 min tag TTL, and asks again after', async () => {
    let now = 1_000_000;
    const listings = new TagListings(() => now);
    const upstream = counted(['a', 'b']);
    expect(maxListingTtlMs).toBe(30_000);
    expect(await listings.get('r', 300_000, upstream.list)).toEqual(['a', 'b']);
    now += 29_999;
    expect(await listings.get('r', 300_000, upstream.list)).toEqual(['a', 'b']);
    expect(upstream.calls()).toBe(1);
    now += 1;
    expect(await listings.get('r', 300_000, upstream.list)).toEqual(['a', 'b']);
    expect(upstream.calls()).toBe(2);
  });

  it('keeps a listing no longer than a shorter tag TTL', async () => {
    let now = 0;
    const listings = new TagListings(() => now);
    const upstream = counted(['a']);
    await listings.get('r', 5_000, upstream.list);
    now += 5_000;
    await listings.get('r', 5_000, upstream.list);
    expect(upstream.calls()).toBe(2);
  });

  it('does not cache a listing of more than 100 000 tags, and drops the oldest to fit a new one', async () => {
    const now = 0;
    const listings = new TagListings(() => now);
    const huge = counted(Array.from({ length: 100_001 }, (_, i) => `t${i}`));
    await listings.get('huge', 60_000, huge.list);
    await listings.get('huge', 60_000, huge.list);
    expect(huge.calls()).toBe(2);

    const first = counted(Array.from({ length: 60_000 }, (_, i) => `a${i}`));
    const second = counted(Array.from({ length: 60_000 }, (_, i) => `b${i}`));
    await listings.get('first', 60_000, first.list);
    await listings.get('second', 60_000, second.list);
    // 120 000 names do not fit: the first listing went to make room, the second stayed.
    await listings.get('second', 60_000, second.list);
    await listings.get('first', 60_000, first.list);
    expect([first.calls(), second.calls()]).toEqual([2, 1]);
  });
});
