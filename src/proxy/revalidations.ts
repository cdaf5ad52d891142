/**
 * @module proxy/revalidations
 * Background revalidation of cached tags (stale-while-revalidate): at most one per tag at a time,
 * exponential backoff per tag after a failure, and nothing outliving shutdown. A pull of a cached
 * tag whose TTL passed waits for the revalidation at most a short budget from its start, then is
 * answered from the cache: a dead or hung upstream never adds its timeout to such a pull.
 */
import type { OciError } from '../oci/errors.js';

export type RevalidationOutcome =
  /** The upstream answered (confirmed, moved or gone): the store holds the answer. */
  | { kind: 'done' }
  /** 401/403: not an outage; the tag is no longer served. */
  | { kind: 'denied'; error: OciError }
  /** An outage (5xx, 429, timeout, refused): the cached tag is still served. */
  | { kind: 'failed' }
  /** Shutdown came first. */
  | { kind: 'aborted' };

export interface RevalidationPolicy {
  /** How long a pull waits for a revalidation, counted from the revalidation's start. */
  waitMs: number;
  /** Backoff after the first failure; it doubles with each further failure. */
  backoffFirstMs: number;
  backoffMaxMs: number;
}

/**
 * 1 s covers a healthy upstream's HEAD with a token refresh (two round trips), so the pull that
 * crosses the TTL sees a moved tag or a revoked access at once; past it the cache answers. After a
 * failure pulls do not wait at all until the next attempt: 30 s, doubling up to 10 min, so a dead
 * upstream costs one request per tag per backoff step, and one that is back is noticed soon.
 */
export const defaultRevalidationPolicy: RevalidationPolicy = {
  waitMs: 1_000,
  backoffFirstMs: 30_000,
  backoffMaxMs: 10 * 60_000,
};

/** Backoff state is kept for this many tags at most (oldest dropped: it is only an optimisation). */
const maxBackoffEntries = 10_000;

interface Running {
  outcome: Promise<RevalidationOutcome>;
  /** Resolves when a pull should stop waiting for this revalidation. */
  waitOver: Promise<undefined>;
}

export class Revalidations {
  private readonly running = new Map<string, Running>();
  private readonly backoff = new Map<string, { failures: number; retryAt: number }>();
  private readonly shutdown = new AbortController();

  constructor(
    private readonly policy: RevalidationPolicy,
    private readonly now: () => number,
  ) {}

  /** Revalidations in flight: one per tag at most. */
  get size(): number {
    return this.running.size;
  }

  /**
   * Starts revalidating key with work, or joins the revalidation running for it, and waits for it
   * within the budget. undefined: no answer in time, backing off after a failure, or shut down.
   */
  async revalidate(
    key: string,
    work: (signal: AbortSignal) => Promise<RevalidationOutcome>,
  ): Promise<RevalidationOutcome | undefined> {
    const running = this.running.get(key) ?? this.start(key, work);
    if (running === undefined) return undefined;
    return Promise.race([running.outcome, running.waitOver]);
  }

  /** Shutdown: aborts the revalidations in flight and waits until none touches the store any more. */
  async settle(): Promise<void> {
    this.shutdown.abort();
    await Promise.all([...this.running.values()].map((running) => running.outcome));
  }

  private start(key: string, work: (signal: AbortSignal) => Promise<RevalidationOutcome>): Running | undefined {
    if (this.shutdown.signal.aborted) return undefined;
    const backoff = this.backoff.get(key);
    if (backoff !== undefined && backoff.retryAt > this.now()) return undefined;
    let timer: NodeJS.Timeout | undefined;
    const waitOver = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), this.policy.waitMs);
      timer.unref();
    });
    const outcome = work(this.shutdown.signal)
      .catch((): RevalidationOutcome => ({ kind: 'failed' }))
      .then((result) => {
        this.record(key, result);
        return result;
      })
      .finally(() => {
        clearTimeout(timer);
        this.running.delete(key);
      });
    const running = { outcome, waitOver };
    this.running.set(key, running);
    return running;
  }

  private record(key: string, outcome: RevalidationOutcome): void {
    if (outcome.kind === 'aborted') return;
    const previous = this.backoff.get(key);
    this.backoff.delete(key);
    if (outcome.kind !== 'failed') return;
    const failures = (previous?.failures ?? 0) + 1;
    const delay = Math.min(this.policy.backoffMaxMs, this.policy.backoffFirstMs * 2 ** Math.min(failures - 1, 30));
    if (this.backoff.size >= maxBackoffEntries) {
      const oldest = this.backoff.keys().next().value;
      if (oldest !== undefined) this.backoff.delete(oldest);
    }
    this.backoff.set(key, { failures, retryAt: this.now() + delay });
  }
}

/** An upstream call that stops being waited for at shutdown: its late answer is dropped, its failure swallowed. */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(new Error('shutting down'));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new Error('shutting down'));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
