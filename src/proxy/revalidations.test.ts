import { describe, expect, it } from 'vitest';
import { Revalidations, untilAborted, type RevalidationOutcome } from './revalidations.js';

const policy = { waitMs: 50, backoffFirstMs: 30_000, backoffMaxMs: 600_000 };

function clock(): { now: () => number; advance: (ms: number) => void } {
  let at = 1_000_000;
  return { now: () => at, advance: (ms) => (at += ms) };
}

describe('Revalidations', () => {
  it('backs off 30 s after a failure, doubling up to 10 min, and forgets it after a success', async () => {
    const time = clock();
    const revalidations = new Revalidations(policy, time.now);
    let calls = 0;
    let result: RevalidationOutcome = { kind: 'failed' };
    const work = async (): Promise<RevalidationOutcome> => {
      calls++;
      return result;
    };
    const attemptsAt = async (delays: number[]): Promise<number[]> => {
      const seen: number[] = [];
      for (const delay of delays) {
        time.advance(delay);
        const before = calls;
        await revalidations.revalidate('tag', work);
        seen.push(calls - before);
      }
      return seen;
    };
    expect(await attemptsAt([0])).toEqual([1]);
    // 30 s, then 60 s, 120 s, 240 s, 480 s, 600 s (the cap), 600 s.
    for (const step of [30_000, 60_000, 120_000, 240_000, 480_000, 600_000, 600_000]) {
      expect(await attemptsAt([step - 1, 1])).toEqual([0, 1]);
    }
    result = { kind: 'done' };
    expect(await attemptsAt([600_000])).toEqual([1]);
    // A success clears the backoff: no wait after it, and the next failure starts again at 30 s.
    expect(await attemptsAt([0])).toEqual([1]);
    result = { kind: 'failed' };
    expect(await attemptsAt([0])).toEqual([1]);
    expect(await attemptsAt([29_999, 1])).toEqual([0, 1]);
  });

  it('runs one revalidation per key at a time; pulls wait for it at most waitMs from its start', async () => {
    const time = clock();
    const revalidations = new Revalidations(policy, time.now);
    let release: (outcome: RevalidationOutcome) => void = () => undefined;
    let calls = 0;
    const work = (): Promise<RevalidationOutcome> => {
      calls++;
      return new Promise((resolve) => (release = resolve));
    };
    const waits = await Promise.all([revalidations.revalidate('a', work), revalidations.revalidate('a', work)]);
    expect(waits).toEqual([undefined, undefined]);
    expect(await revalidations.revalidate('a', work)).toBeUndefined();
    expect(calls).toBe(1);
    expect(revalidations.size).toBe(1);
    release({ kind: 'done' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(revalidations.size).toBe(0);
  });

  it('settle() aborts revalidations waiting on the upstream and refuses new ones', async () => {
    const revalidations = new Revalidations(policy, Date.now);
    const never = new Promise<never>(() => undefined);
    const outcome = revalidations.revalidate('hung', async (signal) => {
      try {
        await untilAborted(never, signal);
        return { kind: 'done' };
      } catch {
        return { kind: 'aborted' };
      }
    });
    await revalidations.settle();
    expect(revalidations.size).toBe(0);
    expect(await outcome).toEqual({ kind: 'aborted' });
    let called = false;
    await revalidations.revalidate('later', async () => {
      called = true;
      return { kind: 'done' };
    });
    expect(called).toBe(false);
  });
});
