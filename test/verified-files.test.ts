/**
 * The set of blob files serve trusts without hashing (store/verified-files.ts): bounded, aged,
 * and keyed by identity, so a changed file is hashed again.
 */
import { describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/digest.js';
import { defaultVerifiedMaxAgeMs, VerifiedFiles } from '../src/store/verified-files.js';

const digest = (n: number): Digest => `sha256:${String(n).padStart(64, '0')}` as Digest;

describe('VerifiedFiles', () => {
  it('trusts a digest only under the identity it was verified with', () => {
    const set = new VerifiedFiles();
    set.remember(digest(1), 'a');
    expect(set.trusts(digest(1), 'a')).toBe(true);
    expect(set.trusts(digest(1), 'b')).toBe(false);
    // A mismatch forgets: the old identity is not trusted either until verified again.
    expect(set.trusts(digest(1), 'a')).toBe(false);
  });

  it('forgets the least recently used beyond its bound, and entries older than the age limit', () => {
    let now = 0;
    const set = new VerifiedFiles(2, 1_000, () => now);
    set.remember(digest(1), 'a');
    set.remember(digest(2), 'a');
    expect(set.trusts(digest(1), 'a')).toBe(true); // 1 is now the most recently used
    set.remember(digest(3), 'a');
    expect([set.size, set.trusts(digest(2), 'a'), set.trusts(digest(1), 'a')]).toEqual([2, false, true]);
    now = 1_001;
    expect(set.trusts(digest(3), 'a')).toBe(false);
  });

  it('shares one hash per file; remembers a match only; a hash that throws is abandoned', async () => {
    const set = new VerifiedFiles();
    let release = (): void => undefined;
    const first = set.verify(digest(1), 'a', () => new Promise((resolve) => (release = () => resolve('verified'))));
    expect(set.verdictOf(digest(1), 'a')).toBe(first);
    expect(set.verdictOf(digest(1), 'b')).toBeUndefined();
    release();
    expect(await first).toBe('verified');
    expect(set.verdictOf(digest(1), 'a')).toBeUndefined();
    expect(set.trusts(digest(1), 'a')).toBe(true);

    expect(await set.verify(digest(2), 'a', () => Promise.resolve('corrupt'))).toBe('corrupt');
    expect(await set.verify(digest(3), 'a', () => Promise.reject(new Error('EIO')))).toBe('abandoned');
    expect(set.verdictOf(digest(3), 'a')).toBeUndefined();
    expect([set.trusts(digest(2), 'a'), set.trusts(digest(3), 'a'), set.size]).toEqual([false, false, 1]);
  });

  it('forgets a digest it is told to (a quarantine)', () => {
    const set = new VerifiedFiles();
    set.remember(digest(1), 'a');
    set.remember(digest(2), 'a');
    set.forget(digest(1));
    expect([set.trusts(digest(1), 'a'), set.trusts(digest(2), 'a'), set.size]).toEqual([false, true, 1]);
  });

  it('trusts an entry up to its age limit inclusive, one hour by default, and starts its counts at 0', () => {
    let now = 5_000;
    const set = new VerifiedFiles(undefined, undefined, () => now);
    expect(set.counts).toEqual({ hashed: 0, trusted: 0, joined: 0, own: 0 });
    expect(defaultVerifiedMaxAgeMs).toBe(60 * 60 * 1000);
    set.remember(digest(1), 'a');
    set.remember(digest(2), 'a');
    now = 5_000 + 60 * 60 * 1000;
    // A hit does not renew the age: the entry is as old as its verification.
    expect([set.trusts(digest(1), 'a'), set.trusts(digest(1), 'a')]).toEqual([true, true]);
    now += 1;
    expect([set.trusts(digest(1), 'a'), set.trusts(digest(2), 'a'), set.size]).toEqual([false, false, 0]);
  });
});
