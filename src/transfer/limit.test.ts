/**
 * @module transfer/limit.test
 * The transfer engine's limiter: never more than `concurrency` tasks at once, and a task that
 * fails gives its place back (otherwise a copy with as many failed blobs as places waits forever).
 */
import { describe, expect, it } from 'vitest';
import { createLimiter } from './limit.js';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`deadline: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

describe('createLimiter', () => {
  it('runs at most `concurrency` tasks at once, the rest in order as places free', async () => {
    const limit = createLimiter(2);
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const gates = [deferred(), deferred(), deferred(), deferred()];
    const tasks = gates.map((gate, i) =>
      limit(async () => {
        started.push(i);
        most = Math.max(most, ++running);
        await gate.promise;
        running--;
        return i;
      }),
    );
    await new Promise((resolve) => setImmediate(resolve));
    expect(started).toEqual([0, 1]);
    gates[0]?.resolve();
    await withDeadline(tasks[0] as Promise<number>, 10_000, 'the first task');
    await new Promise((resolve) => setImmediate(resolve));
    expect(started).toEqual([0, 1, 2]);
    for (const gate of gates) gate.resolve();
    expect(await withDeadline(Promise.all(tasks), 10_000, 'every task')).toEqual([0, 1, 2, 3]);
    expect(most).toBe(2);
  });

  it('gives the place of a task that failed back: the next one runs', async () => {
    const limit = createLimiter(1);
    const failed = limit(() => Promise.reject(new Error('broken')));
    const next = limit(async () => 'ran');
    await expect(failed).rejects.toThrow('broken');
    expect(await withDeadline(next, 10_000, 'the task after a failed one')).toBe('ran');
  });

  it('refuses a concurrency below 1 or not an integer', () => {
    expect(() => createLimiter(0)).toThrow(new RangeError('concurrency 0'));
    expect(() => createLimiter(1.5)).toThrow(new RangeError('concurrency 1.5'));
  });
});
