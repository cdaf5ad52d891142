/**
 * @module proxy/fill-queue
 * The bound on concurrent upstream fills: a counting semaphore whose waiters
 * are served first come, first served. A fill beyond the limit waits for a
 * slot rather than being refused, so a burst of cold pulls slows down instead
 * of failing, and memory, sockets and upstream rate limits stay bounded.
 */
export class FillQueue {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new RangeError(`the concurrent fill limit must be a whole number of at least 1, got ${limit}`);
    }
  }

  /** Fills holding a slot. */
  get active(): number {
    return this.running;
  }

  /** Fills waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Resolves once the caller holds a slot; it must call release() exactly once after. */
  acquire(): Promise<void> {
    if (this.running < this.limit) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    // The slot passes straight to the oldest waiter: the count does not change.
    if (next !== undefined) next();
    else this.running--;
  }
}
