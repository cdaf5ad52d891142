/**
 * @module registry/auth/login-limiter
 * Failed sign-ins are counted per client address in a fixed window; past the
 * limit, every sign-in from that address is refused (429 with Retry-After)
 * until the window ends, correct password or not, so guessing costs time.
 * The table is bounded: the oldest address is forgotten first.
 */

export interface LoginLimits {
  maxFailures: number;
  windowMs: number;
}

export const defaultLoginLimits: LoginLimits = { maxFailures: 10, windowMs: 60_000 };

const maxAddresses = 10_000;

interface Window {
  failures: number;
  startedAt: number;
}

export class LoginLimiter {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly limits: LoginLimits = defaultLoginLimits,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds until the address may try again; 0 when it may now. */
  retryAfter(address: string): number {
    const window = this.current(address);
    if (window === undefined || window.failures < this.limits.maxFailures) return 0;
    return Math.max(1, Math.ceil((window.startedAt + this.limits.windowMs - this.now()) / 1000));
  }

  fail(address: string): void {
    const window = this.current(address);
    if (window !== undefined) {
      window.failures++;
      return;
    }
    if (this.windows.size >= maxAddresses) this.windows.delete(this.windows.keys().next().value as string);
    this.windows.set(address, { failures: 1, startedAt: this.now() });
  }

  private current(address: string): Window | undefined {
    const window = this.windows.get(address);
    if (window === undefined) return undefined;
    if (this.now() - window.startedAt >= this.limits.windowMs) {
      this.windows.delete(address);
      return undefined;
    }
    return window;
  }
}
