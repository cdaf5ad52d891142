import { describe, expect, it } from 'vitest';
import { defaultLoginLimits, LoginLimiter } from './login-limiter.js';

function limiter(limits = { maxFailures: 3, windowMs: 10_000 }) {
  const clock = { now: 1_000_000 };
  return { clock, limiter: new LoginLimiter(limits, () => clock.now) };
}

describe('LoginLimiter', () => {
  it('defaults to 10 failures a minute', () => {
    expect(defaultLoginLimits).toEqual({ maxFailures: 10, windowMs: 60_000 });
    const clock = { now: 0 };
    const lim = new LoginLimiter(undefined, () => clock.now);
    for (let i = 0; i < 9; i++) lim.fail('a');
    expect(lim.retryAfter('a')).toBe(0);
    lim.fail('a');
    expect(lim.retryAfter('a')).toBe(60);
  });

  it('refuses an address from its maxFailures-th failure until the window ends, in whole seconds', () => {
    const { clock, limiter: lim } = limiter();
    expect(lim.retryAfter('a')).toBe(0);
    lim.fail('a');
    lim.fail('a');
    expect(lim.retryAfter('a')).toBe(0);
    lim.fail('a');
    expect(lim.retryAfter('a')).toBe(10);
    clock.now += 1_500;
    expect(lim.retryAfter('a')).toBe(9);
    clock.now += 8_000;
    expect(lim.retryAfter('a')).toBe(1);
    clock.now += 499;
    // 1 ms left: still at least a second.
    expect(lim.retryAfter('a')).toBe(1);
    clock.now += 1;
    expect(lim.retryAfter('a')).toBe(0);
    // A new window starts from scratch.
    lim.fail('a');
    expect(lim.retryAfter('a')).toBe(0);
  });

  it('counts each address on its own', () => {
    const { limiter: lim } = limiter();
    for (let i = 0; i < 3; i++) lim.fail('a');
    lim.fail('b');
    expect(lim.retryAfter('a')).toBe(10);
    expect(lim.retryAfter('b')).toBe(0);
  });

  it('forgets the oldest address first past 10,000 addresses', () => {
    const { limiter: lim } = limiter();
    for (let i = 0; i < 3; i++) lim.fail('first');
    for (let i = 0; i < 3; i++) lim.fail('second');
    for (let i = 0; i < 9_998; i++) lim.fail(`other-${i}`);
    expect(lim.retryAfter('first')).toBe(10);
    lim.fail('one-more');
    expect(lim.retryAfter('first')).toBe(0);
    expect(lim.retryAfter('second')).toBe(10);
  });
});
