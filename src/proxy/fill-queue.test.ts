/**
 * FillQueue keeps mirror.maxConcurrentFills a bound over time, not only for the first burst (round 8a
 * of the hand-planted audit, docs/mutation-testing.md): a released slot passes to the first waiter,
 * so a fill that arrives after some have finished still waits while the limit is held.
 * test/mirror-fill-limits.test.ts asks for all its fills at once, so a queue that lost count on
 * each hand-over passed it.
 */
import { describe, expect, it } from 'vitest';
import { FillQueue } from './fill-queue.js';

/** Lets every promise reaction queued so far run. */
function macrotask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe('FillQueue', () => {
  it('hands a released slot to the first waiter, and a later arrival still waits', async () => {
    const queue = new FillQueue(2);
    await queue.acquire();
    await queue.acquire();
    const served: string[] = [];
    void queue.acquire().then(() => served.push('third'));
    void queue.acquire().then(() => served.push('fourth'));
    await macrotask();
    expect(served).toEqual([]);
    expect([queue.active, queue.queued]).toEqual([2, 2]);

    queue.release();
    await macrotask();
    expect(served).toEqual(['third']);
    expect([queue.active, queue.queued]).toEqual([2, 1]);

    // A fill arriving now, with two running and one waiting, waits behind the waiter.
    void queue.acquire().then(() => served.push('fifth'));
    await macrotask();
    expect(served).toEqual(['third']);
    expect([queue.active, queue.queued]).toEqual([2, 2]);

    queue.release();
    queue.release();
    await macrotask();
    expect(served).toEqual(['third', 'fourth', 'fifth']);
    expect([queue.active, queue.queued]).toEqual([2, 0]);

    queue.release();
    queue.release();
    expect([queue.active, queue.queued]).toEqual([0, 0]);
    await queue.acquire();
    expect(queue.active).toBe(1);
  });

  it('refuses a limit below 1 or not a whole number', () => {
    for (const limit of [0, -1, 1.5, Number.NaN]) expect(() => new FillQueue(limit)).toThrow(RangeError);
  });
});
